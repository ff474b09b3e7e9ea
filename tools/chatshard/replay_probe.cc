#include "replay_probe.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "cycle_clock.h"  // engine/src: the drain loop's TSC clock

namespace chatshard::cli {
namespace {

// Relaxed: only uniqueness matters.
std::atomic<uint64_t> next_probe_id{1};

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

ReplayProbe::ReplayProbe(const Traffic& traffic, WorkSpec work)
    : traffic_(traffic),
      work_(work),
      id_(next_probe_id.fetch_add(1, std::memory_order_relaxed)),
      chats_(std::make_unique<ChatProgress[]>(traffic.chats.size())) {
  chat_end_.reserve(traffic.chats.size());
  for (const std::string& chat : traffic.chats) {
    chat_text_ += chat;
    chat_end_.push_back(chat_text_.size());
  }
}

Outcome ReplayProbe::Handle(const MessageView& message) {
  uint64_t index = 0;
  if (message.payload.size() != kPayloadBytes) {
    corrupt_.fetch_add(1, std::memory_order_relaxed);
    return Outcome::kFail;
  }
  uint64_t value = 0;
  std::memcpy(&value, message.payload.data(), sizeof value);
  index = value & ((uint64_t{1} << kIndexBits) - 1);
  uint32_t chat = static_cast<uint32_t>(value >> kIndexBits);
  if (index >= traffic_.messages.size()) {
    corrupt_.fetch_add(1, std::memory_order_relaxed);
    return Outcome::kFail;
  }
  if (chat == kChatInFile) chat = traffic_.messages[index].chat;
  if (chat >= chat_end_.size()) {
    corrupt_.fetch_add(1, std::memory_order_relaxed);
    return Outcome::kFail;
  }
  const uint64_t chat_begin = chat == 0 ? 0 : chat_end_[chat - 1];
  if (message.chat_id !=
      std::string_view(chat_text_).substr(chat_begin, chat_end_[chat] - chat_begin)) {
    corrupt_.fetch_add(1, std::memory_order_relaxed);
    return Outcome::kFail;
  }

  // Order: this run must not come after a later message of its chat.
  // Relaxed: the atomic orders nothing else. With ordering per_chat the
  // engine makes each run of a chat happen before the next, so a correct run
  // always loads what the previous run stored; with ordering none, runs of one
  // chat overlap and the atomic only keeps this check free of data races.
  std::atomic<uint64_t>& progress = chats_[chat].next_index;
  const uint64_t mine = index + 1;
  uint64_t seen = progress.load(std::memory_order_relaxed);
  while (seen < mine) {
    // Success: this run is now the chat's latest. Failure: a concurrent run of
    // the same chat stored first (ordering none only); `seen` holds its value
    // and is checked again.
    if (progress.compare_exchange_weak(seen, mine, std::memory_order_relaxed,
                                       std::memory_order_relaxed)) {
      break;
    }
  }
  if (seen > mine) order_violations_.fetch_add(1, std::memory_order_relaxed);
  // seen == mine is a second run of this message: Collect counts it.

  work_.Perform(index);

  // The engine's TSC-extrapolated steady clock (engine/src/cycle_clock.h):
  // about 12 ns a read here against 32 for steady_clock::now(), which was 6%
  // of a per_chat replay's samples, on the drain thread that bounds it. Its
  // values are steady_clock readings (at most 1 ms extrapolated), so they
  // compare with message.enqueued.
  thread_local internal::SliceClock clock;
  const Clock::time_point finished{std::chrono::nanoseconds(clock.Now())};
  const int64_t ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(finished - message.enqueued).count();
  RecordsOfThisThread().records.push_back(
      Record{index, ns > 0 ? static_cast<uint64_t>(ns) : 0, finished});
  return Outcome::kDone;
}

ReplayProbe::ThreadRecords& ReplayProbe::RecordsOfThisThread() {
  // One entry per thread, for the probe it last served: a thread switches
  // probes only when a process replays several times, and then gets a new slot.
  thread_local uint64_t cached_probe_id = 0;
  thread_local ThreadRecords* cached_records = nullptr;
  if (cached_probe_id != id_) {
    auto records = std::make_unique<ThreadRecords>();
    records->records.reserve(traffic_.messages.size() / 8 + 64);
    std::lock_guard<std::mutex> lock(slots_mu_);
    slots_.push_back(std::move(records));
    cached_records = slots_.back().get();
    cached_probe_id = id_;
  }
  return *cached_records;
}

ReplayProbe::Totals ReplayProbe::Collect() const {
  Totals totals;
  totals.end_to_end_ns.assign(traffic_.messages.size(), kNotRun);
  totals.finished.assign(traffic_.messages.size(), Clock::time_point{});
  {
    std::lock_guard<std::mutex> lock(slots_mu_);
    for (const std::unique_ptr<ThreadRecords>& slot : slots_) {
      for (const Record& record : slot->records) {
        ++totals.runs;
        uint64_t& latency = totals.end_to_end_ns[record.index];
        if (latency != kNotRun) {
          ++totals.duplicates;
        } else {
          latency = record.end_to_end_ns;
          totals.finished[record.index] = record.finished;
        }
      }
    }
  }
  totals.order_violations = order_violations_.load(std::memory_order_relaxed);
  totals.corrupt = corrupt_.load(std::memory_order_relaxed);
  return totals;
}

}  // namespace chatshard::cli
