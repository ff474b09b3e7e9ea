// `chatshard produce`: publishes a traffic file into Redis Streams with the
// Redis adapter's Publisher (one stream per shard, routed like the engine), at
// the recorded pace sped up by a factor or as fast as possible, and exits once
// Redis confirmed every message, or says how many failed and why.
//
// The payload of a published message (also used by `replay --redis`): the
// message's index in the file in decimal and a '\n', then '.' up to the
// message's `bytes` ("42\n......"), capped at kMaxTrafficPayloadBytes. Traffic
// files keep no payload text (the loaders drop "payload"), so the size is
// what the capture recorded and the index lets a consumer that knows the file
// check per-chat order and find each message again.
#ifndef CHATSHARD_TOOLS_CHATSHARD_PRODUCE_H_
#define CHATSHARD_TOOLS_CHATSHARD_PRODUCE_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "chatshard/redis/options.h"
#include "chatshard/redis/publisher.h"
#include "chatshard/redis/stats.h"
#include "chatshard/stats.h"
#include "command.h"
#include "progress.h"
#include "traffic_file.h"

namespace chatshard::cli {

// The largest payload produce and replay --redis generate: a captured size
// above it is sent as this many bytes (the Publisher's default limit).
inline constexpr uint64_t kMaxTrafficPayloadBytes = uint64_t{1} << 20;

// "<index>\n" padded with '.' to min(bytes, kMaxTrafficPayloadBytes) bytes;
// never shorter than "<index>\n".
std::string EncodeTrafficPayload(uint64_t index, uint64_t bytes);
// The index an EncodeTrafficPayload payload carries, or nullopt when the
// payload does not start with "<decimal>\n".
std::optional<uint64_t> DecodeTrafficPayloadIndex(std::string_view payload);

struct PublishTrafficOptions {
  // 0: as fast as possible; else the recorded pace sped up this many times.
  double speed = 0;
  // Publishes awaiting Redis' answer at most: the sender waits for room
  // rather than let Publish wait or refuse. Must be < the Publisher's
  // max_in_flight: the Publisher frees a slot just after the callback that
  // frees one here, so its count can be one higher for a moment.
  uint32_t window = 8191;
  // Close's deadline once everything was sent.
  std::chrono::milliseconds close_deadline{10000};
  // When set, one slot per message of the file: the steady_clock time (ns
  // since its epoch) just before its Publish call, stored with release
  // before the call (replay --redis measures end to end from it).
  std::atomic<int64_t>* publish_ns = nullptr;
  // When set, told after each message how many were handed to Publish.
  ProgressMeter* progress = nullptr;
};

// What PublishTraffic did. Every sent message is confirmed, failed or
// unanswered; a message not sent was never handed to the Publisher.
struct PublishTotals {
  uint64_t messages = 0;    // in the file
  uint64_t sent = 0;        // Publish accepted (queued for Redis)
  uint64_t confirmed = 0;   // Redis answered with a stream id
  uint64_t failed = 0;      // refused by Publish or answered with an error
  uint64_t unanswered = 0;  // sent, no answer by Close's deadline
  uint64_t not_sent = 0;    // left after the first failure from Redis
  std::string first_error;  // of the first failed message, empty if none
  double duration_s = 0;    // first Publish -> last answer (or Close returned)
  LatencySummary confirm_latency;  // Publish called -> stream id received
  redis::RedisStats stats;         // the Publisher's, after Close
  Status close_status;             // Close's answer
};

// Publishes every message of `traffic` in file order through `publisher`,
// then closes it. A message the Publisher refuses as invalid (InvalidArgument:
// an over-long chat id) is counted failed and the rest go on; after any other
// failure (Redis down or refusing) nothing more is sent, what was sent is
// waited for, and the rest counts as not sent.
PublishTotals PublishTraffic(const Traffic& traffic, redis::Publisher& publisher,
                             const PublishTrafficOptions& options);

// Registers `produce` on `app`.
Subcommand AddProduceCommand(CLI::App& app);

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_PRODUCE_H_
