#include "heavy_hitters.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <new>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "chatshard/routing.h"

// Counts heap allocations made by the thread that turned counting on. This
// replaces the global operator new for the whole test binary, so it forwards
// to malloc and counts nothing for other threads (TBB workers of other tests).
namespace {
thread_local bool t_count_allocations = false;
thread_local size_t t_allocations = 0;

void* AllocateOrThrow(size_t size) {
  if (t_count_allocations) ++t_allocations;
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(size_t size) { return AllocateOrThrow(size); }
void* operator new[](size_t size) { return AllocateOrThrow(size); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace chatshard::internal {
namespace {

using Counts = std::map<std::string, uint64_t>;

// prefix + n. Appending (rather than "literal" + std::to_string(n)) avoids
// GCC 12's false -Wrestrict at -O3 (GCC bug 105329), fatal under -Werror.
std::string Numbered(std::string_view prefix, uint64_t n) {
  std::string out(prefix);
  out += std::to_string(n);
  return out;
}

// A deterministic Zipf(s) stream over `keys` distinct keys.
std::vector<std::string> ZipfStream(size_t keys, double s, size_t length, uint64_t seed) {
  std::vector<double> weights(keys);
  for (size_t r = 0; r < keys; ++r) weights[r] = 1.0 / std::pow(static_cast<double>(r + 1), s);
  std::discrete_distribution<size_t> pick(weights.begin(), weights.end());
  std::mt19937_64 rng(seed);
  std::vector<std::string> stream;
  stream.reserve(length);
  for (size_t i = 0; i < length; ++i) stream.push_back(Numbered("chat-", pick(rng)));
  return stream;
}

Counts Exact(const std::vector<std::string>& stream) {
  Counts counts;
  for (const std::string& key : stream) ++counts[key];
  return counts;
}

// count - error <= true <= count for every kept key, and every key with
// true count > n / capacity is kept.
void ExpectGuarantees(const SpaceSaving& sketch, const Counts& truth, uint64_t n) {
  const std::vector<SpaceSaving::Entry> all = sketch.Top(sketch.capacity());
  std::set<std::string> kept;
  for (const SpaceSaving::Entry& e : all) {
    const auto it = truth.find(e.key);
    const uint64_t true_count = it == truth.end() ? 0 : it->second;
    EXPECT_LE(e.count - e.error, true_count) << e.key;
    EXPECT_GE(e.count, true_count) << e.key;
    EXPECT_LE(e.error, n / sketch.capacity()) << e.key;
    kept.insert(e.key);
  }
  for (const auto& [key, count] : truth) {
    if (count * sketch.capacity() > n) {
      EXPECT_TRUE(kept.count(key)) << key << " " << count;
    }
  }
}

TEST(SpaceSavingTest, ExactWhileDistinctKeysFit) {
  SpaceSaving sketch(8);
  Counts truth;
  std::mt19937_64 rng(5);
  for (int i = 0; i < 10000; ++i) {
    const std::string key = Numbered("k", rng() % 8);
    const uint64_t weight = rng() % 3 + 1;
    sketch.Add(key, weight);
    truth[key] += weight;
  }
  EXPECT_EQ(sketch.size(), 8u);
  for (const SpaceSaving::Entry& e : sketch.Top(8)) {
    EXPECT_EQ(e.count, truth[e.key]) << e.key;
    EXPECT_EQ(e.error, 0u) << e.key;
  }
}

TEST(SpaceSavingTest, AddHashedWithTheKeysFnvIsTheSameAsAdd) {
  SpaceSaving plain(16);
  SpaceSaving hashed(16);
  std::mt19937_64 rng(9);
  for (int i = 0; i < 20000; ++i) {
    const std::string key = Numbered("chat/", rng() % 40);  // more keys than counters
    const uint64_t weight = rng() % 5 + 1;
    plain.Add(key, weight);
    hashed.AddHashed(key, Fnv1a32(key), weight);
  }
  const auto a = plain.Top(16);
  const auto b = hashed.Top(16);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].key, b[i].key);
    EXPECT_EQ(a[i].count, b[i].count);
    EXPECT_EQ(a[i].error, b[i].error);
  }
}

TEST(SpaceSavingTest, TopSortsByCountThenKey) {
  SpaceSaving sketch(10);
  sketch.Add("b", 5);
  sketch.Add("a", 5);
  sketch.Add("c", 9);
  sketch.Add("d", 1);
  const std::vector<SpaceSaving::Entry> top = sketch.Top(3);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].key, "c");
  EXPECT_EQ(top[1].key, "a");
  EXPECT_EQ(top[2].key, "b");
  EXPECT_EQ(sketch.Top(100).size(), 4u);
  EXPECT_TRUE(sketch.Top(0).empty());
}

TEST(SpaceSavingTest, EvictsTheMinimumAndCarriesItsCountAsError) {
  SpaceSaving sketch(2);
  sketch.Add("a", 10);
  sketch.Add("b", 3);
  sketch.Add("c");  // takes b's counter: count 4, error 3
  const std::vector<SpaceSaving::Entry> top = sketch.Top(2);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].key, "a");
  EXPECT_EQ(top[0].count, 10u);
  EXPECT_EQ(top[1].key, "c");
  EXPECT_EQ(top[1].count, 4u);
  EXPECT_EQ(top[1].error, 3u);
}

TEST(SpaceSavingTest, ZeroCapacityActsAsOneAndZeroWeightIsIgnored) {
  SpaceSaving sketch(0);
  EXPECT_EQ(sketch.capacity(), 1u);
  sketch.Add("x", 0);
  EXPECT_EQ(sketch.size(), 0u);
  sketch.Add("x");
  sketch.Add("y");
  ASSERT_EQ(sketch.size(), 1u);
  EXPECT_EQ(sketch.Top(1)[0].key, "y");
  EXPECT_EQ(sketch.Top(1)[0].count, 2u);
}

TEST(SpaceSavingTest, ZipfStreamFindsTrueTopFive) {
  const std::vector<std::string> stream = ZipfStream(20000, 1.1, 300000, 17);
  SpaceSaving sketch(64);
  for (const std::string& key : stream) sketch.Add(key);
  const Counts truth = Exact(stream);

  std::vector<std::pair<uint64_t, std::string>> ranked;
  for (const auto& [key, count] : truth) ranked.emplace_back(count, key);
  std::sort(ranked.rbegin(), ranked.rend());
  std::set<std::string> true_top;
  for (int i = 0; i < 5; ++i) true_top.insert(ranked[static_cast<size_t>(i)].second);

  std::set<std::string> found;
  for (const SpaceSaving::Entry& e : sketch.Top(5)) found.insert(e.key);
  EXPECT_EQ(found, true_top);
  ExpectGuarantees(sketch, truth, stream.size());
}

TEST(SpaceSavingTest, ErrorBoundHoldsOnAdversarialOrder) {
  // Many distinct keys first, then the heavy ones: the worst case for
  // evictions, since the heavy keys arrive into a full sketch.
  std::vector<std::string> stream;
  for (int i = 0; i < 5000; ++i) stream.push_back(Numbered("cold-", i));
  for (int round = 0; round < 300; ++round) {
    for (int h = 0; h < 10; ++h) stream.push_back(Numbered("hot-", h));
    stream.push_back(Numbered("cold-", round * 7));
  }
  SpaceSaving sketch(32);
  for (const std::string& key : stream) sketch.Add(key);
  const Counts truth = Exact(stream);
  ExpectGuarantees(sketch, truth, stream.size());
  std::set<std::string> top;
  for (const SpaceSaving::Entry& e : sketch.Top(10)) top.insert(e.key);
  for (int h = 0; h < 10; ++h) EXPECT_TRUE(top.count(Numbered("hot-", h))) << h;
}

TEST(SpaceSavingTest, WeightedAddsKeepTheGuarantee) {
  std::mt19937_64 rng(23);
  SpaceSaving sketch(16);
  Counts truth;
  uint64_t n = 0;
  for (int i = 0; i < 50000; ++i) {
    const std::string key = Numbered("k", rng() % 200 < 20 ? rng() % 4 : rng() % 5000);
    const uint64_t weight = rng() % 10 + 1;
    sketch.Add(key, weight);
    truth[key] += weight;
    n += weight;
  }
  ExpectGuarantees(sketch, truth, n);
}

TEST(SpaceSavingTest, MergeOfSmallSummariesIsExact) {
  SpaceSaving a(10), b(10);
  a.Add("x", 3);
  a.Add("y", 1);
  b.Add("x", 2);
  b.Add("z", 7);
  a.Merge(b);
  const std::vector<SpaceSaving::Entry> top = a.Top(10);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].key, "z");
  EXPECT_EQ(top[0].count, 7u);
  EXPECT_EQ(top[1].key, "x");
  EXPECT_EQ(top[1].count, 5u);
  EXPECT_EQ(top[2].key, "y");
  EXPECT_EQ(top[2].count, 1u);
  for (const SpaceSaving::Entry& e : top) EXPECT_EQ(e.error, 0u);
}

TEST(SpaceSavingTest, MergeKeepsGuaranteesForTheCombinedStream) {
  const std::vector<std::string> first = ZipfStream(5000, 1.0, 100000, 1);
  const std::vector<std::string> second = ZipfStream(5000, 1.3, 80000, 2);
  SpaceSaving a(48), b(48);
  for (const std::string& key : first) a.Add(key);
  for (const std::string& key : second) b.Add(key);
  a.Merge(b);
  EXPECT_EQ(a.size(), 48u);
  EXPECT_EQ(a.capacity(), 48u);

  std::vector<std::string> both = first;
  both.insert(both.end(), second.begin(), second.end());
  const Counts truth = Exact(both);
  ExpectGuarantees(a, truth, both.size());

  // The merged summary stays a valid SpaceSaving for further adds.
  const std::vector<std::string> third = ZipfStream(5000, 1.1, 50000, 3);
  for (const std::string& key : third) a.Add(key);
  both.insert(both.end(), third.begin(), third.end());
  ExpectGuarantees(a, Exact(both), both.size());
}

TEST(SpaceSavingTest, MergeWithItselfDoublesCounts) {
  SpaceSaving a(4);
  a.Add("p", 2);
  a.Add("q", 1);
  a.Merge(a);
  const std::vector<SpaceSaving::Entry> top = a.Top(4);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].count, 4u);
  EXPECT_EQ(top[1].count, 2u);
}

TEST(SpaceSavingTest, ClearForgetsKeysAndKeepsWorking) {
  SpaceSaving sketch(4);
  for (int i = 0; i < 100; ++i) sketch.Add(Numbered("k", i % 9));
  sketch.Clear();
  EXPECT_EQ(sketch.size(), 0u);
  EXPECT_TRUE(sketch.Top(4).empty());
  sketch.Add("fresh", 2);
  ASSERT_EQ(sketch.size(), 1u);
  EXPECT_EQ(sketch.Top(1)[0].count, 2u);
  EXPECT_EQ(sketch.Top(1)[0].error, 0u);
}

TEST(SpaceSavingTest, KeysUpToTheLimitAreKeptWhole) {
  SpaceSaving sketch(4);
  const std::string longest(kSpaceSavingMaxKeyBytes, 'z');
  const std::string binary("a\0b\xff", 4);
  sketch.Add(longest, 3);
  sketch.Add(binary, 2);
  sketch.Add("");
  const std::vector<SpaceSaving::Entry> top = sketch.Top(4);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].key, longest);
  EXPECT_EQ(top[1].key, binary);
  EXPECT_EQ(top[2].key, "");
}

TEST(SpaceSavingDeathTest, KeyLongerThanTheLimitAborts) {
  // Re-executes the binary for the child: other tests may have left threads.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  SpaceSaving sketch(4);
  const std::string too_long(kSpaceSavingMaxKeyBytes + 1, 'z');
  EXPECT_DEATH(sketch.Add(too_long), "key longer than 256 bytes");
}

TEST(SpaceSavingTest, AddDoesNotAllocateAfterWarmUp) {
  // Keys of every length up to the limit, more distinct keys than counters so
  // that evictions (index erase + insert) run all the time.
  std::vector<std::string> keys;
  std::mt19937_64 rng(99);
  for (int i = 0; i < 4000; ++i) {
    std::string key = std::to_string(i) + "-";
    const size_t length = std::max(key.size(), static_cast<size_t>(i % 257));
    while (key.size() < length) key.push_back(static_cast<char>('a' + rng() % 26));
    keys.push_back(std::move(key));
  }
  std::vector<size_t> order(100000);
  std::geometric_distribution<size_t> skew(0.002);
  for (size_t& k : order) k = std::min(skew(rng), keys.size() - 1);

  SpaceSaving sketch(256);
  for (size_t i = 0; i < 1000; ++i) sketch.Add(keys[order[i]]);  // warm-up

  t_allocations = 0;
  t_count_allocations = true;
  for (size_t k : order) sketch.Add(keys[k], 1 + k % 3);
  t_count_allocations = false;
  EXPECT_EQ(t_allocations, 0u);
  EXPECT_EQ(sketch.size(), 256u);

  // The counter does see allocations when there are some.
  t_count_allocations = true;
  const std::vector<SpaceSaving::Entry> top = sketch.Top(5);
  t_count_allocations = false;
  EXPECT_GT(t_allocations, 0u);
  EXPECT_EQ(top.size(), 5u);
}

}  // namespace
}  // namespace chatshard::internal
