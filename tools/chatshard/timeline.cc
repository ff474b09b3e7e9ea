#include "timeline.h"

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace chatshard::cli {

int64_t TimelineBucketNs(int64_t span_ns) {
  if (span_ns <= 0) return 0;
  const int64_t max_buckets = static_cast<int64_t>(kTimelineMaxBuckets);
  for (int64_t decade = 1000;; decade *= 10) {
    for (const int64_t step : {1, 2, 5}) {
      const int64_t width = step * decade;
      if ((span_ns + width - 1) / width <= max_buckets) return width;
    }
  }
}

Timeline MakeTimeline(const ReplayProbe::Totals& totals, Clock::time_point start,
                      Clock::duration span) {
  using std::chrono::nanoseconds;
  const int64_t span_ns = std::chrono::duration_cast<nanoseconds>(span).count();
  const int64_t width_ns = TimelineBucketNs(span_ns);
  Timeline timeline;
  if (width_ns == 0) return timeline;
  const int64_t buckets = (span_ns + width_ns - 1) / width_ns;
  timeline.bucket_s = static_cast<double>(width_ns) / 1e9;
  timeline.accepted.assign(static_cast<size_t>(buckets), 0);
  timeline.completed.assign(static_cast<size_t>(buckets), 0);
  const auto bucket_of = [&](int64_t since_start_ns) {
    return static_cast<size_t>(std::clamp<int64_t>(since_start_ns / width_ns, 0, buckets - 1));
  };
  for (size_t index = 0; index < totals.end_to_end_ns.size(); ++index) {
    const uint64_t end_to_end_ns = totals.end_to_end_ns[index];
    if (end_to_end_ns == ReplayProbe::kNotRun) continue;
    const int64_t finished_ns =
        std::chrono::duration_cast<nanoseconds>(totals.finished[index] - start).count();
    ++timeline.completed[bucket_of(finished_ns)];
    ++timeline.accepted[bucket_of(finished_ns - static_cast<int64_t>(end_to_end_ns))];
  }
  return timeline;
}

}  // namespace chatshard::cli
