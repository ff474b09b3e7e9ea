#include "replay.h"

#include <cstdint>
#include <string>

#include "gtest/gtest.h"

namespace chatshard::cli {
namespace {

// `hot_messages` of chat "hot" interleaved with one message each of `cold` chats.
Traffic HotAndCold(uint64_t hot_messages, uint32_t cold) {
  Traffic traffic;
  traffic.chats.push_back("hot");
  for (uint32_t chat = 1; chat <= cold; ++chat)
    traffic.chats.push_back("cold-" + std::to_string(chat));
  int64_t ts = 0;
  uint32_t next_cold = 1;
  for (uint64_t i = 0; i < hot_messages; ++i) {
    traffic.messages.push_back(TrafficMessage{.ts_us = ts++, .chat = 0, .bytes = 0});
    if (next_cold <= cold && i % 2 == 1) {
      traffic.messages.push_back(TrafficMessage{.ts_us = ts++, .chat = next_cold++, .bytes = 0});
    }
  }
  while (next_cold <= cold) {
    traffic.messages.push_back(TrafficMessage{.ts_us = ts++, .chat = next_cold++, .bytes = 0});
  }
  return traffic;
}

TEST(ReplayTest, RunsEveryMessageOnceInOrderAndFindsTheHotChat) {
  const Traffic traffic = HotAndCold(2000, 300);
  ReplayConfig config;
  config.engine.partitions = 4;
  config.engine.threads = 2;
  Result<ReplayResult> replayed = Replay(traffic, config);
  ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
  const ReplayResult& result = replayed.value();

  EXPECT_EQ(result.messages, 2300u);
  EXPECT_EQ(result.chats, 301u);
  EXPECT_EQ(result.accepted, 2300u);
  EXPECT_EQ(result.completed, 2300u);
  EXPECT_EQ(result.handled, 2300u);
  EXPECT_EQ(result.rejected, 0u);
  EXPECT_EQ(result.duplicates, 0u);
  EXPECT_EQ(result.order_violations, 0u);
  EXPECT_EQ(result.unprocessed, 0u);
  EXPECT_EQ(result.end_to_end.count, 2300u);
  EXPECT_EQ(ReplayProblems(result, config), "");

  const Isolation& isolation = result.isolation;
  ASSERT_TRUE(isolation.known);
  EXPECT_EQ(isolation.hot_chat, "hot");
  EXPECT_EQ(isolation.hot_shard, ShardFor("hot", 4));
  EXPECT_EQ(isolation.hot_chat_messages, 2000u);
  EXPECT_EQ(isolation.hot_chat_latency.messages, 2000u);
  uint64_t cold_on_hot_shard = 0;
  for (uint32_t chat = 1; chat < traffic.chats.size(); ++chat) {
    cold_on_hot_shard += ShardFor(traffic.chats[chat], 4) == isolation.hot_shard;
  }
  EXPECT_EQ(isolation.hot_shard_others.messages, cold_on_hot_shard);
  EXPECT_EQ(isolation.other_shards.messages, 300u - cold_on_hot_shard);
}

TEST(ReplayTest, InvalidOptionsAreInvalidArgument) {
  ReplayConfig config;
  config.engine.partitions = 0;
  Result<ReplayResult> replayed = Replay(HotAndCold(1, 1), config);
  ASSERT_FALSE(replayed.ok());
  EXPECT_EQ(replayed.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(replayed.status().message().find("partitions"), std::string_view::npos);
}

TEST(ReplayTest, ProblemsNameLossDuplicatesAndPerChatOrderViolations) {
  ReplayConfig config;
  ReplayResult result;
  result.messages = 10;
  result.completed = 10;
  EXPECT_EQ(ReplayProblems(result, config), "");

  result.order_violations = 2;
  EXPECT_NE(ReplayProblems(result, config).find("2 order violations"), std::string::npos);
  config.engine.ordering = Ordering::kNone;  // promises no order
  EXPECT_EQ(ReplayProblems(result, config), "");

  result.completed = 7;
  result.rejected = 2;
  result.unprocessed = 1;
  result.duplicates = 1;
  const std::string problems = ReplayProblems(result, config);
  EXPECT_NE(problems.find("3 of 10 messages did not complete (rejected 2, failed 0, "
                          "unprocessed 1)"),
            std::string::npos)
      << problems;
  EXPECT_NE(problems.find("1 handler runs of a message that had already run"), std::string::npos)
      << problems;
}

}  // namespace
}  // namespace chatshard::cli
