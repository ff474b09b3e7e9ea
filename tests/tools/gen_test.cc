#include "gen.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "gtest/gtest.h"
#include "traffic_file.h"

namespace chatshard::cli {
namespace {

namespace fs = std::filesystem;

struct Counts {
  std::map<std::string, uint64_t> by_chat;
  uint64_t total = 0;
  int64_t last_ts_us = 0;
  bool in_time_order = true;
  std::vector<uint64_t> sizes;
};

Counts Count(const GenConfig& config) {
  Counts counts;
  GenerateTraffic(config, [&counts](int64_t ts_us, std::string_view chat, uint64_t bytes) {
    ++counts.by_chat[std::string(chat)];
    ++counts.total;
    counts.in_time_order = counts.in_time_order && ts_us >= counts.last_ts_us;
    counts.last_ts_us = ts_us;
    counts.sizes.push_back(bytes);
  });
  return counts;
}

double Share(const Counts& counts, const std::string& chat) {
  const auto it = counts.by_chat.find(chat);
  return it == counts.by_chat.end() ? 0 : static_cast<double>(it->second) / counts.total;
}

// Five standard deviations of a share p estimated from n draws.
double Tolerance(double p, uint64_t n) { return 5 * std::sqrt(p * (1 - p) / n); }

TEST(GenTest, SameSeedGivesByteIdenticalFilesAndOtherSeedsDiffer) {
  const fs::path dir = ScratchDir();
  GenConfig config;
  config.messages = 20'000;
  config.hot = {{"lobby", 0.2}};
  config.bursts = {{"alerts", 50, 2.0}};
  for (const std::string name : {"a.jsonl", "a.jsonl.gz"}) {
    ASSERT_TRUE(WriteGeneratedTraffic(config, (dir / name).string()).ok());
    ASSERT_TRUE(WriteGeneratedTraffic(config, (dir / ("again_" + name)).string()).ok());
    EXPECT_EQ(ReadFile(dir / name), ReadFile(dir / ("again_" + name))) << name;
  }
  config.seed = 2;
  ASSERT_TRUE(WriteGeneratedTraffic(config, (dir / "b.jsonl").string()).ok());
  EXPECT_NE(ReadFile(dir / "a.jsonl"), ReadFile(dir / "b.jsonl"));
}

// Pins the output for one seed, so a change of the sampling code (or a
// platform whose arithmetic differs) shows up here.
TEST(GenTest, OutputForSeedOneIsPinned) {
  const fs::path dir = ScratchDir();
  GenConfig config;
  config.messages = 3;
  config.chats = 10;
  ASSERT_TRUE(WriteGeneratedTraffic(config, (dir / "pinned.jsonl").string()).ok());
  EXPECT_EQ(ReadFile(dir / "pinned.jsonl"),
            "{\"ts_us\":2010,\"chat\":\"chat/2\",\"bytes\":288}\n"
            "{\"ts_us\":4608,\"chat\":\"chat/4\",\"bytes\":51}\n"
            "{\"ts_us\":4844,\"chat\":\"chat/2\",\"bytes\":44}\n");
}

TEST(GenTest, HotSharesAndZipfSkewMatchTheFlags) {
  GenConfig config;
  config.messages = 200'000;
  config.chats = 1000;
  config.zipf = 1.2;
  config.hot = {{"lobby", 0.3}, {"ops", 0.05}};
  const Counts counts = Count(config);
  ASSERT_EQ(counts.total, config.messages);
  EXPECT_NEAR(Share(counts, "lobby"), 0.3, Tolerance(0.3, counts.total));
  EXPECT_NEAR(Share(counts, "ops"), 0.05, Tolerance(0.05, counts.total));

  double harmonic = 0;
  for (int rank = 1; rank <= 1000; ++rank) harmonic += std::pow(rank, -1.2);
  for (const int rank : {1, 2, 10, 100}) {
    const double expected = 0.65 * std::pow(rank, -1.2) / harmonic;
    EXPECT_NEAR(Share(counts, "chat/" + std::to_string(rank)), expected,
                Tolerance(expected, counts.total))
        << "chat/" << rank;
  }
}

TEST(GenTest, ZipfExponentZeroIsUniform) {
  GenConfig config;
  config.messages = 100'000;
  config.chats = 10;
  config.zipf = 0;
  const Counts counts = Count(config);
  for (int rank = 1; rank <= 10; ++rank) {
    EXPECT_NEAR(Share(counts, "chat/" + std::to_string(rank)), 0.1, Tolerance(0.1, counts.total));
  }
}

TEST(GenTest, ArrivalsFollowTheRate) {
  GenConfig config;
  config.messages = 200'000;
  config.rate = 5000;
  const Counts counts = Count(config);
  EXPECT_TRUE(counts.in_time_order);
  // 200,000 exponential gaps of mean 200 µs: 40 s, standard deviation 0.09 s.
  EXPECT_NEAR(static_cast<double>(counts.last_ts_us) / 1e6, 40.0, 0.5);
}

TEST(GenTest, BurstsSendTheirMessagesAtOnceOnSchedule) {
  GenConfig config;
  config.messages = 10'000;
  config.rate = 1000;  // about 10 s of background traffic
  config.bursts = {{"alerts", 100, 2.5}};
  std::map<int64_t, uint64_t> alerts_at;
  int64_t last = 0;
  GenerateTraffic(config, [&](int64_t ts_us, std::string_view chat, uint64_t) {
    EXPECT_GE(ts_us, last);
    last = ts_us;
    if (chat == "alerts") ++alerts_at[ts_us];
  });
  ASSERT_GE(alerts_at.size(), 3u);
  int64_t expected_ts = 2'500'000;
  for (const auto& [ts_us, count] : alerts_at) {
    EXPECT_EQ(ts_us, expected_ts);
    EXPECT_EQ(count, 100u);
    expected_ts += 2'500'000;
  }
}

TEST(GenTest, SizesFollowTheDistribution) {
  GenConfig config;
  config.messages = 50'000;
  ASSERT_EQ(ParseGenSize("fixed:64", &config.size), "");
  Counts counts = Count(config);
  EXPECT_TRUE(std::all_of(counts.sizes.begin(), counts.sizes.end(),
                          [](uint64_t size) { return size == 64; }));

  ASSERT_EQ(ParseGenSize("uniform:10..20", &config.size), "");
  counts = Count(config);
  EXPECT_EQ(*std::min_element(counts.sizes.begin(), counts.sizes.end()), 10u);
  EXPECT_EQ(*std::max_element(counts.sizes.begin(), counts.sizes.end()), 20u);

  ASSERT_EQ(ParseGenSize("lognormal:500,0.8", &config.size), "");
  counts = Count(config);
  std::nth_element(counts.sizes.begin(), counts.sizes.begin() + counts.sizes.size() / 2,
                   counts.sizes.end());
  EXPECT_NEAR(static_cast<double>(counts.sizes[counts.sizes.size() / 2]), 500, 15);
  double log_sum = 0;
  double log_square_sum = 0;
  for (const uint64_t size : counts.sizes) {
    log_sum += std::log(static_cast<double>(size));
    log_square_sum += std::log(static_cast<double>(size)) * std::log(static_cast<double>(size));
  }
  const double mean = log_sum / counts.sizes.size();
  EXPECT_NEAR(std::sqrt(log_square_sum / counts.sizes.size() - mean * mean), 0.8, 0.02);
}

TEST(GenTest, ParsersNameWhatIsWrong) {
  GenSize size;
  EXPECT_NE(ParseGenSize("normal:1,2", &size), "");
  EXPECT_NE(ParseGenSize("uniform:9..3", &size), "");
  EXPECT_NE(ParseGenSize("lognormal:100", &size), "");
  EXPECT_NE(ParseGenSize("fixed:-1", &size), "");
  EXPECT_NE(ParseGenSize("uniform:0..18446744073709551615", &size), "");
  GenHotChat hot;
  EXPECT_EQ(ParseGenHotChat("a=b=0.25", &hot), "");
  EXPECT_EQ(hot.chat, "a=b");
  EXPECT_DOUBLE_EQ(hot.share, 0.25);
  EXPECT_NE(ParseGenHotChat("lobby", &hot), "");
  EXPECT_NE(ParseGenHotChat("lobby=1", &hot), "");
  EXPECT_NE(ParseGenHotChat("=0.1", &hot), "");
  GenBurst burst;
  EXPECT_EQ(ParseGenBurst("alerts=500/60", &burst), "");
  EXPECT_EQ(burst.count, 500u);
  EXPECT_DOUBLE_EQ(burst.every_s, 60);
  EXPECT_NE(ParseGenBurst("alerts=0/60", &burst), "");
  EXPECT_NE(ParseGenBurst("alerts=5/0", &burst), "");
  EXPECT_NE(ParseGenBurst("alerts=5", &burst), "");
}

TEST(GenTest, ValidateReportsEveryProblemNamingFlagAndValue) {
  GenConfig config;
  config.chats = 0;
  config.zipf = -1;
  config.rate = 0;
  config.hot = {{"a", 0.7}, {"b", 0.4}, {"chat/3", 0.01}};
  const Status valid = ValidateGenConfig(config);
  ASSERT_FALSE(valid.ok());
  const std::string message(valid.message());
  EXPECT_NE(message.find("--chats 0"), std::string::npos) << message;
  EXPECT_NE(message.find("--zipf -1"), std::string::npos) << message;
  EXPECT_NE(message.find("--rate 0"), std::string::npos) << message;
  EXPECT_NE(message.find("sum to 1.11"), std::string::npos) << message;
  EXPECT_TRUE(ValidateGenConfig(GenConfig{}).ok());
}

TEST(GenTest, BinaryWritesAFileThatLoadsWithoutBadLines) {
  const fs::path out = ScratchDir() / "gen.jsonl.gz";
  const std::vector<std::string> args = {
      "gen",    out.string(), "--messages", "5000",         "--chats", "50",
      "--zipf", "0.8",        "--hot",      "lobby=0.3",    "--burst", "alerts=20/1",
      "--rate", "2000",       "--size",     "uniform:1..9", "--seed",  "7"};
  const CommandResult first = RunCli(args);
  ASSERT_EQ(first.exit_code, 0) << Describe(first);
  const std::string first_bytes = ReadFile(out);
  const CommandResult second = RunCli(args);
  ASSERT_EQ(second.exit_code, 0) << Describe(second);
  EXPECT_EQ(ReadFile(out), first_bytes);
  ASSERT_EQ(first_bytes.substr(0, 2), "\x1f\x8b");  // gzip

  LoadOptions strict;
  strict.strict = true;
  Result<Traffic> loaded = LoadTraffic(out.string(), strict);
  ASSERT_TRUE(loaded.ok()) << loaded.status().message();
  EXPECT_EQ(loaded.value().messages.size(), 5000u);
  EXPECT_EQ(loaded.value().skipped, 0u);
}

TEST(GenTest, BinaryRejectsBadFlagsWithExitCodeTwo) {
  const fs::path out = ScratchDir() / "x.jsonl";
  const CommandResult bad = RunCli({"gen", out.string(), "--zipf", "-0.5", "--hot", "a=0.6",
                                    "--hot", "b=0.6", "--size", "lognormal:0,1"});
  EXPECT_EQ(bad.exit_code, 2) << Describe(bad);
  EXPECT_NE(bad.err.find("--zipf -0.5"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("sum to 1.2"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("--size 'lognormal:0,1'"), std::string::npos) << bad.err;
  EXPECT_FALSE(fs::exists(out));

  const CommandResult unwritable = RunCli({"gen", "/nonexistent-dir/x.jsonl"});
  EXPECT_EQ(unwritable.exit_code, 1) << Describe(unwritable);
  EXPECT_NE(unwritable.err.find("cannot open /nonexistent-dir/x.jsonl"), std::string::npos)
      << unwritable.err;
}

}  // namespace
}  // namespace chatshard::cli
