// Stats: a merged, point-in-time copy of what the engine recorded.
//
// Read contract: counters and histograms are recorded per thread with relaxed
// atomics and merged by Engine::Stats(). While messages flow, each counter is
// exact for some recent instant, but different counters may belong to
// slightly different instants. Once the engine is quiet (no Submit in
// progress, nothing queued or running), the snapshot is exact: per shard,
// submitted == completed + failed, and waiting == active == 0.
#ifndef CHATSHARD_STATS_H_
#define CHATSHARD_STATS_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "chatshard/message.h"

namespace chatshard {

// Latency percentiles, in microseconds (nearest-rank over log-linear buckets:
// each value is an upper bound within 1/16 of the true one).
struct LatencySummary {
  uint64_t count = 0;
  double mean_us = 0;
  double p50_us = 0;
  double p90_us = 0;
  double p99_us = 0;
  double p999_us = 0;
  double max_us = 0;
};

struct HotChat {
  std::string chat_id;
  uint32_t shard = 0;
  uint64_t count = 0;  // estimated messages (SpaceSaving: never under-counts)
  uint64_t error = 0;  // count - error <= true count <= count
};

struct ShardStats {
  uint32_t shard = 0;
  uint64_t submitted = 0;  // accepted by Submit
  uint64_t rejected = 0;   // all reasons
  std::array<uint64_t, kSubmitResultCount> rejected_by_reason{};  // indexed by SubmitResult
  uint64_t waiting = 0;    // accepted, not running (queued or waiting for retry)
  uint64_t active = 0;     // running in a handler now
  uint64_t completed = 0;  // finished kDone
  uint64_t failed = 0;     // finished failed
  uint64_t retried = 0;    // runs that answered kRetry and were run again
  LatencySummary queue_wait;    // accepted -> first run starts
  LatencySummary service_time;  // one handler run
};

// Scores of how evenly work spreads. For per-shard load, "load" is each
// shard's submitted message count. Note that the chi-square test asks whether
// message load is uniform across shards; all of one chat's messages land on
// one shard, so on skewed real traffic it rejects uniformity even for a
// perfect hash. To test the hash itself, run the same score over distinct
// chats per shard (tests/engine/routing_test.cc does, on the real capture).
struct Fairness {
  double jain = 1;           // Jain's index (sum x)^2 / (n sum x^2), 1/n..1, 1 is even
  double cv = 0;             // coefficient of variation, stddev / mean
  double max_over_mean = 1;  // the busiest shard's load over the mean
  double chi2 = 0;           // Pearson chi-square of shard loads against uniform
  double chi2_p = 1;         // its p-value with (n - 1) degrees of freedom
  // Jain's index of the service (messages run) received by chats that were
  // backlogged, per shard averaged over shards with at least two such chats.
  double backlogged_chat_jain = 1;
  // The worst queue wait seen by a message of a chat that is not among the
  // hottest chats, in microseconds.
  double worst_cold_wait_us = 0;
};

struct StatsSnapshot {
  std::vector<ShardStats> shards;
  ShardStats total;  // sums; percentiles over all shards' merged histograms
  Fairness fairness;
  std::vector<HotChat> hot_chats;  // hottest first
  double uptime_s = 0;

  // The snapshot as one JSON object (documented in README "Stats").
  std::string ToJson() const;
};

}  // namespace chatshard

#endif  // CHATSHARD_STATS_H_
