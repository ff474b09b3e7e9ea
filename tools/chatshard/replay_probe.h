// ReplayProbe: the handler `chatshard replay` gives the engine. It does the
// configured work, then checks and records each run: which message (its index
// in the traffic file, carried in the payload), whether a later message of the
// same chat already ran (an order violation), whether the message ran before
// (a duplicate), and its end-to-end latency (Submit accepted -> handler done).
//
// Thread safety: Handle may run on any number of threads at once. Collect
// must not overlap Handle: call it once every handler run has returned (after
// the engine was destroyed; Shutdown alone is not enough when a handler
// outlived its deadline). Collect then sees everything every run recorded:
// the engine's destructor waits for its runs and the TBB threads' slots were
// published under slots_mu_.
//
// Owns its per-chat and per-thread storage; `traffic` must outlive it.
#ifndef CHATSHARD_TOOLS_CHATSHARD_REPLAY_PROBE_H_
#define CHATSHARD_TOOLS_CHATSHARD_REPLAY_PROBE_H_

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "chatshard/message.h"
#include "traffic_file.h"
#include "work_spec.h"

namespace chatshard::cli {

// Keeps data that different threads write on different cache lines (false
// sharing). 64 bytes on every x86-64 and most ARM64 parts; not
// std::hardware_destructive_interference_size, which GCC warns may change.
inline constexpr size_t kCacheLine = 64;

class ReplayProbe {
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
  using Payload = std::array<char, kPayloadBytes>;
  // `index` < 2^40 (a file that large would not fit in memory).
  static Payload EncodePayload(uint64_t index, uint32_t chat);
  // The payload of message `index` of this probe's traffic.
  Payload PayloadFor(uint64_t index) const;

  // Marks a message that never ran in Totals::end_to_end_ns.
  static constexpr uint64_t kNotRun = std::numeric_limits<uint64_t>::max();

  // Each run performs work.Sample(index of the message in the file).
  ReplayProbe(const Traffic& traffic, WorkSpec work);
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
    // Per message of the file: the end-to-end latency of its first run, or kNotRun.
    std::vector<uint64_t> end_to_end_ns;
    // Per message of the file: when its first run finished (meaningless when
    // end_to_end_ns is kNotRun). finished - end_to_end_ns is when Submit accepted it.
    std::vector<Clock::time_point> finished;
  };
  // Merges the per-thread records. See "Thread safety" above.
  Totals Collect() const;

 private:
  struct Record {
    uint64_t index;
    uint64_t end_to_end_ns;
    Clock::time_point finished;  // the clock read that end_to_end_ns came from
  };
  // Appended to by one thread only; read by Collect.
  struct alignas(kCacheLine) ThreadRecords {
    std::vector<Record> records;
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

  ThreadRecords& RecordsOfThisThread();

  // Const after construction.
  const Traffic& traffic_;
  const WorkSpec work_;
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

  // Each thread's records, created on its first run.
  mutable std::mutex slots_mu_;
  std::vector<std::unique_ptr<ThreadRecords>> slots_;  // guarded by slots_mu_
};

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_REPLAY_PROBE_H_
