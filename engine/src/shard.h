// Shard: one partition of the engine — its ingress queue, its per-chat
// mailboxes and run-queue, and the drain tasks that run its messages.
//
// Thread safety
//   Producers (any thread) call Admit(); drain tasks (TBB threads of the
//   engine's arena) call Drain(); Engine::Stats/Shutdown read and collect.
//   Producers never take a lock. The consumer-side bookkeeping (mailboxes,
//   run-queue, retry list, hot-chat sketch) is guarded by `mu_`, which drain
//   tasks hold once per chat turn (kPerChat) or per batch (kNone), never per
//   producer call.
//
// Invariants
//  1. At most `concurrency` drain tasks of this shard exist at once: a task
//     exists only while it holds one of the `drainers_` slots, taken by a
//     successful CAS below the limit and given back by the task itself.
//  2. No wakeup is lost: a producer increments `ingress_` after its enqueue
//     and then reads `drainers_`; a task gives back its slot and then reads
//     `ingress_`. Both pairs are seq_cst, so one side always sees the other
//     (store-buffer / Dekker pattern): either the producer sees no drainer
//     and spawns one, or the leaving task sees the message and stays.
//  3. kPerChat: a chat is in at most one place — idle, on the run-queue
//     once, running on exactly one task, or waiting for a retry — so its
//     messages never run concurrently, and they run in mailbox order, which
//     is ingress order per producer because only one task at a time moves
//     ingress into mailboxes (under `mu_`).
//  4. `unfinished_` counts messages accepted and not yet finished or handed
//     back; it is reserved before enqueue, so it never exceeds capacity.
#ifndef CHATSHARD_ENGINE_SRC_SHARD_H_
#define CHATSHARD_ENGINE_SRC_SHARD_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chat_quota.h"
#include "chat_table.h"
#include "chatshard/engine.h"
#include "cycle_clock.h"
#include "envelope.h"
#include "envelope_ring.h"
#include "heavy_hitters.h"
#include "histogram.h"
#include "mpmc_queue.h"
#include "spin_lock.h"

namespace chatshard::internal {

// Counters and hot members that different threads write are kept this far
// apart so they never share a cache line (false sharing). 64 bytes is the
// line size of every x86-64 and most ARM cores; std::hardware_destructive_
// interference_size is not used because GCC warns that it may change.
inline constexpr size_t kCacheLine = 64;

// What one drain thread records for one shard. Single writer (the thread in
// the arena slot that owns the ThreadSlot); readers merge with relaxed loads.
struct ShardRecord {
  std::atomic<uint64_t> dequeued{0};
  std::atomic<uint64_t> completed{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<uint64_t> retried{0};
  std::atomic<uint64_t> max_cold_wait_ns{0};
  AtomicHistogram queue_wait;
  AtomicHistogram service_time;

  // Single-writer increment: a relaxed load and store, no RMW, because only
  // the owning thread writes (see ThreadSlot).
  static void Bump(std::atomic<uint64_t>& counter, uint64_t by = 1) {
    counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
  }
};

// Per arena slot: what the thread currently occupying that slot of the
// engine's task_arena records. TBB gives a slot to one thread at a time, so
// each ThreadSlot has a single writer at any moment.
struct alignas(kCacheLine) ThreadSlot {
  explicit ThreadSlot(uint32_t partitions);
  ShardRecord& RecordFor(uint32_t shard);

  // True while a drain task runs on this slot. TBB hands a slot from thread
  // to thread inside libtbb, which sanitizers cannot see into; taking this
  // flag with acquire and dropping it with release makes each occupant's
  // writes (scratch buffers, records) happen-before the next occupant's
  // reads in the program itself, and checks that occupants never overlap.
  std::atomic<bool> occupied{false};
  // Shard whose handler this thread runs now, or -1. Written by the owner,
  // read by Stats() (relaxed: a gauge).
  std::atomic<int32_t> running_shard{-1};
  // Lazily created per shard: publish with release so a reader that sees the
  // pointer sees a constructed record (acquire on read).
  std::unique_ptr<std::atomic<ShardRecord*>[]> records;
  std::vector<std::unique_ptr<ShardRecord>> owned;
  std::vector<Envelope> scratch;       // one chat turn or one batch
  std::string failure_reason;
  const uint32_t partitions;
};

// What the engine shares with its shards. Const after construction except
// the atomics.
struct EngineCore {
  Options options;
  Handler handler;
  FailureHook on_failure;
  std::function<void(class Shard*)> spawn;  // enqueue a drain task of the shard
  std::function<ThreadSlot&()> thread_slot;
  // Set once by Shutdown (seq_cst: see Shard::Admit).
  std::atomic<bool> stopping{false};
  // Set when drain tasks must stop taking new messages.
  std::atomic<bool> aborting{false};
  std::atomic<uint64_t> hook_exceptions{0};
  std::atomic<uint64_t> completed_while_stopping{0};
};

class Shard {
 public:
  Shard(EngineCore* core, uint32_t index);
  ~Shard();
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;

  // Producer side. `token` may be null (implicit producer).
  SubmitResult Admit(QueueProducerToken* token, std::string_view chat, std::string_view payload,
                     uint32_t chat_hash, uint64_t chat_hash64);
  // Producer side, several messages of this shard at once (a Producer's
  // SubmitBatch): one capacity reservation, one timestamp, one bulk enqueue
  // and one wakeup check for all of them. `envelopes` are moved from. The
  // first messages in order are accepted and the rest answered kShardFull,
  // so a chat's accepted messages stay a prefix of what it submitted.
  // Returns how many were accepted. Not used when a chat quota is set.
  size_t AdmitBatch(QueueProducerToken* token, std::span<Envelope> envelopes,
                    SubmitResult* results);
  bool has_quota() const { return quota_ != nullptr; }
  void CountRejection(SubmitResult result) {
    // relaxed RMW: a statistic on the rejection path only.
    rejected_[static_cast<int>(result)].fetch_add(1, std::memory_order_relaxed);
  }
  QueueProducerToken MakeProducerToken() { return QueueProducerToken(queue_); }

  // Body of one drain task; the task holds one `drainers_` slot.
  void Drain();

  // Stats (any thread).
  int64_t unfinished() const { return unfinished_.load(std::memory_order_acquire); }
  uint32_t drainers() const { return drainers_.load(std::memory_order_acquire); }
  uint64_t rejected(int reason) const { return rejected_[reason].load(std::memory_order_relaxed); }
  int64_t ingress() const { return ingress_.load(std::memory_order_relaxed); }
  uint64_t collected() const { return collected_.load(std::memory_order_relaxed); }
  int64_t last_progress_ns() const { return last_progress_ns_.load(std::memory_order_relaxed); }
  struct ConsumerView {
    std::vector<SpaceSaving::Entry> hot;
    double backlogged_chat_jain = 1;
    size_t backlogged_chats = 0;
  };
  ConsumerView ViewConsumerSide(size_t top_k);

  // Shutdown: hands back every message not running, in chat order; returns
  // how many were taken. Call only once intake is stopped.
  size_t Collect(std::vector<UnprocessedMessage>* out);
  uint32_t index() const { return index_; }

 private:
  struct Mailbox;
  class DistributeInto;
  enum class ChatState : uint8_t { kIdle, kReady, kRunning, kDelayed };

  // A chat's queued messages. The ring's storage is kept when the chat goes
  // idle, so a busy chat stops allocating.
  struct Mailbox {
    std::string chat;
    uint32_t hash = 0;
    ChatState state = ChatState::kIdle;
    Mailbox* next = nullptr;  // run-queue link
    int64_t due_ns = 0;       // kDelayed: when it may run again
    EnvelopeRing ring;
  };

  // After an enqueue that found `waiting_before` messages in the ingress.
  void MaybeSpawnAfterEnqueue(int64_t waiting_before);
  bool TryAcquireSlot();
  void SpawnIfBelowLimit();
  // Gives the slot back; returns true if the task must go on (it re-took a
  // slot because work arrived meanwhile).
  bool ReleaseSlotOrContinue();

  // What a drain slice ends with.
  struct SliceEnd {
    enum Kind { kIdle, kMore, kWaitRetry } kind = kIdle;
    int64_t wake_ns = 0;  // kWaitRetry: earliest due retry
  };
  SliceEnd DrainPerChat(ThreadSlot& slot);
  SliceEnd DrainUnordered(ThreadSlot& slot);
  // Puts scratch[from, n) back at the front of `mb`, then requeues, idles or
  // delays the chat.
  // `retry_due`: when a retried head message may run again (retry only).
  void ReturnChatLocked(Mailbox* mb, std::vector<Envelope>& scratch, size_t from, size_t n,
                        uint32_t ran, bool retry, int64_t retry_due);
  // Runs one message and records it; returns kDone, kFail (finally failed,
  // hook called) or kRetry (to be retried after BackoffNs(e.attempts())). `*now` is the start time on entry
  // and the end time on return, so consecutive runs share one clock read.
  // `clock` is the calling slice's (one per drain slice, on this thread).
  Outcome RunOne(ThreadSlot& slot, ShardRecord& rec, Envelope& e, bool cold, SliceClock& clock,
                 int64_t* now);
  // RunOne's path for anything but kDone (kept out of line).
  [[gnu::noinline]] Outcome FinishNotDone(ShardRecord& rec, Envelope& e, Outcome outcome,
                                          const char* reason);
  void ReleaseQuota(const Envelope& e) {
    if (quota_ != nullptr) ReleaseQuotaSlow(e);
  }
  void ReleaseQuotaSlow(const Envelope& e);
  int64_t BackoffNs(uint32_t attempts) const;

  // Under mu_.
  void DistributeLocked(ShardRecord& rec);
  void DistributeOneLocked(Envelope&& e);
  void PushReadyLocked(Mailbox* mb);
  Mailbox* PopReadyLocked();
  void PromoteDueLocked(int64_t now);
  Mailbox* MailboxForLocked(const Envelope& e) {
    Mailbox* found = mailboxes_.Find(e.chat(), e.chat_hash());
    return found != nullptr ? found : NewMailboxLocked(e);
  }
  [[gnu::noinline]] Mailbox* NewMailboxLocked(const Envelope& e);
  void SweepIdleLocked();
  void RecordTurnLocked(uint32_t hash, uint32_t ran);

  // ---- const after construction
  EngineCore* const core_;
  const uint32_t index_;
  const uint32_t concurrency_;
  const uint32_t capacity_;
  const bool per_chat_;
  std::unique_ptr<ChatQuota> quota_;  // null when chat_quota == 0

  // ---- written by producers, read by drain tasks
  // Accepted and unfinished (invariant 4). seq_cst CAS: pairs with the
  // stopping flag in Admit/Shutdown.
  alignas(kCacheLine) std::atomic<int64_t> unfinished_{0};
  // Enqueued and not yet dequeued (invariant 2). May dip below zero for a
  // moment when a task dequeues before the producer's increment lands.
  std::atomic<int64_t> ingress_{0};
  std::array<std::atomic<uint64_t>, kSubmitResultCount> rejected_{};

  // ---- drain-task slots (invariant 1)
  alignas(kCacheLine) std::atomic<uint32_t> drainers_{0};
  // Last time this shard started or finished work (relaxed: a health gauge).
  std::atomic<int64_t> last_progress_ns_{0};
  std::atomic<uint64_t> collected_{0};  // taken from ingress by Collect

  alignas(kCacheLine) MpmcQueue<Envelope> queue_;

  // ---- consumer side, guarded by mu_
  alignas(kCacheLine) SpinLock mu_;
  ChatTable<Mailbox> mailboxes_;
  std::vector<std::unique_ptr<Mailbox>> mailbox_store_;  // owns every Mailbox
  std::vector<Mailbox*> free_mailboxes_;
  size_t idle_mailboxes_ = 0;
  Mailbox* ready_head_ = nullptr;
  Mailbox* ready_tail_ = nullptr;
  std::vector<Mailbox*> delayed_chats_;       // kPerChat retries waiting
  struct DelayedMessage {
    int64_t due_ns;  // when it may run again
    Envelope envelope;
  };
  std::deque<DelayedMessage> delayed_messages_;  // kNone retries waiting
  bool timer_held_ = false;  // a task stays to serve retry backoffs
  uint64_t next_id_ = 0;     // kPerChat ids, assigned when distributed
  SpaceSaving sketch_;
  // kNone: messages until the next one the sketch sees, and the generator
  // (xorshift32) of those gaps.
  uint32_t sketch_countdown_ = 1;
  uint32_t sketch_rng_;
  // Recent turns of chats that still had work after their turn: (hash, ran).
  static constexpr size_t kTurnWindow = 1024;
  std::vector<std::pair<uint32_t, uint32_t>> turn_window_;
  size_t turn_pos_ = 0;
  QueueConsumerToken distribute_token_;  // kPerChat: used by the one distributor
  // kNone ids: handed out per dequeued batch (relaxed: uniqueness only).
  std::atomic<uint64_t> next_unordered_id_{0};
  // kNone: size of delayed_messages_, readable without mu_ (relaxed: a hint;
  // the list itself is read under mu_).
  std::atomic<uint32_t> delayed_count_{0};
};

}  // namespace chatshard::internal

#endif  // CHATSHARD_ENGINE_SRC_SHARD_H_
