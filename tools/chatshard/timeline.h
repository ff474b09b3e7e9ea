// Throughput over time: how many messages a replay's engine accepted and
// completed in each time bucket since the first Submit, derived after the run
// from the probe's per-message records (no cost on the handler path beyond the
// clock read the probe takes anyway).
#ifndef CHATSHARD_TOOLS_CHATSHARD_TIMELINE_H_
#define CHATSHARD_TOOLS_CHATSHARD_TIMELINE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "chatshard/message.h"
#include "replay_probe.h"

namespace chatshard::cli {

// A timeline has at most this many buckets: the bucket width is the smallest
// of 1, 2, 5 x 10^k microseconds that covers the span with no more.
inline constexpr size_t kTimelineMaxBuckets = 300;

struct Timeline {
  double bucket_s = 0;  // width of every bucket; 0 for an empty timeline
  // Bucket i covers [i * bucket_s, (i + 1) * bucket_s) after the first Submit.
  std::vector<uint64_t> accepted;   // messages Submit accepted in bucket i
  std::vector<uint64_t> completed;  // messages whose first run finished in bucket i
};

// The bucket width for a run of `span_ns` nanoseconds; 0 when span_ns <= 0.
int64_t TimelineBucketNs(int64_t span_ns);

// Buckets every message that ran (end_to_end_ns not kNotRun) by when it was
// accepted (finished - end_to_end) and when it finished. The timeline covers
// [start, start + span); an event outside it (a handler that outlived the
// drain deadline) counts in the nearest bucket.
Timeline MakeTimeline(const ReplayProbe::Totals& totals, Clock::time_point start,
                      Clock::duration span);

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_TIMELINE_H_
