#include "progress.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>

#include "gtest/gtest.h"

namespace chatshard::cli {
namespace {

using std::chrono::milliseconds;

std::string Contents(std::FILE* file) {
  std::fflush(file);
  std::rewind(file);
  std::string text;
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, n);
  return text;
}

ProgressOptions Fast(std::FILE* out, bool terminal) {
  ProgressOptions options;
  options.out = out;
  options.terminal = terminal;
  options.delay = milliseconds(0);
  options.terminal_interval = milliseconds(1);
  options.plain_interval = milliseconds(1);
  return options;
}

// Waits until `calls` reaches `at_least`: the meter has sampled that often.
void WaitForSamples(const std::atomic<int>& calls, int at_least) {
  while (calls.load() < at_least) std::this_thread::sleep_for(milliseconds(1));
}

TEST(ProgressTest, FormatsEta) {
  EXPECT_EQ(FormatEta(12.34), "12.3 s");
  EXPECT_EQ(FormatEta(245), "4 min 05 s");
  EXPECT_EQ(FormatEta(3725), "1 h 02 min");
  EXPECT_EQ(FormatEta(-1), "?");
  EXPECT_EQ(FormatEta(1.0 / 0.0), "?");
}

TEST(ProgressTest, BarShowsSubmittedPercentRateCompletedAndEta) {
  const ProgressSample sample{
      .total = 1000, .submitted = 500, .completed = 400, .rate_per_s = 200, .elapsed_s = 2};
  const std::string wide = FormatProgressBar(sample, 120);
  EXPECT_EQ(wide,
            "[##########----------]  50.0%  500/1000 submitted  400 completed  200 msgs/s  "
            "ETA 3.0 s");
  const std::string narrow = FormatProgressBar(sample, 40);
  EXPECT_EQ(narrow.size(), 39u);  // the last column stays free
  EXPECT_EQ(narrow.find('['), std::string::npos);
  EXPECT_TRUE(narrow.starts_with(" 50.0%  500/1000 submitted")) << narrow;
}

TEST(ProgressTest, UnknownRateHasNoEta) {
  const ProgressSample sample{.total = 10, .submitted = 1, .completed = 0, .rate_per_s = -1};
  const std::string line = FormatProgressLine(sample);
  EXPECT_NE(line.find("-- msgs/s, ETA ?"), std::string::npos) << line;
  const ProgressSample done{.total = 10, .submitted = 10, .completed = 10, .rate_per_s = 0};
  EXPECT_NE(FormatProgressLine(done).find("ETA 0 s"), std::string::npos);
}

TEST(ProgressTest, DisabledMeterWritesNothing) {
  std::FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  {
    ProgressOptions options = Fast(out, false);
    options.enabled = false;
    ProgressMeter meter(10, [] { return uint64_t{5}; }, options);
    meter.SetSubmitted(10);
    std::this_thread::sleep_for(milliseconds(20));
  }
  EXPECT_EQ(Contents(out), "");
  std::fclose(out);
}

TEST(ProgressTest, NothingBeforeTheDelay) {
  std::FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  std::atomic<int> calls{0};
  ProgressOptions options = Fast(out, false);
  options.delay = std::chrono::hours(1);
  ProgressMeter meter(10, [&calls] { return static_cast<uint64_t>(++calls); }, options);
  WaitForSamples(calls, 3);
  meter.Stop();
  EXPECT_EQ(Contents(out), "");
  std::fclose(out);
}

TEST(ProgressTest, PlainLinesEndWithTheFinalCounts) {
  std::FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  std::atomic<int> calls{0};
  std::atomic<uint64_t> completed{0};
  ProgressMeter meter(
      1000,
      [&] {
        ++calls;
        return completed.load();
      },
      Fast(out, false));
  meter.SetSubmitted(600);
  completed = 300;
  WaitForSamples(calls, 3);
  meter.SetSubmitted(1000);
  completed = 1000;
  meter.Stop();
  meter.Stop();  // idempotent
  const std::string text = Contents(out);
  EXPECT_EQ(text.find('\r'), std::string::npos);
  EXPECT_NE(text.find("chatshard replay: "), std::string::npos) << text;
  const size_t last = text.rfind("chatshard replay: ");
  EXPECT_TRUE(text.substr(last).starts_with(
      "chatshard replay: 1000/1000 submitted (100.0%), 1000 completed, "))
      << text;
  EXPECT_TRUE(text.ends_with(" s elapsed\n")) << text;
  std::fclose(out);
}

TEST(ProgressTest, TerminalRedrawsOneLineAndClearsIt) {
  std::FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  std::atomic<int> calls{0};
  {
    ProgressMeter meter(
        100, [&calls] { return static_cast<uint64_t>(++calls); }, Fast(out, true));
    meter.SetSubmitted(50);
    WaitForSamples(calls, 3);
  }  // the destructor stops it
  const std::string text = Contents(out);
  EXPECT_TRUE(text.starts_with("\r")) << text;
  EXPECT_NE(text.find("50/100 submitted"), std::string::npos) << text;
  EXPECT_EQ(text.find('\n'), std::string::npos);
  EXPECT_TRUE(text.ends_with("\r\033[K")) << text;
  std::fclose(out);
}

}  // namespace
}  // namespace chatshard::cli
