#include "histogram.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace chatshard::internal {
namespace {

double NanosToMicros(uint64_t nanos) { return static_cast<double>(nanos) / 1000.0; }

}  // namespace

uint64_t HistogramBucketUpperBound(int bucket) {
  if (bucket < kHistogramSubBuckets) return static_cast<uint64_t>(std::max(bucket, 0));
  if (bucket >= kHistogramLastBucket) return std::numeric_limits<uint64_t>::max();
  const int shift = bucket / kHistogramSubBuckets - 1;
  const uint64_t sub_bucket = static_cast<uint64_t>(bucket % kHistogramSubBuckets);
  const uint64_t lower = (kHistogramSubBuckets + sub_bucket) << shift;
  return lower + (uint64_t{1} << shift) - 1;
}

void HistogramData::Merge(const HistogramData& other) {
  for (int i = 0; i < kHistogramBuckets; ++i) counts[i] += other.counts[i];
  count += other.count;
  sum += other.sum;
  max = std::max(max, other.max);
}

uint64_t HistogramData::Percentile(double q) const {
  if (count == 0) return 0;
  if (!(q > 0)) q = 0;  // also catches NaN
  if (q > 1) q = 1;
  // The small slack keeps q * count that should be whole (0.999 * 1000) from
  // rounding up to the next rank because q is not exact in binary.
  const double exact_rank = q * static_cast<double>(count);
  uint64_t rank = static_cast<uint64_t>(std::ceil(exact_rank - 1e-9));
  rank = std::clamp<uint64_t>(rank, 1, count);
  uint64_t seen = 0;
  for (int i = 0; i < kHistogramBuckets; ++i) {
    seen += counts[i];
    if (seen >= rank) return std::min(HistogramBucketUpperBound(i), max);
  }
  // Only when count exceeds the sum of the buckets (a hand-built value).
  return max;
}

LatencySummary HistogramData::SummaryMicros() const {
  LatencySummary out;
  out.count = count;
  if (count == 0) return out;
  out.mean_us = NanosToMicros(sum) / static_cast<double>(count);
  out.p50_us = NanosToMicros(Percentile(0.5));
  out.p90_us = NanosToMicros(Percentile(0.9));
  out.p99_us = NanosToMicros(Percentile(0.99));
  out.p999_us = NanosToMicros(Percentile(0.999));
  out.max_us = NanosToMicros(max);
  return out;
}

void AtomicHistogram::AddTo(HistogramData* out) const {
  uint64_t count = 0;
  for (int i = 0; i < kHistogramBuckets; ++i) {
    const uint64_t c = counts_[i].load(std::memory_order_relaxed);
    out->counts[i] += c;
    count += c;
  }
  out->count += count;
  out->sum += sum_.load(std::memory_order_relaxed);
  out->max = std::max(out->max, max_.load(std::memory_order_relaxed));
}

}  // namespace chatshard::internal
