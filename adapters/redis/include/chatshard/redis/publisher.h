// Publisher: durable ingest. Publish(chat_id, payload) routes the chat like
// the engine (ShardFor) and XADDs {c: chat_id, p: payload} to
// "<prefix>:{<shard>}:stream". A publish is confirmed only after Redis
// replied; the confirmation carries the entry's stream id. What "held by
// Redis" means depends on the server's appendfsync and replicas (README).
//
// Thread safety: every method may be called from any thread. The publisher
// owns one I/O thread and one hiredis connection; XADDs of concurrent
// Publish calls are pipelined in batches on that thread. Completions (the
// callback, or the future's value) are delivered on the I/O thread, in the
// order Redis answered; a callback must not block. Lives until destroyed;
// the destructor calls Close with a 1 s deadline if Close was not called.
#ifndef CHATSHARD_REDIS_PUBLISHER_H_
#define CHATSHARD_REDIS_PUBLISHER_H_

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <string_view>

#include "chatshard/redis/options.h"
#include "chatshard/redis/stats.h"
#include "chatshard/status.h"

namespace chatshard::redis {

// The stream id Redis gave the entry ("1700000000000-0"), or why not.
using PublishCallback = std::function<void(Result<std::string>)>;

class Publisher {
 public:
  // Validates `options`, connects, checks the server (Redis >= 6.2) and the
  // stored metadata (partitions, routing), or says why not. Bounded by
  // connect_timeout + command_timeout.
  static Result<std::unique_ptr<Publisher>> Create(const PublisherOptions& options);

  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;
  virtual ~Publisher() = default;

  // Queues one XADD. Returns OK when queued (the callback then runs exactly
  // once), or an error now, without calling the callback: InvalidArgument for
  // an empty or too long chat id or an oversized payload; Unavailable when
  // the in-flight window stays full or Redis stays down for publish_timeout;
  // FailedPrecondition after Close. Copies chat_id and payload.
  virtual Status Publish(std::string_view chat_id, std::string_view payload,
                         PublishCallback on_done) = 0;
  // The same, as a future; an immediate error is the future's value.
  std::future<Result<std::string>> Publish(std::string_view chat_id, std::string_view payload);

  // Stops intake, waits until every queued publish is answered or the
  // deadline passes; publishes still unanswered then complete with
  // Unavailable. Returns by the deadline even when Redis is gone.
  virtual Status Close(std::chrono::milliseconds deadline) = 0;

  // Connected to Redis and not closed.
  virtual bool Ready() const = 0;
  virtual RedisStats Stats() const = 0;

 protected:
  Publisher() = default;
};

}  // namespace chatshard::redis

#endif  // CHATSHARD_REDIS_PUBLISHER_H_
