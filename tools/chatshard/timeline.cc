#include "timeline.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <utility>

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

TimelineBuilder::TimelineBuilder(Clock::time_point start, Clock::duration span)
    : start_ns_(
          std::chrono::duration_cast<std::chrono::nanoseconds>(start.time_since_epoch()).count()) {
  const int64_t span_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(span).count();
  width_ns_ = TimelineBucketNs(span_ns);
  if (width_ns_ == 0) return;
  const int64_t buckets = (span_ns + width_ns_ - 1) / width_ns_;
  last_ = buckets - 1;
  timeline_.bucket_s = static_cast<double>(width_ns_) / 1e9;
  timeline_.accepted.assign(static_cast<size_t>(buckets), 0);
  timeline_.completed.assign(static_cast<size_t>(buckets), 0);
}

void TimelineBuilder::Begin(Streak& streak, int64_t since_start_ns) {
  streak.bucket = BucketOf(since_start_ns);
  const auto bucket = static_cast<int64_t>(streak.bucket);
  // The first and last buckets also take what falls before and after the span.
  streak.from = bucket == 0 ? std::numeric_limits<int64_t>::min() : bucket * width_ns_;
  streak.to = bucket == last_ ? std::numeric_limits<int64_t>::max() : (bucket + 1) * width_ns_;
  streak.events = 1;
}

size_t TimelineBuilder::BucketOf(int64_t since_start_ns) const {
  // A division only when a streak ends (see Streak), so no cheaper trick.
  return static_cast<size_t>(std::clamp<int64_t>(since_start_ns / width_ns_, 0, last_));
}

void TimelineBuilder::Merge(TimelineBuilder& other) {
  Flush(other.completed_, other.timeline_.completed);
  Flush(other.accepted_, other.timeline_.accepted);
  for (size_t i = 0; i < timeline_.completed.size(); ++i) {
    timeline_.completed[i] += other.timeline_.completed[i];
    timeline_.accepted[i] += other.timeline_.accepted[i];
  }
}

Timeline TimelineBuilder::Take() && {
  if (width_ns_ != 0) {
    Flush(completed_, timeline_.completed);
    Flush(accepted_, timeline_.accepted);
  }
  return std::move(timeline_);
}

}  // namespace chatshard::cli
