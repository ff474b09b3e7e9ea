#include "chat_quota.h"

#include <bit>

namespace chatshard::internal {

ChatQuota::ChatQuota(uint32_t quota, uint32_t chats) : quota_(quota) {
  // Twice the words asked for, so buckets rarely fill before `chats` is reached.
  const uint64_t buckets = std::bit_ceil(std::max<uint64_t>(1, uint64_t{chats} * 2 / kWays));
  mask_ = buckets - 1;
  buckets_ = std::make_unique<Bucket[]>(buckets);
  for (uint64_t b = 0; b < buckets; ++b) {
    for (auto& w : buckets_[b].words) w.store(0, std::memory_order_relaxed);
  }
}

ChatQuota::Result ChatQuota::TryAcquire(uint64_t chat_hash) {
  Bucket& bucket = BucketOf(chat_hash);
  const uint64_t tag = TagOf(chat_hash);
  for (;;) {
    bool restart = false;
    // First the words already carrying our tag.
    for (auto& word : bucket.words) {
      // relaxed: the count is the only data; the CAS below decides.
      uint64_t w = word.load(std::memory_order_relaxed);
      if (w == 0 || (w >> kCountBits) != tag) continue;
      if ((w & kCountMask) >= quota_) return Result::kOverQuota;
      // Success: one more unfinished message on this word. Failure: the word
      // changed (another acquire/release, or it was freed): look again.
      if (word.compare_exchange_strong(w, w + 1, std::memory_order_relaxed)) return Result::kOk;
      restart = true;
      break;
    }
    if (restart) continue;
    // None: claim a free word.
    for (auto& word : bucket.words) {
      uint64_t w = word.load(std::memory_order_relaxed);
      if (w != 0) continue;
      // Success: the chat owns this word with count 1. Failure: another chat
      // (or this one, from another thread) took it: look again from the top.
      if (word.compare_exchange_strong(w, (tag << kCountBits) | 1, std::memory_order_relaxed)) {
        return Result::kOk;
      }
      restart = true;
      break;
    }
    if (!restart) return Result::kTableFull;
  }
}

bool ChatQuota::Release(uint64_t chat_hash) {
  Bucket& bucket = BucketOf(chat_hash);
  const uint64_t tag = TagOf(chat_hash);
  for (;;) {
    bool restart = false;
    for (auto& word : bucket.words) {
      uint64_t w = word.load(std::memory_order_relaxed);
      if (w == 0 || (w >> kCountBits) != tag) continue;
      const uint64_t next = (w & kCountMask) == 1 ? 0 : w - 1;
      // Success: released one; at zero the word is free again (invariant 1).
      // Failure: it changed under us: look again.
      if (word.compare_exchange_strong(w, next, std::memory_order_relaxed)) return true;
      restart = true;
      break;
    }
    if (!restart) return false;
  }
}

uint32_t ChatQuota::CountOf(uint64_t chat_hash) const {
  const Bucket& bucket = BucketOf(chat_hash);
  const uint64_t tag = TagOf(chat_hash);
  uint64_t total = 0;
  for (const auto& word : bucket.words) {
    const uint64_t w = word.load(std::memory_order_relaxed);
    if (w != 0 && (w >> kCountBits) == tag) total += w & kCountMask;
  }
  return static_cast<uint32_t>(total);
}

}  // namespace chatshard::internal
