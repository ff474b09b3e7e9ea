#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>

#include "chatshard/message.h"
#include "chatshard/stats.h"

namespace chatshard {
namespace {

using nlohmann::json;

constexpr const char* kLatencyKeys[] = {"count", "mean", "p50", "p90", "p99", "p999", "max"};
constexpr const char* kReasons[] = {"shard_full", "chat_over_quota", "too_many_chats",
                                    "stopping",   "invalid_chat_id", "payload_too_large"};

ShardStats MakeShard(uint32_t shard, uint64_t base) {
  ShardStats s;
  s.shard = shard;
  s.submitted = base + 1;
  s.rejected = base + 2;
  s.rejected_by_reason[static_cast<size_t>(SubmitResult::kShardFull)] = base + 3;
  s.rejected_by_reason[static_cast<size_t>(SubmitResult::kPayloadTooLarge)] = base + 4;
  s.waiting = base + 5;
  s.active = base + 6;
  s.completed = base + 7;
  s.failed = base + 8;
  s.retried = base + 9;
  s.queue_wait = LatencySummary{10, 1.5, 1.25, 2.5, 3.75, 4.0, 8.125};
  s.service_time = LatencySummary{20, 100.5, 90.0, 150.0, 199.0, 250.0, 1000.0};
  return s;
}

StatsSnapshot MakeSnapshot() {
  StatsSnapshot snap;
  snap.uptime_s = 12.5;
  snap.shards.push_back(MakeShard(0, 100));
  snap.shards.push_back(MakeShard(1, 200));
  snap.total = MakeShard(0, 300);
  snap.fairness.jain = 0.98;
  snap.fairness.cv = 0.125;
  snap.fairness.max_over_mean = 1.0625;
  snap.fairness.chi2 = 3.5;
  snap.fairness.chi2_p = 0.75;
  snap.fairness.backlogged_chat_jain = 0.5;
  snap.fairness.worst_cold_wait_us = 42.0;
  snap.hot_chats.push_back(HotChat{"122649/0cbdc42bda9d", 1, 3052, 7});
  snap.hot_chats.push_back(HotChat{"room-2", 0, 10, 0});
  return snap;
}

void ExpectShardObject(const json& j, const ShardStats& s, bool with_shard) {
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.contains("shard"), with_shard);
  if (with_shard) {
    EXPECT_EQ(j.at("shard").get<uint32_t>(), s.shard);
  }
  EXPECT_EQ(j.at("submitted").get<uint64_t>(), s.submitted);
  EXPECT_EQ(j.at("rejected").get<uint64_t>(), s.rejected);
  const json& reasons = j.at("rejected_by_reason");
  ASSERT_TRUE(reasons.is_object());
  EXPECT_EQ(reasons.size(), 6u);
  EXPECT_FALSE(reasons.contains("accepted"));
  for (int r = 1; r < kSubmitResultCount; ++r) {
    const std::string name(SubmitResultName(static_cast<SubmitResult>(r)));
    EXPECT_EQ(name, kReasons[r - 1]);
    EXPECT_EQ(reasons.at(name).get<uint64_t>(), s.rejected_by_reason[static_cast<size_t>(r)]);
  }
  EXPECT_EQ(j.at("waiting").get<uint64_t>(), s.waiting);
  EXPECT_EQ(j.at("active").get<uint64_t>(), s.active);
  EXPECT_EQ(j.at("completed").get<uint64_t>(), s.completed);
  EXPECT_EQ(j.at("failed").get<uint64_t>(), s.failed);
  EXPECT_EQ(j.at("retried").get<uint64_t>(), s.retried);
  for (const char* name : {"queue_wait_us", "service_time_us"}) {
    const json& lat = j.at(name);
    const LatencySummary& want =
        std::string(name) == "queue_wait_us" ? s.queue_wait : s.service_time;
    ASSERT_TRUE(lat.is_object()) << name;
    EXPECT_EQ(lat.size(), 7u);
    for (const char* key : kLatencyKeys) EXPECT_TRUE(lat.contains(key)) << name << "." << key;
    EXPECT_EQ(lat.at("count").get<uint64_t>(), want.count);
    EXPECT_EQ(lat.at("mean").get<double>(), want.mean_us);
    EXPECT_EQ(lat.at("p50").get<double>(), want.p50_us);
    EXPECT_EQ(lat.at("p90").get<double>(), want.p90_us);
    EXPECT_EQ(lat.at("p99").get<double>(), want.p99_us);
    EXPECT_EQ(lat.at("p999").get<double>(), want.p999_us);
    EXPECT_EQ(lat.at("max").get<double>(), want.max_us);
  }
}

TEST(StatsJsonTest, HasTheDocumentedStructure) {
  const StatsSnapshot snap = MakeSnapshot();
  const std::string text = snap.ToJson();
  ASSERT_TRUE(json::accept(text)) << text;
  const json j = json::parse(text);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.size(), 5u);
  EXPECT_EQ(j.at("uptime_s").get<double>(), 12.5);

  ExpectShardObject(j.at("total"), snap.total, /*with_shard=*/false);
  ASSERT_TRUE(j.at("shards").is_array());
  ASSERT_EQ(j.at("shards").size(), 2u);
  for (size_t i = 0; i < 2; ++i) ExpectShardObject(j.at("shards")[i], snap.shards[i], true);

  const json& f = j.at("fairness");
  EXPECT_EQ(f.at("jain").get<double>(), 0.98);
  EXPECT_EQ(f.at("cv").get<double>(), 0.125);
  EXPECT_EQ(f.at("max_over_mean").get<double>(), 1.0625);
  EXPECT_EQ(f.at("chi2").get<double>(), 3.5);
  EXPECT_EQ(f.at("chi2_p").get<double>(), 0.75);
  EXPECT_EQ(f.at("backlogged_chat_jain").get<double>(), 0.5);
  EXPECT_EQ(f.at("worst_cold_wait_us").get<double>(), 42.0);

  const json& hot = j.at("hot_chats");
  ASSERT_TRUE(hot.is_array());
  ASSERT_EQ(hot.size(), 2u);
  EXPECT_EQ(hot[0].at("chat_id").get<std::string>(), "122649/0cbdc42bda9d");
  EXPECT_EQ(hot[0].at("shard").get<uint32_t>(), 1u);
  EXPECT_EQ(hot[0].at("count").get<uint64_t>(), 3052u);
  EXPECT_EQ(hot[0].at("error").get<uint64_t>(), 7u);
  EXPECT_EQ(hot[1].at("chat_id").get<std::string>(), "room-2");
}

TEST(StatsJsonTest, EmptySnapshotIsValid) {
  const std::string text = StatsSnapshot{}.ToJson();
  ASSERT_TRUE(json::accept(text)) << text;
  const json j = json::parse(text);
  EXPECT_TRUE(j.at("shards").is_array());
  EXPECT_TRUE(j.at("shards").empty());
  EXPECT_TRUE(j.at("hot_chats").empty());
  EXPECT_EQ(j.at("total").at("queue_wait_us").at("count").get<uint64_t>(), 0u);
}

TEST(StatsJsonTest, EscapesChatIds) {
  StatsSnapshot snap;
  const std::string id = "say \"hi\" \\ back\nslash\ttab \x01 чат 群組 🚀";
  snap.hot_chats.push_back(HotChat{id, 3, 1, 0});
  const std::string text = snap.ToJson();
  ASSERT_TRUE(json::accept(text)) << text;
  EXPECT_EQ(json::parse(text).at("hot_chats")[0].at("chat_id").get<std::string>(), id);
  // The exact bytes: quote and backslash escaped, control characters as
  // \u00XX, UTF-8 kept as is (not \u-escaped).
  EXPECT_NE(text.find(R"("chat_id":"say \"hi\" \\ back\u000aslash\u0009tab \u0001 чат 群組 🚀")"),
            std::string::npos)
      << text;
}

TEST(StatsJsonTest, InvalidUtf8BecomesReplacementCharacter) {
  StatsSnapshot snap;
  // A lone continuation byte, a truncated 3-byte sequence, an overlong '/',
  // and a UTF-16 surrogate: none is UTF-8, each byte becomes U+FFFD.
  snap.hot_chats.push_back(HotChat{"a\x80z\xe4\xb8q\xc0\xaf!\xed\xa0\x80", 0, 1, 0});
  const std::string text = snap.ToJson();
  ASSERT_TRUE(json::accept(text)) << text;
  EXPECT_EQ(json::parse(text).at("hot_chats")[0].at("chat_id").get<std::string>(),
            "a\uFFFDz\uFFFD\uFFFDq\uFFFD\uFFFD!\uFFFD\uFFFD\uFFFD");
}

TEST(StatsJsonTest, NonFiniteDoublesBecomeNull) {
  StatsSnapshot snap = MakeSnapshot();
  snap.uptime_s = std::numeric_limits<double>::infinity();
  snap.fairness.chi2_p = std::nan("");
  snap.shards[0].queue_wait.p99_us = -std::numeric_limits<double>::infinity();
  const std::string text = snap.ToJson();
  ASSERT_TRUE(json::accept(text)) << text;
  const json j = json::parse(text);
  EXPECT_TRUE(j.at("uptime_s").is_null());
  EXPECT_TRUE(j.at("fairness").at("chi2_p").is_null());
  EXPECT_TRUE(j.at("shards")[0].at("queue_wait_us").at("p99").is_null());
  EXPECT_EQ(j.at("fairness").at("chi2").get<double>(), 3.5);
}

TEST(StatsJsonTest, NumbersRoundTripExactly) {
  StatsSnapshot snap;
  snap.uptime_s = 0.1 + 0.2;  // not a short decimal
  snap.total.submitted = std::numeric_limits<uint64_t>::max();
  snap.fairness.chi2 = 1e-300;
  snap.fairness.cv = 12345678901234.5;
  const json j = json::parse(snap.ToJson());
  EXPECT_EQ(j.at("uptime_s").get<double>(), 0.1 + 0.2);
  EXPECT_EQ(j.at("total").at("submitted").get<uint64_t>(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(j.at("fairness").at("chi2").get<double>(), 1e-300);
  EXPECT_EQ(j.at("fairness").at("cv").get<double>(), 12345678901234.5);
}

}  // namespace
}  // namespace chatshard
