#include "chatshard/options.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "chatshard/message.h"
#include "chatshard/routing.h"
#include "chatshard/status.h"

namespace chatshard {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

int CountLines(const std::string& text) {
  int lines = text.empty() ? 0 : 1;
  for (char c : text) lines += c == '\n';
  return lines;
}

TEST(OptionsTest, DefaultsAreValid) {
  const Status status = Options{}.Validate();
  EXPECT_TRUE(status.ok()) << status.ToString();
}

TEST(OptionsTest, BoundariesAreValid) {
  Options low;
  low.partitions = 1;
  low.concurrency = 1;
  low.shard_capacity = 1;
  low.chat_quota = 0;
  low.quota_chats_per_shard = 64;
  low.quantum = 1;
  low.max_attempts = 1;
  low.retry_backoff = microseconds(0);
  low.retry_backoff_max = microseconds(0);
  low.threads = 0;
  low.stall_threshold = milliseconds(1);
  low.hot_chats = 1;
  EXPECT_TRUE(low.Validate().ok()) << low.Validate().ToString();

  Options high;
  high.partitions = 65536;
  high.concurrency = 256;
  high.shard_capacity = 1u << 30;
  high.chat_quota = 16777215;
  high.quota_chats_per_shard = 1048576;
  high.ordering = Ordering::kNone;
  high.quantum = 65536;
  high.max_attempts = 1000;
  high.retry_backoff = std::chrono::seconds(60);
  high.retry_backoff_max = std::chrono::seconds(60);
  high.routing = Routing::kJump;
  high.threads = 4096;
  high.stall_threshold = std::chrono::hours(1);
  high.hot_chats = 1024;
  EXPECT_TRUE(high.Validate().ok()) << high.Validate().ToString();
}

struct FieldCase {
  const char* field;
  std::function<void(Options&)> make_invalid;
  const char* expected_line;
};

std::vector<FieldCase> FieldCases() {
  return {
      {"partitions", [](Options& o) { o.partitions = 0; }, "partitions = 0: must be in 1..65536"},
      {"partitions", [](Options& o) { o.partitions = 65537; },
       "partitions = 65537: must be in 1..65536"},
      {"concurrency", [](Options& o) { o.concurrency = 0; }, "concurrency = 0: must be in 1..256"},
      {"concurrency", [](Options& o) { o.concurrency = 257; },
       "concurrency = 257: must be in 1..256"},
      {"shard_capacity", [](Options& o) { o.shard_capacity = 0; },
       "shard_capacity = 0: must be in 1..1073741824"},
      {"shard_capacity", [](Options& o) { o.shard_capacity = (1u << 30) + 1; },
       "shard_capacity = 1073741825: must be in 1..1073741824"},
      // chat_quota has no value below its range (0 = off); only above.
      {"chat_quota", [](Options& o) { o.chat_quota = 16777216; },
       "chat_quota = 16777216: must be in 0..16777215"},
      {"quota_chats_per_shard", [](Options& o) { o.quota_chats_per_shard = 63; },
       "quota_chats_per_shard = 63: must be in 64..1048576"},
      {"quota_chats_per_shard", [](Options& o) { o.quota_chats_per_shard = 1048577; },
       "quota_chats_per_shard = 1048577: must be in 64..1048576"},
      {"ordering", [](Options& o) { o.ordering = static_cast<Ordering>(2); },
       "ordering = 2: must be in {per_chat, none}"},
      {"quantum", [](Options& o) { o.quantum = 0; }, "quantum = 0: must be in 1..65536"},
      {"quantum", [](Options& o) { o.quantum = 65537; }, "quantum = 65537: must be in 1..65536"},
      {"max_attempts", [](Options& o) { o.max_attempts = 0; },
       "max_attempts = 0: must be in 1..1000"},
      {"max_attempts", [](Options& o) { o.max_attempts = 1001; },
       "max_attempts = 1001: must be in 1..1000"},
      {"retry_backoff", [](Options& o) { o.retry_backoff = microseconds(-1); },
       "retry_backoff = -1us: must be in 0us..60000000us"},
      {"retry_backoff",
       [](Options& o) {
         o.retry_backoff = microseconds(60'000'001);
         o.retry_backoff_max = std::chrono::seconds(60);
       },
       "retry_backoff = 60000001us: must be in 0us..60000000us"},
      {"retry_backoff_max", [](Options& o) { o.retry_backoff_max = microseconds(-5); },
       "retry_backoff_max = -5us: must be in 0us..60000000us"},
      {"retry_backoff_max", [](Options& o) { o.retry_backoff_max = std::chrono::seconds(61); },
       "retry_backoff_max = 61000000us: must be in 0us..60000000us"},
      {"retry_backoff",
       [](Options& o) {
         o.retry_backoff = microseconds(5000);
         o.retry_backoff_max = microseconds(4000);
       },
       "retry_backoff = 5000us: must be in 0us..4000us (at most retry_backoff_max)"},
      {"routing", [](Options& o) { o.routing = static_cast<Routing>(9); },
       "routing = 9: must be in {modulo, jump}"},
      {"threads", [](Options& o) { o.threads = 4097; }, "threads = 4097: must be in 0..4096"},
      {"stall_threshold", [](Options& o) { o.stall_threshold = milliseconds(0); },
       "stall_threshold = 0ms: must be in 1ms..3600000ms"},
      {"stall_threshold",
       [](Options& o) { o.stall_threshold = std::chrono::hours(1) + milliseconds(1); },
       "stall_threshold = 3600001ms: must be in 1ms..3600000ms"},
      {"hot_chats", [](Options& o) { o.hot_chats = 0; }, "hot_chats = 0: must be in 1..1024"},
      {"hot_chats", [](Options& o) { o.hot_chats = 1025; }, "hot_chats = 1025: must be in 1..1024"},
  };
}

TEST(OptionsTest, EachOutOfRangeFieldIsNamedWithValueAndRange) {
  for (const FieldCase& c : FieldCases()) {
    Options options;
    c.make_invalid(options);
    const Status status = options.Validate();
    ASSERT_FALSE(status.ok()) << c.expected_line;
    EXPECT_EQ(status.code(), Status::Code::kInvalidArgument);
    // Exactly one problem, so the whole message is the one expected line.
    EXPECT_EQ(status.message(), c.expected_line) << "field " << c.field;
  }
}

TEST(OptionsTest, ExactMessageFormat) {
  Options options;
  options.retry_backoff = microseconds(70'000'000);
  EXPECT_EQ(options.Validate().ToString(),
            "InvalidArgument: retry_backoff = 70000000us: must be in 0us..60000000us");
}

TEST(OptionsTest, ReportsEveryProblemAtOnce) {
  Options options;
  options.partitions = 0;
  options.concurrency = 1000;
  options.max_attempts = 0;
  options.retry_backoff_max = std::chrono::minutes(2);
  options.stall_threshold = milliseconds(0);
  options.hot_chats = 5000;
  const Status status = options.Validate();
  ASSERT_FALSE(status.ok());
  EXPECT_EQ(status.message(),
            "partitions = 0: must be in 1..65536\n"
            "concurrency = 1000: must be in 1..256\n"
            "max_attempts = 0: must be in 1..1000\n"
            "retry_backoff_max = 120000000us: must be in 0us..60000000us\n"
            "stall_threshold = 0ms: must be in 1ms..3600000ms\n"
            "hot_chats = 5000: must be in 1..1024");
}

TEST(OptionsTest, ReportsAllFieldsWhenAllAreWrong) {
  Options options;
  for (const FieldCase& c : FieldCases()) c.make_invalid(options);
  // The backoff cases undo each other; make both wrong on their own.
  options.retry_backoff = microseconds(-1);
  options.retry_backoff_max = std::chrono::seconds(61);
  const Status status = options.Validate();
  ASSERT_FALSE(status.ok());
  const std::string message(status.message());
  // One line per field.
  EXPECT_EQ(CountLines(message), 14) << message;
  for (const FieldCase& c : FieldCases()) {
    EXPECT_NE(message.find(std::string(c.field) + " = "), std::string::npos) << c.field;
  }
}

TEST(OptionsTest, BackoffOrderIsCheckedOnlyWhenBothAreInRange) {
  Options options;
  options.retry_backoff = std::chrono::seconds(30);
  options.retry_backoff_max = std::chrono::seconds(90);
  // The cap is what is wrong; retry_backoff is fine against the allowed range.
  EXPECT_EQ(options.Validate().message(),
            "retry_backoff_max = 90000000us: must be in 0us..60000000us");
}

TEST(OptionsTest, NamesOfEnums) {
  EXPECT_EQ(OrderingName(Ordering::kPerChat), "per_chat");
  EXPECT_EQ(OrderingName(Ordering::kNone), "none");
  EXPECT_EQ(RoutingName(Routing::kModulo), "modulo");
  EXPECT_EQ(RoutingName(Routing::kJump), "jump");
  EXPECT_EQ(OrderingName(static_cast<Ordering>(5)), "unknown");
  EXPECT_EQ(RoutingName(static_cast<Routing>(5)), "unknown");
}

TEST(OptionsTest, NamesOfSubmitResults) {
  EXPECT_EQ(SubmitResultName(SubmitResult::kAccepted), "accepted");
  EXPECT_EQ(SubmitResultName(SubmitResult::kShardFull), "shard_full");
  EXPECT_EQ(SubmitResultName(SubmitResult::kChatOverQuota), "chat_over_quota");
  EXPECT_EQ(SubmitResultName(SubmitResult::kTooManyChats), "too_many_chats");
  EXPECT_EQ(SubmitResultName(SubmitResult::kStopping), "stopping");
  EXPECT_EQ(SubmitResultName(SubmitResult::kInvalidChatId), "invalid_chat_id");
  EXPECT_EQ(SubmitResultName(SubmitResult::kPayloadTooLarge), "payload_too_large");
  EXPECT_EQ(SubmitResultName(static_cast<SubmitResult>(kSubmitResultCount)), "unknown");
}

}  // namespace
}  // namespace chatshard
