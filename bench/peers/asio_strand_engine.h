// AsioStrandEngine: the in-process peer built the way a Boost.Asio user would
// build a keyed worker pool: one boost::asio::thread_pool and one strand per
// chat, so a chat's messages run one at a time and in submission order while
// different chats run in parallel on the pool's threads.
//
// Thread safety: Submit may be called from any thread; a chat's order is
// per submitting thread (as chatshard's). The engine owns its pool; the
// destructor waits for everything posted to finish (a drain) and joins it.
//
// What it lacks next to chatshard::Engine, on purpose (plain Asio has none of
// it): no shards and no per-shard concurrency bound, no backpressure (the
// strands' queues are unbounded), no retries, no stats beyond a completion
// count. Strands are created on a chat's first message and never freed.
#ifndef CHATSHARD_BENCH_PEERS_ASIO_STRAND_ENGINE_H_
#define CHATSHARD_BENCH_PEERS_ASIO_STRAND_ENGINE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "chatshard/engine.h"
#include "chatshard/message.h"

namespace chatshard::bench {

class AsioStrandEngine {
 public:
  // threads: the pool's threads, >= 1.
  AsioStrandEngine(unsigned threads, Handler handler);
  AsioStrandEngine(const AsioStrandEngine&) = delete;
  AsioStrandEngine& operator=(const AsioStrandEngine&) = delete;
  ~AsioStrandEngine();

  // Copies chat_id and payload and posts the handler run to the chat's strand.
  void Submit(std::string_view chat_id, std::string_view payload);

  // Handler runs finished. Relaxed: exact once the engine is quiet.
  uint64_t completed() const { return completed_.load(std::memory_order_relaxed); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<uint64_t> completed_{0};
};

}  // namespace chatshard::bench

#endif  // CHATSHARD_BENCH_PEERS_ASIO_STRAND_ENGINE_H_
