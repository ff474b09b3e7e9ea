// The engine's StatsSnapshot and the Redis adapter's RedisStats as Prometheus
// metrics in a prometheus::Registry, for `chatshard serve`'s /metrics and for
// any host program that exposes a registry of its own (with prometheus-cpp's
// pull Exposer, or by serialising it as serve does).
//
// Every name starts with "chatshard_". Per-shard series carry the label
// shard="N". Monotonic counts are counters (named *_total); levels, scores
// and latency percentiles are gauges. Times are in seconds, as Prometheus
// names them. The families:
//
//   counters {shard}:        chatshard_submitted_total, chatshard_completed_total,
//                            chatshard_failed_total, chatshard_retried_total,
//                            chatshard_queue_waits_total (messages whose first run began)
//   counter {shard, reason}: chatshard_rejected_total (reason as SubmitResultName)
//   gauges {shard}:          chatshard_waiting, chatshard_active,
//                            chatshard_queue_wait_mean_seconds
//   gauge {shard, quantile}: chatshard_queue_wait_seconds, chatshard_service_time_seconds
//                            (quantile "0.5", "0.9", "0.99", "0.999", "1" = max)
//   gauge {quantile}:        chatshard_queue_wait_all_shards_seconds,
//                            chatshard_service_time_all_shards_seconds (all shards merged)
//   gauges:                  chatshard_fairness_{jain,cv,max_over_mean,chi2,chi2_p,
//                            backlogged_chat_jain}, chatshard_fairness_worst_cold_wait_seconds,
//                            chatshard_uptime_seconds
//   Redis counters:          chatshard_redis_{published,publish_failed,delivered,acked,
//                            claimed,dead_lettered,reconnects,round_trips}_total
//   Redis gauges:            chatshard_redis_in_flight, chatshard_redis_connected (0 or 1)
//
// Update semantics: the first call registers the families; later calls on
// the same registry update them in place (Registry's Merge behaviour). A
// gauge takes the snapshot's value; a counter is advanced to it and never
// goes back (a lower value, e.g. from a different engine, leaves it as is).
//
// Thread safety: prometheus-cpp's Registry is thread-safe, but an update reads
// a counter and then advances it, so calls that update the same registry must
// not overlap (serve holds a mutex). Serialising concurrently is fine.
#ifndef CHATSHARD_TOOLS_CHATSHARD_METRICS_H_
#define CHATSHARD_TOOLS_CHATSHARD_METRICS_H_

#include <string>
#include <string_view>

#include "chatshard/redis/stats.h"
#include "chatshard/stats.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace chatshard::cli {

// Registers or updates the engine families above from `stats`.
void UpdateEngineMetrics(const StatsSnapshot& stats, prometheus::Registry& registry);

// Registers or updates the chatshard_redis_* families from `stats`.
void UpdateRedisMetrics(const redis::RedisStats& stats, prometheus::Registry& registry);

// Registers or sets one unlabelled gauge, e.g. serve's chatshard_ready.
// `name` must be a valid Prometheus metric name.
void SetGauge(prometheus::Registry& registry, const std::string& name, const std::string& help,
              double value);

// The registry in Prometheus' text exposition format (version 0.0.4).
std::string SerializeMetrics(const prometheus::Registry& registry);

// The Content-Type of SerializeMetrics' output.
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_METRICS_H_
