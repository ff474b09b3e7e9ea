// chatshard_bench: the engine's figures, each beside its baseline in the same
// binary and the same run, so every number has a ratio.
//
// Families (use --benchmark_filter with the prefix):
//   BM_Hash_*                    routing hash cost per chat id
//   BM_Ceiling_MoodycamelBulk64  raw moodycamel queue, 1 producer -> 1 consumer,
//                                64-byte messages or 32-byte descriptors
//   BM_Naive_*                   the mutex + deque + condvar pool users write
//   BM_Engine_EndToEnd_*         submit N, handle N, per ordering
//   BM_Engine_Submit_*           submit cost with the engine draining
//   BM_Engine_QueueWait_*,
//   BM_Naive_QueueWait           queue wait at fixed offered rates
//   BM_Engine_AllocsPerMessage,
//   BM_Naive_AllocsPerMessage    heap allocations per message, steady state
//   BM_Engine_Saturated16_*      fairness across 16 saturated shards
//
// Shared workload: 16 partitions, 1,000 chats with realistic 17-byte ids
// ("1234/5d41402abc4b") taken round-robin, a 32-byte payload, and a handler
// that does nothing but count (the same counting handler for the engine and
// the naive pool). 17 + 32 bytes fit the engine's 52 inline envelope bytes.
// The end-to-end runs submit in batches of 64 (4 per shard) or 1,024 (64 per
// shard, the ceiling's bulk) and bound each shard at 1,024 unfinished
// messages (kEndToEndShardCapacity says why); one row keeps the default
// capacity.
//
// This VM's two vCPUs move between host cores: the ceiling read 36 M/s and
// 142 M/s (64-byte elements) in runs minutes apart, far more than the engine
// moved. Compare ratios within one run, and prefer
// --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true, so
// that each median mixes the same machine states.
//
// Threads: this machine has 2 CPUs. The benchmark thread is the producer and
// keeps one busy, so engines run with Options::threads = 1 (one TBB worker
// drains on the other CPU) unless a run says otherwise; the threads:2 variants
// show what oversubscribing the 2 CPUs costs.
#include <benchmark/benchmark.h>
#include <concurrentqueue/concurrentqueue.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "alloc_counter.h"
#include "chatshard/engine.h"
#include "chatshard/message.h"
#include "chatshard/options.h"
#include "chatshard/routing.h"
#include "chatshard/stats.h"
#include "naive_engine.h"

namespace chatshard::bench {
namespace {

using std::chrono::duration_cast;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

constexpr uint32_t kPartitions = 16;
constexpr size_t kChats = 1000;
constexpr size_t kChatIdBytes = 17;  // "1234/5d41402abc4b"
constexpr size_t kShortChatIdBytes = 4;
constexpr size_t kPayloadBytes = 32;
constexpr size_t kBatch = 64;
// The larger SubmitBatch of the end-to-end runs: 1,024 messages over 16
// shards put about 64 in each shard's queue at once, the ceiling's bulk.
constexpr size_t kLargeBatch = 1024;
// Messages per iteration of the end-to-end runs (engine, naive and ceiling).
constexpr int64_t kMessagesPerIteration = 1'000'000;
// Large enough that no run ever sees kShardFull: every run submits at most a
// few million messages over 16 shards.
constexpr uint32_t kLargeShardCapacity = 1u << 22;
// The end-to-end runs bound each shard at this many unfinished messages (the
// engine answers kShardFull beyond it and SubmitRoundRobin resubmits): the
// producer outruns one drain thread, and an unbounded backlog (16 x 65,536
// messages at the default capacity) no longer fits any cache, so every
// message is written to and read back from memory. The default-capacity row
// shows that cost.
constexpr uint32_t kEndToEndShardCapacity = 1024;
constexpr uint32_t kDefaultThreads = 1;  // see "Threads" above

// ---------------------------------------------------------------- workload

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// "<4-digit tenant>/<12 hex digits>": 17 bytes, like "1234/5d41402abc4b".
std::vector<std::string> MakeChatIds() {
  std::vector<std::string> ids;
  ids.reserve(kChats);
  for (size_t i = 0; i < kChats; ++i) {
    const uint64_t bits = SplitMix64(i);
    char buffer[kChatIdBytes + 1];
    std::snprintf(buffer, sizeof(buffer), "%04u/%012llx", static_cast<unsigned>(1000 + bits % 9000),
                  static_cast<unsigned long long>(bits >> 16));
    ids.emplace_back(buffer, kChatIdBytes);
  }
  return ids;
}

// Short numeric ids ("1000".."1999"), as some hosts use plain user numbers.
std::vector<std::string> MakeShortChatIds() {
  std::vector<std::string> ids;
  ids.reserve(kChats);
  for (size_t i = 0; i < kChats; ++i) ids.push_back(std::to_string(1000 + i));
  return ids;
}

const std::vector<std::string>& ChatIds() {
  static const std::vector<std::string> ids = MakeChatIds();
  return ids;
}

const std::vector<std::string>& ShortChatIds() {
  static const std::vector<std::string> ids = MakeShortChatIds();
  return ids;
}

// A small JSON-ish body of exactly `bytes` bytes.
std::string MakePayload(size_t bytes) {
  std::string payload = "{\"text\":\"";
  payload.resize(bytes > 2 ? bytes - 2 : 0, 'x');
  payload += "\"}";
  payload.resize(bytes);
  return payload;
}

const std::string& Payload() {
  static const std::string payload = MakePayload(kPayloadBytes);
  return payload;
}

// Items for SubmitBatch: chat j % kChats at index j, round once and then
// kLargeBatch more, so a batch of up to kLargeBatch items starting at any
// chat is one contiguous span.
std::vector<SubmitItem> MakeSubmitCycle(const std::string& payload) {
  const auto& ids = ChatIds();
  std::vector<SubmitItem> items;
  items.reserve(kChats + kLargeBatch);
  for (size_t j = 0; j < kChats + kLargeBatch; ++j) items.push_back({ids[j % kChats], payload});
  return items;
}

// ------------------------------------------------------------------ helpers

// Sleeps in short steps until `done()`; the step (~70 µs with the kernel's
// timer slack) is noise against the ≥ 20 ms it waits for.
template <typename Done>
void WaitUntil(Done done) {
  while (!done()) std::this_thread::sleep_for(microseconds(20));
}

void SpinFor(Clock::duration duration) {
  const Clock::time_point end = Clock::now() + duration;
  while (Clock::now() < end) {
  }
}

// Pins the calling thread to one CPU for its lifetime, then restores the
// thread's previous CPU set. The ceiling pins its producer to CPU 0 and its
// consumer to CPU 1, so that they always run side by side and the queue
// always crosses cores. Unpinned, the ceiling read 161 M/s in one run and
// 44 M/s in the next. Engine runs pin nothing: a thread inherits its
// creator's CPU set, so pinning the producer would also pin the TBB workers
// it happens to create (measured: one CPU busy in total), and the engine
// itself makes no thread placement. No-op where pinning fails.
class PinThread {
 public:
  explicit PinThread(int cpu) {
    ok_ = pthread_getaffinity_np(pthread_self(), sizeof(saved_), &saved_) == 0;
    if (!ok_ || !CPU_ISSET(cpu, &saved_)) {
      ok_ = false;
      return;
    }
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    ok_ = pthread_setaffinity_np(pthread_self(), sizeof(one), &one) == 0;
  }
  ~PinThread() {
    if (ok_) pthread_setaffinity_np(pthread_self(), sizeof(saved_), &saved_);
  }
  PinThread(const PinThread&) = delete;
  PinThread& operator=(const PinThread&) = delete;
  bool ok() const { return ok_; }

 private:
  cpu_set_t saved_;
  bool ok_ = false;
};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Messages handled, counted by the handler. Each handler thread counts in a
// slot of its own (single writer: a relaxed load and a release store, no
// locked instruction), so counting costs the handler about what the
// ceiling's consumer pays for its checksum, and workers never contend.
class HandledCounter {
 public:
  HandledCounter() : run_(next_run_.fetch_add(1, std::memory_order_relaxed) + 1) {}

  void Add() {
    thread_local uint64_t seen_run = 0;
    thread_local Padded* mine = nullptr;
    if (seen_run != run_) {  // this thread's first message of this run
      seen_run = run_;
      // relaxed: slot numbers need only be unique.
      const size_t i = next_slot_.fetch_add(1, std::memory_order_relaxed);
      if (i >= kMaxThreads) {
        std::fprintf(stderr, "HandledCounter: more than %zu handler threads\n", kMaxThreads);
        std::abort();
      }
      mine = &slots_[i];
    }
    // release: whatever the handler recorded before (a latency sample) is
    // visible to a reader whose acquire load of Total() includes this count.
    mine->value.store(mine->value.load(std::memory_order_relaxed) + 1,
                      std::memory_order_release);
  }

  uint64_t Total() const {
    uint64_t total = 0;
    for (const Padded& c : slots_) total += c.value.load(std::memory_order_acquire);
    return total;
  }

 private:
  static constexpr size_t kMaxThreads = 64;
  struct alignas(kCacheLineBytes) Padded {
    std::atomic<uint64_t> value{0};
  };
  static inline std::atomic<uint64_t> next_run_{0};
  const uint64_t run_;
  std::atomic<size_t> next_slot_{0};
  std::array<Padded, kMaxThreads> slots_;
};

// Distinct threads that ran the handler during one benchmark run: shows how
// many TBB workers the engine really got.
class ThreadTally {
 public:
  ThreadTally() : run_(next_run_.fetch_add(1, std::memory_order_relaxed) + 1) {}

  void Note() {
    thread_local uint64_t seen_run = 0;
    if (seen_run != run_) {
      seen_run = run_;
      threads_.fetch_add(1, std::memory_order_relaxed);
    }
  }
  uint64_t threads() const { return threads_.load(std::memory_order_relaxed); }

 private:
  static inline std::atomic<uint64_t> next_run_{0};
  const uint64_t run_;
  std::atomic<uint64_t> threads_{0};
};

// Queue-wait samples (enqueue -> handler start) recorded by handlers, exact
// nearest-rank percentiles afterwards. Samples beyond capacity are dropped.
class LatencyRecorder {
 public:
  explicit LatencyRecorder(size_t capacity) : samples_(capacity) {}

  void Record(Clock::duration wait) {
    const size_t i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i < samples_.size()) samples_[i] = duration_cast<nanoseconds>(wait).count();
  }

  // Call once the handlers are done (after an acquire that saw their counts).
  void Finish() {
    samples_.resize(std::min(samples_.size(), next_.load(std::memory_order_relaxed)));
    std::sort(samples_.begin(), samples_.end());
  }
  double PercentileUs(double q) const {
    if (samples_.empty()) return 0;
    const size_t rank = static_cast<size_t>(std::ceil(q * static_cast<double>(samples_.size())));
    return static_cast<double>(samples_[std::clamp<size_t>(rank, 1, samples_.size()) - 1]) / 1e3;
  }

 private:
  std::atomic<size_t> next_{0};
  std::vector<int64_t> samples_;
};

Options EngineOptions(Ordering ordering, uint32_t threads) {
  Options options;
  options.partitions = kPartitions;
  options.ordering = ordering;
  options.threads = threads;
  options.shard_capacity = kLargeShardCapacity;
  return options;
}

std::unique_ptr<Engine> CreateEngineOrSkip(benchmark::State& state, const Options& options,
                                           Handler handler) {
  Result<std::unique_ptr<Engine>> created = Engine::Create(options, std::move(handler));
  if (!created.ok()) {
    state.SkipWithError(created.status().ToString().c_str());
    return nullptr;
  }
  return std::move(created).value();
}

// Submits `count` messages in batches of `batch` (at most kLargeBatch),
// continuing the round-robin at `*cursor`. Messages refused with kShardFull
// (backpressure: the drain threads are behind) are submitted again, as a
// batch and in their order, after a yield; each such round counts once in
// `*refused`. SubmitBatch accepts a prefix of each shard's messages, so
// per-chat order holds. Returns false on any other refusal.
bool SubmitRoundRobin(Producer& producer, const std::vector<SubmitItem>& cycle, int64_t count,
                      size_t* cursor, uint64_t* refused, size_t batch = kBatch) {
  std::array<SubmitResult, kLargeBatch> results;
  // Refused items, in order. Kept between calls so that only the first call
  // allocates (the allocation benchmark counts the warm rounds only).
  thread_local std::vector<SubmitItem> again, next;
  again.reserve(kLargeBatch);
  next.reserve(kLargeBatch);
  batch = std::min(batch, kLargeBatch);
  for (int64_t sent = 0; sent < count;) {
    const size_t n = static_cast<size_t>(std::min<int64_t>(static_cast<int64_t>(batch), count - sent));
    std::span<const SubmitItem> items(cycle.data() + *cursor, n);
    while (producer.SubmitBatch(items, std::span<SubmitResult>(results.data(), items.size())) !=
           items.size()) {
      next.clear();
      for (size_t i = 0; i < items.size(); ++i) {
        if (results[i] == SubmitResult::kAccepted) continue;
        if (results[i] != SubmitResult::kShardFull) return false;
        next.push_back(items[i]);
      }
      again.swap(next);
      ++*refused;
      std::this_thread::yield();
      items = std::span<const SubmitItem>(again.data(), again.size());
    }
    sent += static_cast<int64_t>(n);
    *cursor = (*cursor + n) % kChats;
  }
  return true;
}

// ------------------------------------------------------------------- hashes

const std::vector<std::string>& IdsOfBytes(int64_t bytes) {
  return bytes == static_cast<int64_t>(kShortChatIdBytes) ? ShortChatIds() : ChatIds();
}

template <typename Hash>
void HashIds(benchmark::State& state, Hash hash) {
  const auto& ids = IdsOfBytes(state.range(0));
  const std::vector<std::string_view> views(ids.begin(), ids.end());
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(hash(views[i]));
    if (++i == views.size()) i = 0;
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * state.range(0));
}

void BM_Hash_Fnv1a32(benchmark::State& state) { HashIds(state, Fnv1a32); }
void BM_Hash_ShardFor_Modulo(benchmark::State& state) {
  HashIds(state, [](std::string_view id) { return ShardFor(id, kPartitions, Routing::kModulo); });
}
void BM_Hash_ShardFor_Jump(benchmark::State& state) {
  HashIds(state, [](std::string_view id) { return ShardFor(id, kPartitions, Routing::kJump); });
}
// Reference: the standard library's string hash (libstdc++: murmur-style).
void BM_Hash_StdHash(benchmark::State& state) { HashIds(state, std::hash<std::string_view>{}); }

// ------------------------------------------------------------------ ceiling

// Two elements for the ceiling. MessageDescriptor is what the engine's
// ingress carries per message reduced to a pointer and lengths: the message
// bytes themselves never cross cores. InlineMessage carries this workload's
// message (17-byte chat id + 32-byte payload) inline with a timestamp, as any
// queue that hands messages between threads must: one 64-byte cache line.
// The end-to-end targets compare against InlineMessage (the same bytes the
// engine moves); the descriptor figure stays beside it for reference.
struct MessageDescriptor {
  uint64_t id;
  const char* bytes;  // chat id then payload
  uint32_t chat_bytes;
  uint32_t payload_bytes;
  int64_t enqueued_ns;

  static MessageDescriptor Make(uint64_t id, const std::string& chat, const std::string&) {
    return {id, chat.data(), kChatIdBytes, kPayloadBytes, 0};
  }
  uint64_t Checksum() const { return id; }
};
static_assert(sizeof(MessageDescriptor) == 32);

struct alignas(64) InlineMessage {
  int64_t enqueued_ns;
  uint16_t chat_bytes;
  uint16_t payload_bytes;
  char bytes[52];  // chat id then payload

  static InlineMessage Make(uint64_t id, const std::string& chat, const std::string& payload) {
    InlineMessage m{static_cast<int64_t>(id), static_cast<uint16_t>(chat.size()),
                    static_cast<uint16_t>(payload.size()), {}};
    std::memcpy(m.bytes, chat.data(), chat.size());
    std::memcpy(m.bytes + chat.size(), payload.data(), payload.size());
    return m;
  }
  uint64_t Checksum() const { return static_cast<uint64_t>(enqueued_ns) + bytes[0]; }
};
static_assert(sizeof(InlineMessage) == 64);
static_assert(kChatIdBytes + kPayloadBytes <= sizeof(InlineMessage::bytes));

// GCC 12 reports a false -Wstringop-overflow inside moodycamel's
// ExplicitProducer::enqueue_bulk once it is inlined here (an atomic load it
// takes for a store); known upstream (cameron314/concurrentqueue#456 and the
// GCC 12 reports of __atomic_load_8 "writing 8 bytes into a region of size 0").
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
// The raw queue with nothing around it: one producer (this thread) and one
// consumer thread, explicit tokens, bulk transfers of 64 elements built once
// up front. No routing, no clock, no handler: the upper bound for any design
// built on this queue that moves elements of this size.
template <typename Element>
void BM_Ceiling_MoodycamelBulk64(benchmark::State& state) {
  moodycamel::ConcurrentQueue<Element> queue(64 * kBatch);
  std::atomic<uint64_t> consumed{0};
  std::atomic<bool> stop{false};
  std::thread consumer([&] {
    PinThread pin_consumer(1);
    moodycamel::ConsumerToken token(queue);
    std::array<Element, kBatch> buffer;
    uint64_t local = 0;
    uint64_t checksum = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      const size_t n = queue.try_dequeue_bulk(token, buffer.begin(), kBatch);
      if (n == 0) continue;
      for (size_t i = 0; i < n; ++i) checksum += buffer[i].Checksum();  // read each
      local += n;
      consumed.store(local, std::memory_order_release);
    }
    benchmark::DoNotOptimize(checksum);
  });

  // After the consumer exists, so that it does not inherit this pin.
  PinThread pin_producer(0);
  moodycamel::ProducerToken token(queue);
  std::array<Element, kBatch> batch;
  for (size_t i = 0; i < kBatch; ++i) batch[i] = Element::Make(i, ChatIds()[i], Payload());
  uint64_t produced = 0;
  for (auto _ : state) {
    for (int64_t sent = 0; sent < kMessagesPerIteration;) {
      const size_t n = static_cast<size_t>(std::min<int64_t>(kBatch, kMessagesPerIteration - sent));
      // Fails only when a block cannot be allocated.
      while (!queue.enqueue_bulk(token, batch.begin(), n)) std::this_thread::yield();
      sent += static_cast<int64_t>(n);
    }
    produced += kMessagesPerIteration;
    WaitUntil([&] { return consumed.load(std::memory_order_acquire) >= produced; });
  }
  stop.store(true, std::memory_order_relaxed);
  consumer.join();
  state.SetItemsProcessed(state.iterations() * kMessagesPerIteration);
  state.counters["element_bytes"] = sizeof(Element);
  state.counters["pinned"] = pin_producer.ok() ? 1 : 0;
}
#pragma GCC diagnostic pop

// -------------------------------------------------------------------- naive

void NaiveEndToEnd(benchmark::State& state, uint32_t workers_per_shard) {
  HandledCounter handled;
  NaiveEngine naive({kPartitions, workers_per_shard, Routing::kModulo},
                    [&handled](const MessageView&) {
                      handled.Add();
                      return Outcome::kDone;
                    });
  const auto& ids = ChatIds();
  const std::string& payload = Payload();
  uint64_t target = 0;
  size_t chat = 0;
  for (auto _ : state) {
    for (int64_t i = 0; i < kMessagesPerIteration; ++i) {
      naive.Submit(ids[chat], payload);
      if (++chat == kChats) chat = 0;
    }
    target += kMessagesPerIteration;
    WaitUntil([&] { return handled.Total() >= target; });
  }
  state.SetItemsProcessed(state.iterations() * kMessagesPerIteration);
  state.counters["worker_threads"] = kPartitions * workers_per_shard;
}

void BM_Naive_C1(benchmark::State& state) { NaiveEndToEnd(state, 1); }
void BM_Naive_C4(benchmark::State& state) { NaiveEndToEnd(state, 4); }

// ------------------------------------------------------------ engine: e2e

// Submits kMessagesPerIteration through one Producer with SubmitBatch and
// waits until the handler has seen them all. The engine is built once, so the
// timed loop holds only submit + drain. Args: Options::threads, payload bytes
// (the 16-byte variant fits the engine's inline envelope buffer, the default
// 32-byte one does not, so it shows what the one allocation per message costs).
void EngineEndToEnd(benchmark::State& state, Ordering ordering) {
  const auto threads = static_cast<uint32_t>(state.range(0));
  const std::string payload = MakePayload(static_cast<size_t>(state.range(1)));
  const auto batch = static_cast<size_t>(state.range(2));
  Options options = EngineOptions(ordering, threads);
  options.shard_capacity = static_cast<uint32_t>(state.range(3));
  HandledCounter handled;
  ThreadTally tally;
  std::unique_ptr<Engine> engine =
      CreateEngineOrSkip(state, options, [&](const MessageView&) {
        tally.Note();
        handled.Add();
        return Outcome::kDone;
      });
  if (engine == nullptr) return;
  std::unique_ptr<Producer> producer = engine->CreateProducer();
  const std::vector<SubmitItem> cycle = MakeSubmitCycle(payload);
  size_t cursor = 0;
  uint64_t refused = 0;
  uint64_t target = 0;
  for (auto _ : state) {
    if (!SubmitRoundRobin(*producer, cycle, kMessagesPerIteration, &cursor, &refused, batch)) {
      state.SkipWithError("Submit refused a message for a reason other than kShardFull");
      break;
    }
    target += kMessagesPerIteration;
    WaitUntil([&] { return handled.Total() >= target; });
  }
  state.SetItemsProcessed(state.iterations() * kMessagesPerIteration);
  state.counters["shard_full_rounds"] = static_cast<double>(refused);
  state.counters["handler_threads"] = static_cast<double>(tally.threads());
  producer.reset();
  (void)engine->Shutdown(ShutdownMode::kDrain, std::chrono::seconds(5));
}

void BM_Engine_EndToEnd_none(benchmark::State& state) { EngineEndToEnd(state, Ordering::kNone); }
void BM_Engine_EndToEnd_per_chat(benchmark::State& state) {
  EngineEndToEnd(state, Ordering::kPerChat);
}

// --------------------------------------------------------- engine: submit

// One engine per run, shared by the benchmark's threads: built in Setup and
// torn down in Teardown, which Google Benchmark calls outside the threads.
struct SubmitFixture {
  std::unique_ptr<Engine> engine;
  std::vector<std::unique_ptr<Producer>> producers;  // one per benchmark thread
  std::string error;
};
SubmitFixture* submit_fixture = nullptr;

void SetUpSubmit(const benchmark::State& state) {
  submit_fixture = new SubmitFixture;
  Result<std::unique_ptr<Engine>> created =
      Engine::Create(EngineOptions(Ordering::kPerChat, kDefaultThreads),
                     [](const MessageView&) { return Outcome::kDone; });
  if (!created.ok()) {
    submit_fixture->error = created.status().ToString();
    return;
  }
  submit_fixture->engine = std::move(created).value();
  for (int t = 0; t < state.threads(); ++t) {
    submit_fixture->producers.push_back(submit_fixture->engine->CreateProducer());
  }
}

void TearDownSubmit(const benchmark::State&) {
  submit_fixture->producers.clear();
  if (submit_fixture->engine != nullptr) {
    // The deadline lets drain tasks hand their taken messages back.
    (void)submit_fixture->engine->Shutdown(ShutdownMode::kAbort, std::chrono::seconds(5));
  }
  delete submit_fixture;
  submit_fixture = nullptr;
}

// One Submit call per iteration, chats round-robin (each thread from its own
// offset), while the engine's worker drains on the other CPU.
template <bool kUseProducer>
void EngineSubmit(benchmark::State& state) {
  if (!submit_fixture->error.empty()) {
    state.SkipWithError(submit_fixture->error.c_str());
    return;
  }
  Engine& engine = *submit_fixture->engine;
  Producer& producer = *submit_fixture->producers[static_cast<size_t>(state.thread_index())];
  const auto& ids = ChatIds();
  const std::string_view payload = Payload();
  size_t chat = (static_cast<size_t>(state.thread_index()) * kChats / 2) % kChats;
  int64_t accepted = 0;
  int64_t refused = 0;
  for (auto _ : state) {
    const SubmitResult result =
        kUseProducer ? producer.Submit(ids[chat], payload) : engine.Submit(ids[chat], payload);
    if (result == SubmitResult::kAccepted) {
      ++accepted;
    } else {
      ++refused;
    }
    if (++chat == kChats) chat = 0;
  }
  state.SetItemsProcessed(accepted);
  state.counters["refused"] = static_cast<double>(refused);
}

// ----------------------------------------------------- queue wait at a rate

constexpr auto kPacedWindow = milliseconds(500);
constexpr auto kMaxRateProbe = milliseconds(250);

// Sends `count` messages at `rate` per second from this thread, spinning
// until each one's send time (a sleep would add its own wake-up latency).
// When it falls behind it sends at once, so the achieved rate is reported.
// `submit_one(chat)` returns whether the message was accepted.
struct PacedRun {
  uint64_t accepted = 0;
  double seconds = 0;
};
template <typename SubmitOne>
PacedRun RunPaced(double rate, uint64_t count, SubmitOne submit_one) {
  const auto& ids = ChatIds();
  const double period_ns = 1e9 / rate;
  PacedRun run;
  const Clock::time_point start = Clock::now();
  for (uint64_t i = 0; i < count; ++i) {
    const Clock::time_point due =
        start + nanoseconds(static_cast<int64_t>(period_ns * static_cast<double>(i)));
    while (Clock::now() < due) {
    }
    run.accepted += submit_one(ids[i % kChats]) ? 1 : 0;
  }
  run.seconds = Seconds(Clock::now() - start);
  return run;
}

// The sustained rate of single submits end to end: submit unpaced for
// kMaxRateProbe, then wait until all are handled; sent / elapsed.
template <typename SubmitOne, typename Handled>
double ProbeMaxRate(SubmitOne submit_one, Handled handled) {
  const auto& ids = ChatIds();
  const Clock::time_point start = Clock::now();
  uint64_t sent = 0;
  uint64_t accepted = 0;
  while (Clock::now() - start < kMaxRateProbe) {
    for (size_t k = 0; k < kBatch; ++k) accepted += submit_one(ids[sent++ % kChats]) ? 1 : 0;
  }
  WaitUntil([&] { return handled() >= accepted; });
  return static_cast<double>(accepted) / Seconds(Clock::now() - start);
}

// CPU time (user + system) of the whole process so far, in seconds.
double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// The paced producer spins, so it accounts for ~1 CPU of `process_cpus`; the
// rest is what the engine or pool burns to serve that rate (a worker that
// polls instead of sleeping shows up here).
void ReportPacedRun(benchmark::State& state, double max_rate, double rate, const PacedRun& run,
                    double cpu_seconds) {
  state.counters["process_cpus"] = cpu_seconds / run.seconds;
  state.SetItemsProcessed(static_cast<int64_t>(run.accepted));
  state.counters["target_rate"] = rate;
  state.counters["offered_rate"] = static_cast<double>(run.accepted) / run.seconds;
  if (max_rate > 0) state.counters["max_rate"] = max_rate;
}

// rate == 0: first measure the engine's maximum in this same setup (fresh
// engine, same options and handler), then pace a fresh engine at half of it.
void EngineQueueWait(benchmark::State& state, Ordering ordering, double rate) {
  const Options options = EngineOptions(ordering, kDefaultThreads);
  double max_rate = 0;
  if (rate == 0) {
    HandledCounter handled;
    LatencyRecorder unused(0);  // same handler cost as below
    std::unique_ptr<Engine> probe = CreateEngineOrSkip(state, options, [&](const MessageView& m) {
      unused.Record(Clock::now() - m.enqueued);
      handled.Add();
      return Outcome::kDone;
    });
    if (probe == nullptr) return;
    std::unique_ptr<Producer> producer = probe->CreateProducer();
    const std::string_view payload = Payload();
    max_rate = ProbeMaxRate(
        [&](std::string_view chat) {
          return producer->Submit(chat, payload) == SubmitResult::kAccepted;
        },
        [&] { return handled.Total(); });
    rate = max_rate / 2;
  }

  const auto count = static_cast<uint64_t>(rate * Seconds(kPacedWindow));
  HandledCounter handled;
  LatencyRecorder recorder(count);
  std::unique_ptr<Engine> engine = CreateEngineOrSkip(state, options, [&](const MessageView& m) {
    recorder.Record(Clock::now() - m.enqueued);
    handled.Add();
    return Outcome::kDone;
  });
  if (engine == nullptr) return;
  std::unique_ptr<Producer> producer = engine->CreateProducer();
  const std::string_view payload = Payload();
  PacedRun run;
  double cpu_seconds = 0;
  for (auto _ : state) {
    const double cpu_before = ProcessCpuSeconds();
    run = RunPaced(rate, count, [&](std::string_view chat) {
      return producer->Submit(chat, payload) == SubmitResult::kAccepted;
    });
    cpu_seconds = ProcessCpuSeconds() - cpu_before;
    WaitUntil([&] { return handled.Total() >= run.accepted; });
  }
  const StatsSnapshot stats = engine->Stats();
  recorder.Finish();
  ReportPacedRun(state, max_rate, rate, run, cpu_seconds);
  state.counters["p50_us"] = stats.total.queue_wait.p50_us;
  state.counters["p99_us"] = stats.total.queue_wait.p99_us;
  state.counters["p999_us"] = stats.total.queue_wait.p999_us;
  state.counters["max_us"] = stats.total.queue_wait.max_us;
  // The same quantity measured by the handler with exact samples, as for the
  // naive pool (Stats() rounds up to its log-linear bucket, by < 1/16).
  state.counters["p99_us_handler"] = recorder.PercentileUs(0.99);
}

void NaiveQueueWait(benchmark::State& state, double rate) {
  const NaiveEngine::Options options{kPartitions, 1, Routing::kModulo};
  const std::string& payload = Payload();
  double max_rate = 0;
  if (rate == 0) {
    HandledCounter handled;
    LatencyRecorder unused(0);
    NaiveEngine probe(options, [&](const MessageView& m) {
      unused.Record(Clock::now() - m.enqueued);
      handled.Add();
      return Outcome::kDone;
    });
    max_rate = ProbeMaxRate(
        [&](std::string_view chat) {
          probe.Submit(chat, payload);
          return true;
        },
        [&] { return handled.Total(); });
    rate = max_rate / 2;
  }

  const auto count = static_cast<uint64_t>(rate * Seconds(kPacedWindow));
  HandledCounter handled;
  LatencyRecorder recorder(count);
  NaiveEngine naive(options, [&](const MessageView& m) {
    recorder.Record(Clock::now() - m.enqueued);
    handled.Add();
    return Outcome::kDone;
  });
  PacedRun run;
  double cpu_seconds = 0;
  for (auto _ : state) {
    const double cpu_before = ProcessCpuSeconds();
    run = RunPaced(rate, count, [&](std::string_view chat) {
      naive.Submit(chat, payload);
      return true;
    });
    cpu_seconds = ProcessCpuSeconds() - cpu_before;
    WaitUntil([&] { return handled.Total() >= run.accepted; });
  }
  recorder.Finish();
  ReportPacedRun(state, max_rate, rate, run, cpu_seconds);
  state.counters["p50_us"] = recorder.PercentileUs(0.50);
  state.counters["p99_us"] = recorder.PercentileUs(0.99);
  state.counters["p999_us"] = recorder.PercentileUs(0.999);
  state.counters["max_us"] = recorder.PercentileUs(1.0);
}

// ------------------------------------------------------------ allocations

constexpr int64_t kAllocMessages = 200'000;

void ReportAllocs(benchmark::State& state, const AllocCounts& counts, int64_t messages) {
  const auto per_msg = [&](uint64_t v) {
    return static_cast<double>(v) / static_cast<double>(messages);
  };
  state.counters["allocs_per_msg"] = per_msg(counts.operator_new_calls);
  state.counters["alloc_bytes_per_msg"] = per_msg(counts.operator_new_bytes);
  if (MallocFamilyCounted()) state.counters["mallocs_per_msg"] = per_msg(counts.malloc_calls);
}

// Steady state: two rounds of kAllocMessages warm the queues' blocks, the
// mailboxes and the stats, then one counted round. Counting covers every
// thread (producer and TBB workers) between start and the last handler.
void EngineAllocsPerMessage(benchmark::State& state, Ordering ordering, size_t payload_bytes) {
  HandledCounter handled;
  std::unique_ptr<Engine> engine = CreateEngineOrSkip(
      state, EngineOptions(ordering, kDefaultThreads), [&](const MessageView&) {
        handled.Add();
        return Outcome::kDone;
      });
  if (engine == nullptr) return;
  std::unique_ptr<Producer> producer = engine->CreateProducer();
  const std::string payload = MakePayload(payload_bytes);
  const std::vector<SubmitItem> cycle = MakeSubmitCycle(payload);
  size_t cursor = 0;
  uint64_t refused = 0;
  uint64_t target = 0;
  const auto round = [&] {
    const bool ok = SubmitRoundRobin(*producer, cycle, kAllocMessages, &cursor, &refused);
    target += kAllocMessages;
    WaitUntil([&] { return handled.Total() >= target; });
    return ok;
  };
  if (!round() || !round()) {
    state.SkipWithError("Submit refused a message for a reason other than kShardFull");
    return;
  }
  AllocCounts counts;
  for (auto _ : state) {
    StartCountingAllocations();
    const bool ok = round();
    counts = StopCountingAllocations();
    if (!ok) state.SkipWithError("Submit refused a message for a reason other than kShardFull");
  }
  state.SetItemsProcessed(state.iterations() * kAllocMessages);
  ReportAllocs(state, counts, kAllocMessages);
  state.counters["payload_bytes"] = static_cast<double>(payload_bytes);
  producer.reset();
  (void)engine->Shutdown(ShutdownMode::kDrain, std::chrono::seconds(5));
}

void BM_Naive_AllocsPerMessage(benchmark::State& state) {
  HandledCounter handled;
  NaiveEngine naive({kPartitions, 1, Routing::kModulo}, [&](const MessageView&) {
    handled.Add();
    return Outcome::kDone;
  });
  const auto& ids = ChatIds();
  const std::string& payload = Payload();
  uint64_t target = 0;
  const auto round = [&] {
    for (int64_t i = 0; i < kAllocMessages; ++i) {
      naive.Submit(ids[static_cast<size_t>(i) % kChats], payload);
    }
    target += kAllocMessages;
    WaitUntil([&] { return handled.Total() >= target; });
  };
  round();
  round();
  AllocCounts counts;
  for (auto _ : state) {
    StartCountingAllocations();
    round();
    counts = StopCountingAllocations();
  }
  state.SetItemsProcessed(state.iterations() * kAllocMessages);
  ReportAllocs(state, counts, kAllocMessages);
  state.counters["payload_bytes"] = static_cast<double>(kPayloadBytes);
}

// ------------------------------------------------------------- saturation

// Every shard kept full (a refilling producer thread) while a ~1 µs busy
// handler drains; per-shard completions over a 1 s window from
// Engine::Stats(), and Jain's index of them. The capacity is far above what
// one drain slice (~1 ms, so ~1,000 messages here) takes, so a shard is
// never emptied by its own turn; min_waiting_sampled (the least any shard
// held, sampled every 20 ms across the window) shows that it stayed backlogged.
void BM_Engine_Saturated16_per_chat(benchmark::State& state) {
  constexpr uint32_t kCapacity = 8192;
  constexpr auto kWindow = milliseconds(1000);
  constexpr auto kSampleEvery = milliseconds(20);
  Options options = EngineOptions(Ordering::kPerChat, kDefaultThreads);
  options.shard_capacity = kCapacity;
  std::unique_ptr<Engine> engine = CreateEngineOrSkip(state, options, [](const MessageView&) {
    SpinFor(microseconds(1));
    return Outcome::kDone;
  });
  if (engine == nullptr) return;

  std::atomic<bool> stop{false};
  std::thread refiller([&] {
    std::unique_ptr<Producer> producer = engine->CreateProducer();
    const auto& ids = ChatIds();
    const std::string_view payload = Payload();
    while (!stop.load(std::memory_order_relaxed)) {
      uint64_t accepted = 0;
      for (const std::string& id : ids) {
        accepted += producer->Submit(id, payload) == SubmitResult::kAccepted;
      }
      // Every shard full: a short pause keeps them full without hogging the
      // CPU (a shard holds several milliseconds of work).
      if (accepted == 0) std::this_thread::sleep_for(microseconds(100));
    }
  });
  const auto min_waiting = [](const StatsSnapshot& s) {
    uint64_t least = UINT64_MAX;
    for (const ShardStats& shard : s.shards) least = std::min(least, shard.waiting);
    return least;
  };
  const Clock::time_point warmup_deadline = Clock::now() + std::chrono::seconds(2);
  WaitUntil([&] {
    return min_waiting(engine->Stats()) >= kCapacity / 2 || Clock::now() > warmup_deadline;
  });

  StatsSnapshot before;
  StatsSnapshot after;
  uint64_t min_waiting_sampled = UINT64_MAX;
  for (auto _ : state) {
    before = engine->Stats();
    const Clock::time_point end = Clock::now() + kWindow;
    while (Clock::now() < end) {
      std::this_thread::sleep_for(kSampleEvery);
      min_waiting_sampled = std::min(min_waiting_sampled, min_waiting(engine->Stats()));
    }
    after = engine->Stats();
  }
  stop.store(true, std::memory_order_relaxed);
  refiller.join();

  double sum = 0;
  double sum_squares = 0;
  double least = 1e300;
  double most = 0;
  for (size_t i = 0; i < after.shards.size(); ++i) {
    const auto x = static_cast<double>(after.shards[i].completed - before.shards[i].completed);
    sum += x;
    sum_squares += x * x;
    least = std::min(least, x);
    most = std::max(most, x);
  }
  const auto n = static_cast<double>(after.shards.size());
  state.SetItemsProcessed(static_cast<int64_t>(sum));
  state.counters["jain"] = sum_squares > 0 ? sum * sum / (n * sum_squares) : 0;
  state.counters["min_over_max"] = most > 0 ? least / most : 0;
  state.counters["min_waiting_sampled"] = static_cast<double>(min_waiting_sampled);
  state.counters["chat_jain"] = after.fairness.backlogged_chat_jain;
  (void)engine->Shutdown(ShutdownMode::kAbort, std::chrono::seconds(5));
}

// ------------------------------------------------------------ registration

std::string Name(std::string_view family, std::string_view variant) {
  return std::string(family) + "/" + std::string(variant);
}

void RegisterAll() {
  using benchmark::kMillisecond;
  using benchmark::kNanosecond;
  using benchmark::RegisterBenchmark;

  for (auto* b : {RegisterBenchmark("BM_Hash_Fnv1a32", BM_Hash_Fnv1a32),
                  RegisterBenchmark("BM_Hash_ShardFor_Modulo", BM_Hash_ShardFor_Modulo),
                  RegisterBenchmark("BM_Hash_ShardFor_Jump", BM_Hash_ShardFor_Jump),
                  RegisterBenchmark("BM_Hash_StdHash", BM_Hash_StdHash)}) {
    b->ArgName("bytes")
        ->Arg(static_cast<int64_t>(kShortChatIdBytes))
        ->Arg(static_cast<int64_t>(kChatIdBytes))
        ->MinTime(0.2)
        ->Unit(kNanosecond);
  }

  for (auto* b : {RegisterBenchmark("BM_Ceiling_MoodycamelBulk64/element:message64",
                                    BM_Ceiling_MoodycamelBulk64<InlineMessage>),
                  RegisterBenchmark("BM_Ceiling_MoodycamelBulk64/element:descriptor32",
                                    BM_Ceiling_MoodycamelBulk64<MessageDescriptor>)}) {
    b->MinTime(0.5)->UseRealTime()->Unit(kMillisecond);
  }

  for (auto* b : {RegisterBenchmark("BM_Naive_C1", BM_Naive_C1),
                  RegisterBenchmark("BM_Naive_C4", BM_Naive_C4)}) {
    b->Iterations(1)->UseRealTime()->Unit(kMillisecond);
  }

  for (auto* b : {RegisterBenchmark("BM_Engine_EndToEnd_none", BM_Engine_EndToEnd_none),
                  RegisterBenchmark("BM_Engine_EndToEnd_per_chat", BM_Engine_EndToEnd_per_chat)}) {
    constexpr auto kPayload = static_cast<int64_t>(kPayloadBytes);
    constexpr auto kSmall = static_cast<int64_t>(kBatch);
    constexpr auto kLarge = static_cast<int64_t>(kLargeBatch);
    constexpr auto kCap = static_cast<int64_t>(kEndToEndShardCapacity);
    constexpr auto kDefaultCap = static_cast<int64_t>(Options{}.shard_capacity);
    b->ArgNames({"threads", "payload", "batch", "capacity"})
        ->Args({1, kPayload, kSmall, kCap})
        ->Args({2, kPayload, kSmall, kCap})
        ->Args({1, 16, kSmall, kCap})
        ->Args({1, kPayload, kLarge, kCap})
        ->Args({1, kPayload, kSmall, kDefaultCap})
        ->Iterations(3)
        ->UseRealTime()
        ->Unit(kMillisecond);
  }

  for (auto* b : {RegisterBenchmark("BM_Engine_Submit_Producer", EngineSubmit<true>),
                  RegisterBenchmark("BM_Engine_Submit_Implicit", EngineSubmit<false>)}) {
    b->Threads(1)->Threads(2)->Iterations(1 << 20)->UseRealTime()->Unit(kNanosecond);
    b->Setup(SetUpSubmit)->Teardown(TearDownSubmit);
  }

  struct Ordered {
    const char* name;
    Ordering ordering;
  };
  for (const Ordered& o :
       {Ordered{"none", Ordering::kNone}, Ordered{"per_chat", Ordering::kPerChat}}) {
    const std::string family = std::string("BM_Engine_QueueWait_") + o.name;
    for (const auto& [variant, rate] :
         {std::pair{"rate:100000", 1e5}, std::pair{"rate:1000000", 1e6},
          std::pair{"rate:half_max", 0.0}}) {
      RegisterBenchmark(Name(family, variant).c_str(), EngineQueueWait, o.ordering, rate)
          ->Iterations(1)
          ->UseRealTime()
          ->Unit(kMillisecond);
    }
  }
  for (const auto& [variant, rate] : {std::pair{"rate:100000", 1e5}, std::pair{"rate:1000000", 1e6},
                                      std::pair{"rate:half_max", 0.0}}) {
    RegisterBenchmark(Name("BM_Naive_QueueWait", variant).c_str(), NaiveQueueWait, rate)
        ->Iterations(1)
        ->UseRealTime()
        ->Unit(kMillisecond);
  }

  for (const Ordered& o :
       {Ordered{"none", Ordering::kNone}, Ordered{"per_chat", Ordering::kPerChat}}) {
    for (const size_t payload : {size_t{16}, kPayloadBytes}) {
      const std::string name = std::string("BM_Engine_AllocsPerMessage/ordering:") + o.name +
                               "/payload:" + std::to_string(payload);
      RegisterBenchmark(name.c_str(), EngineAllocsPerMessage, o.ordering, payload)
          ->Iterations(1)
          ->UseRealTime()
          ->Unit(kMillisecond);
    }
  }
  RegisterBenchmark("BM_Naive_AllocsPerMessage", BM_Naive_AllocsPerMessage)
      ->Iterations(1)
      ->UseRealTime()
      ->Unit(kMillisecond);

  RegisterBenchmark("BM_Engine_Saturated16_per_chat", BM_Engine_Saturated16_per_chat)
      ->Iterations(1)
      ->UseRealTime()
      ->Unit(kMillisecond);
}

}  // namespace
}  // namespace chatshard::bench

int main(int argc, char** argv) {
  chatshard::bench::RegisterAll();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
