// Scores of how evenly load spreads over shards (or service over chats), and
// the chi-square tail probability behind the hash-uniformity test.
//
// Thread safety: pure functions of their arguments; call from any thread.
#ifndef CHATSHARD_ENGINE_SRC_FAIRNESS_H_
#define CHATSHARD_ENGINE_SRC_FAIRNESS_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

namespace chatshard::internal {

struct LoadFairness {
  double jain = 1;           // (sum x)^2 / (n sum x^2): 1/n (one-hot) .. 1 (even)
  double cv = 0;             // population stddev / mean
  double max_over_mean = 1;  // the largest load over the mean
  double chi2 = 0;           // Pearson chi-square against the uniform total / n
  double chi2_p = 1;         // P(X >= chi2) for X ~ chi-square with n - 1 dof
};

// Scores `loads` (one per shard). With at most one load, or a zero total,
// there is nothing to compare, and the defaults (perfectly even) come back.
LoadFairness ComputeLoadFairness(std::span<const uint64_t> loads);

// Jain's fairness index (sum x)^2 / (n sum x^2). Empty or all-zero input
// counts as even: 1.
double JainIndex(std::span<const double> xs);

// Jain's index of the service per key, from (key, service) pairs in any order
// (a key may repeat: its services add up); `keys` gets the number of distinct
// keys. O(n): sums in a hash table, without sorting.
double ServiceJainByKey(std::span<const std::pair<uint32_t, uint32_t>> pairs, size_t* keys);

// The upper tail P(X >= chi2) of a chi-square distribution with `dof` degrees
// of freedom, i.e. the regularized upper incomplete gamma Q(dof/2, chi2/2).
// Accurate to 1e-8 relative for dof up to 65535 (tested against mpmath).
// chi2 <= 0 gives 1; a NaN argument or dof <= 0 gives NaN.
double ChiSquareUpperTailP(double chi2, double dof);

}  // namespace chatshard::internal

#endif  // CHATSHARD_ENGINE_SRC_FAIRNESS_H_
