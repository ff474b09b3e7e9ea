#include "analyze.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <numeric>
#include <span>
#include <string_view>
#include <system_error>

#include "chatshard/options.h"
#include "enum_flag.h"
#include "exit_code.h"
#include "fairness.h"
#include "load_messages.h"

namespace chatshard::cli {
namespace {

using Json = nlohmann::ordered_json;  // keeps the documented key order

constexpr uint32_t kMaxPartitions = 65536;
constexpr uint32_t kMaxRangeRows = 4096;
constexpr size_t kMaxShardRows = 256;
// The recommended P is the largest with the busiest shard at most this many
// times the mean shard load.
constexpr double kMaxOverMeanTarget = 1.25;

double Fraction(uint64_t part, uint64_t whole) {
  return whole == 0 ? 0 : static_cast<double>(part) / static_cast<double>(whole);
}

std::vector<uint32_t> RouteChats(const std::vector<std::string>& chats, uint32_t partitions,
                                 Routing routing) {
  std::vector<uint32_t> shards(chats.size());
  for (size_t chat = 0; chat < chats.size(); ++chat) {
    shards[chat] = ShardFor(chats[chat], partitions, routing);
  }
  return shards;
}

std::vector<uint64_t> ShardLoads(const std::vector<uint64_t>& chat_messages,
                                 const std::vector<uint32_t>& chat_shard, uint32_t partitions) {
  std::vector<uint64_t> loads(partitions);
  for (size_t chat = 0; chat < chat_messages.size(); ++chat) {
    loads[chat_shard[chat]] += chat_messages[chat];
  }
  return loads;
}

AnalyzedFairness Score(std::span<const uint64_t> loads) {
  const internal::LoadFairness f = internal::ComputeLoadFairness(loads);
  return AnalyzedFairness{f.jain, f.cv, f.max_over_mean, f.chi2, f.chi2_p};
}

double Speedup(uint64_t messages, std::span<const uint64_t> loads) {
  const uint64_t busiest = loads.empty() ? 0 : *std::max_element(loads.begin(), loads.end());
  return busiest == 0 ? 1 : static_cast<double>(messages) / static_cast<double>(busiest);
}

std::string RecommendationRule(const AnalyzeOptions& options) {
  return fmt::format(
      "the largest P in {}..{} whose busiest shard carries at most {:g} x the mean load "
      "(max/mean <= {:g}: at least {:.0f}% of the shards' capacity usable)",
      options.range_from, options.range_to, kMaxOverMeanTarget, kMaxOverMeanTarget,
      100 / kMaxOverMeanTarget);
}

std::string OptionalPercent(const std::optional<double>& fraction) {
  return fraction ? fmt::format("{:.1f}%", 100 * *fraction) : std::string("-");
}

// "A..B" with 1 <= A <= B <= kMaxPartitions and B - A < kMaxRangeRows.
std::string ParseRange(std::string_view text, uint32_t* from, uint32_t* to) {
  const size_t dots = text.find("..");
  const auto parse = [](std::string_view number, uint32_t* out) {
    const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), *out);
    return error == std::errc() && end == number.data() + number.size();
  };
  uint32_t a = 0;
  uint32_t b = 0;
  if (dots == std::string_view::npos || !parse(text.substr(0, dots), &a) ||
      !parse(text.substr(dots + 2), &b)) {
    return "expected A..B, e.g. 1..64";
  }
  if (a < 1 || a > b || b > kMaxPartitions) {
    return fmt::format("expected 1 <= A <= B <= {}", kMaxPartitions);
  }
  if (b - a >= kMaxRangeRows) return fmt::format("at most {} partition counts", kMaxRangeRows);
  *from = a;
  *to = b;
  return {};
}

struct AnalyzeFlags {
  AnalyzeOptions options;
  std::string path;
  std::string routing = "both";
  std::string range = "1..64";
  std::string json_path;
  bool strict = false;
};

int RunAnalyzeCommand(AnalyzeFlags& flags) {
  AnalyzeOptions& options = flags.options;
  ParseRange(flags.range, &options.range_from, &options.range_to);  // checked by the parser
  if (flags.routing == "modulo") options.routings = {Routing::kModulo};
  if (flags.routing == "jump") options.routings = {Routing::kJump};

  const auto start = std::chrono::steady_clock::now();
  Result<Traffic> loaded = LoadTraffic(flags.path, PrintingLoadOptions(flags.strict));
  if (!loaded.ok()) return ReportLoadFailure("analyze", loaded.status());
  const Traffic& traffic = loaded.value();
  ReportSkippedLines("analyze", traffic);
  if (traffic.messages.empty()) {
    fmt::print(stderr, "chatshard analyze: {}: no messages to analyze\n", flags.path);
    return kExitFileError;
  }

  const Analysis analysis = AnalyzeTraffic(traffic, options);
  const double elapsed_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fputs(FormatAnalysis(analysis, flags.path).c_str(), stdout);
  fmt::print("(loaded and analyzed in {:.2f} s)\n", elapsed_s);
  std::fflush(stdout);

  if (!flags.json_path.empty()) {
    std::ofstream out(flags.json_path, std::ios::trunc);
    out << AnalysisJson(analysis, flags.path) << '\n';
    out.close();
    if (!out) {
      fmt::print(stderr, "chatshard analyze: cannot write {}\n", flags.json_path);
      return kExitFileError;
    }
  }
  return std::ferror(stdout) ? kExitFileError : kExitOk;
}

}  // namespace

Analysis AnalyzeTraffic(const Traffic& traffic, const AnalyzeOptions& options) {
  Analysis analysis;
  analysis.messages = traffic.messages.size();
  analysis.chats = traffic.chats.size();
  analysis.bad_lines = traffic.skipped;
  analysis.options = options;

  std::vector<uint64_t> chat_messages(traffic.chats.size());
  for (const TrafficMessage& message : traffic.messages) ++chat_messages[message.chat];
  const uint64_t hottest =
      chat_messages.empty() ? 0 : *std::max_element(chat_messages.begin(), chat_messages.end());

  // The hottest chats, most messages first (ties: first seen first).
  std::vector<uint32_t> order(traffic.chats.size());
  std::iota(order.begin(), order.end(), 0);
  const size_t top = std::min(options.hot_chats, order.size());
  std::partial_sort(
      order.begin(), order.begin() + static_cast<std::ptrdiff_t>(top), order.end(),
      [&chat_messages](uint32_t a, uint32_t b) {
        return chat_messages[a] != chat_messages[b] ? chat_messages[a] > chat_messages[b] : a < b;
      });
  for (size_t i = 0; i < top; ++i) {
    analysis.hot_chats.push_back(
        AnalyzedHotChat{traffic.chats[order[i]], chat_messages[order[i]], {}});
  }

  for (const Routing routing : options.routings) {
    RoutingAnalysis& routed = analysis.routings.emplace_back();
    routed.routing = routing;
    const std::vector<uint32_t> chat_shard = RouteChats(traffic.chats, options.partitions, routing);
    const std::vector<uint64_t> loads = ShardLoads(chat_messages, chat_shard, options.partitions);
    std::vector<uint64_t> chats_per_shard(options.partitions);
    for (const uint32_t shard : chat_shard) ++chats_per_shard[shard];
    for (uint32_t shard = 0; shard < options.partitions; ++shard) {
      routed.shards.push_back(AnalyzedShard{shard, loads[shard], chats_per_shard[shard]});
    }
    routed.fairness = Score(loads);
    for (size_t i = 0; i < top; ++i) analysis.hot_chats[i].shards.push_back(chat_shard[order[i]]);
  }

  for (uint32_t p = options.range_from; p <= options.range_to; ++p) {
    analysis.table.push_back(RangeRow{p, {}});
  }
  for (size_t r = 0; r < options.routings.size(); ++r) {
    const Routing routing = options.routings[r];
    std::vector<uint32_t> next = RouteChats(traffic.chats, options.range_from, routing);
    for (RangeRow& row : analysis.table) {
      const std::vector<uint32_t> current = std::move(next);
      const std::vector<uint64_t> loads = ShardLoads(chat_messages, current, row.partitions);
      const AnalyzedFairness scores = Score(loads);
      RangeRow::PerRouting cell;
      cell.max_over_mean = scores.max_over_mean;
      cell.jain = scores.jain;
      cell.max_shard_share =
          Fraction(*std::max_element(loads.begin(), loads.end()), analysis.messages);
      cell.speedup = Speedup(analysis.messages, loads);
      if (row.partitions < options.range_to) {
        next = RouteChats(traffic.chats, row.partitions + 1, routing);
        uint64_t moved = 0;
        for (size_t chat = 0; chat < current.size(); ++chat) moved += current[chat] != next[chat];
        cell.moved_to_next = Fraction(moved, current.size());
      }
      row.by_routing.push_back(cell);
    }

    AnalyzedRecommendation& recommendation = analysis.routings[r].recommendation;
    for (const RangeRow& row : analysis.table) {
      if (row.by_routing[r].max_over_mean <= kMaxOverMeanTarget) {
        recommendation.partitions = row.partitions;
        recommendation.max_over_mean = row.by_routing[r].max_over_mean;
        recommendation.speedup = row.by_routing[r].speedup;
      }
    }
    recommendation.speedup_cap =
        hottest == 0 ? 1 : static_cast<double>(analysis.messages) / static_cast<double>(hottest);
    recommendation.hottest_chat_limit = kMaxOverMeanTarget * recommendation.speedup_cap;
  }
  return analysis;
}

std::string FormatAnalysis(const Analysis& analysis, const std::string& file) {
  const AnalyzeOptions& options = analysis.options;
  std::string out = fmt::format("{}: {} messages, {} chats, {} bad lines skipped\n", file,
                                analysis.messages, analysis.chats, analysis.bad_lines);

  out += "\nHottest chats (exact counts)\n";
  out += fmt::format("  {:<32}{:>10}{:>8}", "chat", "messages", "share");
  for (const RoutingAnalysis& routed : analysis.routings) {
    out += fmt::format("{:>14}", fmt::format("{} shard", RoutingName(routed.routing)));
  }
  out += "\n";
  for (const AnalyzedHotChat& hot : analysis.hot_chats) {
    out += fmt::format("  {:<32}{:>10}{:>7.1f}%", hot.chat, hot.messages,
                       100 * Fraction(hot.messages, analysis.messages));
    for (const uint32_t shard : hot.shards) out += fmt::format("{:>14}", shard);
    out += "\n";
  }

  out += fmt::format("\nShards at --partitions {}\n  {:>5}", options.partitions, "shard");
  for (const RoutingAnalysis& routed : analysis.routings) {
    out += fmt::format("  {:>10}{:>8}{:>8}", fmt::format("{} msgs", RoutingName(routed.routing)),
                       "share", "chats");
  }
  out += "\n";
  const size_t shard_rows = std::min<size_t>(options.partitions, kMaxShardRows);
  for (size_t shard = 0; shard < shard_rows; ++shard) {
    out += fmt::format("  {:>5}", shard);
    for (const RoutingAnalysis& routed : analysis.routings) {
      const AnalyzedShard& s = routed.shards[shard];
      out += fmt::format("  {:>10}{:>7.1f}%{:>8}", s.messages,
                         100 * Fraction(s.messages, analysis.messages), s.chats);
    }
    out += "\n";
  }
  if (shard_rows < options.partitions) {
    out += fmt::format("  (the first {} of {} shards; all in --json)\n", shard_rows,
                       options.partitions);
  }

  out += fmt::format("\nFairness at --partitions {} (a shard's load = its messages)\n  {:<24}",
                     options.partitions, "");
  for (const RoutingAnalysis& routed : analysis.routings) {
    out += fmt::format("{:>12}", RoutingName(routed.routing));
  }
  out += "\n";
  const auto score_row = [&](std::string_view label, auto field, std::string_view spec) {
    out += fmt::format("  {:<24}", label);
    for (const RoutingAnalysis& routed : analysis.routings) {
      out += fmt::format(fmt::runtime(spec), routed.fairness.*field);
    }
    out += "\n";
  };
  score_row("Jain's index", &AnalyzedFairness::jain, "{:>12.3f}");
  score_row("CV", &AnalyzedFairness::cv, "{:>12.3f}");
  score_row("max/mean", &AnalyzedFairness::max_over_mean, "{:>12.3f}");
  score_row("chi-square", &AnalyzedFairness::chi2, "{:>12.1f}");
  score_row("chi-square p", &AnalyzedFairness::chi2_p, "{:>12.3g}");

  out +=
      fmt::format("\nPartition counts {}..{}\n  {:>5}", options.range_from, options.range_to, "P");
  for (const RoutingAnalysis& routed : analysis.routings) {
    out += fmt::format(" | {:<6}{:>9}{:>7}{:>7}{:>9}{:>8}", RoutingName(routed.routing), "max/mean",
                       "jain", "top%", "speedup", "moved");
  }
  out += "\n";
  for (const RangeRow& row : analysis.table) {
    out += fmt::format("  {:>5}", row.partitions);
    for (const RangeRow::PerRouting& cell : row.by_routing) {
      out += fmt::format(" | {:<6}{:>9.3f}{:>7.3f}{:>6.1f}%{:>8.2f}x{:>8}", "", cell.max_over_mean,
                         cell.jain, 100 * cell.max_shard_share, cell.speedup,
                         OptionalPercent(cell.moved_to_next));
    }
    out += "\n";
  }
  out +=
      "  (top%: the busiest shard's share of messages; speedup: messages / the busiest shard's "
      "messages;\n   moved: chats whose shard changes from P to P+1)\n";

  out += fmt::format("\nRecommendation: {}.\n", RecommendationRule(options));
  if (!analysis.hot_chats.empty()) {
    const AnalyzedHotChat& hottest = analysis.hot_chats.front();
    const AnalyzedRecommendation& rec = analysis.routings.front().recommendation;
    out += fmt::format(
        "  The hottest chat {} carries {:.1f}% of the messages: no P gets a speed-up past "
        "{:.1f}x,\n  and no P above {:.0f} can meet the rule, whatever the routing.\n",
        hottest.chat, 100 * Fraction(hottest.messages, analysis.messages), rec.speedup_cap,
        std::floor(rec.hottest_chat_limit));
  }
  for (const RoutingAnalysis& routed : analysis.routings) {
    const AnalyzedRecommendation& rec = routed.recommendation;
    if (rec.partitions == 0) {
      out += fmt::format("  {:<7} no P in {}..{} meets the rule\n", RoutingName(routed.routing),
                         options.range_from, options.range_to);
      continue;
    }
    out += fmt::format("  {:<7} --partitions {} (max/mean {:.3f}, speed-up {:.2f}x)\n",
                       RoutingName(routed.routing), rec.partitions, rec.max_over_mean, rec.speedup);
  }
  return out;
}

std::string AnalysisJson(const Analysis& analysis, const std::string& file) {
  const AnalyzeOptions& options = analysis.options;
  Json json;
  json["file"] = file;
  json["messages"] = analysis.messages;
  json["chats"] = analysis.chats;
  json["bad_lines"] = analysis.bad_lines;
  json["partitions"] = options.partitions;
  json["routings"] = Json::array();
  for (const RoutingAnalysis& routed : analysis.routings) {
    json["routings"].push_back(RoutingName(routed.routing));
  }
  Json by_routing = Json::object();
  for (const RoutingAnalysis& routed : analysis.routings) {
    Json shards = Json::array();
    for (const AnalyzedShard& shard : routed.shards) {
      shards.push_back({{"shard", shard.shard},
                        {"messages", shard.messages},
                        {"share", Fraction(shard.messages, analysis.messages)},
                        {"chats", shard.chats}});
    }
    const AnalyzedFairness& f = routed.fairness;
    const AnalyzedRecommendation& rec = routed.recommendation;
    by_routing[std::string(RoutingName(routed.routing))] = {
        {"shards", std::move(shards)},
        {"fairness",
         {{"jain", f.jain},
          {"cv", f.cv},
          {"max_over_mean", f.max_over_mean},
          {"chi2", f.chi2},
          {"chi2_p", f.chi2_p}}},
        {"recommendation",
         {{"partitions", rec.partitions == 0 ? Json(nullptr) : Json(rec.partitions)},
          {"max_over_mean", rec.max_over_mean},
          {"speedup", rec.speedup},
          {"speedup_cap", rec.speedup_cap},
          {"hottest_chat_limit", rec.hottest_chat_limit},
          {"rule", RecommendationRule(options)}}}};
  }
  json["by_routing"] = std::move(by_routing);
  Json hot_chats = Json::array();
  for (const AnalyzedHotChat& hot : analysis.hot_chats) {
    Json shards = Json::object();
    for (size_t r = 0; r < hot.shards.size(); ++r) {
      shards[std::string(RoutingName(analysis.routings[r].routing))] = hot.shards[r];
    }
    hot_chats.push_back({{"chat", hot.chat},
                         {"messages", hot.messages},
                         {"share", Fraction(hot.messages, analysis.messages)},
                         {"shards", std::move(shards)}});
  }
  json["hot_chats"] = std::move(hot_chats);
  json["range"] = {{"from", options.range_from}, {"to", options.range_to}};
  Json table = Json::array();
  for (const RangeRow& row : analysis.table) {
    Json entry = {{"partitions", row.partitions}};
    for (size_t r = 0; r < row.by_routing.size(); ++r) {
      const RangeRow::PerRouting& cell = row.by_routing[r];
      entry[std::string(RoutingName(analysis.routings[r].routing))] = {
          {"max_over_mean", cell.max_over_mean},
          {"jain", cell.jain},
          {"max_shard_share", cell.max_shard_share},
          {"speedup", cell.speedup},
          {"moved_to_next", cell.moved_to_next ? Json(*cell.moved_to_next) : Json(nullptr)}};
    }
    table.push_back(std::move(entry));
  }
  json["table"] = std::move(table);
  return json.dump(2);
}

Subcommand AddAnalyzeCommand(CLI::App& app) {
  auto flags = std::make_shared<AnalyzeFlags>();
  CLI::App* command = app.add_subcommand(
      "analyze",
      "Show what a traffic file would do to P partitions under each routing without running "
      "it: per-shard load, fairness, hottest chats, and a table over a range of partition "
      "counts with a recommendation.");
  command->footer(
      "Recommendation: " + RecommendationRule(flags->options) +
      " (the default range shown).\nExit codes: 0 success; 1 the file cannot be read, holds no "
      "message (or has a bad line, with --strict) or --json cannot be written; 2 bad usage.");
  command->add_option("FILE", flags->path, "Traffic file; - reads standard input")->required();
  command->add_option("--partitions", flags->options.partitions, "P of the per-shard tables")
      ->check(CLI::Range(1u, kMaxPartitions))
      ->capture_default_str();
  command->add_option("--routing", flags->routing, "modulo, jump or both")
      ->check(CLI::IsMember({"modulo", "jump", "both"}))
      ->capture_default_str();
  command
      ->add_option("--range", flags->range,
                   "Partition counts A..B of the recommendation table (every P in between)")
      ->check(
          [](const std::string& text) -> std::string {
            uint32_t from = 0;
            uint32_t to = 0;
            return ParseRange(text, &from, &to);
          },
          "A..B")
      ->capture_default_str();
  command->add_option("--top", flags->options.hot_chats, "Rows of the hottest-chats table")
      ->capture_default_str();
  command->add_option("--json", flags->json_path, "Also write the analysis as JSON to this file");
  command->add_flag("--strict", flags->strict,
                    "Stop at the first bad line of FILE (exit 1) instead of skipping it");
  return Subcommand{command, [flags] { return RunAnalyzeCommand(*flags); }};
}

}  // namespace chatshard::cli
