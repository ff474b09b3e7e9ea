// PublisherImpl: Publish calls hand requests to one I/O thread through a
// lock-free queue; the thread pipelines them as XADD batches on its own
// hiredis connection and completes each with the id Redis answered.
//
// Thread safety and ownership:
//   - `options`, `keys`: const after construction.
//   - `connection`, `pending`: owned by the I/O thread.
//   - `queue`: moodycamel MPMC queue; producers are Publish callers, the only
//     consumer is the I/O thread.
//   - `in_flight`: the window. Publish increments it (CAS, bounded by
//     max_in_flight) before enqueuing; the I/O thread decrements it after the
//     completion ran.
//   - The state lives in a shared_ptr held by the I/O thread too, so Close can
//     return at its deadline even when the thread is stuck in a connect.
#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "chatshard/message.h"
#include "chatshard/redis/publisher.h"
#include "connection.h"
#include "work_queue.h"

namespace chatshard::redis {
namespace internal {
namespace {

using std::chrono::milliseconds;

// Chat id and payload share one buffer: one allocation per publish.
struct PublishRequest {
  uint32_t shard = 0;
  uint32_t chat_bytes = 0;
  std::string chat_and_payload;
  PublishCallback done;
  Clock::time_point queued;

  std::string_view chat() const {
    return std::string_view(chat_and_payload).substr(0, chat_bytes);
  }
  std::string_view payload() const {
    return std::string_view(chat_and_payload).substr(chat_bytes);
  }
};

struct PublisherCore {
  explicit PublisherCore(const PublisherOptions& o) : options(o) {
    for (uint32_t s = 0; s < o.connection.partitions; ++s) {
      keys.push_back(StreamKey(o.connection.prefix, s));
    }
  }

  void Run();
  void Complete(PublishRequest& request, Result<std::string> result);
  void WakeWindowWaiters();
  void FailAll(std::deque<PublishRequest>& pending, const Status& why);
  void Drain(std::deque<PublishRequest>& pending);
  void SendBatch(std::deque<PublishRequest>& pending);
  bool SleepFor(milliseconds d);  // false when woken by abort

  const PublisherOptions options;
  std::vector<std::string> keys;

  WorkQueue<PublishRequest> queue;
  SocketSlot socket;
  std::unique_ptr<Connection> connection;  // I/O thread only (after Create)

  std::atomic<uint64_t> in_flight{0};
  std::mutex window_mu;
  std::condition_variable window_cv;
  std::atomic<int> window_waiters{0};

  std::atomic<bool> ready{false};
  std::atomic<bool> closing{false};
  std::atomic<bool> abort{false};
  std::mutex state_mu;
  std::condition_variable state_cv;  // abort and `finished`
  bool finished = false;

  // Counters: written by the I/O thread (relaxed; read by Stats).
  std::atomic<uint64_t> published{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> reconnects{0};
  std::atomic<uint64_t> round_trips{0};
};

void PublisherCore::Complete(PublishRequest& request, Result<std::string> result) {
  if (result.ok()) {
    published.fetch_add(1, std::memory_order_relaxed);
  } else {
    failed.fetch_add(1, std::memory_order_relaxed);
  }
  if (request.done) request.done(std::move(result));
  // seq_cst: with the waiter's seq_cst increment of window_waiters and its
  // load of in_flight, either the waiter sees this room or WakeWindowWaiters
  // sees the waiter (a store-load pair: acq_rel would allow both to miss).
  in_flight.fetch_sub(1, std::memory_order_seq_cst);
}

// Once per batch of completions, not per completion: a lock and a futex
// wake per message cost more than the XADD itself when callers wait.
void PublisherCore::WakeWindowWaiters() {
  if (window_waiters.load(std::memory_order_seq_cst) > 0) {  // see Complete
    std::lock_guard<std::mutex> l(window_mu);
    window_cv.notify_all();
  }
}

void PublisherCore::FailAll(std::deque<PublishRequest>& pending, const Status& why) {
  Drain(pending);
  while (!pending.empty()) {
    Complete(pending.front(), why);
    pending.pop_front();
  }
  WakeWindowWaiters();
}

void PublisherCore::Drain(std::deque<PublishRequest>& pending) {
  PublishRequest r;
  while (queue.try_dequeue(r)) pending.push_back(std::move(r));
}

bool PublisherCore::SleepFor(milliseconds d) {
  std::unique_lock<std::mutex> l(state_mu);
  return !state_cv.wait_for(l, d, [&] { return abort.load(std::memory_order_acquire); });
}

void PublisherCore::SendBatch(std::deque<PublishRequest>& pending) {
  const size_t n = std::min<size_t>(pending.size(), options.batch_size);
  for (size_t i = 0; i < n; ++i) {
    const PublishRequest& r = pending[i];
    connection->Append({"XADD", keys[r.shard], "*", "c", r.chat(), "p", r.payload()});
  }
  round_trips.fetch_add(1, std::memory_order_relaxed);
  for (size_t i = 0; i < n; ++i) {
    Result<Reply> reply = connection->Read();
    PublishRequest r = std::move(pending.front());
    pending.pop_front();
    if (!reply.ok()) {
      // Written (maybe) but unanswered: Redis may hold the entry. Reporting
      // it as failed lets the caller decide; re-sending could duplicate it.
      Complete(r, Status::Unavailable(std::string(reply.status().message()) +
                                      "; the XADD was sent but not answered, so the entry "
                                      "may or may not be stored"));
      continue;
    }
    const redisReply* x = reply->get();
    if (IsError(x)) {
      Complete(r, ReplyErrorStatus(x, "XADD " + keys[r.shard]));
    } else if (x->type == REDIS_REPLY_STRING) {
      Complete(r, std::string(ReplyString(x)));
    } else {
      Complete(r, Status::Internal("XADD " + keys[r.shard] + ": unexpected reply type"));
    }
  }
  WakeWindowWaiters();
}

void PublisherCore::Run() {
  std::deque<PublishRequest> pending;
  // Dequeue buffer, made once: the loop runs once per batch.
  std::vector<PublishRequest> buf(options.batch_size);
  ReconnectBackoff backoff(options.connection);
  while (true) {
    if (abort.load(std::memory_order_acquire)) {
      ready.store(false, std::memory_order_release);
      FailAll(pending, Status::Unavailable("publisher closed at its deadline before Redis "
                                           "answered; the entry may or may not be stored"));
      break;
    }
    if (connection == nullptr || connection->broken()) {
      if (connection != nullptr) {
        connection.reset();
        ready.store(false, std::memory_order_release);
      }
      Drain(pending);
      const auto now = Clock::now();
      while (!pending.empty() && now - pending.front().queued >= options.publish_timeout) {
        Complete(pending.front(),
                 Status::Unavailable("Redis at " + options.connection.address +
                                     " unreachable for publish_timeout = " +
                                     std::to_string(options.publish_timeout.count()) + " ms"));
        pending.pop_front();
      }
      WakeWindowWaiters();
      if (closing.load(std::memory_order_acquire) && pending.empty() &&
          in_flight.load(std::memory_order_acquire) == 0) {
        break;
      }
      Result<std::unique_ptr<Connection>> c =
          Connection::Open(options.connection, options.connection.connect_timeout, &socket);
      if (c.ok()) {
        connection = std::move(c).value();
        reconnects.fetch_add(1, std::memory_order_relaxed);
        ready.store(true, std::memory_order_release);
        backoff.Reset();
      } else {
        SleepFor(backoff.Next());
      }
      continue;
    }
    if (pending.size() < options.batch_size) {
      const size_t room = options.batch_size - pending.size();
      size_t n = pending.empty()
                     ? queue.wait_dequeue_bulk_timed(buf.begin(), room,
                                                     std::chrono::milliseconds(20))
                     : queue.try_dequeue_bulk(buf.begin(), room);
      for (size_t i = 0; i < n; ++i) pending.push_back(std::move(buf[i]));
    }
    if (pending.empty()) {
      if (closing.load(std::memory_order_acquire) &&
          in_flight.load(std::memory_order_acquire) == 0) {
        break;
      }
      continue;
    }
    SendBatch(pending);
  }
  connection.reset();
  ready.store(false, std::memory_order_release);
  std::lock_guard<std::mutex> l(state_mu);
  finished = true;
  state_cv.notify_all();
}

class PublisherImpl final : public Publisher {
 public:
  explicit PublisherImpl(std::shared_ptr<PublisherCore> core) : core_(std::move(core)) {
    io_ = std::thread([core = core_] { core->Run(); });
  }
  ~PublisherImpl() override { (void)Close(milliseconds(1000)); }

  using Publisher::Publish;
  Status Publish(std::string_view chat_id, std::string_view payload,
                 PublishCallback on_done) override;
  Status Close(milliseconds deadline) override;
  bool Ready() const override {
    return core_->ready.load(std::memory_order_acquire) &&
           !core_->closing.load(std::memory_order_acquire);
  }
  RedisStats Stats() const override;

 private:
  std::shared_ptr<PublisherCore> core_;
  std::thread io_;
  std::mutex close_mu_;
};

Status PublisherImpl::Publish(std::string_view chat_id, std::string_view payload,
                              PublishCallback on_done) {
  PublisherCore& c = *core_;
  if (chat_id.empty() || chat_id.size() > kMaxChatIdBytes) {
    return Status::InvalidArgument("chat_id is " + std::to_string(chat_id.size()) +
                                   " bytes: must be 1.." + std::to_string(kMaxChatIdBytes));
  }
  if (payload.size() > c.options.max_payload_bytes) {
    return Status::InvalidArgument("payload is " + std::to_string(payload.size()) +
                                   " bytes: larger than max_payload_bytes = " +
                                   std::to_string(c.options.max_payload_bytes));
  }
  if (c.closing.load(std::memory_order_acquire)) {
    return Status::FailedPrecondition("publisher is closed");
  }
  if (c.options.publish_timeout.count() == 0 && !c.ready.load(std::memory_order_acquire)) {
    return Status::Unavailable("Redis at " + c.options.connection.address +
                               " is unreachable (reconnecting); publish_timeout = 0 fails fast");
  }
  // Take a slot in the window. Success of the CAS means this publish owns
  // slot `cur`; failure reloads `cur` and tries again.
  uint64_t cur = c.in_flight.load(std::memory_order_relaxed);
  while (true) {
    if (cur < c.options.max_in_flight) {
      if (c.in_flight.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel)) break;
      continue;
    }
    if (c.options.publish_timeout.count() == 0) {
      return Status::Unavailable("in-flight window full: max_in_flight = " +
                                 std::to_string(c.options.max_in_flight) +
                                 " publishes await Redis' answer");
    }
    std::unique_lock<std::mutex> l(c.window_mu);
    // seq_cst: the store-load pair with Complete (see there).
    c.window_waiters.fetch_add(1, std::memory_order_seq_cst);
    const bool room = c.window_cv.wait_for(l, c.options.publish_timeout, [&] {
      return c.in_flight.load(std::memory_order_seq_cst) < c.options.max_in_flight ||
             c.closing.load(std::memory_order_acquire);
    });
    c.window_waiters.fetch_sub(1, std::memory_order_acq_rel);
    if (c.closing.load(std::memory_order_acquire)) {
      return Status::FailedPrecondition("publisher is closed");
    }
    if (!room) {
      return Status::Unavailable("in-flight window full (max_in_flight = " +
                                 std::to_string(c.options.max_in_flight) +
                                 ") for publish_timeout = " +
                                 std::to_string(c.options.publish_timeout.count()) + " ms");
    }
    cur = c.in_flight.load(std::memory_order_relaxed);
  }
  PublishRequest r;
  r.shard = ShardFor(chat_id, c.options.connection.partitions, c.options.connection.routing);
  r.chat_bytes = static_cast<uint32_t>(chat_id.size());
  r.chat_and_payload.reserve(chat_id.size() + payload.size());
  r.chat_and_payload.append(chat_id).append(payload);
  r.done = std::move(on_done);
  r.queued = Clock::now();
  c.queue.enqueue(std::move(r));
  return Status::Ok();
}

Status PublisherImpl::Close(milliseconds deadline) {
  std::lock_guard<std::mutex> close_lock(close_mu_);
  if (!io_.joinable()) return Status::Ok();
  PublisherCore& c = *core_;
  const auto start = Clock::now();
  c.closing.store(true, std::memory_order_release);
  {
    std::lock_guard<std::mutex> l(c.window_mu);
    c.window_cv.notify_all();
  }
  // Leave a slice of the deadline to interrupt a blocked call and join.
  const auto margin = std::min<Clock::duration>(milliseconds(50), deadline / 5);
  std::unique_lock<std::mutex> l(c.state_mu);
  bool done = c.state_cv.wait_until(l, start + deadline - margin, [&] { return c.finished; });
  if (!done) {
    c.abort.store(true, std::memory_order_release);
    c.state_cv.notify_all();
    l.unlock();
    c.socket.Interrupt();
    l.lock();
    done = c.state_cv.wait_until(l, start + deadline, [&] { return c.finished; });
  }
  l.unlock();
  if (done) {
    io_.join();
    return Status::Ok();
  }
  // Stuck in a connect attempt (bounded by connect_timeout): the thread keeps
  // the shared state alive and fails what is left when it returns.
  io_.detach();
  return Status::Unavailable("publisher Close reached its deadline of " +
                             std::to_string(deadline.count()) +
                             " ms with Redis unreachable; unanswered publishes fail with "
                             "Unavailable");
}

RedisStats PublisherImpl::Stats() const {
  RedisStats s;
  s.published = core_->published.load(std::memory_order_relaxed);
  s.publish_failed = core_->failed.load(std::memory_order_relaxed);
  const uint64_t connects = core_->reconnects.load(std::memory_order_relaxed);
  s.reconnects = connects > 0 ? connects - 1 : 0;
  s.in_flight = core_->in_flight.load(std::memory_order_relaxed);
  s.round_trips = core_->round_trips.load(std::memory_order_relaxed);
  s.ready = Ready();
  return s;
}

}  // namespace
}  // namespace internal

Result<std::unique_ptr<Publisher>> Publisher::Create(const PublisherOptions& options) {
  if (Status s = options.Validate(); !s.ok()) return s;
  auto core = std::make_shared<internal::PublisherCore>(options);
  Result<std::unique_ptr<internal::Connection>> conn = internal::Connection::Open(
      options.connection, options.connection.connect_timeout, &core->socket);
  if (!conn.ok()) return conn.status();
  if (Status s = internal::CheckServerAndMeta(**conn, options.connection); !s.ok()) return s;
  // A key of another type in the way is refused now rather than per publish.
  for (const std::string& key : core->keys) (*conn)->Append({"TYPE", key});
  for (const std::string& key : core->keys) {
    Result<internal::Reply> t = (*conn)->Read();
    if (!t.ok()) return t.status();
    const std::string_view type = internal::ReplyString(t->get());
    if (type != "none" && type != "stream") {
      return Status::FailedPrecondition("key \"" + key + "\" holds a " + std::string(type) +
                                        ", not a stream (WRONGTYPE): remove it or use another "
                                        "connection.prefix");
    }
  }
  core->connection = std::move(conn).value();
  core->reconnects.store(1, std::memory_order_relaxed);
  core->ready.store(true, std::memory_order_release);
  return std::unique_ptr<Publisher>(new internal::PublisherImpl(std::move(core)));
}

std::future<Result<std::string>> Publisher::Publish(std::string_view chat_id,
                                                    std::string_view payload) {
  auto promise = std::make_shared<std::promise<Result<std::string>>>();
  std::future<Result<std::string>> future = promise->get_future();
  Status s = Publish(chat_id, payload,
                     [promise](Result<std::string> r) { promise->set_value(std::move(r)); });
  if (!s.ok()) promise->set_value(std::move(s));
  return future;
}

}  // namespace chatshard::redis
