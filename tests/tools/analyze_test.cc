#include "analyze.h"

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chatshard/routing.h"
#include "fairness.h"  // engine/src: the scores analyze reports are the engine's own
#include "cli_runner.h"
#include "gtest/gtest.h"
#include "traffic_file.h"

namespace chatshard::cli {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

// A traffic whose chat i ("c<i>") sends messages_per_chat[i] messages.
Traffic MakeTraffic(const std::vector<uint64_t>& messages_per_chat) {
  Traffic traffic;
  for (uint32_t chat = 0; chat < messages_per_chat.size(); ++chat) {
    traffic.chats.push_back("c" + std::to_string(chat));
    for (uint64_t i = 0; i < messages_per_chat[chat]; ++i) {
      traffic.messages.push_back(TrafficMessage{.ts_us = 0, .chat = chat, .bytes = 1});
    }
  }
  traffic.lines = traffic.messages.size();
  return traffic;
}

const std::vector<uint64_t> kSmallLoad = {40, 1, 2, 3, 5, 8, 13, 21, 7, 7, 1, 9};

TEST(AnalyzeTest, ShardLoadsFollowShardForAndScoresAreTheEngines) {
  const Traffic traffic = MakeTraffic(kSmallLoad);
  AnalyzeOptions options;
  options.partitions = 5;
  options.range_to = 8;
  const Analysis analysis = AnalyzeTraffic(traffic, options);
  ASSERT_EQ(analysis.routings.size(), 2u);
  EXPECT_EQ(analysis.messages, traffic.messages.size());
  EXPECT_EQ(analysis.chats, kSmallLoad.size());

  for (const RoutingAnalysis& routed : analysis.routings) {
    std::vector<uint64_t> loads(options.partitions);
    std::vector<uint64_t> chats(options.partitions);
    for (size_t chat = 0; chat < kSmallLoad.size(); ++chat) {
      const uint32_t shard = ShardFor(traffic.chats[chat], options.partitions, routed.routing);
      loads[shard] += kSmallLoad[chat];
      ++chats[shard];
    }
    ASSERT_EQ(routed.shards.size(), options.partitions);
    for (uint32_t shard = 0; shard < options.partitions; ++shard) {
      EXPECT_EQ(routed.shards[shard].shard, shard);
      EXPECT_EQ(routed.shards[shard].messages, loads[shard]) << shard;
      EXPECT_EQ(routed.shards[shard].chats, chats[shard]) << shard;
    }
    const internal::LoadFairness expected = internal::ComputeLoadFairness(loads);
    EXPECT_DOUBLE_EQ(routed.fairness.jain, expected.jain);
    EXPECT_DOUBLE_EQ(routed.fairness.cv, expected.cv);
    EXPECT_DOUBLE_EQ(routed.fairness.max_over_mean, expected.max_over_mean);
    EXPECT_DOUBLE_EQ(routed.fairness.chi2, expected.chi2);
    EXPECT_DOUBLE_EQ(routed.fairness.chi2_p, expected.chi2_p);
  }

  ASSERT_EQ(analysis.hot_chats.size(), 10u);
  EXPECT_EQ(analysis.hot_chats[0].chat, "c0");
  EXPECT_EQ(analysis.hot_chats[0].messages, 40u);
  EXPECT_EQ(analysis.hot_chats[1].chat, "c7");
  EXPECT_EQ(analysis.hot_chats[0].shards,
            (std::vector<uint32_t>{ShardFor("c0", 5, Routing::kModulo),
                                   ShardFor("c0", 5, Routing::kJump)}));
}

TEST(AnalyzeTest, RecommendationIsTheLargestPWithMaxOverMeanAtMostOneQuarterAboveEven) {
  // One chat with a tenth of the messages: no P gets past a speed-up of 10,
  // and no P above 12 can keep max/mean <= 1.25.
  std::vector<uint64_t> load(36'001, 1);
  load[0] = 4000;
  AnalyzeOptions options;
  options.range_to = 20;
  const Analysis analysis = AnalyzeTraffic(MakeTraffic(load), options);
  for (size_t r = 0; r < analysis.routings.size(); ++r) {
    const AnalyzedRecommendation& rec = analysis.routings[r].recommendation;
    EXPECT_DOUBLE_EQ(rec.speedup_cap, 10.0);
    EXPECT_DOUBLE_EQ(rec.hottest_chat_limit, 12.5);
    ASSERT_GE(rec.partitions, 1u);
    EXPECT_LE(rec.partitions, 12u);
    EXPECT_LE(rec.max_over_mean, 1.25);
    for (const RangeRow& row : analysis.table) {
      EXPECT_LE(row.by_routing[r].speedup, 10.0);
      if (row.partitions > rec.partitions) {
        EXPECT_GT(row.by_routing[r].max_over_mean, 1.25);
      } else if (row.partitions == rec.partitions) {
        EXPECT_EQ(row.by_routing[r].speedup, rec.speedup);
      }
    }
  }
  EXPECT_DOUBLE_EQ(analysis.table.front().by_routing[0].speedup, 1.0);  // P = 1
}

TEST(AnalyzeTest, JumpMovesAboutOneInPPlusOneChatsModuloMostOfThem) {
  AnalyzeOptions options;
  options.range_to = 16;
  const Analysis analysis = AnalyzeTraffic(MakeTraffic(std::vector<uint64_t>(20'000, 1)), options);
  ASSERT_EQ(analysis.table.size(), 16u);
  for (const RangeRow& row : analysis.table) {
    const double p = row.partitions;
    if (row.partitions == 16) {
      EXPECT_FALSE(row.by_routing[1].moved_to_next.has_value());
      continue;
    }
    ASSERT_TRUE(row.by_routing[1].moved_to_next.has_value());
    EXPECT_NEAR(*row.by_routing[1].moved_to_next, 1 / (p + 1), 0.015) << "P = " << p;
    EXPECT_NEAR(*row.by_routing[0].moved_to_next, p / (p + 1), 0.03) << "P = " << p;
  }
}

// The keys the header comment of analyze.h documents, in order.
TEST(AnalyzeTest, BinaryWritesTheDocumentedJsonAndText) {
  const fs::path dir = ScratchDir();
  std::string text;
  const std::vector<std::string> chats = {"lobby", "a", "b", "c", "lobby", "d", "lobby", "e"};
  for (size_t i = 0; i < chats.size(); ++i) {
    text += "{\"ts_us\":" + std::to_string(i) + ",\"chat\":\"" + chats[i] + "\",\"bytes\":3}\n";
  }
  WriteFile(dir / "small.jsonl", text);
  const CommandResult run = RunCli({"analyze", (dir / "small.jsonl").string(), "--partitions", "4",
                                    "--range", "1..6", "--json", (dir / "out.json").string()});
  ASSERT_EQ(run.exit_code, 0) << Describe(run);
  EXPECT_NE(run.out.find("Hottest chats"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("Recommendation"), std::string::npos) << run.out;

  const json doc = json::parse(ReadFile(dir / "out.json"));
  std::vector<std::string> keys;
  for (const auto& item : doc.items()) keys.push_back(item.key());
  EXPECT_EQ(keys,
            (std::vector<std::string>{"file", "messages", "chats", "bad_lines", "partitions",
                                      "routings", "by_routing", "hot_chats", "range", "table"}));
  EXPECT_EQ(doc["messages"], 8);
  EXPECT_EQ(doc["routings"], json::array({"modulo", "jump"}));
  for (const std::string routing : {"modulo", "jump"}) {
    const json& routed = doc["by_routing"][routing];
    ASSERT_EQ(routed["shards"].size(), 4u);
    uint64_t messages = 0;
    for (const json& shard : routed["shards"]) {
      for (const char* key : {"shard", "messages", "share", "chats"}) {
        EXPECT_TRUE(shard.contains(key)) << key;
      }
      messages += shard["messages"].get<uint64_t>();
    }
    EXPECT_EQ(messages, 8u);
    const uint32_t lobby_shard =
        ShardFor("lobby", 4, routing == "jump" ? Routing::kJump : Routing::kModulo);
    EXPECT_GE(routed["shards"][lobby_shard]["messages"].get<uint64_t>(), 3u);
    for (const char* key : {"jain", "cv", "max_over_mean", "chi2", "chi2_p"}) {
      EXPECT_TRUE(routed["fairness"].contains(key)) << key;
    }
    for (const char* key :
         {"partitions", "max_over_mean", "speedup", "speedup_cap", "hottest_chat_limit", "rule"}) {
      EXPECT_TRUE(routed["recommendation"].contains(key)) << key;
    }
    EXPECT_EQ(doc["hot_chats"][0]["shards"][routing], lobby_shard);
  }
  EXPECT_EQ(doc["hot_chats"][0]["chat"], "lobby");
  EXPECT_EQ(doc["hot_chats"][0]["messages"], 3);
  EXPECT_EQ(doc["range"], (json{{"from", 1}, {"to", 6}}));
  ASSERT_EQ(doc["table"].size(), 6u);
  for (const char* key : {"max_over_mean", "jain", "max_shard_share", "speedup", "moved_to_next"}) {
    EXPECT_TRUE(doc["table"][0]["jump"].contains(key)) << key;
  }
  EXPECT_TRUE(doc["table"][5]["jump"]["moved_to_next"].is_null());
}

TEST(AnalyzeTest, BinaryAnalyzesWhatGenWrote) {
  const fs::path file = ScratchDir() / "gen.jsonl.gz";
  const CommandResult gen =
      RunCli({"gen", file.string(), "--messages", "20000", "--hot", "lobby=0.25", "--seed", "3"});
  ASSERT_EQ(gen.exit_code, 0) << Describe(gen);
  const CommandResult run = RunCli({"analyze", file.string(), "--routing", "jump"});
  ASSERT_EQ(run.exit_code, 0) << Describe(run);
  EXPECT_NE(run.out.find("lobby"), std::string::npos) << run.out;
  EXPECT_EQ(run.out.find("modulo"), std::string::npos) << run.out;
}

TEST(AnalyzeTest, BinaryRefusesBadFilesAndFlags) {
  const fs::path dir = ScratchDir();
  const CommandResult missing = RunCli({"analyze", (dir / "missing.jsonl").string()});
  EXPECT_EQ(missing.exit_code, 1) << Describe(missing);
  EXPECT_NE(missing.err.find("cannot open"), std::string::npos) << missing.err;

  WriteFile(dir / "bad.jsonl", "{\"ts_us\":1,\"chat\":\"a\"}\n{\"ts_us\":\"x\",\"chat\":\"b\"}\n");
  const CommandResult strict = RunCli({"analyze", (dir / "bad.jsonl").string(), "--strict"});
  EXPECT_EQ(strict.exit_code, 1) << Describe(strict);
  EXPECT_NE(strict.err.find("bad.jsonl:2: field \"ts_us\""), std::string::npos) << strict.err;
  const CommandResult lenient = RunCli({"analyze", (dir / "bad.jsonl").string()});
  EXPECT_EQ(lenient.exit_code, 0) << Describe(lenient);
  EXPECT_NE(lenient.err.find("skipped 1 bad line"), std::string::npos) << lenient.err;

  WriteFile(dir / "empty.jsonl", "");
  const CommandResult empty = RunCli({"analyze", (dir / "empty.jsonl").string()});
  EXPECT_EQ(empty.exit_code, 1) << Describe(empty);
  EXPECT_NE(empty.err.find("no messages"), std::string::npos) << empty.err;

  for (const std::string range : {"0..4", "5..2", "1-4"}) {
    const CommandResult bad = RunCli({"analyze", (dir / "bad.jsonl").string(), "--range", range});
    EXPECT_EQ(bad.exit_code, 2) << range << "\n" << Describe(bad);
  }
  const CommandResult routing =
      RunCli({"analyze", (dir / "bad.jsonl").string(), "--routing", "ring"});
  EXPECT_EQ(routing.exit_code, 2) << Describe(routing);
}

}  // namespace
}  // namespace chatshard::cli
