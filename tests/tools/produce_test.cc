// `chatshard produce` and `chatshard replay --redis`, run as a user would
// (CHATSHARD_CLI) against a real redis-server that each test starts on a free
// loopback port (tests/redis/redis_server.h).
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli_runner.h"
#include "gtest/gtest.h"
#include "produce.h"
#include "redis_server.h"
#include "traffic_file.h"

namespace chatshard::cli {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;
using redis::testing::FreePort;
using redis::testing::RedisServer;
using redis::testing::TestClient;
using redis::testing::TestReply;
using std::chrono::steady_clock;

std::string Url(const RedisServer& server) {
  return "redis://127.0.0.1:" + std::to_string(server.port());
}

std::string StreamKey(const std::string& prefix, uint32_t shard) {
  return prefix + ":{" + std::to_string(shard) + "}:stream";
}

// A small traffic file: `messages` messages over `chats` chats, interleaved,
// sizes 0..299 bytes (some shorter than the payload's index header), 1 ms apart.
fs::path WriteSmallFile(const std::string& name, int messages, int chats) {
  std::string text;
  for (int i = 0; i < messages; ++i) {
    text += "{\"ts_us\":" + std::to_string(i * 1000) + ",\"chat\":\"room/" +
            std::to_string((i * 7) % chats) + "\",\"bytes\":" + std::to_string((i * 37) % 300) +
            "}\n";
  }
  const fs::path path = ScratchDir() / name;
  WriteFile(path, text);
  return path;
}

Traffic Load(const fs::path& path) {
  Result<Traffic> traffic = LoadTraffic(path.string(), LoadOptions{});
  EXPECT_TRUE(traffic.ok()) << traffic.status().ToString();
  return traffic.ok() ? std::move(traffic).value() : Traffic{};
}

// chat -> shard as `chatshard route` prints it, for every chat of `traffic`.
std::map<std::string, uint32_t> RouteWithTheCli(const Traffic& traffic,
                                                const std::vector<std::string>& flags) {
  std::string chats;
  for (const std::string& chat : traffic.chats) chats += chat + "\n";
  std::vector<std::string> args = {"route"};
  args.insert(args.end(), flags.begin(), flags.end());
  const CommandResult routed = RunCli(args, chats);
  EXPECT_EQ(routed.exit_code, 0) << Describe(routed);
  std::map<std::string, uint32_t> shard_of;
  std::istringstream lines(routed.out);
  std::string line;
  while (std::getline(lines, line)) {
    const size_t tab = line.rfind('\t');
    if (tab == std::string::npos) continue;
    shard_of[line.substr(0, tab)] = static_cast<uint32_t>(std::stoul(line.substr(tab + 1)));
  }
  EXPECT_EQ(shard_of.size(), traffic.chats.size());
  return shard_of;
}

double SecondsSince(steady_clock::time_point start) {
  return std::chrono::duration<double>(steady_clock::now() - start).count();
}

TEST(TrafficPayloadTest, CarriesTheIndexAndPadsToTheCapturedSize) {
  EXPECT_EQ(EncodeTrafficPayload(42, 10), "42\n.......");
  EXPECT_EQ(EncodeTrafficPayload(42, 0), "42\n");  // never shorter than the header
  EXPECT_EQ(EncodeTrafficPayload(0, 2), "0\n");
  EXPECT_EQ(EncodeTrafficPayload(7, uint64_t{1} << 40).size(), kMaxTrafficPayloadBytes);
  EXPECT_EQ(DecodeTrafficPayloadIndex(EncodeTrafficPayload(123456789, 300)), 123456789u);
  EXPECT_EQ(DecodeTrafficPayloadIndex("18446744073709551615\n"), UINT64_MAX);
  EXPECT_FALSE(DecodeTrafficPayloadIndex(""));
  EXPECT_FALSE(DecodeTrafficPayloadIndex("12"));
  EXPECT_FALSE(DecodeTrafficPayloadIndex("\n12"));
  EXPECT_FALSE(DecodeTrafficPayloadIndex("1x\n"));
  EXPECT_FALSE(DecodeTrafficPayloadIndex("18446744073709551616\n"));  // overflows
}

TEST(ProduceTest, PublishesTheSampleIntoTheShardStreamsTheCliRoutesTo) {
  RedisServer server;
  const CommandResult produced =
      RunCli({"produce", CHATSHARD_SAMPLE, "--redis", Url(server), "--prefix", "sample"});
  ASSERT_EQ(produced.exit_code, 0) << Describe(produced);
  const Traffic traffic = Load(CHATSHARD_SAMPLE);
  ASSERT_EQ(traffic.messages.size(), 85714u);
  EXPECT_EQ(ReportNumber(produced.out, "messages"), 85714u);
  EXPECT_EQ(ReportNumber(produced.out, "confirmed"), 85714u);
  EXPECT_EQ(ReportNumber(produced.out, "failed"), 0u);
  EXPECT_NE(produced.out.find("confirm latency p99"), std::string::npos) << produced.out;
  EXPECT_NE(produced.out.find("publish rate"), std::string::npos) << produced.out;

  const std::map<std::string, uint32_t> shard_of = RouteWithTheCli(traffic, {"--partitions", "16"});
  std::vector<long long> expected(16, 0);
  for (const TrafficMessage& m : traffic.messages) ++expected[shard_of.at(traffic.chats[m.chat])];
  TestClient client(server.port());
  long long total = 0;
  for (uint32_t shard = 0; shard < 16; ++shard) {
    const long long length = client.Int({"XLEN", StreamKey("sample", shard)});
    EXPECT_EQ(length, expected[shard]) << "shard " << shard;
    total += length;
  }
  EXPECT_EQ(total, 85714);
}

TEST(ProduceTest, EveryEntryRoutesLikeRouteAndCarriesItsIndexInFileOrder) {
  RedisServer server;
  const fs::path file = WriteSmallFile("small.jsonl", 600, 37);
  const CommandResult produced =
      RunCli({"produce", file.string(), "--redis", Url(server), "--partitions", "7", "--routing",
              "jump", "--prefix", "small", "--max-in-flight", "16"});
  ASSERT_EQ(produced.exit_code, 0) << Describe(produced);
  EXPECT_EQ(ReportNumber(produced.out, "confirmed"), 600u);

  const Traffic traffic = Load(file);
  const std::map<std::string, uint32_t> shard_of =
      RouteWithTheCli(traffic, {"--partitions", "7", "--routing", "jump"});
  TestClient client(server.port());
  std::vector<bool> seen(traffic.messages.size(), false);
  for (uint32_t shard = 0; shard < 7; ++shard) {
    const TestReply entries = client.Run({"XRANGE", StreamKey("small", shard), "-", "+"});
    uint64_t previous = 0;
    bool first = true;
    for (const TestReply& entry : entries.elements) {
      ASSERT_EQ(entry.elements.size(), 2u);
      const std::vector<TestReply>& fields = entry.elements[1].elements;
      ASSERT_EQ(fields.size(), 4u);
      ASSERT_EQ(fields[0].str, "c");
      ASSERT_EQ(fields[2].str, "p");
      const std::string& chat = fields[1].str;
      const std::string& payload = fields[3].str;
      EXPECT_EQ(shard_of.at(chat), shard) << chat;
      const std::optional<uint64_t> index = DecodeTrafficPayloadIndex(payload);
      ASSERT_TRUE(index.has_value()) << payload;
      ASSERT_LT(*index, traffic.messages.size());
      EXPECT_FALSE(seen[*index]) << "index " << *index << " published twice";
      seen[*index] = true;
      const TrafficMessage& message = traffic.messages[*index];
      EXPECT_EQ(traffic.chats[message.chat], chat);
      EXPECT_EQ(payload, EncodeTrafficPayload(*index, message.bytes));
      // One stream holds its messages in file order.
      if (!first) {
        EXPECT_GT(*index, previous);
      }
      previous = *index;
      first = false;
    }
  }
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_TRUE(seen[i]) << "message " << i << " missing";
}

TEST(ProduceTest, UnreachableRedisIsAClearErrorWithinSeconds) {
  const int port = FreePort();  // nobody listens there
  const std::string url = "redis://127.0.0.1:" + std::to_string(port);
  const steady_clock::time_point start = steady_clock::now();
  const CommandResult produced = RunCli({"produce", CHATSHARD_SAMPLE, "--redis", url});
  EXPECT_LT(SecondsSince(start), 10.0);
  EXPECT_EQ(produced.exit_code, 3) << Describe(produced);
  EXPECT_NE(produced.err.find("cannot publish to " + url), std::string::npos) << produced.err;
  EXPECT_NE(produced.err.find("127.0.0.1:" + std::to_string(port)), std::string::npos);
}

TEST(ProduceTest, RedisDyingMidRunEndsWithTheCountsAndTheFirstError) {
  RedisServer server;
  // 4 s of traffic at its recorded pace; Redis dies after about 1 s.
  const fs::path file = WriteSmallFile("paced.jsonl", 4000, 50);
  std::thread killer([&server] {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    server.Kill();
  });
  const steady_clock::time_point start = steady_clock::now();
  const CommandResult produced = RunCli({"produce", file.string(), "--redis", Url(server),
                                         "--speed", "1", "--timeout-ms", "500"});
  killer.join();
  EXPECT_LT(SecondsSince(start), 15.0);
  EXPECT_EQ(produced.exit_code, 3) << Describe(produced);
  EXPECT_NE(produced.err.find("FAILED"), std::string::npos) << produced.err;
  EXPECT_NE(produced.err.find("first error"), std::string::npos) << produced.err;
  const uint64_t confirmed = ReportNumber(produced.out, "confirmed");
  EXPECT_GT(confirmed, 0u);
  EXPECT_LT(confirmed, 4000u);
  EXPECT_EQ(confirmed + ReportNumber(produced.out, "failed") +
                ReportNumber(produced.out, "not sent"),
            4000u)
      << produced.out;
}

TEST(ProduceTest, BadUrlIsUsageNamingTheFlagAndTheValue) {
  for (const std::string& url : {std::string("redis://localhost:notaport"),
                                 std::string("localhost:6379"), std::string("redis://h:0")}) {
    const CommandResult produced = RunCli({"produce", CHATSHARD_SAMPLE, "--redis", url});
    EXPECT_EQ(produced.exit_code, 2) << url << "\n" << Describe(produced);
    EXPECT_NE(produced.err.find("--redis"), std::string::npos) << produced.err;
    EXPECT_NE(produced.err.find("'" + url + "'"), std::string::npos) << produced.err;
  }
  const CommandResult replayed =
      RunCli({"replay", CHATSHARD_SAMPLE, "--redis", "redis://localhost:notaport"});
  EXPECT_EQ(replayed.exit_code, 2) << Describe(replayed);
  EXPECT_NE(replayed.err.find("'redis://localhost:notaport'"), std::string::npos)
      << replayed.err;
}

TEST(ReplayRedisTest, RunsEveryMessageOnceInOrderAndLeavesNothingPending) {
  RedisServer server;
  const fs::path file = WriteSmallFile("replay.jsonl", 3000, 41);
  const fs::path report = ScratchDir() / "replay.json";
  const CommandResult replayed =
      RunCli({"replay", file.string(), "--redis", Url(server), "--partitions", "4",
              "--concurrency", "2", "--work-us", "uniform:0-20", "--json", report.string()});
  ASSERT_EQ(replayed.exit_code, 0) << Describe(replayed);
  EXPECT_EQ(ReportNumber(replayed.out, "order violations"), 0u);
  EXPECT_EQ(ReportNumber(replayed.out, "duplicate runs"), 0u);
  EXPECT_EQ(ReportNumber(replayed.out, "left pending"), 0u);

  const json parsed = json::parse(ReadFile(report), nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(parsed.is_discarded()) << ReadFile(report);
  // The replay's documented keys first, in order; the adapter's counters last.
  std::vector<std::string> keys;
  for (const auto& [key, value] : parsed.items()) keys.push_back(key);
  const std::vector<std::string> documented = {
      "messages",         "completed",  "failed",   "rejected",  "order_violations", "duration_s",
      "throughput_per_s", "latency_us", "fairness", "isolation", "shards"};
  ASSERT_GT(keys.size(), documented.size());
  EXPECT_EQ(std::vector<std::string>(keys.begin(), keys.begin() + documented.size()), documented);
  EXPECT_EQ(keys.back(), "redis");
  EXPECT_EQ(parsed["messages"], 3000);
  EXPECT_EQ(parsed["completed"], 3000);
  EXPECT_EQ(parsed["failed"], 0);
  EXPECT_EQ(parsed["rejected"], 0);
  EXPECT_EQ(parsed["order_violations"], 0);
  EXPECT_EQ(parsed["shards"].size(), 4u);
  for (const char* key : {"p50", "p90", "p99", "p999", "max"}) {
    EXPECT_TRUE(parsed["latency_us"].contains(key)) << key;
  }
  const json& counters = parsed["redis"];
  EXPECT_EQ(counters["published"], 3000);
  EXPECT_EQ(counters["acked"], 3000);
  EXPECT_EQ(counters["dead_lettered"], 0);
  EXPECT_EQ(counters["pending_left"], 0);
  EXPECT_TRUE(counters.contains("claimed"));
  EXPECT_TRUE(counters["round_trips"].contains("publisher"));
  EXPECT_TRUE(counters["round_trips"].contains("consumer"));

  // Redis itself agrees: nothing pending, nothing left in the streams.
  TestClient client(server.port());
  for (uint32_t shard = 0; shard < 4; ++shard) {
    const std::string key = StreamKey("chatshard-replay", shard);
    EXPECT_EQ(client.Pending(key, "chatshard-replay"), 0) << key;
    EXPECT_EQ(client.Int({"XLEN", key}), 0) << key;
  }

  // The streams are empty again, so the next replay may start.
  const CommandResult again =
      RunCli({"replay", file.string(), "--redis", Url(server), "--partitions", "4"});
  EXPECT_EQ(again.exit_code, 0) << Describe(again);
}

TEST(ReplayRedisTest, RefusesStreamsThatAlreadyHoldEntries) {
  RedisServer server;
  const fs::path file = WriteSmallFile("full.jsonl", 200, 10);
  const CommandResult produced =
      RunCli({"produce", file.string(), "--redis", Url(server), "--prefix", "busy"});
  ASSERT_EQ(produced.exit_code, 0) << Describe(produced);
  const CommandResult replayed =
      RunCli({"replay", file.string(), "--redis", Url(server), "--prefix", "busy"});
  EXPECT_EQ(replayed.exit_code, 3) << Describe(replayed);
  EXPECT_NE(replayed.err.find("hold 200 entries already"), std::string::npos) << replayed.err;
  EXPECT_NE(replayed.err.find("--prefix"), std::string::npos) << replayed.err;
  TestClient client(server.port());
  long long total = 0;
  for (uint32_t shard = 0; shard < 16; ++shard) total += client.Int({"XLEN", StreamKey("busy", shard)});
  EXPECT_EQ(total, 200) << "a refused replay must not touch the streams";
}

}  // namespace
}  // namespace chatshard::cli
