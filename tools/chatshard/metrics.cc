#include "metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/labels.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>
#include <utility>

namespace chatshard::cli {
namespace {

constexpr double kSecondsPerMicro = 1e-6;

prometheus::Family<prometheus::Counter>& CounterFamily(prometheus::Registry& registry,
                                                       const std::string& name,
                                                       const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
}

prometheus::Family<prometheus::Gauge>& GaugeFamily(prometheus::Registry& registry,
                                                   const std::string& name,
                                                   const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
}

// Moves a counter forward to `value`; it never goes back.
void AdvanceTo(prometheus::Counter& counter, uint64_t value) {
  const double delta = static_cast<double>(value) - counter.Value();
  if (delta > 0) counter.Increment(delta);
}

prometheus::Labels ShardLabel(uint32_t shard) { return {{"shard", std::to_string(shard)}}; }

// The percentiles of a LatencySummary as quantile-labelled gauge values.
void SetQuantiles(prometheus::Family<prometheus::Gauge>& family, prometheus::Labels labels,
                  const LatencySummary& summary) {
  const std::array<std::pair<const char*, double>, 5> quantiles = {{
      {"0.5", summary.p50_us},
      {"0.9", summary.p90_us},
      {"0.99", summary.p99_us},
      {"0.999", summary.p999_us},
      {"1", summary.max_us},
  }};
  for (const auto& [quantile, us] : quantiles) {
    labels["quantile"] = quantile;
    family.Add(labels).Set(us * kSecondsPerMicro);
  }
}

}  // namespace

void UpdateEngineMetrics(const StatsSnapshot& stats, prometheus::Registry& registry) {
  auto& submitted = CounterFamily(registry, "chatshard_submitted_total",
                                  "Messages the engine accepted, per shard");
  auto& completed = CounterFamily(registry, "chatshard_completed_total",
                                  "Messages that finished done, per shard");
  auto& failed = CounterFamily(registry, "chatshard_failed_total",
                               "Messages that finally failed, per shard");
  auto& retried = CounterFamily(registry, "chatshard_retried_total",
                                "Handler runs that answered retry and were run again, per shard");
  auto& rejected = CounterFamily(registry, "chatshard_rejected_total",
                                 "Messages the engine refused, per shard and reason");
  auto& queue_waits = CounterFamily(registry, "chatshard_queue_waits_total",
                                    "Messages whose first run began (queue waits recorded), "
                                    "per shard");
  auto& waiting = GaugeFamily(registry, "chatshard_waiting",
                              "Messages accepted and not running (queued or waiting for a retry)");
  auto& active = GaugeFamily(registry, "chatshard_active", "Messages running in a handler now");
  auto& wait_mean = GaugeFamily(registry, "chatshard_queue_wait_mean_seconds",
                                "Mean time from acceptance to the first run, per shard");
  auto& wait = GaugeFamily(registry, "chatshard_queue_wait_seconds",
                           "Time from acceptance to the first run: percentiles since start "
                           "(quantile 1 = max), per shard");
  auto& service = GaugeFamily(registry, "chatshard_service_time_seconds",
                              "Time of one handler run: percentiles since start (quantile 1 = "
                              "max), per shard");

  for (const ShardStats& shard : stats.shards) {
    const prometheus::Labels labels = ShardLabel(shard.shard);
    AdvanceTo(submitted.Add(labels), shard.submitted);
    AdvanceTo(completed.Add(labels), shard.completed);
    AdvanceTo(failed.Add(labels), shard.failed);
    AdvanceTo(retried.Add(labels), shard.retried);
    AdvanceTo(queue_waits.Add(labels), shard.queue_wait.count);
    for (int reason = 1; reason < kSubmitResultCount; ++reason) {  // 0 is kAccepted
      prometheus::Labels by_reason = labels;
      by_reason["reason"] = std::string(SubmitResultName(static_cast<SubmitResult>(reason)));
      AdvanceTo(rejected.Add(by_reason), shard.rejected_by_reason[static_cast<size_t>(reason)]);
    }
    waiting.Add(labels).Set(static_cast<double>(shard.waiting));
    active.Add(labels).Set(static_cast<double>(shard.active));
    wait_mean.Add(labels).Set(shard.queue_wait.mean_us * kSecondsPerMicro);
    SetQuantiles(wait, labels, shard.queue_wait);
    SetQuantiles(service, labels, shard.service_time);
  }

  SetQuantiles(GaugeFamily(registry, "chatshard_queue_wait_all_shards_seconds",
                           "Time from acceptance to the first run, all shards merged"),
               {}, stats.total.queue_wait);
  SetQuantiles(GaugeFamily(registry, "chatshard_service_time_all_shards_seconds",
                           "Time of one handler run, all shards merged"),
               {}, stats.total.service_time);

  const Fairness& f = stats.fairness;
  SetGauge(registry, "chatshard_fairness_jain",
           "Jain's index of per-shard load (messages submitted): 1/n..1, 1 is even", f.jain);
  SetGauge(registry, "chatshard_fairness_cv",
           "Coefficient of variation of per-shard load (stddev / mean)", f.cv);
  SetGauge(registry, "chatshard_fairness_max_over_mean",
           "The busiest shard's load over the mean load", f.max_over_mean);
  SetGauge(registry, "chatshard_fairness_chi2",
           "Pearson chi-square of per-shard load against uniform", f.chi2);
  SetGauge(registry, "chatshard_fairness_chi2_p", "p-value of chatshard_fairness_chi2",
           f.chi2_p);
  SetGauge(registry, "chatshard_fairness_backlogged_chat_jain",
           "Jain's index of the service backlogged chats received, averaged over shards",
           f.backlogged_chat_jain);
  SetGauge(registry, "chatshard_fairness_worst_cold_wait_seconds",
           "Worst queue wait of a message of a chat that is not among the hottest",
           f.worst_cold_wait_us * kSecondsPerMicro);
  SetGauge(registry, "chatshard_uptime_seconds", "Seconds since the engine started",
           stats.uptime_s);
}

void UpdateRedisMetrics(const redis::RedisStats& stats, prometheus::Registry& registry) {
  const std::array<std::tuple<const char*, const char*, uint64_t>, 8> counters = {{
      {"chatshard_redis_published_total", "XADDs Redis confirmed (publisher)", stats.published},
      {"chatshard_redis_publish_failed_total", "Publishes answered with an error",
       stats.publish_failed},
      {"chatshard_redis_delivered_total", "Entries read or claimed and handed to the engine",
       stats.delivered},
      {"chatshard_redis_acked_total", "Entries XACKed (done or dead-lettered)", stats.acked},
      {"chatshard_redis_claimed_total", "Entries taken over from the pending list",
       stats.claimed},
      {"chatshard_redis_dead_lettered_total", "Entries written to a dead-letter stream",
       stats.dead_lettered},
      {"chatshard_redis_reconnects_total", "Connections re-established after a loss",
       stats.reconnects},
      {"chatshard_redis_round_trips_total", "Pipelined request batches sent to Redis",
       stats.round_trips},
  }};
  for (const auto& [name, help, value] : counters) {
    AdvanceTo(CounterFamily(registry, name, help).Add({}), value);
  }
  SetGauge(registry, "chatshard_redis_in_flight",
           "Publisher: unanswered XADDs; consumer: entries read and not acked",
           static_cast<double>(stats.in_flight));
  SetGauge(registry, "chatshard_redis_parked",
           "Consumer: entries parked (ids only) behind their chat's max_in_flight_per_chat",
           static_cast<double>(stats.parked));
  SetGauge(registry, "chatshard_redis_connected", "1 while connected to Redis, else 0",
           stats.ready ? 1 : 0);
}

void SetGauge(prometheus::Registry& registry, const std::string& name, const std::string& help,
              double value) {
  GaugeFamily(registry, name, help).Add({}).Set(value);
}

std::string SerializeMetrics(const prometheus::Registry& registry) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry.Collect());
  return out.str();
}

}  // namespace chatshard::cli
