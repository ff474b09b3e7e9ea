// ReplayProbe: the handler `chatshard replay` gives the engine. It does the
// configured work, then checks and records each run: which message (its index
// in the traffic file, carried in the payload), whether a later message of the
// same chat already ran (an order violation), whether the message ran before
// (a duplicate), and its end-to-end latency (Submit accepted -> handler done).
//
// Thread safety: Handle may run on any number of threads at once.
// ForEachFirstRun and Collect must not overlap Handle: call them once every
// handler run has returned, that is after Shutdown(kDrain) reported none
// still running (its wait for the accepted messages to finish acquires what
// the runs wrote), or else after the engine was destroyed (its destructor
// waits for runs that outlived the deadline). The TBB threads' record slots
// are published under slots_mu_.
//
// Owns its per-chat and per-thread storage; `traffic` must outlive it.
#ifndef CHATSHARD_TOOLS_CHATSHARD_REPLAY_PROBE_H_
#define CHATSHARD_TOOLS_CHATSHARD_REPLAY_PROBE_H_

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "chatshard/message.h"
#include "chatshard/options.h"
#include "traffic_file.h"
#include "work_spec.h"

namespace chatshard::internal {
class SliceClock;  // engine/src/cycle_clock.h
}  // namespace chatshard::internal

namespace chatshard::cli {

// Keeps data that different threads write on different cache lines (false
// sharing). 64 bytes on every x86-64 and most ARM64 parts; not
// std::hardware_destructive_interference_size, which GCC warns may change.
inline constexpr size_t kCacheLine = 64;

// Aligned to a cache line, so that its members, which every handler run
// reads, never share a line with its owner's neighbouring variables: the
// replay keeps a probe on the stack beside counters the submitting thread
// bumps, and the handler missed the cache on the probe at every run (perf: a
// quarter of Handle's samples on its first load of a member).
class alignas(kCacheLine) ReplayProbe {
 public:
  // A payload is 8 bytes, native order: the message's index in the traffic
  // file in the low 40 bits, its chat's index in the high 24 (kChatInFile
  // when the file has more chats than that: Handle then looks it up). The
  // chat travels in the payload so that the handler does not miss the cache
  // on the file's message array at every run (perf: 60% of the handler's
  // samples in a per_chat replay of the shared capture).
  static constexpr size_t kPayloadBytes = sizeof(uint64_t);
  static constexpr uint64_t kIndexBits = 40;
  static constexpr uint32_t kChatInFile = (1u << 24) - 1;
  static constexpr uint64_t kIndexMask = (uint64_t{1} << kIndexBits) - 1;
  using Payload = std::array<char, kPayloadBytes>;
  // `index` < 2^40 (a file that large would not fit in memory).
  static Payload EncodePayload(uint64_t index, uint32_t chat);
  // The payload of message `index` of this probe's traffic.
  Payload PayloadFor(uint64_t index) const;

  // Each run performs work.Sample(index of the message in the file).
  // `ordering` is the engine's: with kPerChat the engine promises that runs of
  // one chat never overlap, and the order check is a plain load and store of
  // the chat's progress (a locked compare-exchange at every run cost a tenth
  // of a per_chat replay's handler time, perf); with kNone runs of one chat
  // may overlap and the check takes the compare-exchange, which counts every
  // step back exactly whatever the interleaving.
  ReplayProbe(const Traffic& traffic, WorkSpec work, Ordering ordering = Ordering::kNone);
  ReplayProbe(const ReplayProbe&) = delete;
  ReplayProbe& operator=(const ReplayProbe&) = delete;

  // The handler. kDone, or kFail for a message the replay did not send (a
  // payload that is not an index of the file, or whose chat id differs).
  Outcome Handle(const MessageView& message);

  struct Totals {
    uint64_t runs = 0;              // handler runs of valid messages
    uint64_t duplicates = 0;        // runs of a message that had run before
    uint64_t order_violations = 0;  // runs after a later message of the same chat
    uint64_t corrupt = 0;           // runs answered kFail, see Handle
    uint64_t first_runs() const { return runs - duplicates; }  // messages that ran
  };
  // The first run of one message.
  struct FirstRun {
    uint64_t index;          // in the traffic file
    uint32_t chat;           // index into the traffic's chats
    uint64_t end_to_end_ns;  // Submit accepted -> handler done
    int64_t finished_ns;     // handler done, steady_clock nanoseconds since its epoch
  };
  // Calls visit(k, run) once for every message that ran, with its first run,
  // in no particular order, and returns the counts. The calls are split over
  // up to `threads` threads (this one included): thread k (0 <= k < threads)
  // makes the calls with first argument k, so a visitor that keeps a state
  // per k needs no lock. One pass over what the handler threads recorded: no
  // per-message array is built.
  //
  // Telling a repeated run apart takes a bit per message, visited on one
  // thread. It is needed only when some run found its chat already at or past
  // it (the progress Handle keeps per chat only grows, so every repeat does):
  // otherwise no run repeats another and the records are split as they are.
  // See "Thread safety" above.
  template <typename Visit>
  Totals ForEachFirstRun(unsigned threads, Visit&& visit) const;
  // The same on this thread alone: visit(run).
  template <typename Visit>
  Totals ForEachFirstRun(Visit&& visit) const {
    return ForEachFirstRun(1, [&visit](unsigned, const FirstRun& run) { visit(run); });
  }
  // The counts alone.
  Totals Collect() const {
    return ForEachFirstRun([](const FirstRun&) {});
  }

 private:
  // 24 bytes: what a run appends, on the handler's thread.
  struct Record {
    uint64_t key;  // the payload's value: index | chat field << kIndexBits
    uint64_t end_to_end_ns;
    int64_t finished_ns;
  };
  // Appended to by one thread only; read by ForEachFirstRun. The thread's
  // clock is here rather than in a thread_local of its own, so a run finds
  // both with one lookup.
  struct alignas(kCacheLine) ThreadRecords {
    // Records go in fixed chunks, so appending never moves what is already
    // recorded: a growing std::vector copied about 12 MB during a per_chat
    // replay of the shared capture, on the handler threads that bound it.
    static constexpr size_t kChunkRecords = 4096;  // 96 KB

    // The clock only when runs do work: without, a run ends at its start.
    explicit ThreadRecords(bool needs_clock);
    ~ThreadRecords();
    void Append(const Record& record) {
      if (tail_used == kChunkRecords) [[unlikely]]
        AddChunk();
      tail[tail_used++] = record;
    }
    [[gnu::noinline]] void AddChunk();
    // Chunk i's records (all of them but in the last chunk).
    std::span<const Record> Chunk(size_t i) const {
      return {chunks[i].get(), i + 1 == chunks.size() ? tail_used : kChunkRecords};
    }
    size_t size() const {
      return chunks.empty() ? 0 : (chunks.size() - 1) * kChunkRecords + tail_used;
    }

    std::vector<std::unique_ptr<Record[]>> chunks;
    Record* tail = nullptr;            // chunks.back()
    size_t tail_used = kChunkRecords;  // records in the tail chunk
    std::unique_ptr<internal::SliceClock> clock;  // null without work
  };
  // The largest message index + 1 that has run for one chat (0: none yet).
  // Packed, 8 to a cache line: with ordering per_chat one chat's runs are
  // sequential anyway, and neighbours that run on other threads at once share
  // a line only now and then. A line per chat made the array 64 times larger
  // (948 KB for the shared capture's 14,812 chats), and the handler missed
  // the cache on it at nearly every run (perf: the probe was 14% of a
  // per_chat replay's samples).
  struct ChatProgress {
    std::atomic<uint64_t> next_index{0};
  };

  [[gnu::noinline]] Outcome Corrupt();
  ThreadRecords& RecordsOfThisThread();  // inline in replay_probe.cc
  [[gnu::noinline]] ThreadRecords& NewRecordsOfThisThread();

  // Const after construction.
  const Traffic& traffic_;
  const WorkSpec work_;
  const bool no_work_;       // work_.none(), read at every run
  const bool chats_serial_;  // ordering kPerChat: see the constructor
  const uint64_t id_;  // tells this probe's thread-local cache entries apart
  const std::unique_ptr<ChatProgress[]> chats_;  // one per chat of traffic_
  // Every chat id of traffic_, back to back, and where each one ends: the
  // handler compares the message's chat id here, in one compact block,
  // instead of in traffic_.chats' scattered strings.
  std::string chat_text_;
  std::vector<uint64_t> chat_end_;

  // Rare events, from any handler thread; relaxed: plain counts, read after
  // every run has returned.
  std::atomic<uint64_t> order_violations_{0};
  std::atomic<uint64_t> corrupt_{0};
  // Runs that found their chat at or past them: order violations and
  // repeats (see ForEachFirstRun).
  std::atomic<uint64_t> not_new_{0};

  // Each thread's records, created on its first run.
  mutable std::mutex slots_mu_;
  std::vector<std::unique_ptr<ThreadRecords>> slots_;  // guarded by slots_mu_
};

template <typename Visit>
ReplayProbe::Totals ReplayProbe::ForEachFirstRun(unsigned threads, Visit&& visit) const {
  // Fewer records than this are not worth a thread.
  constexpr size_t kRecordsPerThread = 1 << 16;
  Totals totals;
  std::lock_guard<std::mutex> lock(slots_mu_);
  std::vector<std::span<const Record>> parts;
  for (const std::unique_ptr<ThreadRecords>& slot : slots_) {
    for (size_t i = 0; i < slot->chunks.size(); ++i) parts.push_back(slot->Chunk(i));
    totals.runs += slot->size();
  }
  const auto chat_of = [this](const Record& record, uint64_t index) {
    const auto chat = static_cast<uint32_t>(record.key >> kIndexBits);
    return chat == kChatInFile ? traffic_.messages[index].chat : chat;
  };
  if (not_new_.load(std::memory_order_relaxed) > 0) {
    // Some run may repeat another: one thread, a bit per message.
    std::vector<uint64_t> seen((traffic_.messages.size() + 63) / 64);
    for (const std::span<const Record> part : parts) {
      for (const Record& record : part) {
        const uint64_t index = record.key & kIndexMask;
        uint64_t& word = seen[index / 64];
        const uint64_t bit = uint64_t{1} << (index % 64);
        if ((word & bit) != 0) {
          ++totals.duplicates;
          continue;
        }
        word |= bit;
        visit(0u,
              FirstRun{index, chat_of(record, index), record.end_to_end_ns, record.finished_ns});
      }
    }
  } else {
    // Every record is a first run: thread k takes the k-th of `threads`
    // equal stretches of all the records, parts laid end to end.
    threads = static_cast<unsigned>(
        std::clamp<size_t>(totals.runs / kRecordsPerThread, 1, std::max(threads, 1u)));
    const auto visit_stretch = [&](unsigned k) {
      size_t skip = totals.runs * k / threads;
      size_t left = totals.runs * (k + 1) / threads - skip;
      for (const std::span<const Record> part : parts) {
        if (left == 0) break;
        if (skip >= part.size()) {
          skip -= part.size();
          continue;
        }
        const size_t take = std::min(left, part.size() - skip);
        for (const Record& record : part.subspan(skip, take)) {
          const uint64_t index = record.key & kIndexMask;
          visit(k,
                FirstRun{index, chat_of(record, index), record.end_to_end_ns, record.finished_ns});
        }
        skip = 0;
        left -= take;
      }
    };
    std::vector<std::thread> helpers;
    for (unsigned k = 1; k < threads; ++k) {
      try {
        helpers.emplace_back(visit_stretch, k);
      } catch (const std::system_error&) {
        visit_stretch(k);  // no thread to be had: this one does that stretch too
      }
    }
    visit_stretch(0);
    for (std::thread& helper : helpers) helper.join();
  }
  totals.order_violations = order_violations_.load(std::memory_order_relaxed);
  totals.corrupt = corrupt_.load(std::memory_order_relaxed);
  return totals;
}

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_REPLAY_PROBE_H_
