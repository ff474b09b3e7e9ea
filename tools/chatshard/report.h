// The report of `chatshard replay`: text for people, JSON for programs.
// Pure functions of a finished replay's result.
#ifndef CHATSHARD_TOOLS_CHATSHARD_REPORT_H_
#define CHATSHARD_TOOLS_CHATSHARD_REPORT_H_

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "chatshard/stats.h"
#include "replay.h"

namespace chatshard::cli {

// The text report; `load_s` is how long loading the file took.
std::string FormatReplayReport(const ReplayResult& result, const ReplayConfig& config,
                               double load_s);

// One JSON object with the top-level keys messages, completed, failed,
// rejected, order_violations, duration_s, throughput_per_s, latency_us
// (end to end: p50, p90, p99, p999, max), fairness (jain, cv, max_over_mean,
// chi2, chi2_p, backlogged_chat_jain, worst_cold_wait_us), isolation
// (hot_chat, hot_shard, hot_chat_p99_us, hot_shard_others_p99_us,
// other_shards_p99_us, end to end; all null when the engine saw no hot chat,
// a p99 null when its group has no messages) and shards
// (shard, submitted, completed, failed, rejected, waiting, active,
// queue_wait_us {count, mean, p50, p90, p99, p999, max}) and timeline
// (bucket_s, accepted [per bucket], completed [per bucket]: messages per time
// bucket since the first Submit, see timeline.h), in that order.
std::string ReplayJson(const ReplayResult& result);

// The "shards" array and the "fairness" object of ReplayJson, built from any
// StatsSnapshot; `chatshard serve` answers /sharding with the same builders.
nlohmann::ordered_json ShardsJson(const std::vector<ShardStats>& shards);
nlohmann::ordered_json FairnessJson(const Fairness& fairness);

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_REPORT_H_
