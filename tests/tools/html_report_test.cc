#include "html_report.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "cli_runner.h"
#include "gtest/gtest.h"

namespace chatshard::cli {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kEvilChat = "<script>alert('x&y')</script>";

// Checks that every element the page opens is closed, in order. Knows the
// parts of HTML the report emits: a doctype, void <meta>, self-closing SVG
// elements (<rect/>), and <style>, whose content is raw text. Returns "" when
// balanced, else what is wrong.
std::string TagProblems(std::string_view html) {
  std::vector<std::string> open;
  size_t at = 0;
  while ((at = html.find('<', at)) != std::string_view::npos) {
    if (html.substr(at, 4) == "<!--") {
      const size_t end = html.find("-->", at);
      if (end == std::string_view::npos) return "unclosed comment";
      at = end + 3;
      continue;
    }
    const size_t end = html.find('>', at);
    if (end == std::string_view::npos) return "unclosed tag at " + std::to_string(at);
    const std::string_view tag = html.substr(at + 1, end - at - 1);
    at = end + 1;
    if (tag.starts_with('!')) continue;  // <!DOCTYPE html>
    if (tag.starts_with('/')) {
      const std::string name(tag.substr(1));
      if (open.empty() || open.back() != name) {
        return "</" + name + "> closes " + (open.empty() ? "nothing" : "<" + open.back() + ">");
      }
      open.pop_back();
      continue;
    }
    const std::string name(tag.substr(0, tag.find_first_of(" \n/")));
    if (name.empty()) return "empty tag name at " + std::to_string(at);
    if (tag.ends_with('/') || name == "meta") continue;
    if (name == "style") {
      const size_t close = html.find("</style>", at);
      if (close == std::string_view::npos) return "unclosed <style>";
      if (html.substr(at, close - at).find('<') != std::string_view::npos) return "'<' in <style>";
      at = close + 8;
      continue;
    }
    open.push_back(name);
  }
  if (!open.empty()) return "<" + open.back() + "> is never closed";
  return "";
}

// A finished replay of 4 shards whose hottest chat has a hostile id.
ReplayResult SampleResult() {
  ReplayResult result;
  result.messages = 12345;
  result.chats = 321;
  result.accepted = 12338;
  result.rejected = 7;
  result.completed = 12338;
  result.handled = 12338;
  result.duration_s = 2.5;
  result.throughput_per_s = 4935.2;
  result.end_to_end = LatencySummary{.count = 12338,
                                     .mean_us = 90,
                                     .p50_us = 41.5,
                                     .p90_us = 120.25,
                                     .p99_us = 987.5,
                                     .p999_us = 4321.75,
                                     .max_us = 9876.5};
  result.end_to_end_histogram = {{.lower_us = 0.9, .upper_us = 1.0, .count = 3},
                                 {.lower_us = 30, .upper_us = 32, .count = 6000},
                                 {.lower_us = 100, .upper_us = 110, .count = 5000},
                                 {.lower_us = 900, .upper_us = 1000, .count = 1300},
                                 {.lower_us = 9000, .upper_us = 9876.5, .count = 35}};
  result.timeline.bucket_s = 0.01;
  for (int i = 0; i < 250; ++i) {
    result.timeline.accepted.push_back(50);
    result.timeline.completed.push_back(i < 200 ? 49 : 50);
  }
  for (uint32_t s = 0; s < 4; ++s) {
    ShardStats shard;
    shard.shard = s;
    shard.submitted = s == 2 ? 6000 : 2000 + s;
    shard.completed = shard.submitted;
    result.stats.shards.push_back(shard);
  }
  result.stats.total.submitted = 12338;
  result.stats.total.completed = 12338;
  result.stats.fairness = Fairness{.jain = 0.7654, .cv = 0.4321, .max_over_mean = 1.9452};
  result.stats.hot_chats = {HotChat{std::string(kEvilChat), 2, 4000, 0},
                            HotChat{"room/42", 1, 300, 2}};
  result.isolation.known = true;
  result.isolation.hot_chat = std::string(kEvilChat);
  result.isolation.hot_shard = 2;
  result.isolation.hot_chat_messages = 4000;
  result.isolation.hot_chat_latency = {.messages = 4000, .end_to_end = {.p99_us = 2500}};
  result.isolation.hot_shard_others = {.messages = 2000, .end_to_end = {.p99_us = 1500}};
  result.isolation.other_shards = {.messages = 6338, .end_to_end = {.p99_us = 500}};
  return result;
}

ReplayConfig SampleConfig() {
  ReplayConfig config;
  config.path = "captures/<b>night</b>.jsonl";
  config.engine.partitions = 4;
  config.engine.concurrency = 3;
  return config;
}

void ExpectSelfContained(const std::string& html) {
  for (const char* external : {"http://", "https://", "src=", "href=", "<script", "<link",
                               "@import", "url(", "<iframe"}) {
    EXPECT_EQ(html.find(external), std::string::npos) << external;
  }
}

TEST(HtmlReportTest, TagsAreBalanced) {
  const std::string html = HtmlReport(SampleResult(), SampleConfig());
  EXPECT_TRUE(html.starts_with("<!DOCTYPE html>\n<html")) << html.substr(0, 40);
  EXPECT_EQ(TagProblems(html), "");
}

TEST(HtmlReportTest, TagCheckerCatchesUnbalancedTags) {
  EXPECT_EQ(TagProblems("<p><b>x</b></p>"), "");
  EXPECT_NE(TagProblems("<p><b>x</p></b>"), "");
  EXPECT_NE(TagProblems("<p>x"), "");
  EXPECT_EQ(TagProblems("<svg><rect x=\"1\"/></svg>"), "");
}

TEST(HtmlReportTest, ShowsTheNumbers) {
  const std::string html = HtmlReport(SampleResult(), SampleConfig());
  for (const char* number :
       {"12,345",  // messages
        "12,338",  // completed
        ">7<",     // rejected
        "2.5 s",   // duration
        "4,935 msgs/s", "p50 41.5 µs", "p90 120 µs", "p99 988 µs", "p99.9 4.32 ms",
        "0.765",  // Jain
        "0.432",  // cv
        "1.945",  // max / mean
        "room/42", "hot chat · 50.0%", "shard <b>2</b>", "3.00×", "per 10 ms bucket",
        "partitions", "concurrency</td><td>3 per shard"}) {
    EXPECT_NE(html.find(number), std::string::npos) << number;
  }
}

TEST(HtmlReportTest, EscapesChatIdsAndTheFileName) {
  const std::string html = HtmlReport(SampleResult(), SampleConfig());
  EXPECT_EQ(html.find(kEvilChat), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_NE(html.find("&lt;script&gt;alert(&#39;x&amp;y&#39;)&lt;/script&gt;"), std::string::npos);
  EXPECT_EQ(html.find("<b>night</b>"), std::string::npos);
  EXPECT_NE(html.find("captures/&lt;b&gt;night&lt;/b&gt;.jsonl"), std::string::npos);
  EXPECT_EQ(HtmlEscape("a<b>&\"c'"), "a&lt;b&gt;&amp;&quot;c&#39;");
  EXPECT_EQ(HtmlEscape("plain/ünïcode"), "plain/ünïcode");
}

TEST(HtmlReportTest, ReferencesNothingOutsideTheFile) {
  ExpectSelfContained(HtmlReport(SampleResult(), SampleConfig()));
}

TEST(HtmlReportTest, SaysWhenTheRunFailed) {
  ReplayResult result = SampleResult();
  result.order_violations = 3;
  const std::string html = HtmlReport(result, SampleConfig());
  EXPECT_NE(html.find("FAILED"), std::string::npos);
  EXPECT_NE(html.find("3 order violations"), std::string::npos);
  EXPECT_EQ(TagProblems(html), "");
}

TEST(HtmlReportTest, EmptyRunIsStillAPage) {
  const std::string html = HtmlReport(ReplayResult{}, ReplayConfig{});
  EXPECT_EQ(TagProblems(html), "");
  EXPECT_NE(html.find("no messages ran"), std::string::npos);
  EXPECT_NE(html.find("The engine reported no hot chat."), std::string::npos);
}

TEST(HtmlReportTest, ManyShardsShowTheBusiestAndTheHotOne) {
  ReplayResult result = SampleResult();
  result.stats.shards.clear();
  for (uint32_t s = 0; s < 1000; ++s) {
    ShardStats shard;
    shard.shard = s;
    shard.submitted = s == 999 ? 1 : 10 + s % 7;  // the hot shard is among the quietest
    shard.completed = shard.submitted;
    result.stats.shards.push_back(shard);
  }
  result.isolation.hot_shard = 999;
  const std::string html = HtmlReport(result, SampleConfig());
  EXPECT_EQ(TagProblems(html), "");
  EXPECT_NE(html.find("the 32 busiest of 1000 shards"), std::string::npos);
  EXPECT_NE(html.find("<title>shard 999:"), std::string::npos);
}

TEST(CliReplayHtmlTest, SampleAtMaxSpeedWritesTheReport) {
  const fs::path html_path = ScratchDir() / "out.html";
  const CommandResult r =
      RunCli({"replay", CHATSHARD_SAMPLE, "--speed", "max", "--html", html_path.string()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  const std::string html = ReadFile(html_path);
  ASSERT_FALSE(html.empty());
  EXPECT_TRUE(html.starts_with("<!DOCTYPE html>"));
  EXPECT_EQ(TagProblems(html), "");
  ExpectSelfContained(html);
  EXPECT_NE(html.find("85,714"), std::string::npos);  // the sample's messages
  EXPECT_NE(html.find("hot/lobby"), std::string::npos);
  EXPECT_NE(html.find("every message completed once, in order per chat"), std::string::npos);
  EXPECT_NE(html.find("Throughput over time"), std::string::npos);
}

TEST(CliReplayHtmlTest, UnwritableHtmlPathExitsOne) {
  const fs::path html_path = ScratchDir() / "no_such_dir" / "out.html";
  const CommandResult r = RunCli({"replay", CHATSHARD_SAMPLE, "--html", html_path.string()});
  EXPECT_EQ(r.exit_code, 1) << Describe(r);
  EXPECT_NE(r.err.find("cannot write"), std::string::npos) << r.err;
}

TEST(CliReplayHtmlTest, NoProgressIsAccepted) {
  const CommandResult r = RunCli({"replay", CHATSHARD_SAMPLE, "--no-progress"});
  EXPECT_EQ(r.exit_code, 0) << Describe(r);
  EXPECT_EQ(r.err.find("submitted"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace chatshard::cli
