// EngineImpl: the Engine behind the public interface. It owns the shards,
// one oneTBB task_arena shared by all shards, and the per-arena-slot stats.
//
// Why one shared arena and not one per shard: with one arena per shard, TBB
// moves its few workers between arenas by demand, and on a 2-core machine
// the arena that keeps receiving work keeps the worker while other shards
// starve (median queue wait 0.27 s at half load, measured before this
// design). Here every shard's drain tasks go to one arena; the engine itself
// enforces the per-shard limit (Shard invariant 1) and each task hands its
// thread back after a bounded slice, so shards take turns on the threads.
#include <tbb/global_control.h>
#include <tbb/info.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "chatshard/engine.h"
#include "fairness.h"
#include "fast_routing.h"
#include "shard.h"

#if defined(__SANITIZE_THREAD__)
extern "C" void AnnotateIgnoreWritesBegin(const char* file, int line);
extern "C" void AnnotateIgnoreWritesEnd(const char* file, int line);
#endif

namespace chatshard {
namespace internal {
namespace {

#if defined(__SANITIZE_THREAD__)
void TsanIgnoreWritesBegin() { AnnotateIgnoreWritesBegin(__FILE__, __LINE__); }
void TsanIgnoreWritesEnd() { AnnotateIgnoreWritesEnd(__FILE__, __LINE__); }
#else
void TsanIgnoreWritesBegin() {}
void TsanIgnoreWritesEnd() {}
#endif

class EngineImpl;

class ProducerImpl final : public Producer {
 public:
  explicit ProducerImpl(EngineImpl* engine);
  SubmitResult Submit(std::string_view chat_id, std::string_view payload) override;
  size_t SubmitBatch(std::span<const SubmitItem> items,
                     std::span<SubmitResult> results) override;

 private:
  EngineImpl* const engine_;
  // One explicit producer per shard, made on first use.
  std::vector<std::unique_ptr<QueueProducerToken>> tokens_;
  // SubmitBatch scratch, kept between calls so a steady batch size stops
  // allocating: item indexes grouped by shard, and the envelopes of one shard.
  std::vector<std::vector<uint32_t>> by_shard_;
  std::vector<uint32_t> touched_;
  std::vector<uint32_t> hashes_;
  std::vector<Envelope> envelopes_;
  std::vector<SubmitResult> shard_results_;
};

class EngineImpl final : public Engine {
 public:
  EngineImpl(const Options& options, Handler handler, FailureHook on_failure);
  ~EngineImpl() override;

  SubmitResult Submit(std::string_view chat_id, std::string_view payload) override {
    return SubmitWith(nullptr, chat_id, payload);
  }
  size_t SubmitBatch(std::span<const SubmitItem> items,
                     std::span<SubmitResult> results) override {
    size_t accepted = 0;
    const size_t n = std::min(items.size(), results.size());
    for (size_t i = 0; i < n; ++i) {
      results[i] = SubmitWith(nullptr, items[i].chat_id, items[i].payload);
      accepted += results[i] == SubmitResult::kAccepted;
    }
    return accepted;
  }
  std::unique_ptr<Producer> CreateProducer() override {
    return std::make_unique<ProducerImpl>(this);
  }
  ShutdownReport Shutdown(ShutdownMode mode, Clock::duration deadline) override;
  bool Ready() const override {
    return !core_.stopping.load(std::memory_order_acquire);
  }
  bool Healthy() const override;
  StatsSnapshot Stats() const override;
  const Options& options() const override { return core_.options; }
  uint32_t ShardOf(std::string_view chat_id) const override {
    return ShardFor(chat_id, core_.options.partitions, core_.options.routing);
  }

  // `tokens` is null for the implicit producer, else one slot per shard.
  SubmitResult SubmitWith(std::vector<std::unique_ptr<QueueProducerToken>>* tokens,
                          std::string_view chat_id, std::string_view payload);
  uint32_t partitions() const { return core_.options.partitions; }
  Shard& shard(uint32_t s) { return *shards_[s]; }
  // The shard of a chat whose Fnv1a32 is `h32` (kModulo), or of `chat_id`.
  uint32_t ShardOfHashed(std::string_view chat_id, uint32_t h32) const {
    return core_.options.routing == Routing::kModulo
               ? modulo_(h32)
               : JumpConsistentHash(Fnv1a64(chat_id), core_.options.partitions);
  }

 private:
  void Spawn(Shard* shard);
  ThreadSlot& CurrentSlot();
  void WaitForTasks();

  EngineCore core_;
  const FastMod32 modulo_;  // % partitions, the same result as ShardFor's
  const int64_t started_ns_;
  const uint32_t threads_;
  // Raises TBB's worker limit to `threads_` for this engine's lifetime (TBB
  // keeps the smallest limit among live global_control objects, so a host's
  // own bound still wins). Null when TBB's default already suffices.
  std::unique_ptr<tbb::global_control> parallelism_;
  std::vector<std::unique_ptr<ThreadSlot>> slots_;  // indexed by arena slot
  std::vector<std::unique_ptr<Shard>> shards_;
  tbb::task_arena arena_;
  // Drain tasks enqueued and not yet returned. The decrement is the task's
  // last access to the engine, so the destructor may free everything once
  // it reads zero.
  std::atomic<int64_t> live_tasks_{0};
  std::mutex shutdown_mu_;  // serialises Shutdown calls (never on the hot path)
  bool shut_down_ = false;
};

// How long Shutdown waits past its deadline for handler runs in progress.
constexpr Clock::duration kShutdownGrace = std::chrono::milliseconds(100);

uint32_t ResolveThreads(const Options& options) {
  if (options.threads > 0) return options.threads;
  return static_cast<uint32_t>(std::max(1, tbb::info::default_concurrency()));
}

EngineImpl::EngineImpl(const Options& options, Handler handler, FailureHook on_failure)
    : modulo_(options.partitions), started_ns_(NowNs()), threads_(ResolveThreads(options)) {
  core_.options = options;
  core_.handler = std::move(handler);
  core_.on_failure = std::move(on_failure);
  core_.spawn = [this](Shard* s) { Spawn(s); };
  core_.thread_slot = [this]() -> ThreadSlot& { return CurrentSlot(); };
  // The arena reserves no slot for an application thread: only TBB workers
  // run drain tasks (a host thread never gets pulled into them), so TBB must
  // offer `threads_` workers, i.e. a parallelism of threads_ + 1.
  const size_t wanted = size_t{threads_} + 1;
  if (tbb::global_control::active_value(tbb::global_control::max_allowed_parallelism) < wanted) {
    parallelism_ = std::make_unique<tbb::global_control>(
        tbb::global_control::max_allowed_parallelism, wanted);
  }
  // One spare slot: TBB numbers arena slots below max_concurrency, the spare
  // is defensive.
  for (uint32_t i = 0; i <= threads_; ++i) {
    slots_.push_back(std::make_unique<ThreadSlot>(options.partitions));
  }
  shards_.reserve(options.partitions);
  for (uint32_t i = 0; i < options.partitions; ++i) {
    shards_.push_back(std::make_unique<Shard>(&core_, i));
  }
  arena_.initialize(static_cast<int>(threads_), /*reserved_for_masters=*/0);
  // The drain tasks' clock calibrates once per process (a 2 ms spin); do it
  // here rather than in the first drain task.
  (void)GetTscCalibration();
}

EngineImpl::~EngineImpl() {
  // If Shutdown was called this returns what came back since (usually
  // nothing); otherwise it aborts and hands back the queue.
  ShutdownReport report = Shutdown(ShutdownMode::kAbort, Clock::duration::max());
  WaitForTasks();
  size_t dropped = report.unprocessed.size();
  for (auto& shard : shards_) {
    std::vector<UnprocessedMessage> rest;
    dropped += shard->Collect(&rest);
  }
  if (dropped > 0) {
    // Never silently: the owner destroyed accepted work without asking for it.
    std::fprintf(stderr,
                 "chatshard: engine destroyed with %zu accepted message(s) unprocessed; "
                 "call Shutdown() first to take them back\n",
                 dropped);
  }
  arena_.terminate();
}

void EngineImpl::Spawn(Shard* shard) {
  // release, and the task's first act is an acquire load of the same
  // counter: since every change to it is a read-modify-write, that load
  // synchronises with this increment, so everything the spawning thread did
  // happens-before the task, visibly to sanitizers too (TBB's own hand-off
  // happens inside uninstrumented libtbb).
  live_tasks_.fetch_add(1, std::memory_order_release);
  // The task object is written here (TBB's inline header code) and read on a
  // worker after a hand-off inside uninstrumented libtbb; TSan cannot see
  // that hand-off, so under TSan the writes to the task object are not
  // recorded. Our own data still reaches the task through the acquire load.
  TsanIgnoreWritesBegin();
  arena_.enqueue([this, shard] {
    (void)live_tasks_.load(std::memory_order_acquire);
    shard->Drain();
    // release: everything the task did happens-before the destructor's
    // acquire read of zero.
    live_tasks_.fetch_sub(1, std::memory_order_release);
  });
  TsanIgnoreWritesEnd();
}

ThreadSlot& EngineImpl::CurrentSlot() {
  const int index = tbb::this_task_arena::current_thread_index();
  const size_t i = index < 0 ? slots_.size() - 1
                             : std::min(static_cast<size_t>(index), slots_.size() - 1);
  return *slots_[i];
}

void EngineImpl::WaitForTasks() {
  while (live_tasks_.load(std::memory_order_acquire) > 0) {
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

SubmitResult EngineImpl::SubmitWith(std::vector<std::unique_ptr<QueueProducerToken>>* tokens,
                                    std::string_view chat_id, std::string_view payload) {
  const Options& o = core_.options;
  const uint32_t h32 = Fnv1a32(chat_id);
  const bool need64 = o.routing == Routing::kJump || o.chat_quota > 0;
  const uint64_t h64 = need64 ? Fnv1a64(chat_id) : 0;
  const uint32_t s = o.routing == Routing::kModulo ? modulo_(h32)
                                                   : JumpConsistentHash(h64, o.partitions);
  Shard& shard = *shards_[s];
  SubmitResult result;
  if (chat_id.empty() || chat_id.size() > kMaxChatIdBytes) {
    result = SubmitResult::kInvalidChatId;
  } else if (payload.size() > kMaxPayloadBytes) {
    result = SubmitResult::kPayloadTooLarge;
  } else {
    QueueProducerToken* token = nullptr;
    if (tokens != nullptr) {
      auto& slot = (*tokens)[s];
      if (slot == nullptr) slot = std::make_unique<QueueProducerToken>(shard.MakeProducerToken());
      token = slot.get();
    }
    result = shard.Admit(token, chat_id, payload, h32, h64);
    if (result == SubmitResult::kAccepted) return result;
  }
  shard.CountRejection(result);
  return result;
}

ProducerImpl::ProducerImpl(EngineImpl* engine)
    : engine_(engine), tokens_(engine->partitions()) {}

SubmitResult ProducerImpl::Submit(std::string_view chat_id, std::string_view payload) {
  return engine_->SubmitWith(&tokens_, chat_id, payload);
}

size_t ProducerImpl::SubmitBatch(std::span<const SubmitItem> items,
                                 std::span<SubmitResult> results) {
  const size_t n = std::min(items.size(), results.size());
  const Options& o = engine_->options();
  size_t accepted = 0;
  if (o.chat_quota > 0) {  // quota is per message: take the one-by-one path
    for (size_t i = 0; i < n; ++i) {
      results[i] = engine_->SubmitWith(&tokens_, items[i].chat_id, items[i].payload);
      accepted += results[i] == SubmitResult::kAccepted;
    }
    return accepted;
  }
  if (by_shard_.empty()) by_shard_.resize(o.partitions);
  hashes_.resize(n);
  // Hash four ids at a time (fast_routing.h), then route and validate; group
  // the valid items by shard, keeping their order.
  size_t hashed = 0;
  for (; hashed + 4 <= n; hashed += 4) {
    const std::string_view ids[4] = {items[hashed].chat_id, items[hashed + 1].chat_id,
                                     items[hashed + 2].chat_id, items[hashed + 3].chat_id};
    Fnv1a32x4(ids, &hashes_[hashed]);
  }
  for (; hashed < n; ++hashed) hashes_[hashed] = Fnv1a32(items[hashed].chat_id);
  for (size_t i = 0; i < n; ++i) {
    const SubmitItem& item = items[i];
    const uint32_t s = engine_->ShardOfHashed(item.chat_id, hashes_[i]);
    SubmitResult bad = SubmitResult::kAccepted;
    if (item.chat_id.empty() || item.chat_id.size() > kMaxChatIdBytes) {
      bad = SubmitResult::kInvalidChatId;
    } else if (item.payload.size() > kMaxPayloadBytes) {
      bad = SubmitResult::kPayloadTooLarge;
    }
    if (bad != SubmitResult::kAccepted) {
      results[i] = bad;
      engine_->shard(s).CountRejection(bad);
      continue;
    }
    if (by_shard_[s].empty()) touched_.push_back(s);
    by_shard_[s].push_back(static_cast<uint32_t>(i));
  }
  // One timestamp for the batch: its messages were submitted together.
  const int64_t now = NowNs();
  for (const uint32_t s : touched_) {
    std::vector<uint32_t>& idx = by_shard_[s];
    envelopes_.clear();
    for (const uint32_t i : idx) {
      envelopes_.emplace_back(items[i].chat_id, items[i].payload, hashes_[i], now);
    }
    auto& token = tokens_[s];
    Shard& shard = engine_->shard(s);
    if (token == nullptr) token = std::make_unique<QueueProducerToken>(shard.MakeProducerToken());
    shard_results_.resize(idx.size());
    accepted += shard.AdmitBatch(token.get(), envelopes_, shard_results_.data());
    for (size_t k = 0; k < idx.size(); ++k) results[idx[k]] = shard_results_[k];
    idx.clear();
  }
  touched_.clear();
  return accepted;
}

ShutdownReport EngineImpl::Shutdown(ShutdownMode mode, Clock::duration deadline) {
  std::lock_guard<std::mutex> lock(shutdown_mu_);
  ShutdownReport report;
  const auto start = Clock::now();
  const auto until = deadline >= Clock::time_point::max() - start ? Clock::time_point::max()
                                                                    : start + deadline;
  auto finished_total = [this] {
    uint64_t total = 0;
    for (const auto& slot : slots_) {
      for (uint32_t s = 0; s < core_.options.partitions; ++s) {
        const ShardRecord* rec = slot->records[s].load(std::memory_order_acquire);
        if (rec == nullptr) continue;
        total += rec->completed.load(std::memory_order_relaxed) +
                 rec->failed.load(std::memory_order_relaxed);
      }
    }
    return total;
  };
  auto sum_unfinished = [this] {
    int64_t total = 0;
    for (const auto& shard : shards_) total += shard->unfinished();
    return total;
  };
  auto sum_drainers = [this] {
    uint64_t total = 0;
    for (const auto& shard : shards_) total += shard->drainers();
    return total;
  };
  auto pause = [] { std::this_thread::sleep_for(std::chrono::microseconds(200)); };

  if (shut_down_) {
    // A second call takes what came back from handlers that outlived the
    // first call's deadline.
    for (auto& shard : shards_) shard->Collect(&report.unprocessed);
    report.still_running = static_cast<uint64_t>(std::max<int64_t>(0, sum_unfinished()));
    return report;
  }
  shut_down_ = true;
  const uint64_t finished_before = finished_total();
  // seq_cst: pairs with the reservation in Shard::Admit (see there).
  core_.stopping.store(true, std::memory_order_seq_cst);

  if (mode == ShutdownMode::kDrain) {
    while (sum_unfinished() > 0 && Clock::now() < until) pause();
  }
  core_.aborting.store(true, std::memory_order_seq_cst);
  // Tasks stop after the handler run in progress; give those runs a short
  // grace past the deadline so their chats' held messages come back in this
  // report rather than the next.
  const auto grace_until =
      until >= Clock::time_point::max() - kShutdownGrace ? until : until + kShutdownGrace;
  while (sum_drainers() > 0 && Clock::now() < grace_until) pause();
  report.deadline_reached = Clock::now() >= until && sum_unfinished() > 0;

  // Hand back everything not running. A producer that reserved capacity
  // before `stopping` was set may still be enqueueing: collect until only
  // the messages held by still-running handlers remain. Such a producer may
  // also start a task after `aborting` was set (it read `aborting` just
  // before): that task runs nothing and leaves at once, so a task seen here
  // before the grace ends is waited for, not taken for a running handler.
  for (int round = 0;; ++round) {
    for (auto& shard : shards_) shard->Collect(&report.unprocessed);
    if (sum_unfinished() <= 0 || round > 10000) break;
    if (sum_drainers() > 0 && Clock::now() >= grace_until) break;  // a handler outlived it
    std::this_thread::yield();
  }
  report.still_running = static_cast<uint64_t>(std::max<int64_t>(0, sum_unfinished()));
  report.completed_during_shutdown = finished_total() - finished_before;
  return report;
}

bool EngineImpl::Healthy() const {
  const int64_t now = NowNs();
  const int64_t threshold =
      std::chrono::duration_cast<std::chrono::nanoseconds>(core_.options.stall_threshold).count();
  for (const auto& shard : shards_) {
    if (shard->unfinished() > 0 && now - shard->last_progress_ns() > threshold) return false;
  }
  return true;
}

StatsSnapshot EngineImpl::Stats() const {
  const uint32_t p = core_.options.partitions;
  StatsSnapshot snap;
  snap.uptime_s = static_cast<double>(NowNs() - started_ns_) / 1e9;
  snap.shards.resize(p);
  std::vector<HistogramData> waits(p), services(p);
  HistogramData all_waits, all_services;
  std::vector<uint64_t> active(p, 0);
  uint64_t worst_cold_ns = 0;
  for (const auto& slot : slots_) {
    const int32_t running = slot->running_shard.load(std::memory_order_relaxed);
    if (running >= 0 && static_cast<uint32_t>(running) < p) ++active[running];
    for (uint32_t s = 0; s < p; ++s) {
      // acquire: pairs with the release that published the record.
      const ShardRecord* rec = slot->records[s].load(std::memory_order_acquire);
      if (rec == nullptr) continue;
      ShardStats& st = snap.shards[s];
      st.submitted += rec->dequeued.load(std::memory_order_relaxed);
      st.completed += rec->completed.load(std::memory_order_relaxed);
      st.failed += rec->failed.load(std::memory_order_relaxed);
      st.retried += rec->retried.load(std::memory_order_relaxed);
      worst_cold_ns = std::max(worst_cold_ns, rec->max_cold_wait_ns.load(std::memory_order_relaxed));
      rec->queue_wait.AddTo(&waits[s]);
      rec->service_time.AddTo(&services[s]);
    }
  }
  std::vector<uint64_t> loads(p);
  std::vector<double> jains;
  std::vector<HotChat> hot;
  const size_t top_k = core_.options.hot_chats;
  for (uint32_t s = 0; s < p; ++s) {
    Shard& shard = *shards_[s];
    ShardStats& st = snap.shards[s];
    st.shard = s;
    st.submitted += shard.collected() + static_cast<uint64_t>(std::max<int64_t>(0, shard.ingress()));
    for (int r = 1; r < kSubmitResultCount; ++r) {
      st.rejected_by_reason[r] = shard.rejected(r);
      st.rejected += st.rejected_by_reason[r];
    }
    st.active = active[s];
    const int64_t unfinished = std::max<int64_t>(0, shard.unfinished());
    st.waiting = static_cast<uint64_t>(unfinished) > st.active ? unfinished - st.active : 0;
    st.queue_wait = waits[s].SummaryMicros();
    st.service_time = services[s].SummaryMicros();
    all_waits.Merge(waits[s]);
    all_services.Merge(services[s]);
    loads[s] = st.submitted;

    Shard::ConsumerView view = shard.ViewConsumerSide(top_k);
    if (view.backlogged_chats >= 2) jains.push_back(view.backlogged_chat_jain);
    for (auto& e : view.hot) {
      hot.push_back(HotChat{std::move(e.key), s, e.count, e.error});
    }

    ShardStats& t = snap.total;
    t.submitted += st.submitted;
    t.rejected += st.rejected;
    for (int r = 0; r < kSubmitResultCount; ++r) t.rejected_by_reason[r] += st.rejected_by_reason[r];
    t.waiting += st.waiting;
    t.active += st.active;
    t.completed += st.completed;
    t.failed += st.failed;
    t.retried += st.retried;
  }
  snap.total.shard = p;  // not a shard: the number of shards summed
  snap.total.queue_wait = all_waits.SummaryMicros();
  snap.total.service_time = all_services.SummaryMicros();

  const LoadFairness lf = ComputeLoadFairness(loads);
  snap.fairness.jain = lf.jain;
  snap.fairness.cv = lf.cv;
  snap.fairness.max_over_mean = lf.max_over_mean;
  snap.fairness.chi2 = lf.chi2;
  snap.fairness.chi2_p = lf.chi2_p;
  if (!jains.empty()) {
    double sum = 0;
    for (double j : jains) sum += j;
    snap.fairness.backlogged_chat_jain = sum / static_cast<double>(jains.size());
  }
  snap.fairness.worst_cold_wait_us = static_cast<double>(worst_cold_ns) / 1e3;

  std::sort(hot.begin(), hot.end(), [](const HotChat& a, const HotChat& b) {
    return a.count != b.count ? a.count > b.count : a.chat_id < b.chat_id;
  });
  if (hot.size() > top_k) hot.resize(top_k);
  snap.hot_chats = std::move(hot);
  return snap;
}

}  // namespace
}  // namespace internal

Result<std::unique_ptr<Engine>> Engine::Create(const Options& options, Handler handler,
                                               FailureHook on_failure) {
  Status status = options.Validate();
  if (!status.ok()) return status;
  if (!handler) return Status::InvalidArgument("handler: must not be empty");
  return std::unique_ptr<Engine>(
      new internal::EngineImpl(options, std::move(handler), std::move(on_failure)));
}

}  // namespace chatshard
