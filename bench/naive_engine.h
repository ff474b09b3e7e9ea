// NaiveEngine: the sharded worker pool a user would write by hand, kept as the
// baseline every chatshard::Engine figure is compared with.
//
// Per shard: one std::mutex guarding a std::deque of owned messages and a
// std::condition_variable; `workers_per_shard` std::threads per shard pop one
// message at a time under the lock and run the handler outside it. Producers
// route with chatshard::ShardFor (the engine's own routing), push under the
// lock and notify_one. The queue is unbounded: Submit never rejects.
//
// Thread safety: Submit, completed() and completed_in_shard() may be called
// from any thread at the same time. The engine owns its threads; they start in
// the constructor and are joined by the destructor, which first runs every
// message still queued (a drain), so nothing submitted is dropped unseen.
//
// It keeps the Handler signature of chatshard::Engine so one handler drives
// both. Semantics it does NOT offer, on purpose (a hand-written pool would
// not): no per-chat order when workers_per_shard > 1, no retries (kRetry is
// counted like kFail), no backpressure, no stats beyond completion counts.
#ifndef CHATSHARD_BENCH_NAIVE_ENGINE_H_
#define CHATSHARD_BENCH_NAIVE_ENGINE_H_

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "chatshard/engine.h"
#include "chatshard/message.h"
#include "chatshard/routing.h"

namespace chatshard::bench {

// Bytes that keep two threads' hot data off one cache line (x86-64 and most
// ARM cores). A constant, not std::hardware_destructive_interference_size,
// whose value GCC warns may change between compiler versions.
inline constexpr size_t kCacheLineBytes = 64;

class NaiveEngine {
 public:
  struct Options {
    uint32_t partitions = 16;        // shards; >= 1
    uint32_t workers_per_shard = 1;  // threads per shard; >= 1
    Routing routing = Routing::kModulo;
  };

  NaiveEngine(const Options& options, Handler handler);
  NaiveEngine(const NaiveEngine&) = delete;
  NaiveEngine& operator=(const NaiveEngine&) = delete;
  // Stops the workers after they have run everything queued, then joins them.
  ~NaiveEngine();

  // Copies chat_id and payload into the shard's queue and wakes one worker.
  void Submit(std::string_view chat_id, std::string_view payload);

  // Handler runs finished (any outcome). Relaxed: a progress estimate while
  // messages flow, exact once the engine is quiet.
  uint64_t completed() const;
  uint64_t completed_in_shard(uint32_t shard) const;
  // Runs that answered kFail or kRetry, or threw.
  uint64_t failed() const;

  uint32_t partitions() const { return options_.partitions; }

 private:
  struct Message {
    std::string chat_id;
    std::string payload;
    uint64_t id = 0;
    Clock::time_point enqueued;
  };

  // One cache line per shard at least: workers of different shards must not
  // bounce each other's lock or counters.
  struct alignas(kCacheLineBytes) Shard {
    std::mutex mu;
    std::condition_variable not_empty;
    std::deque<Message> queue;  // guarded by mu
    uint64_t next_id = 0;       // guarded by mu
    bool stopping = false;      // guarded by mu
    // Written by this shard's workers, read by anyone.
    std::atomic<uint64_t> completed{0};
    std::atomic<uint64_t> failed{0};
  };

  void WorkerLoop(uint32_t shard_index);

  const Options options_;
  const Handler handler_;
  std::unique_ptr<Shard[]> shards_;
  std::vector<std::thread> workers_;
};

}  // namespace chatshard::bench

#endif  // CHATSHARD_BENCH_NAIVE_ENGINE_H_
