// Throughput over time: how many messages a replay's engine accepted and
// completed in each time bucket since the first Submit, derived after the run
// from the probe's per-message records (no cost on the handler path beyond the
// clock read the probe takes anyway).
#ifndef CHATSHARD_TOOLS_CHATSHARD_TIMELINE_H_
#define CHATSHARD_TOOLS_CHATSHARD_TIMELINE_H_

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "chatshard/message.h"

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

// Buckets messages by when Submit accepted them and when their first run
// finished, one at a time, as ReplayProbe::ForEachFirstRun hands them over.
// The timeline covers [start, start + span); an event outside it (a handler
// that outlived the drain deadline) counts in the nearest bucket.
class TimelineBuilder {
 public:
  TimelineBuilder(Clock::time_point start, Clock::duration span);
  // A message whose first run finished at `finished_ns` (steady_clock
  // nanoseconds since its epoch) and was accepted end_to_end_ns before.
  void Add(int64_t finished_ns, uint64_t end_to_end_ns) {
    if (width_ns_ == 0) return;
    const int64_t done = finished_ns - start_ns_;
    Count(completed_, timeline_.completed, done);
    Count(accepted_, timeline_.accepted, done - static_cast<int64_t>(end_to_end_ns));
  }
  // Adds what `other` (of the same start and span) counted.
  void Merge(TimelineBuilder& other);
  Timeline Take() &&;

 private:
  // Events come roughly in time order, so each series counts a streak of
  // events in one bucket locally and adds it to the bucket when an event
  // falls outside: no bucket arithmetic and no read-modify-write of memory
  // per event (an increment of the same counter at every event waited for
  // the previous one's store; perf put a quarter of the summary there).
  struct Streak {
    int64_t from = 0;  // the bucket's range, [from, to)
    int64_t to = 0;    // empty until the first event
    size_t bucket = 0;
    uint64_t events = 0;
  };
  void Count(Streak& streak, std::vector<uint64_t>& counts, int64_t since_start_ns) {
    if (since_start_ns >= streak.from && since_start_ns < streak.to) [[likely]] {
      ++streak.events;
      return;
    }
    Flush(streak, counts);
    Begin(streak, since_start_ns);
  }
  static void Flush(Streak& streak, std::vector<uint64_t>& counts) {
    if (streak.events > 0) counts[streak.bucket] += streak.events;
    streak.events = 0;
  }
  // Starts a streak in the bucket of `since_start_ns`, with that one event.
  void Begin(Streak& streak, int64_t since_start_ns);
  size_t BucketOf(int64_t since_start_ns) const;

  Timeline timeline_;
  Streak completed_;
  Streak accepted_;
  int64_t start_ns_ = 0;
  int64_t width_ns_ = 0;
  int64_t last_ = 0;  // the last bucket's index
};

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_TIMELINE_H_
