#include "naive_engine.h"

#include <mutex>
#include <string_view>
#include <utility>

namespace chatshard::bench {

NaiveEngine::NaiveEngine(const Options& options, Handler handler)
    : options_{options.partitions == 0 ? 1 : options.partitions,
               options.workers_per_shard == 0 ? 1 : options.workers_per_shard, options.routing},
      handler_(std::move(handler)),
      shards_(new Shard[options_.partitions]) {
  workers_.reserve(size_t{options_.partitions} * options_.workers_per_shard);
  for (uint32_t s = 0; s < options_.partitions; ++s) {
    for (uint32_t w = 0; w < options_.workers_per_shard; ++w) {
      workers_.emplace_back([this, s] { WorkerLoop(s); });
    }
  }
}

NaiveEngine::~NaiveEngine() {
  for (uint32_t s = 0; s < options_.partitions; ++s) {
    Shard& shard = shards_[s];
    {
      std::lock_guard<std::mutex> lock(shard.mu);
      shard.stopping = true;
    }
    shard.not_empty.notify_all();
  }
  for (std::thread& worker : workers_) worker.join();
}

void NaiveEngine::Submit(std::string_view chat_id, std::string_view payload) {
  Shard& shard = shards_[ShardFor(chat_id, options_.partitions, options_.routing)];
  {
    std::lock_guard<std::mutex> lock(shard.mu);
    shard.queue.push_back(
        Message{std::string(chat_id), std::string(payload), shard.next_id++, Clock::now()});
  }
  shard.not_empty.notify_one();
}

uint64_t NaiveEngine::completed() const {
  uint64_t total = 0;
  for (uint32_t s = 0; s < options_.partitions; ++s) total += completed_in_shard(s);
  return total;
}

uint64_t NaiveEngine::completed_in_shard(uint32_t shard) const {
  return shards_[shard].completed.load(std::memory_order_relaxed);
}

uint64_t NaiveEngine::failed() const {
  uint64_t total = 0;
  for (uint32_t s = 0; s < options_.partitions; ++s) {
    total += shards_[s].failed.load(std::memory_order_relaxed);
  }
  return total;
}

void NaiveEngine::WorkerLoop(uint32_t shard_index) {
  Shard& shard = shards_[shard_index];
  for (;;) {
    Message message;
    {
      std::unique_lock<std::mutex> lock(shard.mu);
      shard.not_empty.wait(lock, [&] { return shard.stopping || !shard.queue.empty(); });
      if (shard.queue.empty()) return;  // stopping, and everything queued has run
      message = std::move(shard.queue.front());
      shard.queue.pop_front();
    }
    const MessageView view{message.chat_id,
                           message.payload,
                           message.id,
                           shard_index,
                           /*attempt=*/1,
                           message.enqueued,
                           /*started=*/Clock::time_point{}};  // no handler of this peer reads it
    bool ok = false;
    try {
      ok = handler_(view) == Outcome::kDone;
    } catch (...) {
      ok = false;  // a failed run; the worker keeps going
    }
    if (!ok) shard.failed.fetch_add(1, std::memory_order_relaxed);
    // Relaxed: a counter that readers poll for progress; it publishes nothing.
    shard.completed.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace chatshard::bench
