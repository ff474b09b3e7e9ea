#include "fairness.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <utility>
#include <vector>

namespace chatshard::internal {
namespace {

TEST(JainIndexTest, EqualLoadsAreOne) {
  const std::vector<double> xs(10, 7.5);
  EXPECT_DOUBLE_EQ(JainIndex(xs), 1.0);
}

TEST(JainIndexTest, OneHotIsOneOverN) {
  std::vector<double> xs(8, 0.0);
  xs[3] = 42;
  EXPECT_DOUBLE_EQ(JainIndex(xs), 1.0 / 8);
}

TEST(JainIndexTest, EmptyAndAllZeroCountAsEven) {
  EXPECT_EQ(JainIndex({}), 1.0);
  const std::vector<double> zeros(5, 0.0);
  EXPECT_EQ(JainIndex(zeros), 1.0);
}

TEST(JainIndexTest, KnownValue) {
  // (1+2+3+4)^2 / (4 * (1+4+9+16)) = 100 / 120.
  const std::vector<double> xs = {1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(JainIndex(xs), 100.0 / 120.0);
}

TEST(ServiceJainByKeyTest, AddsEachKeysServiceThenScores) {
  const std::vector<std::pair<uint32_t, uint32_t>> pairs = {{1, 4}, {2, 4}, {1, 4}, {3, 8}};
  size_t keys = 0;
  // Services 8, 4, 8: (20)^2 / (3 * (64 + 16 + 64)).
  EXPECT_DOUBLE_EQ(ServiceJainByKey(pairs, &keys), 400.0 / 432.0);
  EXPECT_EQ(keys, 3u);
  EXPECT_DOUBLE_EQ(ServiceJainByKey({}, &keys), 1.0);
  EXPECT_EQ(keys, 0u);
}

TEST(ServiceJainByKeyTest, MatchesAMapOnManyKeysThatCollide) {
  // Keys that share low or high bits, repeated in any order, against std::map.
  std::vector<std::pair<uint32_t, uint32_t>> pairs;
  std::map<uint32_t, double> reference;
  uint32_t rng = 7;
  for (int i = 0; i < 5000; ++i) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    const uint32_t key = (rng % 700) << (i % 2 == 0 ? 20 : 0);
    const uint32_t service = 1 + rng % 9;
    pairs.emplace_back(key, service);
    reference[key] += service;
  }
  std::vector<double> totals;
  for (const auto& [key, total] : reference) totals.push_back(total);
  size_t keys = 0;
  EXPECT_NEAR(ServiceJainByKey(pairs, &keys), JainIndex(totals), 1e-12);
  EXPECT_EQ(keys, reference.size());
}

TEST(LoadFairnessTest, DefaultsForNothingToCompare) {
  for (const std::vector<uint64_t>& loads :
       {std::vector<uint64_t>{}, std::vector<uint64_t>{5}, std::vector<uint64_t>{0, 0, 0}}) {
    const LoadFairness f = ComputeLoadFairness(loads);
    EXPECT_EQ(f.jain, 1);
    EXPECT_EQ(f.cv, 0);
    EXPECT_EQ(f.max_over_mean, 1);
    EXPECT_EQ(f.chi2, 0);
    EXPECT_EQ(f.chi2_p, 1);
  }
}

TEST(LoadFairnessTest, EvenLoads) {
  const std::vector<uint64_t> loads(16, 1000);
  const LoadFairness f = ComputeLoadFairness(loads);
  EXPECT_DOUBLE_EQ(f.jain, 1);
  EXPECT_DOUBLE_EQ(f.cv, 0);
  EXPECT_DOUBLE_EQ(f.max_over_mean, 1);
  EXPECT_DOUBLE_EQ(f.chi2, 0);
  EXPECT_DOUBLE_EQ(f.chi2_p, 1);
}

TEST(LoadFairnessTest, OneHotLoads) {
  std::vector<uint64_t> loads(4, 0);
  loads[0] = 100;
  const LoadFairness f = ComputeLoadFairness(loads);
  EXPECT_DOUBLE_EQ(f.jain, 0.25);
  // mean 25, deviations 75, -25, -25, -25: variance (5625 + 3 * 625) / 4 = 1875.
  EXPECT_DOUBLE_EQ(f.cv, std::sqrt(1875.0) / 25);
  EXPECT_DOUBLE_EQ(f.max_over_mean, 4);
  EXPECT_DOUBLE_EQ(f.chi2, 300);  // (5625 + 3 * 625) / 25
  EXPECT_LT(f.chi2_p, 1e-60);
}

TEST(LoadFairnessTest, KnownSkew) {
  const std::vector<uint64_t> loads = {90, 110, 100, 100};
  const LoadFairness f = ComputeLoadFairness(loads);
  // mean 100, variance 50, chi2 = 200 / 100 = 2 on 3 dof.
  EXPECT_DOUBLE_EQ(f.cv, std::sqrt(50.0) / 100);
  EXPECT_DOUBLE_EQ(f.max_over_mean, 1.1);
  EXPECT_DOUBLE_EQ(f.chi2, 2);
  EXPECT_NEAR(f.chi2_p, 0.57240670447087982, 1e-12);
  EXPECT_DOUBLE_EQ(f.jain, 400.0 * 400.0 / (4 * 40200.0));
}

struct TailCase {
  double chi2;
  double dof;
  double p;
};

// Reference values from mpmath (40 digits):
// gammainc(dof/2, chi2/2, inf, regularized=True).
constexpr TailCase kMpmathTails[] = {
    {3.84, 1, 0.050043521248705103},       {18.307, 10, 0.05000058909139812},
    {999.3333, 1000, 0.50000100309808951}, {1000, 1000, 0.49405285382923964},
    {0.5, 1, 0.47950012218695346},         {1e-06, 1, 0.99920211557217787},
    {30, 3, 1.3800570312932547e-6},        {100, 10, 5.4497019829205293e-17},
    {200, 100, 1.1784500720979422e-8},     {65535, 65535, 0.4992653724170944},
    {65000, 65535, 0.93055694191399775},   {66500, 65535, 0.0039730816025884148},
    {67000, 65535, 2.9268476745227089e-5}, {64000, 65535, 0.99999029748361242},
    {15, 15, 0.45141721122572524},         {45, 15, 7.6572656549784902e-5},
    {1500, 1000, 1.0454640385979657e-22},  {800, 1000, 0.99999918906189212},
    {3.0, 4, 0.55782540037107457},         {1.0, 2, 0.60653065971263342},
    {20, 2, 4.5399929762484852e-5},        {700, 2, 9.9295903962649793e-153},
    {16383, 16383, 0.49853071045681781},   {10.0, 0.5, 0.00049202512444634008},
};

TEST(ChiSquareTest, MatchesMpmathToOneInTenToTheEight) {
  for (const TailCase& c : kMpmathTails) {
    const double p = ChiSquareUpperTailP(c.chi2, c.dof);
    EXPECT_LE(std::fabs(p - c.p), 1e-8 * c.p) << "chi2 " << c.chi2 << " dof " << c.dof;
  }
}

TEST(ChiSquareTest, TextbookCriticalValues) {
  EXPECT_NEAR(ChiSquareUpperTailP(3.841458820694124, 1), 0.05, 1e-12);
  EXPECT_NEAR(ChiSquareUpperTailP(18.307038053275146, 10), 0.05, 1e-12);
  EXPECT_NEAR(ChiSquareUpperTailP(6.6348966010212145, 1), 0.01, 1e-12);
}

TEST(ChiSquareTest, ClosedFormsForSmallDof) {
  // dof 2: Q = exp(-x/2); dof 1: Q = erfc(sqrt(x/2)).
  for (double x : {0.01, 0.5, 1.0, 2.0, 5.0, 10.0, 50.0, 300.0}) {
    EXPECT_NEAR(ChiSquareUpperTailP(x, 2), std::exp(-x / 2), 1e-10 * std::exp(-x / 2)) << x;
    const double q1 = std::erfc(std::sqrt(x / 2));
    EXPECT_NEAR(ChiSquareUpperTailP(x, 1), q1, 1e-9 * q1) << x;
  }
}

TEST(ChiSquareTest, NearTheMeanOfManyDofIsAboutHalf) {
  EXPECT_NEAR(ChiSquareUpperTailP(1000, 1000), 0.5, 0.01);
  EXPECT_NEAR(ChiSquareUpperTailP(65535, 65535), 0.5, 0.002);
}

TEST(ChiSquareTest, MonotoneInChi2) {
  for (double dof : {1.0, 15.0, 1023.0, 65535.0}) {
    double previous = 1.0;
    for (double x = 0; x < 3 * dof + 100; x += dof / 50 + 0.1) {
      const double p = ChiSquareUpperTailP(x, dof);
      ASSERT_LE(p, previous + 1e-15) << "dof " << dof << " x " << x;
      ASSERT_GE(p, 0);
      previous = p;
    }
  }
}

TEST(ChiSquareTest, EdgeCases) {
  EXPECT_EQ(ChiSquareUpperTailP(0, 5), 1.0);
  EXPECT_EQ(ChiSquareUpperTailP(-3, 5), 1.0);
  EXPECT_EQ(ChiSquareUpperTailP(std::numeric_limits<double>::infinity(), 5), 0.0);
  EXPECT_TRUE(std::isnan(ChiSquareUpperTailP(1, 0)));
  EXPECT_TRUE(std::isnan(ChiSquareUpperTailP(std::nan(""), 3)));
  EXPECT_EQ(ChiSquareUpperTailP(1e6, 3), 0.0);
}

}  // namespace
}  // namespace chatshard::internal
