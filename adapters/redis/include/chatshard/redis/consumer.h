// Consumer: runs Redis stream entries through an Engine. For each shard it
// reads "<prefix>:{<shard>}:stream" with XREADGROUP, submits the entries to
// the engine it owns, and XACKs them in batches once the handler finished.
// A message that finally fails (kFail, an exception, or max_attempts runs
// that answered kRetry) is XADDed to "<prefix>:{<shard>}:dead" with its
// reason and attempt count, then XACKed. Delivery is at-least-once: after a
// crash, entries read and not acked are delivered again, so the handler gets
// the stream id to deduplicate by.
//
// Ordering: entries of one chat are handled in stream-id order, also across a
// restart: at start (and after each reconnect) a shard's pending entries are
// taken over and redelivered in id order before new entries are read. A
// shard must be consumed by one consumer process at a time; a new process
// waits up to claim_timeout for a previous owner's young pending entries.
//
// Thread safety: Close, Ready, Stats and engine() may be called from any
// thread. The consumer owns its Engine (made from `engine_options`), one I/O
// thread and one hiredis connection; the handler runs on the engine's TBB
// threads. The destructor calls Close with a 1 s deadline if needed.
#ifndef CHATSHARD_REDIS_CONSUMER_H_
#define CHATSHARD_REDIS_CONSUMER_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "chatshard/engine.h"
#include "chatshard/redis/options.h"
#include "chatshard/redis/stats.h"
#include "chatshard/status.h"

namespace chatshard::redis {

// One delivery of one stream entry, valid only during the handler call.
struct StreamMessage {
  std::string_view stream_id;  // "<ms>-<seq>", unique per shard stream
  std::string_view chat_id;
  std::string_view payload;
  uint32_t shard = 0;
  uint32_t attempt = 1;        // run within this delivery; 1 on the first
  bool redelivered = false;    // taken over from the pending list (a restart)
};

// Runs one message on a TBB thread; as chatshard::Handler, an exception
// fails the message with what() as reason.
using StreamHandler = std::function<Outcome(const StreamMessage&)>;

class Consumer {
 public:
  // Validates both option sets (engine_options.partitions and routing must
  // equal the connection's), connects, checks the server and the metadata,
  // creates the consumer group on every shard stream, creates the engine and
  // starts reading. Errors name the field, key or stored value involved.
  static Result<std::unique_ptr<Consumer>> Create(const ConsumerOptions& options,
                                                  const Options& engine_options,
                                                  StreamHandler handler);

  Consumer(const Consumer&) = delete;
  Consumer& operator=(const Consumer&) = delete;
  virtual ~Consumer() = default;

  // Stops reading, drains the engine and sends the outstanding acks and dead
  // letters until `deadline`. Entries not finished by then stay pending in
  // Redis (another consumer claims them). Returns by the deadline even when
  // Redis is gone; Unavailable then says what was left unacked.
  virtual Status Close(std::chrono::milliseconds deadline) = 0;

  // Connected, past the start-up recovery, and not closed.
  virtual bool Ready() const = 0;
  virtual RedisStats Stats() const = 0;
  // The engine the consumer feeds, for its StatsSnapshot; owned by the consumer.
  virtual const Engine& engine() const = 0;
  // Both snapshots in one JSON object: {"engine": StatsSnapshot::ToJson(),
  // "redis": RedisStats::ToJson()}, taken one after the other.
  std::string StatsJson() const;

 protected:
  Consumer() = default;
};

}  // namespace chatshard::redis

#endif  // CHATSHARD_REDIS_CONSUMER_H_
