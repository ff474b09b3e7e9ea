#include "histogram.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <limits>
#include <random>
#include <thread>
#include <vector>

namespace chatshard::internal {
namespace {

constexpr uint64_t kMaxValue = std::numeric_limits<uint64_t>::max();

TEST(HistogramBucketTest, SmallValuesHaveExactBuckets) {
  for (uint64_t v = 0; v < 16; ++v) {
    EXPECT_EQ(HistogramBucketOf(v), static_cast<int>(v));
    EXPECT_EQ(HistogramBucketUpperBound(static_cast<int>(v)), v);
  }
}

TEST(HistogramBucketTest, SixteenSubBucketsPerPowerOfTwo) {
  // 16..31 still have width 1, 32..63 width 2, and so on.
  EXPECT_EQ(HistogramBucketOf(16), 16);
  EXPECT_EQ(HistogramBucketOf(31), 31);
  EXPECT_EQ(HistogramBucketOf(32), 32);
  EXPECT_EQ(HistogramBucketOf(33), 32);
  EXPECT_EQ(HistogramBucketOf(34), 33);
  EXPECT_EQ(HistogramBucketOf(63), 47);
  EXPECT_EQ(HistogramBucketOf(64), 48);
  EXPECT_EQ(HistogramBucketUpperBound(32), 33u);
  EXPECT_EQ(HistogramBucketUpperBound(47), 63u);
  EXPECT_EQ(HistogramBucketUpperBound(48), 67u);
}

TEST(HistogramBucketTest, ValuesFromTwoToTheFortyShareTheLastBucket) {
  constexpr uint64_t kLimit = uint64_t{1} << kHistogramMaxPowerOfTwo;
  EXPECT_EQ(HistogramBucketOf(kLimit - 1), kHistogramBuckets - 2);
  EXPECT_EQ(HistogramBucketUpperBound(kHistogramBuckets - 2), kLimit - 1);
  EXPECT_EQ(HistogramBucketOf(kLimit), kHistogramBuckets - 1);
  EXPECT_EQ(HistogramBucketOf(kMaxValue), kHistogramBuckets - 1);
  EXPECT_EQ(HistogramBucketUpperBound(kHistogramBuckets - 1), kMaxValue);
}

TEST(HistogramBucketTest, BucketsTileTheRangeInOrder) {
  // Every bucket starts right after the previous one ends.
  for (int b = 1; b < kHistogramBuckets; ++b) {
    const uint64_t first = HistogramBucketUpperBound(b - 1) + 1;
    ASSERT_EQ(HistogramBucketOf(first), b) << "first value of bucket " << b;
    ASSERT_EQ(HistogramBucketOf(HistogramBucketUpperBound(b)), b) << "last value of " << b;
    ASSERT_GE(HistogramBucketUpperBound(b), first);
  }
}

TEST(HistogramBucketTest, UpperBoundWithinOneSixteenth) {
  std::mt19937_64 rng(1);
  auto check = [](uint64_t v) {
    const uint64_t upper = HistogramBucketUpperBound(HistogramBucketOf(v));
    ASSERT_GE(upper, v);
    ASSERT_LE(upper - v, v / 16) << v;
  };
  for (uint64_t v = 0; v < 100000; ++v) check(v);
  for (int i = 0; i < 100000; ++i) check(rng() >> (24 + rng() % 40));  // < 2^40
  for (int p = 4; p < kHistogramMaxPowerOfTwo; ++p) {
    const uint64_t power = uint64_t{1} << p;
    check(power);
    check(power - 1);
    check(power + 1);
    check(2 * power - 1);
  }
}

TEST(HistogramDataTest, EmptyHasZeroPercentiles) {
  HistogramData h;
  EXPECT_EQ(h.Percentile(0), 0u);
  EXPECT_EQ(h.Percentile(0.5), 0u);
  EXPECT_EQ(h.Percentile(1), 0u);
  const LatencySummary s = h.SummaryMicros();
  EXPECT_EQ(s.count, 0u);
  EXPECT_EQ(s.mean_us, 0);
  EXPECT_EQ(s.p99_us, 0);
  EXPECT_EQ(s.max_us, 0);
}

TEST(HistogramDataTest, ConstantValueGivesThatValueEverywhere) {
  HistogramData h;
  for (int i = 0; i < 1000; ++i) h.Record(12345);
  // The bucket bound exceeds 12345, but max caps it to the exact value.
  for (double q : {0.0, 0.5, 0.9, 0.99, 0.999, 1.0}) EXPECT_EQ(h.Percentile(q), 12345u) << q;
  const LatencySummary s = h.SummaryMicros();
  EXPECT_EQ(s.count, 1000u);
  EXPECT_DOUBLE_EQ(s.mean_us, 12.345);
  EXPECT_DOUBLE_EQ(s.p50_us, 12.345);
  EXPECT_DOUBLE_EQ(s.max_us, 12.345);
}

TEST(HistogramDataTest, UniformDistributionPercentiles) {
  HistogramData h;
  constexpr uint64_t kN = 1'000'000;
  for (uint64_t v = 1; v <= kN; ++v) h.Record(v);
  EXPECT_EQ(h.count, kN);
  EXPECT_EQ(h.sum, kN * (kN + 1) / 2);
  EXPECT_EQ(h.max, kN);
  // Nearest rank over 1..N: the q-quantile is ceil(q N) itself; the histogram
  // answers its bucket's upper bound, at most 1/16 above.
  for (double q : {0.01, 0.1, 0.5, 0.9, 0.99, 0.999}) {
    const uint64_t exact = static_cast<uint64_t>(q * kN + 0.5);
    const uint64_t got = h.Percentile(q);
    EXPECT_GE(got, exact) << q;
    EXPECT_LE(got, exact + exact / 16) << q;
    EXPECT_EQ(got, std::min(HistogramBucketUpperBound(HistogramBucketOf(exact)), kN)) << q;
  }
  EXPECT_EQ(h.Percentile(1.0), kN);
  EXPECT_EQ(h.Percentile(0.0), 1u);
  const LatencySummary s = h.SummaryMicros();
  EXPECT_DOUBLE_EQ(s.mean_us, 500.0005);
  EXPECT_DOUBLE_EQ(s.max_us, 1000.0);
  EXPECT_NEAR(s.p50_us, 500.0, 500.0 / 16);
  EXPECT_NEAR(s.p999_us, 999.0, 999.0 / 16);
}

TEST(HistogramDataTest, NearestRankOnSmallSet) {
  HistogramData h;
  for (uint64_t v : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}) h.Record(v);
  EXPECT_EQ(h.Percentile(0.1), 1u);
  EXPECT_EQ(h.Percentile(0.11), 2u);
  EXPECT_EQ(h.Percentile(0.5), 5u);
  EXPECT_EQ(h.Percentile(0.9), 9u);
  EXPECT_EQ(h.Percentile(0.91), 10u);
  // Out-of-range q is clamped.
  EXPECT_EQ(h.Percentile(-1), 1u);
  EXPECT_EQ(h.Percentile(2), 10u);
}

TEST(HistogramDataTest, ThousandthRankIsNotRoundedUp) {
  // 0.999 * 1000 is 999 in exact arithmetic; the 1000th value is an outlier
  // that p999 must not report.
  HistogramData h;
  for (int i = 0; i < 999; ++i) h.Record(100);
  h.Record(1'000'000);
  EXPECT_EQ(h.Percentile(0.999), HistogramBucketUpperBound(HistogramBucketOf(100)));
  EXPECT_EQ(h.Percentile(0.999), 103u);  // 100 lies in 100..103
  EXPECT_EQ(h.Percentile(1), 1'000'000u);
}

TEST(HistogramDataTest, HugeValuesCapAtMax) {
  HistogramData h;
  h.Record(uint64_t{1} << 50);
  EXPECT_EQ(h.Percentile(0.5), uint64_t{1} << 50);
}

TEST(HistogramDataTest, MergeEqualsRecordingEverything) {
  std::mt19937_64 rng(9);
  HistogramData a, b, all;
  for (int i = 0; i < 50000; ++i) {
    const uint64_t v = rng() % 10'000'000;
    (i % 3 == 0 ? a : b).Record(v);
    all.Record(v);
  }
  HistogramData merged = a;
  merged.Merge(b);
  EXPECT_EQ(merged.counts, all.counts);
  EXPECT_EQ(merged.count, all.count);
  EXPECT_EQ(merged.sum, all.sum);
  EXPECT_EQ(merged.max, all.max);
  for (double q : {0.5, 0.9, 0.99}) EXPECT_EQ(merged.Percentile(q), all.Percentile(q));

  HistogramData with_empty = all;
  with_empty.Merge(HistogramData{});
  EXPECT_EQ(with_empty.counts, all.counts);
  EXPECT_EQ(with_empty.count, all.count);
}

TEST(AtomicHistogramTest, SingleThreadCopyIsExact) {
  AtomicHistogram atomic;
  HistogramData plain;
  for (uint64_t v : {0ull, 5ull, 17ull, 1000ull, 123456789ull, 1ull << 45}) {
    atomic.Record(v);
    plain.Record(v);
  }
  HistogramData copy;
  atomic.AddTo(&copy);
  EXPECT_EQ(copy.counts, plain.counts);
  EXPECT_EQ(copy.count, plain.count);
  EXPECT_EQ(copy.sum, plain.sum);
  EXPECT_EQ(copy.max, plain.max);
  // AddTo adds: a second copy into the same value doubles the counts.
  atomic.AddTo(&copy);
  EXPECT_EQ(copy.count, 2 * plain.count);
  EXPECT_EQ(copy.max, plain.max);
}

TEST(AtomicHistogramTest, ConcurrentReaderSeesMonotoneCountsAndFinalIsExact) {
  constexpr int kValues = 300'000;
  AtomicHistogram atomic;
  std::atomic<bool> writer_done{false};
  HistogramData expected;
  std::thread writer([&] {
    std::mt19937_64 rng(11);
    for (int i = 0; i < kValues; ++i) atomic.Record(rng() % 5'000'000);
    writer_done.store(true, std::memory_order_release);
  });

  HistogramData previous;
  int snapshots = 0;
  bool monotone = true;
  while (!writer_done.load(std::memory_order_acquire) || snapshots == 0) {
    HistogramData now;
    atomic.AddTo(&now);
    for (int b = 0; b < kHistogramBuckets && monotone; ++b) {
      monotone = now.counts[b] >= previous.counts[b];
    }
    monotone = monotone && now.count >= previous.count && now.sum >= previous.sum &&
               now.max >= previous.max && now.count <= static_cast<uint64_t>(kValues);
    ASSERT_TRUE(monotone) << "snapshot " << snapshots << " went backwards";
    previous = now;
    ++snapshots;
  }
  writer.join();

  std::mt19937_64 rng(11);
  for (int i = 0; i < kValues; ++i) expected.Record(rng() % 5'000'000);
  HistogramData final_copy;
  atomic.AddTo(&final_copy);
  EXPECT_EQ(final_copy.counts, expected.counts);
  EXPECT_EQ(final_copy.count, expected.count);
  EXPECT_EQ(final_copy.sum, expected.sum);
  EXPECT_EQ(final_copy.max, expected.max);
  EXPECT_GT(snapshots, 0);
}

}  // namespace
}  // namespace chatshard::internal
