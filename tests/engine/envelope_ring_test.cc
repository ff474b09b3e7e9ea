#include "envelope_ring.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>

#include "envelope.h"

namespace chatshard::internal {
namespace {

// Message i: chat "c<i>", a payload of i % 120 bytes (inline below 50 bytes
// of payload, on the heap above), enqueued at i.
Envelope Make(int64_t i) {
  return Envelope("c" + std::to_string(i), std::string(static_cast<size_t>(i % 120), 'p'), 0, i);
}

void ExpectIs(const Envelope& e, int64_t i) {
  EXPECT_EQ(e.chat(), "c" + std::to_string(i));
  EXPECT_EQ(e.payload().size(), static_cast<size_t>(i % 120));
  EXPECT_EQ(e.enqueued_ns(), i);
}

TEST(EnvelopeRingTest, StartsEmptyAndGrowsByPowersOfTwo) {
  EnvelopeRing ring;
  EXPECT_TRUE(ring.empty());
  EXPECT_EQ(ring.capacity(), 0u);
  for (int64_t i = 0; i < 100; ++i) {
    ring.PushBack(Make(i));
    EXPECT_EQ(ring.size(), static_cast<size_t>(i + 1));
    EXPECT_EQ(ring.capacity() & (ring.capacity() - 1), 0u) << ring.capacity();
    EXPECT_GE(ring.capacity(), ring.size());
  }
  for (int64_t i = 0; i < 100; ++i) ExpectIs(ring.PopFront(), i);
  EXPECT_TRUE(ring.empty());
}

// Against std::deque as the model: pushes at both ends, single and bulk pops,
// across many wrap-arounds and growths with the live part wrapped.
TEST(EnvelopeRingTest, MatchesADequeAcrossWrapsAndGrowths) {
  EnvelopeRing ring;
  std::deque<int64_t> model;
  int64_t next_back = 0;
  int64_t next_front = -1;  // PushFront takes negative indexes, so they stay distinct
  uint32_t rng = 12345;
  Envelope out[8];
  for (int step = 0; step < 20000; ++step) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    switch (rng % 5) {
      case 0:
      case 1:
        ring.PushBack(Make(next_back));
        model.push_back(next_back++);
        break;
      case 2:
        ring.PushFront(Make(-next_front * 1000));
        model.push_front(-next_front * 1000);
        --next_front;
        break;
      case 3:
        if (!model.empty()) {
          ExpectIs(ring.PopFront(), model.front());
          model.pop_front();
        }
        break;
      case 4: {
        const size_t n = std::min<size_t>(model.size(), rng % 8);
        ring.PopFrontInto(out, n);
        for (size_t k = 0; k < n; ++k) {
          ExpectIs(out[k], model.front());
          model.pop_front();
        }
        break;
      }
    }
    ASSERT_EQ(ring.size(), model.size()) << step;
  }
  while (!model.empty()) {
    ExpectIs(ring.PopFront(), model.front());
    model.pop_front();
  }
}

TEST(EnvelopeRingTest, ResetAndDestructionFreeLiveHeapEnvelopes) {
  // ASan and LeakSanitizer check that every heap block is freed exactly once.
  EnvelopeRing ring;
  for (int64_t i = 0; i < 37; ++i) ring.PushBack(Make(100 + i));  // heap payloads mostly
  ExpectIs(ring.PopFront(), 100);
  ring.Reset();
  EXPECT_TRUE(ring.empty());
  EXPECT_EQ(ring.capacity(), 0u);
  ring.PushFront(Make(119));
  ExpectIs(ring.PopFront(), 119);
  for (int64_t i = 0; i < 9; ++i) ring.PushFront(Make(60 + i));
  // Destroyed with 9 live envelopes, wrapped around the end of the block.
}

}  // namespace
}  // namespace chatshard::internal
