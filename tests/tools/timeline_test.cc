#include "timeline.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <vector>

#include "cli_runner.h"
#include "gtest/gtest.h"
#include "replay.h"

namespace chatshard::cli {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

TEST(TimelineTest, BucketWidthIsOneTwoFiveAndCoversTheSpanInAtMost300) {
  EXPECT_EQ(TimelineBucketNs(0), 0);
  EXPECT_EQ(TimelineBucketNs(-5), 0);
  EXPECT_EQ(TimelineBucketNs(1), 1'000);
  EXPECT_EQ(TimelineBucketNs(300'000), 1'000);
  EXPECT_EQ(TimelineBucketNs(300'001), 2'000);
  EXPECT_EQ(TimelineBucketNs(9'000'000), 50'000);           // 9 ms -> 50 µs
  EXPECT_EQ(TimelineBucketNs(60'000'000'000), 200'000'000);  // 60 s -> 200 ms
  for (int64_t span = 1; span < 4'000'000'000'000; span = span * 3 + 7) {
    const int64_t width = TimelineBucketNs(span);
    const int64_t buckets = (span + width - 1) / width;
    EXPECT_LE(buckets, static_cast<int64_t>(kTimelineMaxBuckets)) << span;
    EXPECT_TRUE(width == 1'000 || buckets > static_cast<int64_t>(kTimelineMaxBuckets) * 2 / 5)
        << span;  // never much coarser than needed
  }
}

TEST(TimelineTest, BucketsAcceptedAndFinishedTimes) {
  const Clock::time_point start = Clock::time_point{} + std::chrono::seconds(100);
  TimelineBuilder builder(start, milliseconds(3));
  const auto add = [&](Clock::duration finished, Clock::duration end_to_end) {
    builder.Add(nanoseconds((start + finished).time_since_epoch()).count(),
                static_cast<uint64_t>(nanoseconds(end_to_end).count()));
  };
  add(microseconds(25), microseconds(25));    // accepted at 0, finished in bucket 2
  add(microseconds(0), microseconds(0));      // both in bucket 0
  add(milliseconds(5), milliseconds(1));      // past the span: the last bucket
  add(microseconds(2995), microseconds(995));  // accepted at 2 ms, finished in the last bucket

  const Timeline timeline = std::move(builder).Take();
  EXPECT_DOUBLE_EQ(timeline.bucket_s, 10e-6);
  ASSERT_EQ(timeline.completed.size(), 300u);
  ASSERT_EQ(timeline.accepted.size(), 300u);
  EXPECT_EQ(timeline.completed[0], 1u);
  EXPECT_EQ(timeline.completed[2], 1u);
  EXPECT_EQ(timeline.completed[299], 2u);
  EXPECT_EQ(timeline.accepted[0], 2u);
  EXPECT_EQ(timeline.accepted[200], 1u);
  EXPECT_EQ(timeline.accepted[299], 1u);  // accepted at 4 ms
  EXPECT_EQ(std::accumulate(timeline.completed.begin(), timeline.completed.end(), uint64_t{0}),
            4u);
  EXPECT_EQ(std::accumulate(timeline.accepted.begin(), timeline.accepted.end(), uint64_t{0}), 4u);
}

TEST(TimelineTest, EventsOnABucketEdgeGoToTheBucketThatStartsThere) {
  // Every bucket edge, and one nanosecond either side of it, against a
  // division by the width.
  for (const auto span :
       {Clock::duration(milliseconds(3)), Clock::duration(std::chrono::seconds(7)),
        Clock::duration(std::chrono::hours(30))}) {
    const Clock::time_point start = Clock::time_point{} + std::chrono::seconds(1000);
    const int64_t start_ns = nanoseconds(start.time_since_epoch()).count();
    const int64_t span_ns = nanoseconds(span).count();
    const int64_t width = TimelineBucketNs(span_ns);
    const int64_t buckets = (span_ns + width - 1) / width;
    for (int64_t edge = 0; edge < buckets; ++edge) {
      for (const int64_t offset : {int64_t{-1}, int64_t{0}, int64_t{1}}) {
        const int64_t at = edge * width + offset;
        TimelineBuilder builder(start, span);
        builder.Add(start_ns + at, 0);
        const Timeline timeline = std::move(builder).Take();
        const auto expected = static_cast<size_t>(std::clamp<int64_t>(at / width, 0, buckets - 1));
        ASSERT_EQ(timeline.completed[expected], 1u) << "span " << span_ns << " at " << at;
        ASSERT_EQ(timeline.accepted[expected], 1u) << "span " << span_ns << " at " << at;
      }
    }
  }
}

TEST(TimelineTest, StreaksAndMergesCountLikeOneDivisionPerEvent) {
  // Mostly ascending times with jumps back and forth, over two builders that
  // are then merged, against counting each event by division.
  const Clock::time_point start = Clock::time_point{} + std::chrono::seconds(50);
  const int64_t start_ns = nanoseconds(start.time_since_epoch()).count();
  const Clock::duration span = milliseconds(40);
  const int64_t width = TimelineBucketNs(nanoseconds(span).count());
  const auto buckets = static_cast<int64_t>((nanoseconds(span).count() + width - 1) / width);
  std::vector<uint64_t> completed(static_cast<size_t>(buckets));
  std::vector<uint64_t> accepted(static_cast<size_t>(buckets));
  TimelineBuilder a(start, span);
  TimelineBuilder b(start, span);
  uint32_t rng = 99;
  int64_t t = -50'000;
  for (int i = 0; i < 200000; ++i) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    t += rng % 7 == 0 ? -static_cast<int64_t>(rng % 300'000) : static_cast<int64_t>(rng % 400);
    const auto e2e = static_cast<uint64_t>(rng % 2'000'000);
    ((rng >> 8) % 3 == 0 ? b : a).Add(start_ns + t, e2e);
    const auto bucket_of = [&](int64_t x) {
      return static_cast<size_t>(std::clamp<int64_t>(x < 0 ? 0 : x / width, 0, buckets - 1));
    };
    ++completed[bucket_of(t)];
    ++accepted[bucket_of(t - static_cast<int64_t>(e2e))];
  }
  a.Merge(b);
  const Timeline timeline = std::move(a).Take();
  EXPECT_EQ(timeline.completed, completed);
  EXPECT_EQ(timeline.accepted, accepted);
}

TEST(TimelineTest, EmptySpanIsAnEmptyTimeline) {
  TimelineBuilder builder(Clock::now(), Clock::duration{});
  builder.Add(nanoseconds(Clock::now().time_since_epoch()).count(), 5);  // ignored
  const Timeline timeline = std::move(builder).Take();
  EXPECT_EQ(timeline.bucket_s, 0);
  EXPECT_TRUE(timeline.completed.empty());
  EXPECT_TRUE(timeline.accepted.empty());
}

TEST(TimelineTest, ReplayFillsTheTimelineAndTheLatencyHistogram) {
  Traffic traffic;
  for (int chat = 0; chat < 50; ++chat) traffic.chats.push_back("chat-" + std::to_string(chat));
  for (uint32_t i = 0; i < 5000; ++i) {
    traffic.messages.push_back(TrafficMessage{.ts_us = i, .chat = i % 50, .bytes = 0});
  }
  ReplayConfig config;
  config.engine.partitions = 4;
  config.engine.threads = 2;
  config.progress = false;
  Result<ReplayResult> replayed = Replay(traffic, config);
  ASSERT_TRUE(replayed.ok()) << replayed.status().ToString();
  const ReplayResult& result = replayed.value();
  ASSERT_EQ(result.completed, 5000u);

  const Timeline& timeline = result.timeline;
  EXPECT_GT(timeline.bucket_s, 0);
  EXPECT_LE(timeline.completed.size(), kTimelineMaxBuckets);
  EXPECT_GE(static_cast<double>(timeline.completed.size()) * timeline.bucket_s,
            result.duration_s * (1 - 1e-9));
  EXPECT_EQ(std::accumulate(timeline.completed.begin(), timeline.completed.end(), uint64_t{0}),
            5000u);
  EXPECT_EQ(std::accumulate(timeline.accepted.begin(), timeline.accepted.end(), uint64_t{0}),
            5000u);

  uint64_t counted = 0;
  double previous_upper = -1;
  for (const LatencyBucket& bucket : result.end_to_end_histogram) {
    EXPECT_GT(bucket.count, 0u);
    EXPECT_LE(bucket.lower_us, bucket.upper_us);
    EXPECT_GT(bucket.upper_us, previous_upper);
    previous_upper = bucket.upper_us;
    counted += bucket.count;
  }
  EXPECT_EQ(counted, 5000u);
  EXPECT_DOUBLE_EQ(result.end_to_end_histogram.back().upper_us, result.end_to_end.max_us);
}

TEST(CliReplayTimelineTest, JsonTimelineCountsEveryMessage) {
  const std::filesystem::path json_path = ScratchDir() / "result.json";
  const CommandResult r = RunCli({"replay", CHATSHARD_SAMPLE, "--json", json_path.string()});
  ASSERT_EQ(r.exit_code, 0) << Describe(r);
  const nlohmann::json result = nlohmann::json::parse(ReadFile(json_path));
  const nlohmann::json& timeline = result["timeline"];
  ASSERT_TRUE(timeline["bucket_s"].is_number());
  EXPECT_GT(timeline["bucket_s"].get<double>(), 0);
  ASSERT_TRUE(timeline["completed"].is_array());
  ASSERT_TRUE(timeline["accepted"].is_array());
  EXPECT_EQ(timeline["completed"].size(), timeline["accepted"].size());
  EXPECT_LE(timeline["completed"].size(), kTimelineMaxBuckets);
  uint64_t completed = 0;
  uint64_t accepted = 0;
  for (const auto& n : timeline["completed"]) completed += n.get<uint64_t>();
  for (const auto& n : timeline["accepted"]) accepted += n.get<uint64_t>();
  EXPECT_EQ(completed, result["completed"].get<uint64_t>());
  EXPECT_EQ(accepted, result["messages"].get<uint64_t>());
}

}  // namespace
}  // namespace chatshard::cli
