// `chatshard analyze FILE`: what a capture would do to P partitions under each
// routing, without running it. All of a chat's messages go to the shard
// ShardFor gives it, so a shard's load is the sum of its chats' message counts
// (exact: the whole file is in memory).
//
// The recommendation rule. With P shards working in parallel the busiest shard
// finishes last: the speed-up over one shard is messages / (max shard load) =
// P / (max/mean), and 1 / (max/mean) is the share of the P shards' capacity
// that does useful work. The recommended P (per routing) is the largest P in
// --range with max/mean <= 1.25, i.e. at least 80% of the capacity usable.
// One chat stays on one shard, so max/mean >= P x (hottest chat's share):
// that alone rules out every P above 1.25 / (hottest chat's share), and no P
// gets a speed-up past 1 / (hottest chat's share).
//
// JSON (--json FILE), keys in this order:
//   file, messages, chats, bad_lines, partitions (P of the shard tables),
//   routings [names, e.g. "modulo", "jump"],
//   by_routing {<routing>: {
//     shards [{shard, messages, share, chats}],     share of all messages, 0..1
//     fairness {jain, cv, max_over_mean, chi2, chi2_p}  of the shards' messages
//     recommendation {partitions (null when no P in range qualifies),
//       max_over_mean, speedup (at that P), speedup_cap, hottest_chat_limit,
//       rule}}},
//   hot_chats [{chat, messages, share, shards {<routing>: shard}}], hottest first,
//   range {from, to},
//   table [{partitions, <routing>: {max_over_mean, jain, max_shard_share, speedup,
//           moved_to_next}}]   moved_to_next: fraction of chats whose shard
//                              changes from this P to P + 1; null on the last row.
//
// Plain functions and values; safe to use from several threads.
#ifndef CHATSHARD_TOOLS_CHATSHARD_ANALYZE_H_
#define CHATSHARD_TOOLS_CHATSHARD_ANALYZE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "chatshard/routing.h"
#include "command.h"
#include "traffic_file.h"

namespace chatshard::cli {

struct AnalyzeOptions {
  uint32_t partitions = 16;  // P of the per-shard tables, 1..65536
  std::vector<Routing> routings = {Routing::kModulo, Routing::kJump};
  uint32_t range_from = 1;  // the recommendation table's partition counts,
  uint32_t range_to = 64;   //   every P in [range_from, range_to]
  size_t hot_chats = 10;    // rows of the hottest-chats table
};

// The scores of engine/src/fairness.h (ComputeLoadFairness) over shard loads.
struct AnalyzedFairness {
  double jain = 1;
  double cv = 0;
  double max_over_mean = 1;
  double chi2 = 0;
  double chi2_p = 1;
};

struct AnalyzedShard {
  uint32_t shard = 0;
  uint64_t messages = 0;
  uint64_t chats = 0;  // distinct chats routed here that sent at least one message
};

struct AnalyzedRecommendation {
  uint32_t partitions = 0;        // 0: no P in the range has max/mean <= 1.25
  double max_over_mean = 1;       // at `partitions`
  double speedup = 1;             // messages / max shard load at `partitions`
  double speedup_cap = 1;         // messages / hottest chat's messages
  double hottest_chat_limit = 1;  // 1.25 / hottest chat's share: no larger P qualifies
};

struct RoutingAnalysis {
  Routing routing = Routing::kModulo;
  std::vector<AnalyzedShard> shards;  // AnalyzeOptions::partitions of them
  AnalyzedFairness fairness;
  AnalyzedRecommendation recommendation;
};

struct AnalyzedHotChat {
  std::string chat;
  uint64_t messages = 0;
  std::vector<uint32_t> shards;  // per routing, in AnalyzeOptions::routings order
};

struct RangeRow {
  struct PerRouting {
    double max_over_mean = 1;
    double jain = 1;
    double max_shard_share = 1;  // the busiest shard's share of all messages
    double speedup = 1;
    std::optional<double> moved_to_next;  // chats that change shard at P + 1
  };
  uint32_t partitions = 1;
  std::vector<PerRouting> by_routing;  // in AnalyzeOptions::routings order
};

struct Analysis {
  uint64_t messages = 0;
  uint64_t chats = 0;  // distinct chats
  uint64_t bad_lines = 0;
  AnalyzeOptions options;
  std::vector<RoutingAnalysis> routings;  // in options.routings order
  std::vector<AnalyzedHotChat> hot_chats;
  std::vector<RangeRow> table;
};

// Analyzes `traffic`; `options` must have range_from <= range_to, both and
// partitions in 1..65536, and at least one routing.
Analysis AnalyzeTraffic(const Traffic& traffic, const AnalyzeOptions& options);

// The text report and the JSON document described above; `file` is named in
// both.
std::string FormatAnalysis(const Analysis& analysis, const std::string& file);
std::string AnalysisJson(const Analysis& analysis, const std::string& file);

// Registers `analyze` on `app`.
Subcommand AddAnalyzeCommand(CLI::App& app);

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_ANALYZE_H_
