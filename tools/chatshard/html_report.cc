#include "html_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace chatshard::cli {
namespace {

// Past this many shards the load chart shows only the busiest (and the hot one).
constexpr size_t kMaxShardBars = 64;
constexpr size_t kShardBarsWhenTruncated = 32;
constexpr size_t kHotChatRows = 10;

// Every chart's drawing area, in SVG user units (the page scales it).
constexpr double kChartWidth = 540;
constexpr double kChartHeight = 250;
constexpr double kLeft = 58;
constexpr double kRight = 46;
constexpr double kTop = 30;
constexpr double kBottom = 36;
constexpr double kPlotWidth = kChartWidth - kLeft - kRight;
constexpr double kPlotHeight = kChartHeight - kTop - kBottom;
constexpr double kBottomY = kTop + kPlotHeight;

constexpr std::string_view kStyle = R"css(
:root { --ink: #1f2933; --muted: #616e7c; --line: #e4e7eb; --accent: #2f6fde;
  --accent-soft: #c4d6f7; --hot: #e8590c; --hot-soft: #fbd3bd; --bad: #c92a2a; --ok: #2b8a3e; }
* { box-sizing: border-box; }
body { margin: 0; background: #f5f7fa; color: var(--ink);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
main { max-width: 1160px; margin: 0 auto; padding: 20px 20px 28px; }
h1 { font-size: 22px; margin: 0; }
h2 { font-size: 15px; margin: 0 0 8px; }
header { display: flex; justify-content: space-between; align-items: baseline; gap: 16px;
  margin-bottom: 14px; }
.sub { color: var(--muted); font-size: 13px; overflow-wrap: anywhere; }
.verdict { padding: 4px 10px; border-radius: 999px; font-size: 13px; font-weight: 600;
  white-space: nowrap; }
.verdict.ok { background: #d3f9d8; color: var(--ok); }
.verdict.bad { background: #ffe3e3; color: var(--bad); }
.problems { color: var(--bad); font-size: 13px; margin: -6px 0 12px; white-space: pre-wrap; }
.cards { display: grid; grid-template-columns: repeat(7, 1fr); gap: 10px; margin-bottom: 14px; }
.card, .panel { background: #fff; border: 1px solid var(--line); border-radius: 8px; }
.card { padding: 10px 12px; }
.card .label { color: var(--muted); font-size: 12px; }
.card .value { font-size: 21px; font-weight: 650; font-variant-numeric: tabular-nums;
  white-space: nowrap; }
.card .value.bad { color: var(--bad); }
.card .note { color: var(--muted); font-size: 11px; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 14px; margin-bottom: 14px; }
.panel { padding: 12px 14px; min-width: 0; }
.caption { color: var(--muted); font-size: 12px; margin-top: 4px; }
svg { display: block; width: 100%; height: auto; }
svg text { font-size: 11px; fill: var(--muted);
  font-family: system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
svg .grid-line { stroke: var(--line); stroke-width: 1; }
svg .axis { stroke: #9aa5b1; stroke-width: 1; }
svg .title { fill: var(--ink); font-weight: 600; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { padding: 4px 6px; border-bottom: 1px solid var(--line); text-align: right;
  font-variant-numeric: tabular-nums; }
th { color: var(--muted); font-weight: 600; font-size: 12px; }
th:first-child, td:first-child { text-align: left; }
td.chat { overflow-wrap: anywhere; max-width: 260px; }
tr.hot td { color: var(--hot); font-weight: 600; }
.share { display: inline-block; height: 8px; background: var(--accent-soft); border-radius: 2px;
  vertical-align: middle; margin-right: 6px; }
.options td:first-child { color: var(--muted); }
.options td { text-align: left; }
.legend { display: inline-block; width: 10px; height: 10px; border-radius: 2px;
  vertical-align: -1px; margin: 0 4px 0 10px; }
)css";

// 1234567 -> "1,234,567".
std::string Group(uint64_t value) {
  const std::string digits = std::to_string(value);
  std::string out;
  out.reserve(digits.size() + digits.size() / 3);
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

double Percent(uint64_t part, uint64_t whole) {
  return whole == 0 ? 0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

// A duration given in microseconds, in the unit that reads best.
std::string Micros(double us) {
  if (!std::isfinite(us)) return "-";
  if (us < 1) return fmt::format("{:.0f} ns", us * 1e3);
  if (us < 1e3) return fmt::format("{:.3g} µs", us);
  if (us < 1e6) return fmt::format("{:.3g} ms", us / 1e3);
  return fmt::format("{:.3g} s", us / 1e6);
}

// 1234567 -> "1.23M": axis labels.
std::string Short(double value) {
  const double magnitude = std::fabs(value);
  if (magnitude >= 1e9) return fmt::format("{:.3g}G", value / 1e9);
  if (magnitude >= 1e6) return fmt::format("{:.3g}M", value / 1e6);
  if (magnitude >= 1e3) return fmt::format("{:.3g}k", value / 1e3);
  return fmt::format("{:.3g}", value);
}

// Ticks 0, step, 2 step, ... with a 1-2-5 step, the last at or above `max`.
std::vector<double> NiceTicks(double max, int target) {
  if (!(max > 0) || !std::isfinite(max)) max = 1;
  const double raw = max / target;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / magnitude;
  const double step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * magnitude;
  std::vector<double> ticks;
  for (int i = 0;; ++i) {
    ticks.push_back(step * i);
    if (step * i >= max * (1 - 1e-9)) break;
  }
  return ticks;
}

std::string SvgOpen(std::string_view label) {
  return fmt::format(
      "<svg viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"{}\" "
      "preserveAspectRatio=\"xMidYMid meet\">\n",
      kChartWidth, kChartHeight, label);
}

std::string Text(double x, double y, std::string_view anchor, std::string_view content,
                 std::string_view extra = "") {
  return fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"{}\"{}>{}</text>\n", x, y,
                     anchor, extra, content);
}

// Horizontal grid lines and labels of a linear y axis from 0 to ticks.back().
std::string YAxis(const std::vector<double>& ticks, std::string_view unit) {
  std::string out;
  const double top = ticks.back();
  for (const double tick : ticks) {
    const double y = kBottomY - tick / top * kPlotHeight;
    out += fmt::format(
        "<line class=\"grid-line\" x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\"/>\n", kLeft, y,
        kLeft + kPlotWidth, y);
    out += Text(kLeft - 6, y + 4, "end", Short(tick));
  }
  out += Text(12, kTop - 12, "start", unit);
  return out;
}

std::string BottomAxisLine() {
  return fmt::format("<line class=\"axis\" x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\"/>\n", kLeft,
                     kBottomY, kLeft + kPlotWidth, kBottomY);
}

std::string Card(std::string_view label, std::string_view value, std::string_view note = "",
                 bool bad = false) {
  return fmt::format(
      "<div class=\"card\"><div class=\"label\">{}</div><div class=\"value{}\">{}</div>"
      "<div class=\"note\">{}</div></div>\n",
      label, bad ? " bad" : "", value, note);
}

void AppendHeader(const ReplayResult& result, const ReplayConfig& config, std::string& out) {
  const std::string problems = ReplayProblems(result, config);
  out += "<header><div><h1>chatshard replay</h1>";
  out += fmt::format("<div class=\"sub\">{} · {} messages of {} chats · {} bad lines skipped</div>",
                     HtmlEscape(config.path), Group(result.messages), Group(result.chats),
                     Group(result.bad_lines));
  out += "</div>";
  if (problems.empty()) {
    out += fmt::format("<div class=\"verdict ok\">every message completed once{}</div>",
                       config.engine.ordering == Ordering::kPerChat ? ", in order per chat" : "");
  } else {
    out += "<div class=\"verdict bad\">FAILED</div>";
  }
  out += "</header>\n";
  if (!problems.empty()) {
    out += fmt::format("<div class=\"problems\">{}</div>\n", HtmlEscape(problems));
  }
}

void AppendCards(const ReplayResult& result, std::string& out) {
  out += "<section class=\"cards\">\n";
  out += Card("messages", Group(result.messages), fmt::format("{} chats", Group(result.chats)));
  out += Card("completed", Group(result.completed),
              fmt::format("{:.1f} %", Percent(result.completed, result.messages)),
              result.completed != result.messages);
  out += Card("failed", Group(result.failed), "", result.failed > 0);
  out += Card("rejected", Group(result.rejected),
              fmt::format("{} backpressure waits", Group(result.backpressure_waits)),
              result.rejected > 0);
  out += Card("order violations", Group(result.order_violations),
              fmt::format("{} duplicate runs", Group(result.duplicates)),
              result.order_violations > 0);
  out += Card("duration", fmt::format("{:.3g} s", result.duration_s), "first Submit → drained");
  out += Card("throughput", fmt::format("{}/s", Short(result.throughput_per_s)),
              fmt::format("{} msgs/s", Group(static_cast<uint64_t>(result.throughput_per_s))));
  out += "</section>\n";
}

// Completions per second over time, from result.timeline.
void AppendThroughput(const ReplayResult& result, std::string& out) {
  const Timeline& timeline = result.timeline;
  out += "<section class=\"panel\"><h2>Throughput over time</h2>\n";
  out += SvgOpen("completions per second over time");
  const size_t n = timeline.completed.size();
  if (n == 0 || timeline.bucket_s <= 0) {
    out += Text(kChartWidth / 2, kChartHeight / 2, "middle", "no messages ran");
    out += "</svg></section>\n";
    return;
  }
  const double span_s = std::max(result.duration_s, timeline.bucket_s * static_cast<double>(n - 1));
  // The last bucket may be cut short by the end of the run.
  const auto width_of = [&](size_t i) {
    if (i + 1 < n) return timeline.bucket_s;
    const double rest = span_s - timeline.bucket_s * static_cast<double>(n - 1);
    return rest > timeline.bucket_s * 0.05 ? std::min(rest, timeline.bucket_s) : timeline.bucket_s;
  };
  std::vector<double> completed(n);
  std::vector<double> accepted(n);
  double peak = 0;
  for (size_t i = 0; i < n; ++i) {
    completed[i] = static_cast<double>(timeline.completed[i]) / width_of(i);
    accepted[i] = static_cast<double>(timeline.accepted[i]) / width_of(i);
    peak = std::max({peak, completed[i], accepted[i]});
  }
  const std::vector<double> y_ticks = NiceTicks(peak, 5);
  out += YAxis(y_ticks, "msgs/s");

  // Seconds, or milliseconds for runs under two seconds.
  const bool in_ms = span_s < 2;
  const double unit = in_ms ? 1e-3 : 1;
  const std::vector<double> x_ticks = NiceTicks(span_s / unit, 6);
  const double x_max = x_ticks.back() * unit;
  const auto x_of = [&](double seconds) { return kLeft + seconds / x_max * kPlotWidth; };
  const auto y_of = [&](double rate) { return kBottomY - rate / y_ticks.back() * kPlotHeight; };
  for (const double tick : x_ticks) {
    const double x = x_of(tick * unit);
    out += fmt::format("<line class=\"axis\" x1=\"{:.1f}\" y1=\"{}\" x2=\"{:.1f}\" y2=\"{}\"/>\n",
                       x, kBottomY, x, kBottomY + 4);
    out += Text(x, kBottomY + 16, "middle", fmt::format("{:g}", tick));
  }
  out += Text(kLeft + kPlotWidth, kChartHeight - 2, "end",
              in_ms ? "time since the first Submit (ms)" : "time since the first Submit (s)");

  // One point per bucket, at its middle; a lone bucket spans the whole run.
  const auto points = [&](const std::vector<double>& rates) {
    std::string path;
    for (size_t i = 0; i < n; ++i) {
      const double middle = n == 1 ? 0 : timeline.bucket_s * static_cast<double>(i) + width_of(i) / 2;
      path += fmt::format("{}{:.1f},{:.1f} ", i == 0 ? "" : "L", x_of(middle), y_of(rates[i]));
      if (n == 1) path += fmt::format("L{:.1f},{:.1f} ", x_of(span_s), y_of(rates[i]));
    }
    return path;
  };
  const double first_x = n == 1 ? x_of(0) : x_of(width_of(0) / 2);
  const double last_x =
      n == 1 ? x_of(span_s) : x_of(timeline.bucket_s * static_cast<double>(n - 1) + width_of(n - 1) / 2);
  out += fmt::format(
      "<path d=\"M{:.1f},{} L{}L{:.1f},{} Z\" fill=\"var(--accent-soft)\" fill-opacity=\"0.7\"/>\n",
      first_x, kBottomY, points(completed), last_x, kBottomY);
  out += fmt::format(
      "<path d=\"M{}\" fill=\"none\" stroke=\"var(--accent)\" stroke-width=\"1.4\" "
      "stroke-linejoin=\"round\"/>\n",
      points(completed));
  out += fmt::format(
      "<path d=\"M{}\" fill=\"none\" stroke=\"var(--hot)\" stroke-width=\"1\" "
      "stroke-dasharray=\"3 2\" stroke-linejoin=\"round\"/>\n",
      points(accepted));
  out += BottomAxisLine();
  out += "</svg>\n";
  out += fmt::format(
      "<div class=\"caption\"><span class=\"legend\" style=\"background:var(--accent)\"></span>"
      "completed <span class=\"legend\" style=\"background:var(--hot)\"></span>accepted by Submit"
      " · per {} bucket · mean {} msgs/s</div>\n",
      Micros(timeline.bucket_s * 1e6), Group(static_cast<uint64_t>(result.throughput_per_s)));
  out += "</section>\n";
}

// The end-to-end latency histogram on a log axis, its CDF, and the percentiles.
void AppendLatency(const ReplayResult& result, std::string& out) {
  const std::vector<LatencyBucket>& buckets = result.end_to_end_histogram;
  const LatencySummary& e2e = result.end_to_end;
  out += "<section class=\"panel\"><h2>End-to-end latency (Submit accepted → handler done)</h2>\n";
  out += SvgOpen("end-to-end latency distribution");
  uint64_t total = 0;
  for (const LatencyBucket& bucket : buckets) total += bucket.count;
  if (total == 0) {
    out += Text(kChartWidth / 2, kChartHeight / 2, "middle", "no messages ran");
    out += "</svg></section>\n";
    return;
  }

  // Whole decades around the data, at least two.
  double low_us = buckets.front().upper_us;
  for (const LatencyBucket& bucket : buckets) {
    if (bucket.lower_us > 0) low_us = std::min(low_us, bucket.lower_us);
  }
  low_us = std::max(low_us, 1e-3);
  const double high_us = std::max(buckets.back().upper_us, low_us);
  const int first_decade = static_cast<int>(std::floor(std::log10(low_us)));
  int last_decade = static_cast<int>(std::ceil(std::log10(high_us)));
  if (last_decade - first_decade < 2) last_decade = first_decade + 2;
  const int decades = last_decade - first_decade;
  const int bins_per_decade = decades <= 4 ? 10 : 5;
  const int bins = decades * bins_per_decade;
  const auto position = [&](double us) {  // 0..bins along the axis
    const double at = (std::log10(std::max(us, 1e-3)) - first_decade) * bins_per_decade;
    return std::clamp(at, 0.0, static_cast<double>(bins));
  };

  // Each histogram bucket spreads its count over the bins it overlaps, in
  // proportion on the log scale, so bins do not alias with bucket edges.
  std::vector<double> counts(static_cast<size_t>(bins), 0);
  for (const LatencyBucket& bucket : buckets) {
    const double hi = position(bucket.upper_us);
    const double lo = bucket.lower_us > 0 ? position(bucket.lower_us) : hi;
    if (hi - lo < 1e-9) {
      counts[std::min(static_cast<size_t>(hi), counts.size() - 1)] += static_cast<double>(bucket.count);
      continue;
    }
    for (int bin = static_cast<int>(lo); bin < bins && bin < hi; ++bin) {
      const double overlap = std::min<double>(hi, bin + 1) - std::max<double>(lo, bin);
      if (overlap > 0) counts[static_cast<size_t>(bin)] += static_cast<double>(bucket.count) * overlap / (hi - lo);
    }
  }
  double peak_share = 0;
  for (double& count : counts) {
    count = 100.0 * count / static_cast<double>(total);
    peak_share = std::max(peak_share, count);
  }
  const std::vector<double> y_ticks = NiceTicks(peak_share, 4);
  out += YAxis(y_ticks, "% of messages");
  const auto x_at = [&](double bin_position) { return kLeft + bin_position / bins * kPlotWidth; };

  // Right axis: the CDF.
  for (int percent = 0; percent <= 100; percent += 25) {
    out += Text(kLeft + kPlotWidth + 6, kBottomY - percent / 100.0 * kPlotHeight + 4, "start",
                fmt::format("{}%", percent));
  }
  out += Text(kChartWidth - 4, kTop - 12, "end", "cumulative");

  // Decade ticks.
  for (int decade = first_decade; decade <= last_decade; ++decade) {
    const double x = x_at((decade - first_decade) * bins_per_decade);
    out += fmt::format("<line class=\"axis\" x1=\"{:.1f}\" y1=\"{}\" x2=\"{:.1f}\" y2=\"{}\"/>\n",
                       x, kBottomY, x, kBottomY + 4);
    out += Text(x, kBottomY + 16, "middle", Micros(std::pow(10.0, decade)));
  }

  for (int bin = 0; bin < bins; ++bin) {
    const double share = counts[static_cast<size_t>(bin)];
    if (share <= 0) continue;
    const double height = share / y_ticks.back() * kPlotHeight;
    out += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" "
        "fill=\"var(--accent-soft)\"/>\n",
        x_at(bin) + 0.5, kBottomY - height, kPlotWidth / bins - 1, height);
  }

  // The CDF as a step line through each bucket's upper bound.
  std::string cdf = fmt::format("M{:.1f},{}", x_at(position(buckets.front().lower_us)), kBottomY);
  uint64_t seen = 0;
  for (const LatencyBucket& bucket : buckets) {
    seen += bucket.count;
    cdf += fmt::format(" L{:.1f},{:.1f}", x_at(position(bucket.upper_us)),
                       kBottomY - static_cast<double>(seen) / static_cast<double>(total) * kPlotHeight);
  }
  out += fmt::format(
      "<path d=\"{}\" fill=\"none\" stroke=\"var(--accent)\" stroke-width=\"1.5\" "
      "stroke-linejoin=\"round\"/>\n",
      cdf);

  // Percentile markers, their labels stacked so close ones do not overlap.
  const struct {
    std::string_view name;
    double us;
  } marks[] = {{"p50", e2e.p50_us}, {"p90", e2e.p90_us}, {"p99", e2e.p99_us}, {"p99.9", e2e.p999_us}};
  double previous_x = -1e9;
  int row = 0;
  for (const auto& mark : marks) {
    const double x = x_at(position(mark.us));
    row = x - previous_x < 70 ? row + 1 : 0;
    previous_x = x;
    out += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{}\" x2=\"{:.1f}\" y2=\"{}\" stroke=\"var(--hot)\" "
        "stroke-width=\"1\" stroke-dasharray=\"4 3\"/>\n",
        x, kTop - 4 + row * 12, x, kBottomY);
    out += Text(x + 3, kTop + 6 + row * 12, "start",
                fmt::format("{} {}", mark.name, Micros(mark.us)), " class=\"title\"");
  }
  out += BottomAxisLine();
  out += "</svg>\n";

  out += "<table><tr><th>µs</th><th>p50</th><th>p90</th><th>p99</th><th>p99.9</th><th>max</th>"
         "<th>count</th></tr>\n";
  const auto row_of = [&out](std::string_view label, const LatencySummary& s) {
    out += fmt::format(
        "<tr><td>{}</td><td>{:.1f}</td><td>{:.1f}</td><td>{:.1f}</td><td>{:.1f}</td><td>{:.1f}</td>"
        "<td>{}</td></tr>\n",
        label, s.p50_us, s.p90_us, s.p99_us, s.p999_us, s.max_us, Group(s.count));
  };
  row_of("queue wait", result.stats.total.queue_wait);
  row_of("service time", result.stats.total.service_time);
  row_of("end to end", e2e);
  out += "</table></section>\n";
}

// Messages submitted to each shard, split into completed, failed and not finished.
void AppendShards(const ReplayResult& result, std::string& out) {
  const std::vector<ShardStats>& shards = result.stats.shards;
  const Isolation& iso = result.isolation;
  std::vector<const ShardStats*> rows;
  for (const ShardStats& shard : shards) rows.push_back(&shard);
  const bool truncated = rows.size() > kMaxShardBars;
  if (truncated) {
    std::partial_sort(rows.begin(), rows.begin() + kShardBarsWhenTruncated, rows.end(),
                      [&](const ShardStats* a, const ShardStats* b) {
                        const bool a_hot = iso.known && a->shard == iso.hot_shard;
                        const bool b_hot = iso.known && b->shard == iso.hot_shard;
                        if (a_hot != b_hot) return a_hot;
                        return a->submitted > b->submitted;
                      });
    rows.resize(kShardBarsWhenTruncated);
    std::sort(rows.begin(), rows.end(),
              [](const ShardStats* a, const ShardStats* b) { return a->shard < b->shard; });
  }
  out += "<section class=\"panel\"><h2>Per-shard load</h2>\n";
  out += SvgOpen("messages per shard");
  if (rows.empty()) {
    out += "</svg></section>\n";
    return;
  }
  uint64_t peak = 0;
  uint64_t sum = 0;
  for (const ShardStats& shard : shards) sum += shard.submitted;
  for (const ShardStats* shard : rows) peak = std::max(peak, shard->submitted);
  const std::vector<double> y_ticks = NiceTicks(static_cast<double>(peak), 5);
  out += YAxis(y_ticks, "messages");
  const double top = y_ticks.back();
  const auto y_of = [&](double value) { return kBottomY - value / top * kPlotHeight; };
  const double slot = kPlotWidth / static_cast<double>(rows.size());
  const double bar = std::max(1.0, slot * 0.72);
  const size_t label_every = rows.size() <= 24 ? 1 : (rows.size() + 15) / 16;

  for (size_t i = 0; i < rows.size(); ++i) {
    const ShardStats& shard = *rows[i];
    const bool hot = iso.known && shard.shard == iso.hot_shard;
    const double x = kLeft + slot * static_cast<double>(i) + (slot - bar) / 2;
    const uint64_t done = std::min(shard.completed, shard.submitted);
    const uint64_t failed = std::min(shard.failed, shard.submitted - done);
    const double total_top = y_of(static_cast<double>(shard.submitted));
    const double done_top = y_of(static_cast<double>(done));
    const double failed_top = y_of(static_cast<double>(done + failed));
    out += fmt::format("<g><title>shard {}: {} submitted, {} completed, {} failed, {} rejected</title>",
                       shard.shard, shard.submitted, shard.completed, shard.failed, shard.rejected);
    // Not finished (submitted - completed - failed) shows as the pale part on top.
    out += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"/>",
        x, total_top, bar, kBottomY - total_top, hot ? "var(--hot-soft)" : "var(--accent-soft)");
    out += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"/>",
        x, done_top, bar, kBottomY - done_top, hot ? "var(--hot)" : "var(--accent)");
    if (failed > 0) {
      out += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"var(--bad)\"/>",
          x, failed_top, bar, done_top - failed_top);
    }
    out += "</g>\n";
    if (i % label_every == 0 || hot) {
      out += Text(x + bar / 2, kBottomY + 14, "middle", std::to_string(shard.shard),
                  hot ? " class=\"title\" style=\"fill:var(--hot)\"" : "");
    }
    if (hot) {
      out += Text(x + bar / 2, total_top - 5, x + bar / 2 > kLeft + kPlotWidth - 60 ? "end" : "middle",
                  fmt::format("hot chat · {:.1f}%", Percent(shard.submitted, sum)),
                  " class=\"title\" style=\"fill:var(--hot)\"");
    }
  }
  // The mean load: with a perfect spread every bar would end here.
  const double mean = static_cast<double>(sum) / static_cast<double>(shards.size());
  out += fmt::format(
      "<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"var(--ink)\" "
      "stroke-width=\"1\" stroke-dasharray=\"5 3\"/>\n",
      kLeft, y_of(mean), kLeft + kPlotWidth, y_of(mean));
  out += Text(kLeft + kPlotWidth + 4, y_of(mean) + 4, "start", "mean");
  out += BottomAxisLine();
  out += Text(kLeft + kPlotWidth, kChartHeight - 2, "end", "shard");
  out += "</svg>\n";
  out += "<div class=\"caption\"><span class=\"legend\" style=\"background:var(--accent)\"></span>"
         "completed<span class=\"legend\" style=\"background:var(--accent-soft)\"></span>"
         "not finished<span class=\"legend\" style=\"background:var(--bad)\"></span>failed"
         "<span class=\"legend\" style=\"background:var(--hot)\"></span>the hottest chat's shard";
  if (truncated) {
    out += fmt::format(" · the {} busiest of {} shards (all in --json)", rows.size(), shards.size());
  }
  out += "</div></section>\n";
}

void AppendIsolation(const ReplayResult& result, std::string& out) {
  const Isolation& iso = result.isolation;
  out += "<section class=\"panel\"><h2>Isolation of the hottest chat</h2>\n";
  if (!iso.known) {
    out += "<div class=\"caption\">The engine reported no hot chat.</div></section>\n";
    return;
  }
  out += fmt::format(
      "<div class=\"sub\">hottest chat <b>{}</b> on shard <b>{}</b>: {} messages, {:.1f}% of "
      "all</div>\n",
      HtmlEscape(iso.hot_chat), iso.hot_shard, Group(iso.hot_chat_messages),
      Percent(iso.hot_chat_messages, result.messages));
  out += "<table><tr><th>end to end</th><th>messages</th><th>p50</th><th>p99</th><th>max</th></tr>\n";
  const auto row = [&out](std::string_view label, const GroupLatency& group, bool hot) {
    const LatencySummary& s = group.end_to_end;
    if (group.messages == 0) {
      out += fmt::format("<tr{}><td>{}</td><td>0</td><td>-</td><td>-</td><td>-</td></tr>\n",
                         hot ? " class=\"hot\"" : "", label);
      return;
    }
    out += fmt::format("<tr{}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                       hot ? " class=\"hot\"" : "", label, Group(group.messages), Micros(s.p50_us),
                       Micros(s.p99_us), Micros(s.max_us));
  };
  row("the hot chat itself", iso.hot_chat_latency, true);
  row(fmt::format("other chats on shard {}", iso.hot_shard), iso.hot_shard_others, false);
  row("chats on the other shards", iso.other_shards, false);
  out += "</table>\n";
  if (iso.hot_shard_others.messages > 0 && iso.other_shards.messages > 0 &&
      iso.other_shards.end_to_end.p99_us > 0) {
    out += fmt::format(
        "<div class=\"caption\">p99 of the hot shard's other chats is {:.2f}× that of chats on "
        "other shards.</div>\n",
        iso.hot_shard_others.end_to_end.p99_us / iso.other_shards.end_to_end.p99_us);
  }
  out += "</section>\n";
}

void AppendFairness(const ReplayResult& result, std::string& out) {
  const Fairness& f = result.stats.fairness;
  const size_t shards = result.stats.shards.size();
  out += "<section class=\"panel\"><h2>Fairness (a shard's load = messages submitted to it)</h2>\n";
  out += "<table>\n";
  const auto row = [&out](std::string_view label, const std::string& value, std::string_view note) {
    out += fmt::format("<tr><td>{}</td><td>{}</td><td class=\"note\" style=\"color:var(--muted)\">{}"
                       "</td></tr>\n",
                       label, value, note);
  };
  row("Jain's index", fmt::format("{:.3f}", f.jain),
      fmt::format("1 = even; {:.3f} = all on one shard",
                  shards == 0 ? 1.0 : 1.0 / static_cast<double>(shards)));
  row("coefficient of variation", fmt::format("{:.3f}", f.cv), "stddev / mean");
  row("max / mean", fmt::format("{:.3f}", f.max_over_mean), "the busiest shard");
  row("chi-square p-value", fmt::format("{:.3g}", f.chi2_p),
      fmt::format("chi2 = {:.1f}, {} d.f.; small = not uniform", f.chi2,
                  shards == 0 ? 0 : shards - 1));
  row("backlogged-chat Jain", fmt::format("{:.3f}", f.backlogged_chat_jain),
      "service among chats backlogged together");
  row("worst cold-chat wait", Micros(f.worst_cold_wait_us), "queue wait, chats not among the hottest");
  out += "</table></section>\n";
}

void AppendHotChats(const ReplayResult& result, std::string& out) {
  const std::vector<HotChat>& chats = result.stats.hot_chats;
  out += "<section class=\"panel\"><h2>Hottest chats</h2>\n";
  if (chats.empty()) {
    out += "<div class=\"caption\">none</div></section>\n";
    return;
  }
  out += "<table><tr><th>chat</th><th>shard</th><th>messages</th><th>± error</th>"
         "<th style=\"width:38%\">share</th></tr>\n";
  const size_t rows = std::min(chats.size(), kHotChatRows);
  const double top_share = Percent(chats.front().count, result.stats.total.submitted);
  for (size_t i = 0; i < rows; ++i) {
    const HotChat& chat = chats[i];
    const double share = Percent(chat.count, result.stats.total.submitted);
    const double bar = top_share > 0 ? std::min(100.0, 70.0 * share / top_share) : 0;
    const bool hot = result.isolation.known && chat.chat_id == result.isolation.hot_chat;
    out += fmt::format(
        "<tr{}><td class=\"chat\">{}</td><td>{}</td><td>{}</td><td>{}</td><td><span "
        "class=\"share\" style=\"width:{:.1f}%{}\"></span>{:.1f}%</td></tr>\n",
        hot ? " class=\"hot\"" : "", HtmlEscape(chat.chat_id), chat.shard, Group(chat.count),
        Group(chat.error), bar, hot ? ";background:var(--hot-soft)" : "", share);
  }
  out += "</table><div class=\"caption\">The engine's heavy-hitter estimate (never under-counts; "
         "the true count is within ± error).</div></section>\n";
}

void AppendOptions(const ReplayResult& result, const ReplayConfig& config, std::string& out) {
  const Options& o = config.engine;
  out += "<section class=\"panel\"><h2>Run options</h2><table class=\"options\">\n";
  const auto row = [&out](std::string_view label, const std::string& value) {
    out += fmt::format("<tr><td>{}</td><td>{}</td></tr>\n", label, value);
  };
  row("file", HtmlEscape(config.path));
  row("loaded", fmt::format("{} messages of {} chats, {} bad lines skipped", Group(result.messages),
                            Group(result.chats), Group(result.bad_lines)));
  row("speed", config.speed > 0 ? fmt::format("×{:g} the recorded pace", config.speed)
                                : std::string("max (as fast as possible)"));
  row("work per message", fmt::format("{} µs ({})", HtmlEscape(config.work.ToString()),
                                      WorkModeName(config.work.mode())));
  row("partitions", std::to_string(o.partitions));
  row("concurrency", fmt::format("{} per shard", o.concurrency));
  row("ordering", std::string(OrderingName(o.ordering)));
  row("routing", std::string(RoutingName(o.routing)));
  row("quantum", fmt::format("{} messages per turn", o.quantum));
  row("threads", o.threads == 0 ? std::string("all CPUs") : std::to_string(o.threads));
  row("shard capacity", Group(o.shard_capacity));
  row("chat quota", o.chat_quota == 0 ? std::string("none") : Group(o.chat_quota));
  out += "</table></section>\n";
}

}  // namespace

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string HtmlReport(const ReplayResult& result, const ReplayConfig& config) {
  std::string out;
  out.reserve(64 * 1024);
  out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += fmt::format("<title>chatshard replay · {}</title>\n", HtmlEscape(config.path));
  out += "<style>";
  out += kStyle;
  out += "</style>\n</head>\n<body>\n<main>\n";
  AppendHeader(result, config, out);
  AppendCards(result, out);
  out += "<div class=\"grid\">\n";
  AppendThroughput(result, out);
  AppendLatency(result, out);
  out += "</div>\n<div class=\"grid\">\n";
  AppendShards(result, out);
  out += "<div>\n";
  AppendIsolation(result, out);
  out += "<div style=\"height:14px\"></div>\n";
  AppendFairness(result, out);
  out += "</div>\n</div>\n<div class=\"grid\">\n";
  AppendHotChats(result, out);
  AppendOptions(result, config, out);
  out += "</div>\n</main>\n</body>\n</html>\n";
  return out;
}

}  // namespace chatshard::cli
