// SliceClock: steady-clock nanoseconds for the drain loop, read from the CPU's
// time-stamp counter between anchors.
//
// Why: a drain task reads the clock once per message (the end of one handler
// run is the start of the next) to record queue wait and service time. In
// this project's VM, std::chrono::steady_clock::now() costs about 32 ns and
// was 40% of the drain thread's samples in `perf record -e cpu-clock` of the
// kNone end-to-end benchmark; RDTSC costs about 12 ns.
//
// How: each SliceClock is owned by one thread. It anchors itself to
// steady_clock (one real clock read) and from then on answers
//   anchor_ns + (rdtsc - anchor_tsc) * ns_per_tick,
// re-anchoring once more than kReanchorNs of ticks have passed, or when the
// counter went backwards (a migration to a CPU whose counter is behind). So
// every value is a steady_clock reading plus at most kReanchorNs of
// extrapolation, whose error is that span times the calibration error (at
// most 20 parts per million: 20 ns), plus, if the thread moved to another
// CPU meanwhile, the counters' offset between the two CPUs (virtual machines
// may have some; cycle_clock_test reports what it sees).
//
// ns_per_tick is calibrated once per process against steady_clock (two to
// five 2 ms spins, on first use; Engine::Create makes that first use). The counter is used only when the CPU reports an
// invariant TSC (constant rate in every P-/C-state, CPUID 0x80000007
// EDX bit 8) and the calibrated rate is plausible; otherwise, and on other
// architectures, SliceClock simply reads steady_clock every time.
#ifndef CHATSHARD_ENGINE_SRC_CYCLE_CLOCK_H_
#define CHATSHARD_ENGINE_SRC_CYCLE_CLOCK_H_

#include <cstdint>

#if defined(__x86_64__)
#include <x86intrin.h>
#endif

namespace chatshard::internal {

int64_t NowNs();  // steady_clock, in nanoseconds since its epoch (shard.cc)

struct TscCalibration {
  bool usable = false;
  // Nanoseconds per tick in 32.32 fixed point.
  uint64_t ns_per_tick_q32 = 0;
  // Ticks in kReanchorNs.
  uint64_t reanchor_ticks = 0;
};

// Calibrated on the first call (thread-safe), then constant.
const TscCalibration& GetTscCalibration();

class SliceClock {
 public:
  // Longest extrapolation from one steady_clock reading.
  static constexpr int64_t kReanchorNs = 1'000'000;

  SliceClock() : cal_(GetTscCalibration()) { Anchor(); }

  int64_t Now() {
#if defined(__x86_64__)
    if (cal_.usable) {
      const uint64_t ticks = __rdtsc() - anchor_tsc_;  // wraps if it went back
      if (ticks <= cal_.reanchor_ticks) {
        // ticks < 2^32 (about 2.4e6 at 2.4 GHz) and the factor < 2^36, so
        // the product fits in 64 bits.
        return anchor_ns_ + static_cast<int64_t>((ticks * cal_.ns_per_tick_q32) >> 32);
      }
      Anchor();
      return anchor_ns_;
    }
#endif
    return NowNs();
  }

 private:
  void Anchor() {
#if defined(__x86_64__)
    if (cal_.usable) {
      // The clock read bracketed by two counter reads: a thread interrupted
      // in between (a VM exit took 1-2 us here) would anchor every value of
      // the next span that much late, so a wide bracket is read again.
      for (int attempt = 0;; ++attempt) {
        const uint64_t before = __rdtsc();
        anchor_ns_ = NowNs();
        const uint64_t after = __rdtsc();
        anchor_tsc_ = before + (after - before) / 2;
        if (after - before <= cal_.reanchor_ticks / 4096 || attempt == 3) return;  // ~250 ns
      }
    }
#endif
    anchor_ns_ = NowNs();
  }

  const TscCalibration& cal_;
  uint64_t anchor_tsc_ = 0;
  int64_t anchor_ns_ = 0;
};

}  // namespace chatshard::internal

#endif  // CHATSHARD_ENGINE_SRC_CYCLE_CLOCK_H_
