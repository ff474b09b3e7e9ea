#include "cycle_clock.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>

namespace chatshard::internal {
namespace {

// Every SliceClock reading must be a steady_clock time: bracketed by real
// clock reads taken just before and after it, give or take the calibration
// error over at most one re-anchoring span (20 ppm of 1 ms) and the anchor's
// own bracket (~250 ns). Before anchors were bracketed, readings here ran
// up to 2.7 us ahead after a VM exit between the counter and clock reads.
TEST(SliceClockTest, ReadingsStayWithinRealClockBrackets) {
  const TscCalibration& cal = GetTscCalibration();
  std::printf("TSC usable: %s\n", cal.usable ? "yes" : "no (steady_clock every time)");
  constexpr int64_t kSlackNs = 2'000;
  SliceClock clock;
  const int64_t end = NowNs() + 30'000'000;  // 30 ms: many re-anchors
  int64_t worst = 0;
  int64_t reads = 0;
  while (true) {
    const int64_t before = NowNs();
    const int64_t value = clock.Now();
    const int64_t after = NowNs();
    ++reads;
    worst = std::max({worst, before - value, value - after});
    ASSERT_GE(value, before - kSlackNs) << "read " << reads;
    ASSERT_LE(value, after + kSlackNs) << "read " << reads;
    if (after > end) break;
  }
  std::printf("%lld reads, worst distance outside the bracket %lld ns\n",
              static_cast<long long>(reads), static_cast<long long>(worst));
}

TEST(SliceClockTest, CalibrationIsPlausibleWhenUsable) {
  const TscCalibration& cal = GetTscCalibration();
  if (!cal.usable) {
    EXPECT_EQ(cal.ns_per_tick_q32, 0u);
    return;
  }
  // Between 0.05 and 10 ns per tick (20 GHz .. 100 MHz).
  EXPECT_GT(cal.ns_per_tick_q32, uint64_t{1} << 32 >> 5);
  EXPECT_LT(cal.ns_per_tick_q32, uint64_t{10} << 32);
  EXPECT_GT(cal.reanchor_ticks, 0u);
}

}  // namespace
}  // namespace chatshard::internal
