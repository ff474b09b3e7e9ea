// Thread safety: HistogramData is a plain value (no synchronisation).
// AtomicHistogram has exactly one writer thread and any number of concurrent
// readers; it is contention-free: Record does relaxed loads and relaxed stores
// (no read-modify-write, no fence) because only one thread ever writes, and
// readers use relaxed loads.
//
// Log-linear latency histogram of uint64 values (nanoseconds by convention):
// values 0..15 have a bucket each, then every power of two [2^p, 2^(p+1)) is
// cut into 16 equal sub-buckets, so a bucket's upper bound exceeds any value
// in it by less than 1/16 of that value. Values >= 2^40 ns (~18 min) share the
// last bucket. 593 buckets, 4.7 KiB of counts.
#ifndef CHATSHARD_ENGINE_SRC_HISTOGRAM_H_
#define CHATSHARD_ENGINE_SRC_HISTOGRAM_H_

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>

#include "chatshard/stats.h"

namespace chatshard::internal {

inline constexpr int kHistogramSubBucketBits = 4;
inline constexpr int kHistogramSubBuckets = 1 << kHistogramSubBucketBits;
inline constexpr int kHistogramMaxPowerOfTwo = 40;
// kHistogramSubBuckets exact buckets for 0..15, kHistogramSubBuckets per power
// of two from 2^4 up to 2^39, and one for everything >= 2^40.
inline constexpr int kHistogramBuckets =
    kHistogramSubBuckets +
    (kHistogramMaxPowerOfTwo - kHistogramSubBucketBits) * kHistogramSubBuckets + 1;
static_assert(kHistogramBuckets == 593);
inline constexpr int kHistogramLastBucket = kHistogramBuckets - 1;

// The bucket holding `value`, in [0, kHistogramBuckets). Inline: drain tasks
// call it twice per message.
inline int HistogramBucketOf(uint64_t value) {
  if (value < static_cast<uint64_t>(kHistogramSubBuckets)) return static_cast<int>(value);
  const int power = std::bit_width(value) - 1;  // value in [2^power, 2^(power+1))
  if (power >= kHistogramMaxPowerOfTwo) return kHistogramLastBucket;
  const int shift = power - kHistogramSubBucketBits;
  // The top kHistogramSubBucketBits + 1 bits are 1xxxx: xxxx picks the sub-bucket.
  const int sub_bucket = static_cast<int>(value >> shift) - kHistogramSubBuckets;
  return (shift + 1) * kHistogramSubBuckets + sub_bucket;
}
// The largest value bucket `bucket` holds (inclusive); UINT64_MAX for the last.
uint64_t HistogramBucketUpperBound(int bucket);

// Counts per bucket plus count, sum and max: a mergeable value.
struct HistogramData {
  std::array<uint64_t, kHistogramBuckets> counts{};
  uint64_t count = 0;
  uint64_t sum = 0;  // wraps after 2^64 ns (584 years) in total
  uint64_t max = 0;

  // Inline: the replay's summary records every message.
  void Record(uint64_t value) { RecordIn(HistogramBucketOf(value), value); }
  // Record, with `bucket` == HistogramBucketOf(value) already known (one value
  // going into several histograms).
  void RecordIn(int bucket, uint64_t value) {
    ++counts[bucket];
    ++count;
    sum += value;
    if (value > max) max = value;
  }
  void Merge(const HistogramData& other);
  // Nearest rank: the bucket of the ceil(q * count)-th smallest value, as its
  // upper bound capped at `max`. q is clamped to [0, 1]. 0 if empty.
  uint64_t Percentile(double q) const;
  // count, mean, p50/p90/p99/p999 and max, converted from ns to microseconds.
  LatencySummary SummaryMicros() const;
};

// Invariants:
//  1. Only the writer thread stores; every store it makes to a counter is the
//     value it loaded plus something, so each bucket and sum_ never decrease
//     and max_ never decreases.
//  2. A reader sees each atomic's values in modification order (coherence),
//     so its successive AddTo results never go down, bucket by bucket; no
//     other ordering between the atomics is promised, so a copy taken while
//     the writer runs may hold a sum or max from a slightly different instant
//     than the counts. Once the writer is quiet (and its last stores have
//     become visible, e.g. through the thread join), the copy is exact.
//
// There is no count_ atomic: AddTo derives count from the buckets it read, so
// count always equals the sum of the copied counts and Percentile's walk
// agrees with it, and Record does one store fewer.
class AtomicHistogram {
 public:
  AtomicHistogram() = default;
  AtomicHistogram(const AtomicHistogram&) = delete;
  AtomicHistogram& operator=(const AtomicHistogram&) = delete;

  // Writer thread only. Inline: on every message's path.
  void Record(uint64_t value) {
    // Relaxed load + relaxed store instead of fetch_add: this thread is the
    // only writer, so nothing can come between the two, and a plain store
    // costs no locked instruction. Readers need no ordering between counters
    // (invariant 2).
    std::atomic<uint64_t>& bucket = counts_[HistogramBucketOf(value)];
    bucket.store(bucket.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    sum_.store(sum_.load(std::memory_order_relaxed) + value, std::memory_order_relaxed);
    if (value > max_.load(std::memory_order_relaxed)) {
      max_.store(value, std::memory_order_relaxed);
    }
  }
  // Any thread: adds a copy of what was recorded so far into `out`.
  void AddTo(HistogramData* out) const;

 private:
  // Written by the single writer, read by anyone.
  std::array<std::atomic<uint64_t>, kHistogramBuckets> counts_{};
  std::atomic<uint64_t> sum_{0};
  std::atomic<uint64_t> max_{0};
};

}  // namespace chatshard::internal

#endif  // CHATSHARD_ENGINE_SRC_HISTOGRAM_H_
