#include "report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace chatshard::cli {
namespace {

using Json = nlohmann::ordered_json;  // keeps the documented key order

// Past this many shards the table shows only the busiest.
constexpr size_t kMaxShardRows = 64;
constexpr size_t kShardRowsWhenTruncated = 32;
constexpr size_t kHotChatRows = 10;

double Percent(uint64_t part, uint64_t whole) {
  return whole == 0 ? 0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

std::string LatencyRow(std::string_view label, const LatencySummary& s) {
  return fmt::format("  {:<22}{:>10.1f}{:>10.1f}{:>10.1f}{:>10.1f}{:>10.1f}{:>10}\n", label,
                     s.p50_us, s.p90_us, s.p99_us, s.p999_us, s.max_us, s.count);
}

std::string RejectionBreakdown(const ReplayResult& result) {
  std::string out;
  for (size_t reason = 0; reason < result.rejected_by_reason.size(); ++reason) {
    if (result.rejected_by_reason[reason] == 0) continue;
    out += fmt::format("{}{} {}", out.empty() ? " (" : ", ",
                       SubmitResultName(static_cast<SubmitResult>(reason)),
                       result.rejected_by_reason[reason]);
  }
  return out.empty() ? out : out + ")";
}

void AppendShards(const ReplayResult& result, std::string& out) {
  const std::vector<ShardStats>& shards = result.stats.shards;
  std::vector<const ShardStats*> rows;
  rows.reserve(shards.size());
  for (const ShardStats& shard : shards) rows.push_back(&shard);
  const bool truncated = rows.size() > kMaxShardRows;
  if (truncated) {
    std::partial_sort(
        rows.begin(), rows.begin() + kShardRowsWhenTruncated, rows.end(),
        [](const ShardStats* a, const ShardStats* b) { return a->submitted > b->submitted; });
    rows.resize(kShardRowsWhenTruncated);
    std::sort(rows.begin(), rows.end(),
              [](const ShardStats* a, const ShardStats* b) { return a->shard < b->shard; });
  }
  out += fmt::format(
      "\nShards{}\n",
      truncated ? fmt::format(" (the {} busiest of {}; all in --json)", rows.size(), shards.size())
                : "");
  out += fmt::format("  {:>5}{:>11}{:>11}{:>8}{:>10}{:>9}{:>8}{:>12}{:>12}{:>9}\n", "shard",
                     "submitted", "completed", "failed", "rejected", "waiting", "active",
                     "qwait p50", "qwait p99", "share");
  const uint64_t total = result.stats.total.submitted;
  for (const ShardStats* shard : rows) {
    out += fmt::format("  {:>5}{:>11}{:>11}{:>8}{:>10}{:>9}{:>8}{:>12.1f}{:>12.1f}{:>8.1f}%\n",
                       shard->shard, shard->submitted, shard->completed, shard->failed,
                       shard->rejected, shard->waiting, shard->active, shard->queue_wait.p50_us,
                       shard->queue_wait.p99_us, Percent(shard->submitted, total));
  }
  out +=
      "  (qwait: queue wait in µs, Submit accepted -> first run; share: of messages "
      "submitted)\n";
}

void AppendHotChats(const ReplayResult& result, std::string& out) {
  out += "\nHottest chats (the engine's heavy-hitter estimate)\n";
  if (result.stats.hot_chats.empty()) {
    out += "  none\n";
    return;
  }
  size_t width = 4;
  const size_t rows = std::min(result.stats.hot_chats.size(), kHotChatRows);
  for (size_t i = 0; i < rows; ++i) {
    width = std::max(width, result.stats.hot_chats[i].chat_id.size());
  }
  out += fmt::format("  {:<{}}{:>7}{:>11}{:>9}{:>9}\n", "chat", width, "shard", "messages", "error",
                     "share");
  for (size_t i = 0; i < rows; ++i) {
    const HotChat& chat = result.stats.hot_chats[i];
    out += fmt::format("  {:<{}}{:>7}{:>11}{:>9}{:>8.1f}%\n", chat.chat_id, width, chat.shard,
                       chat.count, chat.error, Percent(chat.count, result.stats.total.submitted));
  }
}

void AppendFairness(const ReplayResult& result, std::string& out) {
  const Fairness& f = result.stats.fairness;
  const size_t shards = result.stats.shards.size();
  out += "\nFairness (a shard's load = messages submitted to it)\n";
  out += fmt::format("  {:<28}{:.3f}   (1 = even; {:.3f} = all on one shard)\n", "Jain's index",
                     f.jain, shards == 0 ? 1.0 : 1.0 / static_cast<double>(shards));
  out += fmt::format("  {:<28}{:.3f}\n", "coefficient of variation", f.cv);
  out += fmt::format("  {:<28}{:.3f}\n", "max / mean", f.max_over_mean);
  out += fmt::format(
      "  {:<28}{:.3g}   (chi2 = {:.1f}, {} degrees of freedom; small = "
      "not uniform)\n",
      "chi-square p-value", f.chi2_p, f.chi2, shards == 0 ? 0 : shards - 1);
  out += fmt::format("  {:<28}{:.3f}   (service among chats backlogged together)\n",
                     "backlogged-chat Jain", f.backlogged_chat_jain);
  out += fmt::format("  {:<28}{:.1f} µs   (queue wait of a chat not among the hottest)\n",
                     "worst cold-chat wait", f.worst_cold_wait_us);
}

void AppendIsolation(const ReplayResult& result, std::string& out) {
  const Isolation& iso = result.isolation;
  if (!iso.known) {
    out += "\nIsolation: no hot chat reported by the engine\n";
    return;
  }
  out += fmt::format("\nIsolation: hottest chat {} on shard {} ({} messages, {:.1f} % of all)\n",
                     iso.hot_chat, iso.hot_shard, iso.hot_chat_messages,
                     Percent(iso.hot_chat_messages, result.messages));
  out += fmt::format("  {:<32}{:>10}{:>10}{:>10}{:>10}   (end to end, µs)\n", "", "messages", "p50",
                     "p99", "max");
  const auto row = [&out](const std::string& label, const GroupLatency& group) {
    if (group.messages == 0) {
      out += fmt::format("  {:<32}{:>10}{:>10}{:>10}{:>10}\n", label, 0, "-", "-", "-");
      return;
    }
    out += fmt::format("  {:<32}{:>10}{:>10.1f}{:>10.1f}{:>10.1f}\n", label, group.messages,
                       group.end_to_end.p50_us, group.end_to_end.p99_us, group.end_to_end.max_us);
  };
  row("the hot chat itself", iso.hot_chat_latency);
  row(fmt::format("other chats on shard {}", iso.hot_shard), iso.hot_shard_others);
  row("chats on the other shards", iso.other_shards);
}

Json QueueWaitJson(const LatencySummary& s) {
  return Json{{"count", s.count}, {"mean", s.mean_us}, {"p50", s.p50_us}, {"p90", s.p90_us},
              {"p99", s.p99_us},  {"p999", s.p999_us}, {"max", s.max_us}};
}

}  // namespace

std::string FormatReplayReport(const ReplayResult& result, const ReplayConfig& config,
                               double load_s) {
  const Options& o = config.engine;
  std::string out;
  out += fmt::format("chatshard replay {}\n", config.path);
  out += fmt::format("  loaded {} messages of {} chats in {:.2f} s ({} bad lines skipped)\n",
                     result.messages, result.chats, load_s, result.bad_lines);
  out += fmt::format(
      "  engine: partitions {}, concurrency {}, ordering {}, routing {}, quantum {}, threads {}, "
      "shard capacity {}, chat quota {}\n",
      o.partitions, o.concurrency, OrderingName(o.ordering), RoutingName(o.routing), o.quantum,
      o.threads == 0 ? std::string("all CPUs") : std::to_string(o.threads), o.shard_capacity,
      o.chat_quota == 0 ? std::string("none") : std::to_string(o.chat_quota));
  out += fmt::format("  replay: speed {}, work {} µs per message ({})\n",
                     config.speed > 0 ? fmt::format("x{:g}", config.speed) : "max",
                     config.work.ToString(), WorkModeName(config.work.mode()));

  out += "\nTotals\n";
  const auto line = [&out](std::string_view label, auto value, std::string_view note = "") {
    out += fmt::format("  {:<22}{:>12}{}\n", label, value, note);
  };
  line("messages", result.messages);
  line("completed", result.completed);
  line("failed", result.failed);
  line("rejected", result.rejected, RejectionBreakdown(result));
  line("backpressure waits", result.backpressure_waits);
  line("order violations", result.order_violations,
       o.ordering == Ordering::kNone ? " (ordering none promises no order)" : "");
  line("duplicate runs", result.duplicates);
  if (result.corrupt > 0) line("corrupt runs", result.corrupt);
  line("unprocessed", result.unprocessed,
       result.shutdown_deadline_reached ? " (the drain deadline was reached)" : "");
  line("duration", fmt::format("{:.3f} s", result.duration_s));
  line("throughput", fmt::format("{:.0f} msgs/s", result.throughput_per_s));

  out += fmt::format("\nLatency (µs){:>20}{:>10}{:>10}{:>10}{:>10}{:>10}\n", "p50", "p90", "p99",
                     "p99.9", "max", "count");
  out += LatencyRow("queue wait", result.stats.total.queue_wait);
  out += LatencyRow("service time", result.stats.total.service_time);
  out += LatencyRow("end to end", result.end_to_end);

  AppendShards(result, out);
  AppendHotChats(result, out);
  AppendFairness(result, out);
  AppendIsolation(result, out);
  return out;
}

std::string ReplayJson(const ReplayResult& result) {
  const LatencySummary& e2e = result.end_to_end;
  const Isolation& iso = result.isolation;

  Json isolation = Json{{"hot_chat", nullptr},
                        {"hot_shard", nullptr},
                        {"hot_chat_p99_us", nullptr},
                        {"hot_shard_others_p99_us", nullptr},
                        {"other_shards_p99_us", nullptr}};
  if (iso.known) {
    isolation["hot_chat"] = iso.hot_chat;
    isolation["hot_shard"] = iso.hot_shard;
    // null, not 0, for a group without messages (e.g. a hot chat alone on its shard).
    const auto p99 = [](const GroupLatency& group) {
      return group.messages == 0 ? Json(nullptr) : Json(group.end_to_end.p99_us);
    };
    isolation["hot_chat_p99_us"] = p99(iso.hot_chat_latency);
    isolation["hot_shard_others_p99_us"] = p99(iso.hot_shard_others);
    isolation["other_shards_p99_us"] = p99(iso.other_shards);
  }

  Json json = {
      {"messages", result.messages},
      {"completed", result.completed},
      {"failed", result.failed},
      {"rejected", result.rejected},
      {"order_violations", result.order_violations},
      {"duration_s", result.duration_s},
      {"throughput_per_s", result.throughput_per_s},
      {"latency_us",
       {{"p50", e2e.p50_us},
        {"p90", e2e.p90_us},
        {"p99", e2e.p99_us},
        {"p999", e2e.p999_us},
        {"max", e2e.max_us}}},
      {"fairness", FairnessJson(result.stats.fairness)},
      {"isolation", std::move(isolation)},
      {"shards", ShardsJson(result.stats.shards)},
      {"timeline",
       {{"bucket_s", result.timeline.bucket_s},
        {"accepted", result.timeline.accepted},
        {"completed", result.timeline.completed}}},
  };
  return json.dump(2);
}

Json ShardsJson(const std::vector<ShardStats>& shards) {
  Json out = Json::array();
  for (const ShardStats& shard : shards) {
    out.push_back(Json{{"shard", shard.shard},
                       {"submitted", shard.submitted},
                       {"completed", shard.completed},
                       {"failed", shard.failed},
                       {"rejected", shard.rejected},
                       {"waiting", shard.waiting},
                       {"active", shard.active},
                       {"queue_wait_us", QueueWaitJson(shard.queue_wait)}});
  }
  return out;
}

Json FairnessJson(const Fairness& f) {
  return Json{{"jain", f.jain},
              {"cv", f.cv},
              {"max_over_mean", f.max_over_mean},
              {"chi2", f.chi2},
              {"chi2_p", f.chi2_p},
              {"backlogged_chat_jain", f.backlogged_chat_jain},
              {"worst_cold_wait_us", f.worst_cold_wait_us}};
}

}  // namespace chatshard::cli
