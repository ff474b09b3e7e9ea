#include "replay_probe.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

#include "cycle_clock.h"  // engine/src: the drain loop's TSC clock

namespace chatshard::cli {
namespace {

// Handle subtracts Clock's count from the TSC clock's nanoseconds.
static_assert(std::is_same_v<Clock::duration, std::chrono::nanoseconds>);

// The 8 bytes at p, unaligned.
uint64_t Load8(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// a[0, n) == b[0, n). Chat ids are short (17 bytes in the shared capture),
// and a call to memcmp for each run was a tenth of Handle's samples: from 8
// to 32 bytes, overlapping 8-byte loads compare them inline.
bool SameBytes(const char* a, const char* b, size_t n) {
  if (n >= 8 && n <= 32) {
    const size_t last = n - 8;  // the final 8 bytes, overlapping the others
    const size_t mid = n > 16 ? 8 : 0;
    const size_t mid_end = n > 16 ? n - 16 : 0;
    return Load8(a) == Load8(b) && Load8(a + mid) == Load8(b + mid) &&
           Load8(a + mid_end) == Load8(b + mid_end) && Load8(a + last) == Load8(b + last);
  }
  return std::memcmp(a, b, n) == 0;
}

// Relaxed: only uniqueness matters.
std::atomic<uint64_t> next_probe_id{1};

// This thread's records, for the probe whose id is t_probe_id (see
// RecordsOfThisThread). Trivially initialised, so reading them costs no
// initialisation check.
thread_local uint64_t t_probe_id = 0;
thread_local void* t_records = nullptr;

}  // namespace

ReplayProbe::Payload ReplayProbe::EncodePayload(uint64_t index, uint32_t chat) {
  const uint64_t chat_field = chat < kChatInFile ? chat : kChatInFile;
  const uint64_t value = index | (chat_field << kIndexBits);
  Payload payload;
  std::memcpy(payload.data(), &value, sizeof value);
  return payload;
}

ReplayProbe::Payload ReplayProbe::PayloadFor(uint64_t index) const {
  return EncodePayload(index, traffic_.messages[index].chat);
}

ReplayProbe::ReplayProbe(const Traffic& traffic, WorkSpec work, Ordering ordering)
    : traffic_(traffic),
      work_(work),
      no_work_(work.none()),
      chats_serial_(ordering == Ordering::kPerChat),
      id_(next_probe_id.fetch_add(1, std::memory_order_relaxed)),
      chats_(std::make_unique<ChatProgress[]>(traffic.chats.size())) {
  chat_end_.reserve(traffic.chats.size());
  size_t text_bytes = 0;
  for (const std::string& chat : traffic.chats) text_bytes += chat.size();
  chat_text_.reserve(text_bytes);
  for (const std::string& chat : traffic.chats) {
    chat_text_ += chat;
    chat_end_.push_back(chat_text_.size());
  }
}

inline ReplayProbe::ThreadRecords& ReplayProbe::RecordsOfThisThread() {
  // One entry per thread, for the probe it last served: a thread switches
  // probes only when a process replays several times, and then gets a new slot.
  if (t_probe_id != id_) [[unlikely]]
    return NewRecordsOfThisThread();
  return *static_cast<ThreadRecords*>(t_records);
}

Outcome ReplayProbe::Corrupt() {
  corrupt_.fetch_add(1, std::memory_order_relaxed);
  return Outcome::kFail;
}

Outcome ReplayProbe::Handle(const MessageView& message) {
  if (message.payload.size() != kPayloadBytes) [[unlikely]]
    return Corrupt();
  uint64_t value = 0;
  std::memcpy(&value, message.payload.data(), sizeof value);
  const uint64_t index = value & kIndexMask;
  uint32_t chat = static_cast<uint32_t>(value >> kIndexBits);
  if (index >= traffic_.messages.size()) [[unlikely]]
    return Corrupt();
  if (chat == kChatInFile) [[unlikely]]
    chat = traffic_.messages[index].chat;
  if (chat >= chat_end_.size()) [[unlikely]]
    return Corrupt();
  const uint64_t chat_begin = chat == 0 ? 0 : chat_end_[chat - 1];
  const size_t chat_bytes = chat_end_[chat] - chat_begin;
  if (message.chat_id.size() != chat_bytes ||
      !SameBytes(message.chat_id.data(), chat_text_.data() + chat_begin, chat_bytes)) [[unlikely]] {
    return Corrupt();
  }

  // Order: this run must not come after a later message of its chat.
  // Relaxed: the atomic orders nothing else. With ordering per_chat the
  // engine makes each run of a chat happen before the next, so a correct run
  // always loads what the previous run stored, and a plain store suffices;
  // with ordering none, runs of one chat overlap and the compare-exchange
  // keeps the count exact.
  std::atomic<uint64_t>& progress = chats_[chat].next_index;
  const uint64_t mine = index + 1;
  uint64_t seen = progress.load(std::memory_order_relaxed);
  if (chats_serial_) {
    if (seen < mine) progress.store(mine, std::memory_order_relaxed);
  } else {
    while (seen < mine) {
      // Success: this run is now the chat's latest. Failure: a concurrent
      // run of the same chat stored first; `seen` holds its value and is
      // checked again.
      if (progress.compare_exchange_weak(seen, mine, std::memory_order_relaxed,
                                         std::memory_order_relaxed)) {
        break;
      }
    }
  }
  if (seen >= mine) [[unlikely]] {
    // seen == mine is a second run of this message: ForEachFirstRun counts
    // it, once it knows to look (relaxed: plain counts, read after every run
    // has returned).
    not_new_.fetch_add(1, std::memory_order_relaxed);
    if (seen > mine) order_violations_.fetch_add(1, std::memory_order_relaxed);
  }

  ThreadRecords& records = RecordsOfThisThread();
  int64_t finished_ns;
  if (no_work_) {
    // Nothing to do: the run ends where it began, on the engine's clock
    // (MessageView::started), and the probe reads no clock of its own (a
    // TSC read was a fifth of Handle's samples in a per_chat replay).
    finished_ns = message.started.time_since_epoch().count();
  } else {
    work_.Perform(index);
    // The engine's TSC-extrapolated steady clock (engine/src/cycle_clock.h):
    // about 12 ns a read here against 32 for steady_clock::now(). Its values
    // are steady_clock readings (at most 1 ms extrapolated), so they compare
    // with message.enqueued.
    finished_ns = records.clock->Now();
  }
  const int64_t ns = finished_ns - message.enqueued.time_since_epoch().count();
  records.Append(Record{value, ns > 0 ? static_cast<uint64_t>(ns) : 0, finished_ns});
  return Outcome::kDone;
}

ReplayProbe::ThreadRecords::ThreadRecords(bool needs_clock)
    : clock(needs_clock ? std::make_unique<internal::SliceClock>() : nullptr) {}
ReplayProbe::ThreadRecords::~ThreadRecords() = default;

void ReplayProbe::ThreadRecords::AddChunk() {
  // for_overwrite: no zeroing, every record is written before it is read.
  chunks.push_back(std::make_unique_for_overwrite<Record[]>(kChunkRecords));
  tail = chunks.back().get();
  tail_used = 0;
}

ReplayProbe::ThreadRecords& ReplayProbe::NewRecordsOfThisThread() {
  auto records = std::make_unique<ThreadRecords>(/*needs_clock=*/!no_work_);
  std::lock_guard<std::mutex> lock(slots_mu_);
  slots_.push_back(std::move(records));
  t_records = slots_.back().get();
  t_probe_id = id_;
  return *slots_.back();
}

}  // namespace chatshard::cli
