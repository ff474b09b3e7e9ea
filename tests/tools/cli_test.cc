// Runs the built chatshard binary (CHATSHARD_CLI) as a user would and checks
// its output and exit codes.
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "chatshard/routing.h"
#include "cli_runner.h"
#include "gtest/gtest.h"

namespace chatshard::cli {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;  // parses keys in file order

// Lines of a gzip file, counted with zlib directly (not with the code under test).
uint64_t CountGzipLines(const char* path) {
  gzFile file = gzopen(path, "rb");
  EXPECT_NE(file, nullptr) << path;
  if (file == nullptr) return 0;
  uint64_t lines = 0;
  char buffer[1 << 16];
  int n = 0;
  while ((n = gzread(file, buffer, sizeof buffer)) > 0) {
    for (int i = 0; i < n; ++i) lines += buffer[i] == '\n';
  }
  gzclose(file);
  return lines;
}

json ReadJson(const fs::path& path) {
  const std::string text = ReadFile(path);
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(parsed.is_discarded()) << "not JSON: " << path << "\n" << text;
  return parsed;
}

std::vector<std::string> Keys(const json& object) {
  std::vector<std::string> keys;
  for (auto it = object.begin(); it != object.end(); ++it) keys.push_back(it.key());
  return keys;
}

TEST(CliReplayTest, SampleAtMaxSpeedCompletesEveryMessageInOrder) {
  const fs::path json_path = ScratchDir() / "result.json";
  const CommandResult r = RunCli({"replay", CHATSHARD_SAMPLE, "--json", json_path.string()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);

  const uint64_t lines = CountGzipLines(CHATSHARD_SAMPLE);
  ASSERT_GT(lines, 0u);
  EXPECT_EQ(ReportNumber(r.out, "messages"), lines);
  EXPECT_EQ(ReportNumber(r.out, "completed"), lines);
  EXPECT_EQ(ReportNumber(r.out, "order violations"), 0u);
  EXPECT_EQ(ReportNumber(r.out, "duplicate runs"), 0u);

  const json result = ReadJson(json_path);
  EXPECT_EQ(result["messages"], lines);
  EXPECT_EQ(result["completed"], result["messages"]);
  EXPECT_EQ(result["failed"], 0);
  EXPECT_EQ(result["rejected"], 0);
  EXPECT_EQ(result["order_violations"], 0);
}

// The whole shared capture (499,515 messages over 14,812 chats), under both
// orderings: every message accounted for, none run twice, per-chat order kept.
TEST(CliReplayTest, SharedCaptureAtMaxSpeedAccountsForEveryMessage) {
  const uint64_t lines = CountGzipLines(CHATSHARD_SHARED_CAPTURE);
  ASSERT_EQ(lines, 499515u);
  for (const char* ordering : {"per_chat", "none"}) {
    const fs::path json_path = ScratchDir() / (std::string(ordering) + ".json");
    const CommandResult r = RunCli({"replay", CHATSHARD_SHARED_CAPTURE, "--speed", "max",
                                    "--ordering", ordering, "--json", json_path.string()});
    ASSERT_EQ(r.exit_code, 0) << ordering << "\n" << Describe(r);
    const json result = ReadJson(json_path);
    EXPECT_EQ(result["messages"], lines) << ordering;
    EXPECT_EQ(result["completed"], lines) << ordering;
    EXPECT_EQ(result["failed"], 0) << ordering;
    EXPECT_EQ(result["rejected"], 0) << ordering;
    EXPECT_EQ(ReportNumber(r.out, "duplicate runs"), 0u) << ordering;
    EXPECT_EQ(ReportNumber(r.out, "unprocessed"), 0u) << ordering;
    uint64_t completed = 0;
    for (const json& shard : result["shards"]) completed += shard["completed"].get<uint64_t>();
    EXPECT_EQ(completed, lines) << ordering;
    if (std::string(ordering) == "per_chat") {
      EXPECT_EQ(result["order_violations"], 0);
    }
  }
}

TEST(CliReplayTest, JsonHasTheDocumentedKeys) {
  const fs::path json_path = ScratchDir() / "result.json";
  const CommandResult r = RunCli({"replay", CHATSHARD_SAMPLE, "--partitions", "8", "--routing",
                                  "jump", "--json", json_path.string()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  const json result = ReadJson(json_path);

  EXPECT_EQ(Keys(result),
            (std::vector<std::string>{"messages", "completed", "failed", "rejected",
                                      "order_violations", "duration_s", "throughput_per_s",
                                      "latency_us", "fairness", "isolation", "shards",
                                      "timeline"}));
  for (const char* key : {"p50", "p90", "p99", "p999", "max"}) {
    EXPECT_TRUE(result["latency_us"].contains(key)) << key;
    EXPECT_TRUE(result["latency_us"][key].is_number()) << key;
  }
  EXPECT_LE(result["latency_us"]["p50"].get<double>(), result["latency_us"]["max"].get<double>());
  for (const char* key : {"jain", "cv", "max_over_mean", "chi2_p"}) {
    EXPECT_TRUE(result["fairness"][key].is_number()) << key;
  }
  const json& isolation = result["isolation"];
  EXPECT_EQ(isolation["hot_chat"], "hot/lobby");
  EXPECT_EQ(isolation["hot_shard"], ShardFor("hot/lobby", 8, Routing::kJump));
  EXPECT_TRUE(isolation["hot_shard_others_p99_us"].is_number());
  EXPECT_TRUE(isolation["other_shards_p99_us"].is_number());

  ASSERT_TRUE(result["shards"].is_array());
  ASSERT_EQ(result["shards"].size(), 8u);
  uint64_t submitted = 0;
  for (size_t i = 0; i < result["shards"].size(); ++i) {
    const json& shard = result["shards"][i];
    EXPECT_EQ(shard["shard"], i);
    for (const char* key : {"submitted", "completed", "failed", "rejected", "waiting", "active"}) {
      EXPECT_TRUE(shard[key].is_number_unsigned()) << key;
    }
    EXPECT_EQ(shard["waiting"], 0);  // quiet after the drain
    EXPECT_EQ(shard["active"], 0);
    EXPECT_TRUE(shard["queue_wait_us"]["p50"].is_number());
    EXPECT_TRUE(shard["queue_wait_us"]["p99"].is_number());
    submitted += shard["submitted"].get<uint64_t>();
  }
  EXPECT_EQ(submitted, result["messages"].get<uint64_t>());
}

TEST(CliReplayTest, TextReportHasEverySection) {
  const CommandResult r = RunCli({"replay", CHATSHARD_SAMPLE, "--partitions", "4"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  for (const char* section :
       {"\nTotals\n", "\nLatency (µs)", "  queue wait ", "  end to end ", "\nShards",
        "\nHottest chats", "\nFairness", "Jain's index", "chi-square p-value",
        "backlogged-chat Jain", "worst cold-chat wait", "\nIsolation: hottest chat hot/lobby",
        "other chats on shard", "chats on the other shards", "throughput", "backpressure waits"}) {
    EXPECT_NE(r.out.find(section), std::string::npos) << section << "\n" << r.out;
  }
}

TEST(CliReplayTest, OrderingNoneCompletesEveryMessage) {
  const fs::path json_path = ScratchDir() / "result.json";
  const CommandResult r =
      RunCli({"replay", CHATSHARD_SAMPLE, "--ordering", "none", "--json", json_path.string()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);  // no order promised, so none checked
  const json result = ReadJson(json_path);
  EXPECT_EQ(result["completed"], result["messages"]);
}

TEST(CliReplayTest, PacedReplayTakesAtLeastTheScaledRecordedTime) {
  const fs::path dir = ScratchDir();
  // 0.4 s of recorded traffic at speed 2: at least 0.2 s.
  WriteFile(dir / "paced.jsonl",
            "{\"ts_us\":1000000,\"chat\":\"a\"}\n"
            "{\"ts_us\":1200000,\"chat\":\"b\"}\n"
            "{\"ts_us\":1400000,\"chat\":\"a\"}\n");
  const CommandResult r = RunCli({"replay", (dir / "paced.jsonl").string(), "--speed", "2",
                                  "--json", (dir / "result.json").string()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  const json result = ReadJson(dir / "result.json");
  EXPECT_EQ(result["completed"], 3);
  EXPECT_GE(result["duration_s"].get<double>(), 0.2);
}

TEST(CliReplayTest, FullShardDelaysMessagesInsteadOfLosingThem) {
  const fs::path dir = ScratchDir();
  std::string traffic;
  for (int i = 0; i < 200; ++i) {
    traffic +=
        "{\"ts_us\":" + std::to_string(i) + ",\"chat\":\"c" + std::to_string(i % 3) + "\"}\n";
  }
  WriteFile(dir / "burst.jsonl", traffic);
  // One shard holding one unfinished message, each taking 100 µs: the
  // producer must wait for nearly every message.
  const CommandResult r =
      RunCli({"replay", (dir / "burst.jsonl").string(), "--partitions", "1", "--shard-capacity",
              "1", "--work-us", "100", "--work-mode", "sleep"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(ReportNumber(r.out, "completed"), 200u);
  EXPECT_EQ(ReportNumber(r.out, "rejected"), 0u);
  EXPECT_GT(ReportNumber(r.out, "backpressure waits"), 0u);
}

TEST(CliReplayTest, MessagesTheEngineRejectsExitThree) {
  const fs::path dir = ScratchDir();
  // Valid JSON Lines, but the engine refuses chat ids over kMaxChatIdBytes.
  WriteFile(dir / "long.jsonl", "{\"ts_us\":0,\"chat\":\"" + std::string(300, 'x') +
                                    "\"}\n{\"ts_us\":1,\"chat\":\"ok\"}\n");
  const CommandResult r =
      RunCli({"replay", (dir / "long.jsonl").string(), "--json", (dir / "result.json").string()});
  EXPECT_EQ(r.exit_code, 3) << Describe(r);
  EXPECT_NE(r.err.find("1 of 2 messages did not complete"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("invalid_chat_id 1"), std::string::npos) << r.out;
  const json result = ReadJson(dir / "result.json");
  EXPECT_EQ(result["rejected"], 1);
  EXPECT_EQ(result["completed"], 1);
}

TEST(CliReplayTest, MissingFileExitsOne) {
  const CommandResult r = RunCli({"replay", (ScratchDir() / "no_such_file.jsonl").string()});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find("cannot open"), std::string::npos) << r.err;
}

TEST(CliReplayTest, UnwritableJsonExitsOne) {
  const fs::path dir = ScratchDir();
  WriteFile(dir / "one.jsonl", "{\"ts_us\":0,\"chat\":\"a\"}\n");
  const CommandResult r = RunCli({"replay", (dir / "one.jsonl").string(), "--json",
                                  (dir / "missing_dir" / "result.json").string()});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find("cannot write"), std::string::npos) << r.err;
}

TEST(CliReplayTest, ReadsStandardInput) {
  const CommandResult r =
      RunCli({"replay", "-"}, "{\"ts_us\":0,\"chat\":\"a\"}\n{\"ts_us\":5,\"chat\":\"b\"}\n");
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(ReportNumber(r.out, "completed"), 2u);
}

// Line 1 and 6 are good; 2..5 are bad, one way each.
constexpr const char* kMalformed =
    "{\"ts_us\":0,\"chat\":\"a\",\"bytes\":10}\n"
    "{\"ts_us\":1,\"chat\":\n"
    "{\"ts_us\":2,\"bytes\":3}\n"
    "{\"ts_us\":\"3\",\"chat\":\"b\"}\n"
    "{\"ts_us\":4,\"chat\":\"\"}\n"
    "{\"ts_us\":5,\"chat\":\"b\"}\n";

TEST(CliBadInputTest, ReportsEachBadLineWithItsNumberAndSkipsIt) {
  const fs::path dir = ScratchDir();
  const std::string path = (dir / "malformed.jsonl").string();
  WriteFile(path, kMalformed);
  const CommandResult r = RunCli({"replay", path, "--json", (dir / "result.json").string()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_NE(r.err.find(path + ":2: invalid JSON"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(path + ":3: missing field \"chat\""), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(path + ":4: field \"ts_us\": expected an integer >= 0, got string"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find(path + ":5: field \"chat\": empty"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(path + ":1:"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(path + ":6:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("skipped 4 bad line(s) of 6"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("(4 bad lines skipped)"), std::string::npos) << r.out;
  const json result = ReadJson(dir / "result.json");
  EXPECT_EQ(result["messages"], 2);
  EXPECT_EQ(result["completed"], 2);
}

TEST(CliBadInputTest, StrictStopsAtTheFirstBadLineWithExitOne) {
  const fs::path dir = ScratchDir();
  const std::string path = (dir / "malformed.jsonl").string();
  WriteFile(path, kMalformed);
  const CommandResult r = RunCli({"replay", path, "--strict"});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find(path + ":2: invalid JSON"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(path + ":3:"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");  // no replay ran
}

TEST(CliBadInputTest, TruncatedGzipExitsOne) {
  const fs::path dir = ScratchDir();
  const std::string sample = ReadFile(CHATSHARD_SAMPLE);
  WriteFile(dir / "truncated.jsonl.gz", sample.substr(0, sample.size() / 2));
  const CommandResult r = RunCli({"replay", (dir / "truncated.jsonl.gz").string()});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find("truncated or corrupt gzip"), std::string::npos) << r.err;
}

std::string ExpectedRoutes(const std::vector<std::string>& chats, uint32_t partitions,
                           Routing routing) {
  std::string expected;
  for (const std::string& chat : chats) {
    expected += chat + "\t" + std::to_string(ShardFor(chat, partitions, routing)) + "\n";
  }
  return expected;
}

TEST(CliRouteTest, PrintsShardForOfEachChat) {
  const std::vector<std::string> chats = {"foobar", "a",  "hot/lobby", "122657/2d588af16ea9",
                                          "日本語", "x y"};
  for (const uint32_t partitions : {1u, 7u, 16u, 1000u, 65536u}) {
    for (const Routing routing : {Routing::kModulo, Routing::kJump}) {
      std::vector<std::string> args = {"route", "--partitions", std::to_string(partitions),
                                       "--routing",
                                       routing == Routing::kModulo ? "modulo" : "jump"};
      args.insert(args.end(), chats.begin(), chats.end());
      const CommandResult r = RunCli(args);
      ASSERT_EQ(r.exit_code, 0) << Describe(r);
      EXPECT_EQ(r.out, ExpectedRoutes(chats, partitions, routing)) << partitions << " partitions";
    }
  }
}

TEST(CliRouteTest, RoutesFoobarAsTheTypeScriptService) {
  const CommandResult r = RunCli({"route", "--partitions", "16", "foobar"});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out, "foobar\t" + std::to_string(0xbf9cf968u % 16) + "\n");
}

TEST(CliRouteTest, ReadsChatIdsFromStandardInputWhenNoneAreGiven) {
  const CommandResult r =
      RunCli({"route", "--partitions", "16"}, "foobar\r\n\nhot/lobby\nlast-without-newline");
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.out,
            ExpectedRoutes({"foobar", "hot/lobby", "last-without-newline"}, 16, Routing::kModulo));
}

TEST(CliOptionsTest, InvalidEngineOptionsExitTwoNamingEveryField) {
  const CommandResult r = RunCli(
      {"replay", CHATSHARD_SAMPLE, "--partitions", "0", "--concurrency", "300", "--quantum", "0"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_NE(r.err.find("partitions = 0"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("concurrency = 300"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("quantum = 0"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST(CliOptionsTest, BadFlagValuesExitTwoNamingTheFlag) {
  const std::map<std::string, std::vector<std::string>> cases = {
      {"--ordering", {"replay", CHATSHARD_SAMPLE, "--ordering", "fifo"}},
      {"--routing", {"replay", CHATSHARD_SAMPLE, "--routing", "ring"}},
      {"--speed", {"replay", CHATSHARD_SAMPLE, "--speed", "0"}},
      {"--work-mode", {"replay", CHATSHARD_SAMPLE, "--work-mode", "idle"}},
      {"--partitions", {"replay", CHATSHARD_SAMPLE, "--partitions", "-1"}},
      {"--shard-capacity", {"replay", CHATSHARD_SAMPLE, "--shard-capacity", "many"}},
  };
  for (const auto& [flag, args] : cases) {
    const CommandResult r = RunCli(args);
    EXPECT_EQ(r.exit_code, 2) << flag << "\n" << Describe(r);
    EXPECT_NE(r.err.find(flag), std::string::npos) << flag << "\n" << r.err;
  }
}

TEST(CliOptionsTest, RouteWithInvalidPartitionsExitsTwo) {
  const CommandResult r = RunCli({"route", "--partitions", "70000", "foobar"});
  EXPECT_EQ(r.exit_code, 2) << Describe(r);
  EXPECT_NE(r.err.find("partitions = 70000"), std::string::npos) << r.err;
}

TEST(CliOptionsTest, MissingOrUnknownSubcommandExitsTwo) {
  EXPECT_EQ(RunCli({}).exit_code, 2);
  EXPECT_EQ(RunCli({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(RunCli({"replay"}).exit_code, 2);  // FILE is required
}

TEST(CliOptionsTest, HelpExitsZero) {
  const CommandResult top = RunCli({"--help"});
  EXPECT_EQ(top.exit_code, 0) << Describe(top);
  EXPECT_NE(top.out.find("replay"), std::string::npos);
  EXPECT_NE(top.out.find("route"), std::string::npos);
  const CommandResult replay = RunCli({"replay", "--help"});
  EXPECT_EQ(replay.exit_code, 0) << Describe(replay);
  for (const char* flag :
       {"--partitions", "--concurrency", "--ordering", "--routing", "--quantum", "--threads",
        "--shard-capacity", "--speed", "--work-us", "--work-mode", "--json", "--strict"}) {
    EXPECT_NE(replay.out.find(flag), std::string::npos) << flag;
  }
}

}  // namespace
}  // namespace chatshard::cli
