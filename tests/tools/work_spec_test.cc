#include "work_spec.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace chatshard::cli {
namespace {

double SampleUs(const WorkSpec& spec, uint64_t key) {
  return static_cast<double>(spec.Sample(key).count()) / 1000.0;
}

// Mean and the fraction of samples below `x` over keys 0..n-1.
struct Moments {
  double mean = 0;
  double below = 0;
};
Moments Measure(const WorkSpec& spec, double x, uint64_t n = 200'000) {
  Moments m;
  for (uint64_t key = 0; key < n; ++key) {
    const double us = SampleUs(spec, key);
    m.mean += us;
    if (us < x) m.below += 1;
  }
  m.mean /= static_cast<double>(n);
  m.below /= static_cast<double>(n);
  return m;
}

TEST(WorkSpecTest, FixedIsTheSameForEveryKey) {
  const Result<WorkSpec> spec = WorkSpec::Parse("250");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  EXPECT_EQ(spec->kind(), WorkSpec::Kind::kFixed);
  EXPECT_FALSE(spec->none());
  for (uint64_t key : {0ULL, 1ULL, 99ULL, ~0ULL}) {
    EXPECT_EQ(spec->Sample(key), std::chrono::microseconds(250));
  }
  EXPECT_EQ(spec->ToString(), "250");
  EXPECT_TRUE(WorkSpec::Parse("0")->none());
  EXPECT_TRUE(WorkSpec().none());
}

TEST(WorkSpecTest, UniformStaysInItsRangeWithTheRightMean) {
  const Result<WorkSpec> spec = WorkSpec::Parse("uniform:10-30");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  for (uint64_t key = 0; key < 10'000; ++key) {
    const double us = SampleUs(*spec, key);
    ASSERT_GE(us, 10.0);
    ASSERT_LE(us, 30.0);
  }
  const Moments m = Measure(*spec, 20);
  EXPECT_NEAR(m.mean, 20.0, 0.1);
  EXPECT_NEAR(m.below, 0.5, 0.01);
  EXPECT_DOUBLE_EQ(spec->MeanUs(), 20.0);
  EXPECT_EQ(spec->ToString(), "uniform:10-30");
}

TEST(WorkSpecTest, ExponentialHasItsMeanAndMedian) {
  const Result<WorkSpec> spec = WorkSpec::Parse("exp:50");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  // Median of an exponential is mean * ln 2.
  const Moments m = Measure(*spec, 50 * std::log(2.0));
  EXPECT_NEAR(m.mean, 50.0, 0.75);
  EXPECT_NEAR(m.below, 0.5, 0.01);
}

TEST(WorkSpecTest, LogNormalHasItsMedianAndMean) {
  const Result<WorkSpec> spec = WorkSpec::Parse("lognormal:40,0.5");
  ASSERT_TRUE(spec.ok()) << spec.status().ToString();
  const Moments m = Measure(*spec, 40);
  EXPECT_NEAR(m.below, 0.5, 0.01);
  EXPECT_NEAR(m.mean, spec->MeanUs(), spec->MeanUs() * 0.02);
  EXPECT_EQ(spec->ToString(), "lognormal:40,0.5");
}

TEST(WorkSpecTest, SamplesAreDeterministicAndVary) {
  const WorkSpec a = WorkSpec::Parse("exp:100").value();
  const WorkSpec b = WorkSpec::Parse("exp:100").value();
  std::vector<int64_t> distinct;
  for (uint64_t key = 0; key < 100; ++key) {
    ASSERT_EQ(a.Sample(key), b.Sample(key));
    distinct.push_back(a.Sample(key).count());
  }
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  EXPECT_GT(distinct.size(), 90u);
}

TEST(WorkSpecTest, SamplesAreCapped) {
  const WorkSpec spec = WorkSpec::Parse("lognormal:1000000,10").value();
  for (uint64_t key = 0; key < 10'000; ++key) {
    ASSERT_LE(SampleUs(spec, key), WorkSpec::kMaxWorkUs);
    ASSERT_GE(SampleUs(spec, key), 0.0);
  }
}

TEST(WorkSpecTest, BadSpecsNameTheTextAndTheProblem) {
  const struct {
    const char* text;
    const char* says;
  } cases[] = {
      {"abc", "not a number"},           {"-5", "out of range"},
      {"20000000", "out of range"},      {"uniform:30-10", "LO <= HI"},
      {"uniform:10", "LO-HI"},           {"exp:0", "mean must be > 0"},
      {"exp:x", "exp needs a mean"},     {"lognormal:50", "MEDIAN,SIGMA"},
      {"lognormal:50,-1", "sigma"},      {"pareto:3", "unknown distribution 'pareto'"},
      {"", "not a number"},
  };
  for (const auto& c : cases) {
    const Result<WorkSpec> spec = WorkSpec::Parse(c.text);
    ASSERT_FALSE(spec.ok()) << c.text;
    const std::string message(spec.status().message());
    EXPECT_NE(message.find(std::string("'") + c.text + "'"), std::string::npos) << message;
    EXPECT_NE(message.find(c.says), std::string::npos) << message;
  }
}

TEST(WorkSpecTest, BusyWorkTakesAtLeastItsTime) {
  const WorkSpec spec = WorkSpec::Parse("uniform:1000-1000").value();
  const auto start = std::chrono::steady_clock::now();
  spec.Perform(7);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::microseconds(1000));
  WorkSpec sleeping = spec;
  sleeping.set_mode(WorkMode::kSleep);
  const auto slept = std::chrono::steady_clock::now();
  sleeping.Perform(7);
  EXPECT_GE(std::chrono::steady_clock::now() - slept, std::chrono::microseconds(1000));
}

}  // namespace
}  // namespace chatshard::cli
