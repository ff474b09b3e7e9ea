#include "envelope.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace chatshard::internal {
namespace {

TEST(EnvelopeTest, IsOneSmallFixedSizeRecord) { EXPECT_EQ(sizeof(Envelope), 80u); }

TEST(EnvelopeTest, HoldsIdAndPayloadInlineAndOnTheHeap) {
  // Around the inline limit: 52 bytes of id + payload stay inline, 53 do not.
  for (size_t total : {0u, 1u, 49u, 51u, 52u, 53u, 54u, 200u, 70000u}) {
    const std::string chat(std::min<size_t>(total, 17), 'c');
    const std::string payload(total - chat.size(), 'p');
    Envelope e(chat, payload, 42, 1234);
    EXPECT_EQ(e.chat(), chat) << total;
    EXPECT_EQ(e.payload(), payload) << total;
    EXPECT_EQ(e.chat_hash(), 42u);
    EXPECT_EQ(e.enqueued_ns(), 1234);
    EXPECT_EQ(e.attempts(), 0u);
  }
}

TEST(EnvelopeTest, MovesCarryEverythingAndEmptyTheSource) {
  for (size_t payload_size : {10u, 100u}) {  // inline, heap
    const std::string chat = "1234/5d41402abc4b";
    const std::string payload(payload_size, 'x');
    Envelope a(chat, payload, 7, 99);
    a.set_id(5);
    a.add_attempt();
    Envelope b(std::move(a));
    EXPECT_EQ(b.chat(), chat);
    EXPECT_EQ(b.payload(), payload);
    EXPECT_EQ(b.id(), 5u);
    EXPECT_EQ(b.attempts(), 1u);
    Envelope c;
    c = std::move(b);
    EXPECT_EQ(c.chat(), chat);
    EXPECT_EQ(c.payload(), payload);
    if (payload_size > Envelope::kInlineBytes) {
      // A moved-from heap envelope no longer owns (or shows) the block.
      EXPECT_TRUE(b.chat().empty());  // NOLINT(bugprone-use-after-move)
      EXPECT_TRUE(b.payload().empty());
    }
    // Assigning over an envelope that owns a block frees it (ASan checks).
    Envelope d(chat, std::string(300, 'y'), 1, 1);
    d = std::move(c);
    EXPECT_EQ(d.payload(), payload);
  }
}

TEST(EnvelopeTest, VectorGrowthKeepsContents) {
  std::vector<Envelope> v;
  for (int i = 0; i < 100; ++i) {
    v.emplace_back(std::to_string(i), std::string(static_cast<size_t>(i), 'z'), 0, i);
  }
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(v[static_cast<size_t>(i)].chat(), std::to_string(i));
    EXPECT_EQ(v[static_cast<size_t>(i)].payload().size(), static_cast<size_t>(i));
  }
}

}  // namespace
}  // namespace chatshard::internal
