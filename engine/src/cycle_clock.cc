#include "cycle_clock.h"

#include <cmath>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace chatshard::internal {
namespace {

#if defined(__x86_64__)
bool HasInvariantTsc() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0x80000000u, &eax, &ebx, &ecx, &edx) == 0 || eax < 0x80000007u) return false;
  if (__get_cpuid(0x80000007u, &eax, &ebx, &ecx, &edx) == 0) return false;
  return (edx & (1u << 8)) != 0;
}

struct Reading {
  uint64_t tsc;
  int64_t ns;
};

// A (counter, clock) pair read as close together as possible: the clock read
// bracketed by two counter reads, best of several tries.
Reading ReadPair() {
  Reading best{0, 0};
  uint64_t best_span = UINT64_MAX;
  for (int i = 0; i < 5; ++i) {
    const uint64_t before = __rdtsc();
    const int64_t ns = NowNs();
    const uint64_t after = __rdtsc();
    if (after >= before && after - before < best_span) {
      best_span = after - before;
      best = {before + (after - before) / 2, ns};
    }
  }
  return best;
}

// Ticks per nanosecond over one span of `span_ns`, or 0 if the readings
// make no sense.
double MeasureRate(int64_t span_ns) {
  const Reading start = ReadPair();
  while (NowNs() - start.ns < span_ns) {
  }
  const Reading end = ReadPair();
  if (end.tsc <= start.tsc || end.ns <= start.ns) return 0;
  return static_cast<double>(end.tsc - start.tsc) / static_cast<double>(end.ns - start.ns);
}

TscCalibration Calibrate() {
  TscCalibration cal;
  if (!HasInvariantTsc()) return cal;
  // The first clock reads of a process are slow (page faults on the vDSO
  // data): a first 2 ms measurement was measured 0.3% off. So: warm up, then
  // accept a rate only when two successive 2 ms measurements agree within
  // 20 ppm (a 20 ns drift per re-anchoring span), or give the counter up.
  constexpr int64_t kSpanNs = 2'000'000;
  constexpr double kAgreement = 20e-6;
  for (int i = 0; i < 3; ++i) (void)ReadPair();
  double ticks_per_ns = 0;
  double previous = MeasureRate(kSpanNs);
  for (int attempt = 0; attempt < 4; ++attempt) {
    const double rate = MeasureRate(kSpanNs);
    if (previous > 0 && rate > 0 && std::abs(rate - previous) <= kAgreement * rate) {
      ticks_per_ns = (rate + previous) / 2;
      break;
    }
    previous = rate;
  }
  // A counter slower than 100 MHz or faster than 20 GHz is not a TSC we trust.
  if (!(ticks_per_ns > 0.1 && ticks_per_ns < 20.0)) return cal;
  cal.ns_per_tick_q32 = static_cast<uint64_t>(4294967296.0 / ticks_per_ns);
  cal.reanchor_ticks =
      static_cast<uint64_t>(static_cast<double>(SliceClock::kReanchorNs) * ticks_per_ns);
  cal.usable = true;
  return cal;
}
#else
TscCalibration Calibrate() { return {}; }
#endif

}  // namespace

const TscCalibration& GetTscCalibration() {
  static const TscCalibration calibration = Calibrate();
  return calibration;
}

}  // namespace chatshard::internal
