// ProgressMeter: shows on stderr how far a running replay has got. On a
// terminal it redraws one line about five times a second (a bar, messages
// submitted of the total, percent, the current completion rate, completed, and
// an ETA); otherwise it prints a plain line every two seconds. Runs shorter
// than a second print nothing.
//
// Thread safety: SetSubmitted is called by the one submitting thread; it is a
// relaxed store to a cache line of its own, so the submit loop pays no lock,
// no read-modify-write and no clock read for it. The meter's own thread
// samples that counter and the `completed` callback (which must be safe to
// call from another thread while the replay runs, e.g. Engine::Stats) and does
// all formatting and writing. Stop (or the destructor) joins that thread; call
// it before whatever `completed` reads is destroyed.
#ifndef CHATSHARD_TOOLS_CHATSHARD_PROGRESS_H_
#define CHATSHARD_TOOLS_CHATSHARD_PROGRESS_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "replay_probe.h"  // kCacheLine

namespace chatshard::cli {

struct ProgressOptions {
  bool enabled = true;    // false: no thread, no output
  bool terminal = false;  // redraw one line (true) or print plain lines
  std::FILE* out = stderr;
  // Nothing is shown before this much time has passed.
  std::chrono::milliseconds delay{1000};
  std::chrono::milliseconds terminal_interval{200};  // redraws on a terminal
  std::chrono::milliseconds plain_interval{2000};    // lines otherwise
  // The completion rate is measured over about this much recent time.
  std::chrono::milliseconds rate_window{1000};

  // Enabled as asked, `terminal` when stderr is one.
  static ProgressOptions ForStderr(bool enabled);
};

// What the meter shows at one instant.
struct ProgressSample {
  uint64_t total = 0;
  uint64_t submitted = 0;
  uint64_t completed = 0;
  double rate_per_s = 0;  // completions per second, recently; < 0 when unknown
  double elapsed_s = 0;
};

// "12.3 s", "4 min 05 s", "1 h 02 min"; "?" for a negative or non-finite value.
std::string FormatEta(double seconds);
// The terminal line, at most `width` columns (no "\r", no newline).
std::string FormatProgressBar(const ProgressSample& sample, size_t width);
// The plain line (no newline).
std::string FormatProgressLine(const ProgressSample& sample);

class ProgressMeter {
 public:
  // `total`: the messages the replay will submit. `completed` is called from
  // the meter's thread only.
  ProgressMeter(uint64_t total, std::function<uint64_t()> completed, ProgressOptions options);
  ProgressMeter(const ProgressMeter&) = delete;
  ProgressMeter& operator=(const ProgressMeter&) = delete;
  ~ProgressMeter();

  // Submitting thread: `n` messages have been submitted so far.
  void SetSubmitted(uint64_t n) {
    // Relaxed: a display value; nothing else is read through it.
    submitted_.store(n, std::memory_order_relaxed);
  }

  // Stops the meter's thread and clears (terminal) or finishes (plain) its
  // output. Idempotent.
  void Stop();

 private:
  void Run();

  // Const after construction.
  const uint64_t total_;
  const std::function<uint64_t()> completed_;
  const ProgressOptions options_;

  // Written by the submitting thread, read by the meter's thread.
  alignas(kCacheLine) std::atomic<uint64_t> submitted_{0};

  // Stop signal, guarded by mu_.
  alignas(kCacheLine) std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;

  std::thread thread_;  // started by the constructor when enabled; joined by Stop
};

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_PROGRESS_H_
