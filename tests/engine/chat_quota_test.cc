#include "chat_quota.h"

#include <atomic>
#include <thread>
#include <vector>

#include "chatshard/routing.h"
#include "gtest/gtest.h"

namespace chatshard::internal {
namespace {

TEST(ChatQuotaTest, AcquiresUpToTheQuotaThenRefuses) {
  ChatQuota q(3, 64);
  const uint64_t a = Fnv1a64("a");
  EXPECT_EQ(q.TryAcquire(a), ChatQuota::Result::kOk);
  EXPECT_EQ(q.TryAcquire(a), ChatQuota::Result::kOk);
  EXPECT_EQ(q.TryAcquire(a), ChatQuota::Result::kOk);
  EXPECT_EQ(q.TryAcquire(a), ChatQuota::Result::kOverQuota);
  EXPECT_EQ(q.CountOf(a), 3u);
  EXPECT_TRUE(q.Release(a));
  EXPECT_EQ(q.TryAcquire(a), ChatQuota::Result::kOk);
}

TEST(ChatQuotaTest, ChatsAreCountedSeparately) {
  ChatQuota q(1, 64);
  EXPECT_EQ(q.TryAcquire(Fnv1a64("a")), ChatQuota::Result::kOk);
  EXPECT_EQ(q.TryAcquire(Fnv1a64("b")), ChatQuota::Result::kOk);
  EXPECT_EQ(q.TryAcquire(Fnv1a64("a")), ChatQuota::Result::kOverQuota);
}

TEST(ChatQuotaTest, ReleaseToZeroFreesTheWordForOtherChats) {
  // One bucket of 8 words: chats 0..7 fill it, the 9th finds it full until
  // one of them finishes.
  ChatQuota q(5, 1);
  std::vector<uint64_t> hashes;
  for (uint64_t i = 0; hashes.size() < 9; ++i) hashes.push_back((i + 1) << 32);  // same bucket
  for (int i = 0; i < 8; ++i) EXPECT_EQ(q.TryAcquire(hashes[i]), ChatQuota::Result::kOk);
  EXPECT_EQ(q.TryAcquire(hashes[8]), ChatQuota::Result::kTableFull);
  EXPECT_TRUE(q.Release(hashes[3]));
  EXPECT_EQ(q.CountOf(hashes[3]), 0u);
  EXPECT_EQ(q.TryAcquire(hashes[8]), ChatQuota::Result::kOk);
}

TEST(ChatQuotaTest, ReleaseOfUnknownChatReportsFalse) {
  ChatQuota q(5, 64);
  EXPECT_FALSE(q.Release(Fnv1a64("never")));
}

TEST(ChatQuotaTest, ConcurrentAcquireReleaseKeepsCountsExact) {
  ChatQuota q(1'000'000, 1024);
  constexpr int kThreads = 4;
  constexpr int kOps = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kOps; ++i) {
        const uint64_t h = Fnv1a64("chat-" + std::to_string((i + t) % 50));
        ASSERT_EQ(q.TryAcquire(h), ChatQuota::Result::kOk);
        if (i % 2 == 1) {
          ASSERT_TRUE(q.Release(h));
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  uint64_t total = 0;
  for (int c = 0; c < 50; ++c) total += q.CountOf(Fnv1a64("chat-" + std::to_string(c)));
  EXPECT_EQ(total, uint64_t{kThreads} * kOps / 2);
}

}  // namespace
}  // namespace chatshard::internal
