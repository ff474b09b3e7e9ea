// WorkSpec: the simulated cost of one handler run, for `chatshard replay` and
// `chatshard serve` (--work-us and --work-mode).
//
// --work-us takes a fixed time or a distribution, all in microseconds:
//   50                   every run takes 50 us
//   uniform:10-200       uniform between 10 and 200 us
//   exp:50               exponential with mean 50 us (many short, a few long)
//   lognormal:50,1.2     log-normal with median 50 us and sigma 1.2 (heavy tail)
// A sample is capped at kMaxWorkUs. --work-mode busy spins (CPU-bound work),
// sleep sleeps (I/O-bound work; the thread is free for nothing else either:
// TBB does not run other tasks on a sleeping thread).
//
// Sample(key) is a pure function of the spec and the key (a message's index in
// the file, or a stream id's sequence), so a message costs the same in every
// run and on every thread, and no random generator is shared between threads.
//
// Thread safety: const after parsing; Sample and Perform may run on any
// number of threads at once.
#ifndef CHATSHARD_TOOLS_CHATSHARD_WORK_SPEC_H_
#define CHATSHARD_TOOLS_CHATSHARD_WORK_SPEC_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "chatshard/status.h"

namespace chatshard::cli {

enum class WorkMode {
  kBusy,   // the handler spins for the work time: CPU-bound work
  kSleep,  // the handler sleeps for the work time: I/O-bound work
};
std::string_view WorkModeName(WorkMode mode);  // "busy", "sleep"

class WorkSpec {
 public:
  enum class Kind { kFixed, kUniform, kExponential, kLogNormal };

  // The longest one run may take, in microseconds (10 s).
  static constexpr double kMaxWorkUs = 10'000'000;

  // No work: Perform returns at once.
  WorkSpec() = default;
  static WorkSpec Fixed(double us, WorkMode mode = WorkMode::kBusy);

  // Parses the --work-us syntax above. The error names the text and what was
  // expected, for example "--work-us 'exp:-3': the mean must be > 0".
  static Result<WorkSpec> Parse(std::string_view text, WorkMode mode = WorkMode::kBusy);

  Kind kind() const { return kind_; }
  WorkMode mode() const { return mode_; }
  void set_mode(WorkMode mode) { mode_ = mode; }
  bool none() const { return kind_ == Kind::kFixed && a_ <= 0; }

  // The expected time of one run in microseconds (before the cap).
  double MeanUs() const;
  // The text Parse accepts for this spec, for reports ("exp:50").
  std::string ToString() const;

  // The time of the run of `key`: deterministic, in [0, kMaxWorkUs] us.
  std::chrono::nanoseconds Sample(uint64_t key) const;
  // Spends Sample(key) as configured: spinning or sleeping.
  void Perform(uint64_t key) const;

 private:
  Kind kind_ = Kind::kFixed;
  WorkMode mode_ = WorkMode::kBusy;
  // kFixed: a = time. kUniform: [a, b]. kExponential: a = mean.
  // kLogNormal: a = median, b = sigma.
  double a_ = 0;
  double b_ = 0;
};

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_WORK_SPEC_H_
