// Options: how an Engine is shaped. A plain value: copy it, change it, pass it
// to Engine::Create, which calls Validate() and refuses invalid options.
//
// Every field has a default, a unit and an allowed range; Validate() reports
// every violation at once, each naming the field, the value and the range.
#ifndef CHATSHARD_OPTIONS_H_
#define CHATSHARD_OPTIONS_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "chatshard/routing.h"
#include "chatshard/status.h"

namespace chatshard {

enum class Ordering {
  // Messages of one chat submitted from one thread run one at a time, in
  // submission order (also across retries); chats in a shard take turns.
  kPerChat,
  // No per-chat promise: up to `concurrency` messages of a shard run at once
  // in any order. The raw-throughput mode.
  kNone,
};

// Limits on input, checked by Submit.
inline constexpr size_t kMaxChatIdBytes = 256;
inline constexpr size_t kMaxPayloadBytes = size_t{64} << 20;  // 64 MiB

struct Options {
  // Number of shards. Range 1..65536.
  uint32_t partitions = 16;
  // Messages of one shard that may run at the same time. Range 1..256.
  // Parallelism is also bounded by `threads`.
  uint32_t concurrency = 4;
  // Messages accepted and not yet finished, per shard (queued, waiting for a
  // retry, or running). Submit answers kShardFull beyond it. Range 1..2^30.
  uint32_t shard_capacity = 1u << 16;
  // Messages accepted and not yet finished, per chat. 0 = no per-chat quota.
  // Range 0..16777215. Submit answers kChatOverQuota beyond it.
  uint32_t chat_quota = 0;
  // Distinct chats with unfinished work tracked per shard when chat_quota > 0.
  // Submit answers kTooManyChats when a new chat finds no free slot.
  // Range 64..1048576.
  uint32_t quota_chats_per_shard = 4096;
  Ordering ordering = Ordering::kPerChat;
  // Messages a chat may run per turn before the next chat of its shard gets
  // a turn (kPerChat only). Range 1..65536.
  uint32_t quantum = 16;
  // Times a message is run at most (the first run counts). Range 1..1000.
  uint32_t max_attempts = 3;
  // Wait before the first retry; doubled on each further retry, capped at
  // retry_backoff_max. Range 0..60 s (both); retry_backoff <= retry_backoff_max.
  std::chrono::microseconds retry_backoff{1000};
  std::chrono::microseconds retry_backoff_max{std::chrono::milliseconds(100)};
  Routing routing = Routing::kModulo;
  // Threads the engine's task arena may use, all from TBB's pool. 0 = the
  // number of CPUs TBB sees. Range 0..4096. See README "Threads".
  uint32_t threads = 0;
  // Healthy() turns false when a shard has had unfinished work but finished
  // nothing for this long. Range 1 ms..1 h.
  std::chrono::milliseconds stall_threshold{std::chrono::seconds(10)};
  // Size of the per-shard heavy-hitter sketch (hottest chats kept). Range 1..1024.
  uint32_t hot_chats = 16;

  // OK, or InvalidArgument listing every problem, one per line, as
  // "<field> = <value>: must be in <range>".
  Status Validate() const;
};

std::string_view OrderingName(Ordering ordering);
std::string_view RoutingName(Routing routing);

}  // namespace chatshard

#endif  // CHATSHARD_OPTIONS_H_
