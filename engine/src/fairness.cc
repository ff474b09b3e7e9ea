#include "fairness.h"

#include <math.h>  // lgamma_r

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

namespace chatshard::internal {
namespace {

// Both expansions below converge geometrically once past the peak of their
// terms, which for a = dof/2 <= 32768 takes a few thousand steps; the bound
// only stops a loop that a NaN slipped into.
constexpr int kMaxGammaIterations = 1'000'000;
constexpr double kGammaEpsilon = 1e-16;
// Keeps Lentz's continued fraction away from division by zero.
constexpr double kTiny = std::numeric_limits<double>::min() / kGammaEpsilon;

// exp(-x) x^a / Gamma(a), the factor both expansions share, in logs so that
// it neither overflows nor underflows early for large a.
// lgamma_r, not std::lgamma: glibc's lgamma writes the global `signgam`, a
// data race when two threads take a Stats() snapshot at once (found by TSan).
double GammaPrefactor(double a, double x) {
  int sign = 0;
  return std::exp(-x + a * std::log(x) - ::lgamma_r(a, &sign));
}

// P(a, x) by its power series; converges fast for x < a + 1.
double LowerGammaSeries(double a, double x) {
  double ap = a;
  double term = 1.0 / a;
  double sum = term;
  for (int i = 0; i < kMaxGammaIterations; ++i) {
    ap += 1.0;
    term *= x / ap;
    sum += term;
    if (std::fabs(term) < std::fabs(sum) * kGammaEpsilon) break;
  }
  return sum * GammaPrefactor(a, x);
}

// Q(a, x) by its continued fraction (modified Lentz); converges fast for
// x >= a + 1, and gives Q directly, so a tiny tail keeps its relative accuracy.
double UpperGammaContinuedFraction(double a, double x) {
  double b = x + 1.0 - a;
  double c = 1.0 / kTiny;
  double d = 1.0 / b;
  double h = d;
  for (int i = 1; i < kMaxGammaIterations; ++i) {
    const double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = b + an / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1.0) < kGammaEpsilon) break;
  }
  return GammaPrefactor(a, x) * h;
}

}  // namespace

double ChiSquareUpperTailP(double chi2, double dof) {
  if (std::isnan(chi2) || std::isnan(dof) || dof <= 0) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  if (chi2 <= 0) return 1.0;
  if (std::isinf(chi2)) return 0.0;
  const double a = dof / 2;
  const double x = chi2 / 2;
  if (x < a + 1) {
    // Here P(a, x) stays below about 0.6, so 1 - P loses no relative accuracy.
    return std::clamp(1.0 - LowerGammaSeries(a, x), 0.0, 1.0);
  }
  return std::clamp(UpperGammaContinuedFraction(a, x), 0.0, 1.0);
}

double JainIndex(std::span<const double> xs) {
  double sum = 0;
  double sum_squares = 0;
  for (double x : xs) {
    sum += x;
    sum_squares += x * x;
  }
  if (xs.empty() || sum_squares == 0) return 1.0;
  return sum * sum / (static_cast<double>(xs.size()) * sum_squares);
}

LoadFairness ComputeLoadFairness(std::span<const uint64_t> loads) {
  LoadFairness out;
  if (loads.size() <= 1) return out;
  double total = 0;
  uint64_t max_load = 0;
  for (uint64_t load : loads) {
    total += static_cast<double>(load);
    max_load = std::max(max_load, load);
  }
  if (total == 0) return out;

  const double n = static_cast<double>(loads.size());
  const double mean = total / n;
  double sum_squares = 0;
  double squared_deviations = 0;
  for (uint64_t load : loads) {
    const double x = static_cast<double>(load);
    sum_squares += x * x;
    squared_deviations += (x - mean) * (x - mean);
  }
  out.jain = total * total / (n * sum_squares);
  out.cv = std::sqrt(squared_deviations / n) / mean;
  out.max_over_mean = static_cast<double>(max_load) / mean;
  // Pearson: sum (x - E)^2 / E with E = mean for every shard.
  out.chi2 = squared_deviations / mean;
  out.chi2_p = ChiSquareUpperTailP(out.chi2, n - 1);
  return out;
}

double ServiceJainByKey(std::span<const std::pair<uint32_t, uint32_t>> pairs, size_t* keys) {
  // Open addressing, at most half full. (A sort of the pairs was most of
  // what Engine::Stats() cost with 16 shards' 1,024-turn windows.)
  const size_t size = std::bit_ceil(pairs.size() * 2 + 1);
  const size_t mask = size - 1;
  std::vector<uint32_t> key_at(size);
  std::vector<double> sum_at(size);
  std::vector<bool> used(size);
  std::vector<size_t> slots;  // the used slots, in order of first use
  for (const auto& [key, service] : pairs) {
    // Fibonacci hashing spreads keys that differ only in their high bits.
    size_t slot = static_cast<size_t>((uint64_t{key} * 0x9E3779B97F4A7C15ull) >> 32) & mask;
    while (used[slot] && key_at[slot] != key) slot = (slot + 1) & mask;
    if (!used[slot]) {
      used[slot] = true;
      key_at[slot] = key;
      slots.push_back(slot);
    }
    sum_at[slot] += service;
  }
  std::vector<double> totals;
  totals.reserve(slots.size());
  for (const size_t slot : slots) totals.push_back(sum_at[slot]);
  if (keys != nullptr) *keys = totals.size();
  return JainIndex(totals);
}

}  // namespace chatshard::internal
