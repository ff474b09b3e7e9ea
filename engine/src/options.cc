#include "chatshard/options.h"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "chatshard/message.h"
#include "chatshard/routing.h"
#include "chatshard/status.h"

namespace chatshard {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

constexpr microseconds kMaxRetryBackoff = std::chrono::seconds(60);
constexpr milliseconds kMinStallThreshold{1};
constexpr milliseconds kMaxStallThreshold = std::chrono::hours(1);

std::string Micros(microseconds d) { return std::to_string(d.count()) + "us"; }
std::string Millis(milliseconds d) { return std::to_string(d.count()) + "ms"; }

// Collects one "<field> = <value>: must be in <range>" line per problem.
class ProblemList {
 public:
  void Add(std::string_view field, const std::string& value, const std::string& range) {
    if (!text_.empty()) text_ += '\n';
    text_.append(field);
    text_ += " = ";
    text_ += value;
    text_ += ": must be in ";
    text_ += range;
  }

  void CheckRange(std::string_view field, uint64_t value, uint64_t lo, uint64_t hi) {
    if (value < lo || value > hi) {
      Add(field, std::to_string(value), std::to_string(lo) + ".." + std::to_string(hi));
    }
  }

  Status ToStatus() const { return text_.empty() ? Status::Ok() : Status::InvalidArgument(text_); }

 private:
  std::string text_;
};

}  // namespace

Status Options::Validate() const {
  ProblemList problems;
  problems.CheckRange("partitions", partitions, 1, 65536);
  problems.CheckRange("concurrency", concurrency, 1, 256);
  problems.CheckRange("shard_capacity", shard_capacity, 1, uint64_t{1} << 30);
  problems.CheckRange("chat_quota", chat_quota, 0, 16777215);
  problems.CheckRange("quota_chats_per_shard", quota_chats_per_shard, 64, 1048576);
  if (ordering != Ordering::kPerChat && ordering != Ordering::kNone) {
    problems.Add("ordering", std::to_string(static_cast<int>(ordering)), "{per_chat, none}");
  }
  problems.CheckRange("quantum", quantum, 1, 65536);
  problems.CheckRange("max_attempts", max_attempts, 1, 1000);

  const bool backoff_max_in_range =
      retry_backoff_max >= microseconds::zero() && retry_backoff_max <= kMaxRetryBackoff;
  if (retry_backoff < microseconds::zero() || retry_backoff > kMaxRetryBackoff) {
    problems.Add("retry_backoff", Micros(retry_backoff),
                 Micros(microseconds::zero()) + ".." + Micros(kMaxRetryBackoff));
  } else if (backoff_max_in_range && retry_backoff > retry_backoff_max) {
    // In range on its own, but the first retry may not wait longer than the cap.
    problems.Add("retry_backoff", Micros(retry_backoff),
                 Micros(microseconds::zero()) + ".." + Micros(retry_backoff_max) +
                     " (at most retry_backoff_max)");
  }
  if (!backoff_max_in_range) {
    problems.Add("retry_backoff_max", Micros(retry_backoff_max),
                 Micros(microseconds::zero()) + ".." + Micros(kMaxRetryBackoff));
  }

  if (routing != Routing::kModulo && routing != Routing::kJump) {
    problems.Add("routing", std::to_string(static_cast<int>(routing)), "{modulo, jump}");
  }
  problems.CheckRange("threads", threads, 0, 4096);
  if (stall_threshold < kMinStallThreshold || stall_threshold > kMaxStallThreshold) {
    problems.Add("stall_threshold", Millis(stall_threshold),
                 Millis(kMinStallThreshold) + ".." + Millis(kMaxStallThreshold));
  }
  problems.CheckRange("hot_chats", hot_chats, 1, 1024);
  return problems.ToStatus();
}

std::string_view OrderingName(Ordering ordering) {
  switch (ordering) {
    case Ordering::kPerChat:
      return "per_chat";
    case Ordering::kNone:
      return "none";
  }
  return "unknown";
}

std::string_view RoutingName(Routing routing) {
  switch (routing) {
    case Routing::kModulo:
      return "modulo";
    case Routing::kJump:
      return "jump";
  }
  return "unknown";
}

std::string_view SubmitResultName(SubmitResult result) {
  switch (result) {
    case SubmitResult::kAccepted:
      return "accepted";
    case SubmitResult::kShardFull:
      return "shard_full";
    case SubmitResult::kChatOverQuota:
      return "chat_over_quota";
    case SubmitResult::kTooManyChats:
      return "too_many_chats";
    case SubmitResult::kStopping:
      return "stopping";
    case SubmitResult::kInvalidChatId:
      return "invalid_chat_id";
    case SubmitResult::kPayloadTooLarge:
      return "payload_too_large";
  }
  return "unknown";
}

}  // namespace chatshard
