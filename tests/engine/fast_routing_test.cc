#include "fast_routing.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "chatshard/routing.h"

namespace chatshard::internal {
namespace {

std::string RandomBytes(std::mt19937_64& rng, size_t size) {
  std::string s(size, '\0');
  // Every byte value, including >= 0x80 (UTF-8 continuation bytes).
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

TEST(Fnv1a32x4Test, MatchesFnv1a32ForEveryLaneAndLengthMix) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 2000; ++round) {
    std::string ids[4];
    // Equal lengths, unequal lengths, and empty ids.
    for (auto& id : ids) id = RandomBytes(rng, round % 3 == 0 ? 17 : rng() % 40);
    const std::string_view views[4] = {ids[0], ids[1], ids[2], ids[3]};
    uint32_t out[4];
    Fnv1a32x4(views, out);
    for (int k = 0; k < 4; ++k) {
      ASSERT_EQ(out[k], Fnv1a32(views[k])) << "round " << round << " lane " << k;
    }
  }
}

TEST(Fnv1a32x4Test, KnownVectors) {
  const std::string_view views[4] = {"", "a", "foobar", "a"};
  uint32_t out[4];
  Fnv1a32x4(views, out);
  EXPECT_EQ(out[0], 0x811c9dc5u);
  EXPECT_EQ(out[1], 0xe40c292cu);
  EXPECT_EQ(out[2], 0xbf9cf968u);
  EXPECT_EQ(out[3], 0xe40c292cu);
}

TEST(FastMod32Test, EqualsRemainderForEveryPartitionCount) {
  std::mt19937_64 rng(11);
  std::vector<uint32_t> values = {0u, 1u, 2u, 15u, 16u, 17u, 0x7fffffffu, 0x80000000u,
                                  0xfffffffeu, 0xffffffffu};
  for (int i = 0; i < 200; ++i) values.push_back(static_cast<uint32_t>(rng()));
  for (uint32_t d = 1; d <= 65536; ++d) {  // the whole Options::partitions range
    const FastMod32 mod(d);
    for (const uint32_t v : values) ASSERT_EQ(mod(v), v % d) << v << " % " << d;
  }
  for (const uint32_t d : {65537u, 1000003u, 0x7fffffffu, 0xfffffffeu, 0xffffffffu}) {
    const FastMod32 mod(d);
    for (const uint32_t v : values) ASSERT_EQ(mod(v), v % d) << v << " % " << d;
  }
}

TEST(FastMod32Test, ZeroDivisorActsAsOne) {
  const FastMod32 mod(0);
  EXPECT_EQ(mod.divisor(), 1u);
  EXPECT_EQ(mod(12345u), 0u);
}

}  // namespace
}  // namespace chatshard::internal
