#include "shard.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>

#include "fairness.h"

namespace chatshard::internal {
namespace {

// A drain task gives its thread back to the arena (re-enqueues itself behind
// other shards' tasks) after this many messages or this long, so no shard
// can hold a thread while another shard has work.
constexpr uint32_t kSliceMessages = 2048;
constexpr int64_t kSliceNs = 1'000'000;
// kNone: messages dequeued at once.
constexpr size_t kUnorderedBulk = 64;
// kNone: the hot-chat sketch sees one message in this many, on average.
constexpr uint32_t kSketchStride = 16;
// kPerChat: ingress messages moved into mailboxes per critical section.
constexpr size_t kDistributeBulk = 256;
// Longest sleep of the task that waits for retry backoffs, so it notices
// shutdown and new work promptly.
constexpr int64_t kMaxRetrySleepNs = 500'000;

}  // namespace

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             Clock::now().time_since_epoch())
      .count();
}

ThreadSlot::ThreadSlot(uint32_t shards)
    : records(std::make_unique<std::atomic<ShardRecord*>[]>(shards)), partitions(shards) {
  for (uint32_t i = 0; i < shards; ++i) records[i].store(nullptr, std::memory_order_relaxed);
}

ShardRecord& ThreadSlot::RecordFor(uint32_t shard) {
  // relaxed: only this slot's owner stores the pointer, so it reads its own
  // store.
  ShardRecord* rec = records[shard].load(std::memory_order_relaxed);
  if (rec == nullptr) {
    owned.push_back(std::make_unique<ShardRecord>());
    rec = owned.back().get();
    // release: Stats() acquires it and must see a constructed record.
    records[shard].store(rec, std::memory_order_release);
  }
  return *rec;
}

// ---- Construction ----------------------------------------------------------

Shard::Shard(EngineCore* core, uint32_t index)
    : core_(core),
      index_(index),
      concurrency_(core->options.concurrency),
      capacity_(core->options.shard_capacity),
      per_chat_(core->options.ordering == Ordering::kPerChat),
      sketch_(std::max<size_t>(64, size_t{core->options.hot_chats} * 4)),
      sketch_rng_(0x9E3779B9u ^ (index + 1)),
      distribute_token_(queue_) {
  if (core->options.chat_quota > 0) {
    quota_ = std::make_unique<ChatQuota>(core->options.chat_quota,
                                         core->options.quota_chats_per_shard);
  }
  for (auto& r : rejected_) r.store(0, std::memory_order_relaxed);
  turn_window_.reserve(kTurnWindow);
  last_progress_ns_.store(NowNs(), std::memory_order_relaxed);
}

Shard::~Shard() = default;

// ---- Producer side ---------------------------------------------------------

SubmitResult Shard::Admit(QueueProducerToken* token, std::string_view chat,
                          std::string_view payload, uint32_t chat_hash, uint64_t chat_hash64) {
  // Reserve capacity (invariant 4). Success: one unit reserved. Failure: the
  // count moved; `u` holds the fresh value and we check the bound again.
  // seq_cst: this reservation and the read of `stopping` below pair with
  // Shutdown's store of `stopping` and read of `unfinished_`, so either we
  // see the stop or Shutdown sees (and waits for) our reservation.
  int64_t u = unfinished_.load(std::memory_order_relaxed);
  do {
    if (u >= static_cast<int64_t>(capacity_)) return SubmitResult::kShardFull;
  } while (!unfinished_.compare_exchange_weak(u, u + 1, std::memory_order_seq_cst,
                                              std::memory_order_relaxed));
  if (core_->stopping.load(std::memory_order_seq_cst)) {
    unfinished_.fetch_sub(1, std::memory_order_seq_cst);
    return SubmitResult::kStopping;
  }
  if (quota_ != nullptr) {
    const ChatQuota::Result q = quota_->TryAcquire(chat_hash64);
    if (q != ChatQuota::Result::kOk) {
      unfinished_.fetch_sub(1, std::memory_order_seq_cst);
      return q == ChatQuota::Result::kOverQuota ? SubmitResult::kChatOverQuota
                                                : SubmitResult::kTooManyChats;
    }
  }
  Envelope e(chat, payload, chat_hash, NowNs());
  // The queue's enqueue is a release of the element: the drain task that
  // dequeues it sees everything this thread wrote before (the API promise).
  const bool queued = token != nullptr ? queue_.enqueue(*token, std::move(e))
                                       : queue_.enqueue(std::move(e));
  if (!queued) {  // only when the queue cannot allocate a block
    if (quota_ != nullptr) quota_->Release(chat_hash64);
    unfinished_.fetch_sub(1, std::memory_order_seq_cst);
    return SubmitResult::kShardFull;
  }
  // seq_cst: invariant 2 (publish, then look for a drainer).
  const int64_t waiting = ingress_.fetch_add(1, std::memory_order_seq_cst);
  MaybeSpawnAfterEnqueue(waiting);
  return SubmitResult::kAccepted;
}

size_t Shard::AdmitBatch(QueueProducerToken* token, std::span<Envelope> envelopes,
                         SubmitResult* results) {
  const int64_t want = static_cast<int64_t>(envelopes.size());
  // Reserve up to `want` units (invariant 4). Success: `take` reserved.
  // Failure: `u` reloaded; recompute. seq_cst as in Admit.
  int64_t u = unfinished_.load(std::memory_order_relaxed);
  int64_t take = 0;
  do {
    take = std::min<int64_t>(want, static_cast<int64_t>(capacity_) - u);
    if (take <= 0) {
      take = 0;
      break;
    }
  } while (!unfinished_.compare_exchange_weak(u, u + take, std::memory_order_seq_cst,
                                              std::memory_order_relaxed));
  SubmitResult refusal = SubmitResult::kShardFull;
  if (take > 0 && core_->stopping.load(std::memory_order_seq_cst)) {
    unfinished_.fetch_sub(take, std::memory_order_seq_cst);
    take = 0;
    refusal = SubmitResult::kStopping;
  }
  if (take > 0) {
    auto first = std::make_move_iterator(envelopes.begin());
    const bool queued = token != nullptr
                            ? queue_.enqueue_bulk(*token, first, static_cast<size_t>(take))
                            : queue_.enqueue_bulk(first, static_cast<size_t>(take));
    if (!queued) {  // only when the queue cannot allocate a block
      unfinished_.fetch_sub(take, std::memory_order_seq_cst);
      take = 0;
    } else {
      // seq_cst: invariant 2, as in Admit.
      const int64_t waiting = ingress_.fetch_add(take, std::memory_order_seq_cst);
      MaybeSpawnAfterEnqueue(waiting);
    }
  }
  for (int64_t i = 0; i < want; ++i) {
    results[i] = i < take ? SubmitResult::kAccepted : refusal;
    if (i >= take) CountRejection(refusal);
  }
  return static_cast<size_t>(take);
}

void Shard::MaybeSpawnAfterEnqueue(int64_t waiting_before) {
  // seq_cst: the drainers_ half of invariant 2.
  const uint32_t d = drainers_.load(std::memory_order_seq_cst);
  // An idle shard: the producer must spawn (invariant 2). A shard whose
  // tasks had moved every earlier message out of the ingress (nothing was
  // waiting) may have them all inside handlers: a long turn -- a hot chat's
  // quantum of slow messages, a kNone batch -- would hold this message
  // until it ends, so one more task (up to concurrency) picks it up now.
  // Under a backlog the ingress is rarely empty at an enqueue, so this is
  // not a spawn per message; running tasks add helpers when they see one.
  if (d == 0 || (waiting_before <= 0 && d < concurrency_)) {
    last_progress_ns_.store(NowNs(), std::memory_order_relaxed);
    SpawnIfBelowLimit();
  }
}

bool Shard::TryAcquireSlot() {
  uint32_t d = drainers_.load(std::memory_order_seq_cst);
  // Success: we own one more slot (invariant 1). Failure: `d` reloaded.
  while (d < concurrency_) {
    if (drainers_.compare_exchange_weak(d, d + 1, std::memory_order_seq_cst,
                                        std::memory_order_seq_cst)) {
      return true;
    }
  }
  return false;
}

void Shard::SpawnIfBelowLimit() {
  if (core_->aborting.load(std::memory_order_acquire)) return;
  if (TryAcquireSlot()) core_->spawn(this);
}

bool Shard::ReleaseSlotOrContinue() {
  // seq_cst pair with Admit (invariant 2).
  drainers_.fetch_sub(1, std::memory_order_seq_cst);
  if (ingress_.load(std::memory_order_seq_cst) <= 0) return false;
  if (core_->aborting.load(std::memory_order_acquire)) return false;
  return TryAcquireSlot();
}

// ---- Drain tasks -----------------------------------------------------------

void Shard::Drain() {
  ThreadSlot& slot = core_->thread_slot();
  struct Occupy {
    explicit Occupy(ThreadSlot& s) : slot(s) {
      // acquire: see the previous occupant's writes. A true here would mean
      // two threads share a slot, which TBB promises never happens.
      if (slot.occupied.exchange(true, std::memory_order_acquire)) {
        std::fprintf(stderr, "chatshard: arena slot shared by two threads\n");
        std::abort();
      }
    }
    // release: publish this occupant's writes to the next.
    ~Occupy() { slot.occupied.store(false, std::memory_order_release); }
    ThreadSlot& slot;
  } occupy(slot);
  for (;;) {
    SliceEnd end;
    try {
      end = per_chat_ ? DrainPerChat(slot) : DrainUnordered(slot);
    } catch (const std::exception& e) {
      // Only an engine bug gets here (handler exceptions are caught per
      // message); an exception must never escape an enqueued TBB task.
      std::fprintf(stderr, "chatshard: internal error in shard %u: %s\n", index_, e.what());
      end.kind = SliceEnd::kMore;
    }
    if (core_->aborting.load(std::memory_order_acquire)) end.kind = SliceEnd::kIdle;
    switch (end.kind) {
      case SliceEnd::kMore:
        // Keep the slot, but go to the back of the arena's queue so other
        // shards get this thread (cross-shard fairness).
        core_->spawn(this);
        return;
      case SliceEnd::kWaitRetry: {
        const int64_t wait = std::clamp<int64_t>(end.wake_ns - NowNs(), 0, kMaxRetrySleepNs);
        if (wait > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait));
        {
          std::lock_guard<SpinLock> lock(mu_);
          timer_held_ = false;
        }
        core_->spawn(this);
        return;
      }
      case SliceEnd::kIdle:
        if (!ReleaseSlotOrContinue()) return;
        break;  // re-took a slot: drain again
    }
  }
}

Outcome Shard::RunOne(ThreadSlot& slot, ShardRecord& rec, Envelope& e, bool cold,
                      SliceClock& clock, int64_t* now) {
  e.add_attempt();
  const int64_t start = *now;
  if (e.attempts() == 1) {
    const int64_t wait = std::max<int64_t>(0, start - e.enqueued_ns());
    rec.queue_wait.Record(static_cast<uint64_t>(wait));
    if (cold && static_cast<uint64_t>(wait) > rec.max_cold_wait_ns.load(std::memory_order_relaxed)) {
      rec.max_cold_wait_ns.store(static_cast<uint64_t>(wait), std::memory_order_relaxed);
    }
  }
  const MessageView view{e.chat(),
                         e.payload(),
                         e.id(),
                         index_,
                         e.attempts(),
                         Clock::time_point(std::chrono::nanoseconds(e.enqueued_ns())),
                         Clock::time_point(std::chrono::nanoseconds(start))};
  // relaxed: a gauge for Stats().active.
  slot.running_shard.store(static_cast<int32_t>(index_), std::memory_order_relaxed);
  Outcome outcome;
  const char* reason = nullptr;
  try {
    outcome = core_->handler(view);
  } catch (const std::exception& ex) {
    outcome = Outcome::kFail;
    slot.failure_reason.assign("exception: ").append(ex.what());
    reason = slot.failure_reason.c_str();
  } catch (...) {
    outcome = Outcome::kFail;
    reason = "exception: (not derived from std::exception)";
  }
  slot.running_shard.store(-1, std::memory_order_relaxed);
  *now = clock.Now();
  rec.service_time.Record(static_cast<uint64_t>(std::max<int64_t>(0, *now - start)));
  if (outcome == Outcome::kDone) [[likely]] {
    ShardRecord::Bump(rec.completed);
    ReleaseQuota(e);
    return Outcome::kDone;
  }
  return FinishNotDone(rec, e, outcome, reason);
}

Outcome Shard::FinishNotDone(ShardRecord& rec, Envelope& e, Outcome outcome, const char* reason) {
  if (outcome == Outcome::kRetry) {
    if (e.attempts() < core_->options.max_attempts) {
      ShardRecord::Bump(rec.retried);
      return Outcome::kRetry;
    }
    reason = "retry asked on the last attempt (max_attempts reached)";
  } else if (reason == nullptr) {
    reason = "handler returned kFail";
  }
  ShardRecord::Bump(rec.failed);
  if (core_->on_failure) {
    const FailedMessage failed{e.chat(), e.payload(), e.id(), index_, e.attempts(), reason};
    try {
      core_->on_failure(failed);
    } catch (...) {
      // relaxed: a statistic.
      core_->hook_exceptions.fetch_add(1, std::memory_order_relaxed);
    }
  }
  ReleaseQuota(e);
  return Outcome::kFail;
}

void Shard::ReleaseQuotaSlow(const Envelope& e) { quota_->Release(Fnv1a64(e.chat())); }

int64_t Shard::BackoffNs(uint32_t attempts) const {
  const int64_t base =
      std::chrono::duration_cast<std::chrono::nanoseconds>(core_->options.retry_backoff).count();
  const int64_t cap =
      std::chrono::duration_cast<std::chrono::nanoseconds>(core_->options.retry_backoff_max).count();
  int64_t wait = base;
  for (uint32_t i = 1; i < attempts && wait < cap; ++i) wait *= 2;
  return std::min(wait, cap);
}

// ---- kPerChat --------------------------------------------------------------

Shard::Mailbox* Shard::NewMailboxLocked(const Envelope& e) {
  Mailbox* mb;
  if (!free_mailboxes_.empty()) {
    mb = free_mailboxes_.back();
    free_mailboxes_.pop_back();
  } else {
    mailbox_store_.push_back(std::make_unique<Mailbox>());
    mb = mailbox_store_.back().get();
  }
  mb->chat.assign(e.chat());
  mb->hash = e.chat_hash();
  mb->state = ChatState::kIdle;
  mb->next = nullptr;
  mailboxes_.Insert(mb);
  ++idle_mailboxes_;
  return mb;
}

void Shard::PushReadyLocked(Mailbox* mb) {
  mb->state = ChatState::kReady;
  mb->next = nullptr;
  if (ready_tail_ != nullptr) {
    ready_tail_->next = mb;
  } else {
    ready_head_ = mb;
  }
  ready_tail_ = mb;
}

Shard::Mailbox* Shard::PopReadyLocked() {
  Mailbox* mb = ready_head_;
  if (mb == nullptr) return nullptr;
  ready_head_ = mb->next;
  if (ready_head_ == nullptr) ready_tail_ = nullptr;
  mb->next = nullptr;
  return mb;
}

// An output iterator for the ingress queue's bulk dequeue that files each
// message straight into its chat's mailbox, so a message is moved once
// (queue slot to mailbox) instead of twice through a staging buffer.
class Shard::DistributeInto {
 public:
  explicit DistributeInto(Shard* shard) : shard_(shard) {}
  DistributeInto& operator*() { return *this; }
  DistributeInto& operator++() { return *this; }
  DistributeInto& operator++(int) { return *this; }
  // Not noexcept: a mailbox may have to grow. moodycamel then destroys the
  // rest of that bulk, which only an allocation failure can cause.
  DistributeInto& operator=(Envelope&& e) {
    shard_->DistributeOneLocked(std::move(e));
    return *this;
  }

 private:
  Shard* shard_;
};

void Shard::DistributeOneLocked(Envelope&& e) {
  e.set_id((uint64_t{index_} << 40) | next_id_++);
  Mailbox* mb = MailboxForLocked(e);
  mb->ring.PushBack(std::move(e));
  if (mb->state == ChatState::kIdle) {
    --idle_mailboxes_;
    PushReadyLocked(mb);
  }
}

void Shard::DistributeLocked(ShardRecord& rec) {
  if (ingress_.load(std::memory_order_seq_cst) <= 0) return;
  // Everything queued now joins the mailboxes, so round-robin spans every
  // chat with work, not just those that got out of the ingress queue.
  for (;;) {
    const size_t n =
        queue_.try_dequeue_bulk(distribute_token_, DistributeInto(this), kDistributeBulk);
    if (n == 0) return;
    ingress_.fetch_sub(static_cast<int64_t>(n), std::memory_order_seq_cst);
    ShardRecord::Bump(rec.dequeued, n);
    if (n < kDistributeBulk) return;
  }
}

void Shard::PromoteDueLocked(int64_t now) {
  for (size_t i = 0; i < delayed_chats_.size();) {
    Mailbox* mb = delayed_chats_[i];
    if (mb->due_ns <= now) {
      delayed_chats_[i] = delayed_chats_.back();
      delayed_chats_.pop_back();
      PushReadyLocked(mb);
    } else {
      ++i;
    }
  }
}

void Shard::RecordTurnLocked(uint32_t hash, uint32_t ran) {
  if (turn_window_.size() < kTurnWindow) {
    turn_window_.emplace_back(hash, ran);
  } else {
    turn_window_[turn_pos_] = {hash, ran};
    turn_pos_ = (turn_pos_ + 1) % kTurnWindow;
  }
}

void Shard::SweepIdleLocked() {
  // Forget idle chats once they outnumber a floor, so the map tracks the
  // chats with work rather than every chat ever seen. Amortised: runs when
  // the idle count doubles past the floor.
  constexpr size_t kIdleFloor = 4096;
  if (idle_mailboxes_ < kIdleFloor || idle_mailboxes_ < mailboxes_.size() / 2) return;
  mailboxes_.Rebuild([this](Mailbox* mb) {
    if (mb->state != ChatState::kIdle || mb->ring.size() != 0) return true;
    if (mb->ring.capacity() > 64) mb->ring.Reset();
    free_mailboxes_.push_back(mb);
    return false;
  });
  idle_mailboxes_ = 0;
  // Keep a bounded pool of spare mailboxes; free the rest.
  if (free_mailboxes_.size() > kIdleFloor) {
    std::vector<Mailbox*> keep(free_mailboxes_.begin(), free_mailboxes_.begin() + kIdleFloor);
    std::vector<Mailbox*> drop(free_mailboxes_.begin() + kIdleFloor, free_mailboxes_.end());
    free_mailboxes_.swap(keep);
    std::sort(drop.begin(), drop.end());
    std::erase_if(mailbox_store_, [&](const std::unique_ptr<Mailbox>& m) {
      return std::binary_search(drop.begin(), drop.end(), m.get());
    });
  }
}

void Shard::ReturnChatLocked(Mailbox* mb, std::vector<Envelope>& scratch, size_t from, size_t n,
                             uint32_t ran, bool retry, int64_t retry_due) {
  for (size_t i = n; i > from; --i) mb->ring.PushFront(std::move(scratch[i - 1]));
  if (ran > 0) sketch_.AddHashed(mb->chat, mb->hash, ran);
  if (retry) {
    mb->state = ChatState::kDelayed;
    mb->due_ns = retry_due;
    delayed_chats_.push_back(mb);
  } else if (mb->ring.size() > 0) {
    if (!core_->aborting.load(std::memory_order_relaxed)) RecordTurnLocked(mb->hash, ran);
    PushReadyLocked(mb);
  } else {
    mb->state = ChatState::kIdle;
    ++idle_mailboxes_;
    SweepIdleLocked();
  }
}

Shard::SliceEnd Shard::DrainPerChat(ThreadSlot& slot) {
  ShardRecord& rec = slot.RecordFor(index_);
  const uint32_t quantum = core_->options.quantum;
  auto& scratch = slot.scratch;
  if (scratch.size() < quantum) scratch.resize(quantum);

  SliceClock clock;
  int64_t now = clock.Now();
  const int64_t slice_end = now + kSliceNs;
  uint32_t budget = kSliceMessages;
  // The chat whose turn just ended, returned in the next critical section
  // so a turn costs one lock acquisition.
  Mailbox* prev = nullptr;
  size_t prev_from = 0, prev_n = 0;
  uint32_t prev_ran = 0;
  bool prev_retry = false;
  int64_t prev_due = 0;
  uint64_t finished = 0;
  SliceEnd end;

  for (;;) {
    Mailbox* mb = nullptr;
    size_t n = 0;
    bool cold = false;
    bool want_helper = false;
    {
      std::lock_guard<SpinLock> lock(mu_);
      // Newly arrived chats join the run-queue before the chat whose turn
      // just ended goes back to its tail, so a newcomer waits at most for
      // the turn in progress.
      DistributeLocked(rec);
      if (prev != nullptr) {
        ReturnChatLocked(prev, scratch, prev_from, prev_n, prev_ran, prev_retry, prev_due);
        prev = nullptr;
      }
      if (core_->aborting.load(std::memory_order_acquire)) break;
      if (!delayed_chats_.empty()) PromoteDueLocked(now);
      if (budget == 0 || now >= slice_end) {
        if (ready_head_ != nullptr || ingress_.load(std::memory_order_seq_cst) > 0) {
          end.kind = SliceEnd::kMore;
          break;
        }
      }
      mb = PopReadyLocked();
      if (mb == nullptr) {
        if (!delayed_chats_.empty() && !timer_held_) {
          timer_held_ = true;
          end.kind = SliceEnd::kWaitRetry;
          end.wake_ns = INT64_MAX;
          for (const Mailbox* d : delayed_chats_) end.wake_ns = std::min(end.wake_ns, d->due_ns);
        }
        break;
      }
      mb->state = ChatState::kRunning;
      // A chat whose backlog fits in one turn is "cold": its wait is what
      // the fairness score `worst_cold_wait_us` watches.
      cold = mb->ring.size() <= quantum;
      n = std::min<size_t>(quantum, mb->ring.size());
      mb->ring.PopFrontInto(scratch.data(), n);
      want_helper = ready_head_ != nullptr;
    }
    if (want_helper && drainers_.load(std::memory_order_relaxed) < concurrency_) {
      SpawnIfBelowLimit();
    }

    uint32_t ran = 0;
    bool retry = false;
    size_t from = n;
    for (size_t i = 0; i < n; ++i) {
      if (core_->aborting.load(std::memory_order_relaxed)) {
        from = i;
        break;
      }
      const Outcome out = RunOne(slot, rec, scratch[i], cold, clock, &now);
      ++ran;
      if (out == Outcome::kRetry) {
        // The retried message keeps its place at the head of the chat.
        retry = true;
        from = i;
        break;
      }
      ++finished;
    }
    if (finished > 0) {
      // Once per turn. acq_rel: Shutdown(kDrain) waits for zero and then
      // reads what the handlers wrote.
      unfinished_.fetch_sub(static_cast<int64_t>(finished), std::memory_order_acq_rel);
      finished = 0;
    }
    last_progress_ns_.store(now, std::memory_order_relaxed);
    prev = mb;
    prev_from = from;
    prev_n = n;
    prev_ran = ran;
    prev_retry = retry;
    prev_due = retry ? now + BackoffNs(scratch[from].attempts()) : 0;
    budget = budget > ran ? budget - ran : 0;
  }
  if (prev != nullptr) {  // left the loop by abort before returning the chat
    std::lock_guard<SpinLock> lock(mu_);
    ReturnChatLocked(prev, scratch, prev_from, prev_n, prev_ran, prev_retry, prev_due);
  }
  if (finished > 0) {
    unfinished_.fetch_sub(static_cast<int64_t>(finished), std::memory_order_acq_rel);
  }
  return end;
}

// ---- kNone -----------------------------------------------------------------

Shard::SliceEnd Shard::DrainUnordered(ThreadSlot& slot) {
  ShardRecord& rec = slot.RecordFor(index_);
  auto& buf = slot.scratch;
  if (buf.size() < kUnorderedBulk) buf.resize(kUnorderedBulk);
  QueueConsumerToken token(queue_);

  SliceClock clock;
  int64_t now = clock.Now();
  const int64_t slice_end = now + kSliceNs;
  uint32_t budget = kSliceMessages;
  SliceEnd end;

  while (!core_->aborting.load(std::memory_order_acquire)) {
    if (budget == 0 || now >= slice_end) {
      if (ingress_.load(std::memory_order_seq_cst) > 0 ||
          delayed_count_.load(std::memory_order_relaxed) > 0) {
        end.kind = SliceEnd::kMore;
      }
      break;
    }
    size_t n = queue_.try_dequeue_bulk(token, buf.begin(), kUnorderedBulk);
    if (n > 0) {
      ingress_.fetch_sub(static_cast<int64_t>(n), std::memory_order_seq_cst);
      ShardRecord::Bump(rec.dequeued, n);
      // relaxed: ids need only be unique.
      const uint64_t base = next_unordered_id_.fetch_add(n, std::memory_order_relaxed);
      for (size_t i = 0; i < n; ++i) buf[i].set_id((uint64_t{index_} << 40) | (base + i));
      if (n == kUnorderedBulk && drainers_.load(std::memory_order_relaxed) < concurrency_) {
        SpawnIfBelowLimit();
      }
    } else if (delayed_count_.load(std::memory_order_relaxed) > 0) {
      std::lock_guard<SpinLock> lock(mu_);
      while (n < kUnorderedBulk && !delayed_messages_.empty() &&
             delayed_messages_.front().due_ns <= now) {
        buf[n++] = std::move(delayed_messages_.front().envelope);
        delayed_messages_.pop_front();
      }
      delayed_count_.store(static_cast<uint32_t>(delayed_messages_.size()),
                           std::memory_order_relaxed);
      if (n == 0) {
        if (!timer_held_ && !delayed_messages_.empty()) {
          timer_held_ = true;
          end.kind = SliceEnd::kWaitRetry;
          end.wake_ns = delayed_messages_.front().due_ns;
        }
        break;
      }
    } else {
      break;
    }

    uint64_t finished = 0;
    size_t i = 0;
    for (; i < n; ++i) {
      if (core_->aborting.load(std::memory_order_relaxed)) break;
      const Outcome out = RunOne(slot, rec, buf[i], /*cold=*/true, clock, &now);
      if (out == Outcome::kRetry) {
        std::lock_guard<SpinLock> lock(mu_);
        // Backoffs grow with attempts, so the list is only roughly ordered;
        // an early entry waiting longer only delays later ones slightly.
        delayed_messages_.push_back({now + BackoffNs(buf[i].attempts()), std::move(buf[i])});
        delayed_count_.store(static_cast<uint32_t>(delayed_messages_.size()),
                             std::memory_order_relaxed);
      } else {
        ++finished;
      }
    }
    {
      std::lock_guard<SpinLock> lock(mu_);
      // Hot-chat sketch: one message in kSketchStride on average, with that
      // weight. Feeding every message cost about half of this path's
      // instructions (callgrind, bench/); a chat above 1/capacity of the
      // traffic is still found, and counts are estimates. The gaps between
      // samples are random (uniform in [1, 2 * kSketchStride - 1]): a fixed
      // stride aliases with periodic traffic (a round-robin over 62 chats
      // sampled every 16th message only ever sees 31 of them).
      for (size_t j = 0; j < i; ++j) {
        if (--sketch_countdown_ != 0) continue;
        sketch_.AddHashed(buf[j].chat(), buf[j].chat_hash(), kSketchStride);
        sketch_rng_ ^= sketch_rng_ << 13;
        sketch_rng_ ^= sketch_rng_ >> 17;
        sketch_rng_ ^= sketch_rng_ << 5;
        sketch_countdown_ = 1 + sketch_rng_ % (2 * kSketchStride - 1);
      }
      // Aborted mid-batch: the rest waits in the retry list for Collect.
      for (; i < n; ++i) {
        delayed_messages_.push_back({0, std::move(buf[i])});
      }
      delayed_count_.store(static_cast<uint32_t>(delayed_messages_.size()),
                           std::memory_order_relaxed);
    }
    if (finished > 0) {
      unfinished_.fetch_sub(static_cast<int64_t>(finished), std::memory_order_acq_rel);
    }
    last_progress_ns_.store(now, std::memory_order_relaxed);
    budget = budget > n ? budget - static_cast<uint32_t>(n) : 0;
  }
  return end;
}

// ---- Stats and shutdown ----------------------------------------------------

Shard::ConsumerView Shard::ViewConsumerSide(size_t top_k) {
  ConsumerView view;
  std::vector<std::pair<uint32_t, uint32_t>> window;
  {
    std::lock_guard<SpinLock> lock(mu_);
    view.hot = sketch_.Top(top_k);
    window = turn_window_;
  }
  // Service each backlogged chat received over the recent turns.
  view.backlogged_chat_jain = ServiceJainByKey(window, &view.backlogged_chats);
  return view;
}

size_t Shard::Collect(std::vector<UnprocessedMessage>* out) {
  size_t taken = 0;
  auto hand_back = [&](Envelope& e) {
    UnprocessedMessage m;
    m.chat_id.assign(e.chat());
    m.payload.assign(e.payload());
    m.shard = index_;
    m.attempts = e.attempts();
    m.enqueued = Clock::time_point(std::chrono::nanoseconds(e.enqueued_ns()));
    ReleaseQuota(e);
    out->push_back(std::move(m));
    ++taken;
  };
  std::lock_guard<SpinLock> lock(mu_);
  // Mailboxes first: within a chat they hold older messages than ingress.
  mailboxes_.ForEach([&](Mailbox* mb) {
    if (mb->state == ChatState::kRunning) return;  // its task returns it later
    while (mb->ring.size() > 0) {
      Envelope e = mb->ring.PopFront();
      hand_back(e);
    }
    if (mb->state == ChatState::kReady || mb->state == ChatState::kDelayed) {
      mb->state = ChatState::kIdle;
      ++idle_mailboxes_;
    }
  });
  ready_head_ = ready_tail_ = nullptr;
  delayed_chats_.clear();
  for (auto& d : delayed_messages_) hand_back(d.envelope);
  delayed_messages_.clear();
  delayed_count_.store(0, std::memory_order_relaxed);
  Envelope e;
  size_t from_ingress = 0;
  while (queue_.try_dequeue(distribute_token_, e)) {
    hand_back(e);
    ++from_ingress;
  }
  if (from_ingress > 0) {
    ingress_.fetch_sub(static_cast<int64_t>(from_ingress), std::memory_order_seq_cst);
    collected_.fetch_add(from_ingress, std::memory_order_relaxed);
  }
  if (taken > 0) unfinished_.fetch_sub(static_cast<int64_t>(taken), std::memory_order_acq_rel);
  return taken;
}

}  // namespace chatshard::internal
