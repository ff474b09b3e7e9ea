// Engine: routes keyed messages to shards and runs them through a handler on
// oneTBB's thread pool, one chat's messages in order, chats taking turns.
//
// Thread safety: every method may be called from any thread at the same time,
// except that the destructor must not race with other calls. The engine owns
// its queues and its TBB task arena and lives until destroyed; it creates no
// thread of its own (work runs on TBB's pool; see Options::threads).
//
// Memory ordering: everything a producer wrote before Submit returned
// kAccepted is visible to the handler when it runs that message. Everything a
// handler wrote while running a message is visible to the handler run of the
// next message of the same chat (kPerChat), and to the caller of Shutdown once
// it returns.
#ifndef CHATSHARD_ENGINE_H_
#define CHATSHARD_ENGINE_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "chatshard/message.h"
#include "chatshard/options.h"
#include "chatshard/routing.h"
#include "chatshard/stats.h"
#include "chatshard/status.h"

namespace chatshard {

// Runs one message; may run on any TBB thread. An exception it throws makes
// the message fail with the exception's what() as reason.
using Handler = std::function<Outcome(const MessageView&)>;
// Sees every message that finally failed; runs on the thread that ran it.
// Must not throw (an exception from it is caught and counted, then dropped).
using FailureHook = std::function<void(const FailedMessage&)>;

// One message for SubmitBatch.
struct SubmitItem {
  std::string_view chat_id;
  std::string_view payload;
};

enum class ShutdownMode {
  kDrain,  // finish queued work until the deadline, then hand back the rest
  kAbort,  // finish only messages already running, hand back the rest
};

struct ShutdownReport {
  uint64_t completed_during_shutdown = 0;  // finished (done or failed) while shutting down
  // Accepted and never finished: handed back in submission order per chat.
  std::vector<UnprocessedMessage> unprocessed;
  // Still inside a handler at the deadline; they finish later, and the
  // destructor waits for them. Zero unless a handler outlived the deadline.
  uint64_t still_running = 0;
  bool deadline_reached = false;
};

class Producer;

class Engine {
 public:
  // Validates `options` and starts an engine, or says why not.
  static Result<std::unique_ptr<Engine>> Create(const Options& options, Handler handler,
                                                FailureHook on_failure = nullptr);

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  // Safe at any point: aborts like Shutdown(kAbort) if Shutdown was not
  // called, then waits for running handlers to return.
  virtual ~Engine() = default;

  // Never blocks. Copies chat_id and payload. Uses moodycamel's implicit
  // producer for the calling thread; see Producer for the faster path.
  virtual SubmitResult Submit(std::string_view chat_id, std::string_view payload) = 0;
  // Submits items in order; results[i] answers items[i]. Returns the number
  // accepted. `results` must be at least as long as `items`.
  virtual size_t SubmitBatch(std::span<const SubmitItem> items,
                             std::span<SubmitResult> results) = 0;

  // A handle holding explicit producer tokens: the fast path for a thread that
  // submits a lot. Use one Producer from one thread at a time.
  virtual std::unique_ptr<Producer> CreateProducer() = 0;

  // Stops intake (Submit answers kStopping from now on), then finishes work
  // as `mode` says until `deadline`. At the deadline no new message starts;
  // handler runs in progress get up to 100 ms more to return, and whatever
  // they still hold then is counted in `still_running`. Returns what was not
  // processed. Calling it again returns what came back since (usually
  // nothing).
  virtual ShutdownReport Shutdown(ShutdownMode mode, Clock::duration deadline) = 0;

  // Ready: started and not stopping.
  virtual bool Ready() const = 0;
  // Healthy: no shard has had unfinished work without finishing any for
  // longer than Options::stall_threshold.
  virtual bool Healthy() const = 0;

  virtual StatsSnapshot Stats() const = 0;
  virtual const Options& options() const = 0;
  virtual uint32_t ShardOf(std::string_view chat_id) const = 0;

 protected:
  Engine() = default;
};

// Holds one explicit moodycamel producer token per shard (created on first
// use), so Submit skips the implicit-producer lookup. Not thread-safe: one
// thread at a time. Must be destroyed before its Engine.
//
// Why it matters: Debian's moodycamel 1.0.3 is built without thread_local
// support, so the implicit producer that Engine::Submit uses is looked up by
// thread id in a hash table on every call and is never recycled: each thread
// that ever called Engine::Submit keeps its implicit producer (and its
// blocks) until the engine is destroyed. Threads that come and go should use
// Producer handles, whose tokens are returned for reuse when destroyed.
class Producer {
 public:
  virtual ~Producer() = default;
  virtual SubmitResult Submit(std::string_view chat_id, std::string_view payload) = 0;
  virtual size_t SubmitBatch(std::span<const SubmitItem> items,
                             std::span<SubmitResult> results) = 0;

 protected:
  Producer() = default;
};

}  // namespace chatshard

#endif  // CHATSHARD_ENGINE_H_
