// ChatQuota: per-chat counts of unfinished messages for one shard, so Submit
// can refuse a chat over Options::chat_quota without a lock.
//
// Thread safety: TryAcquire and Release may be called from any number of
// threads at once (producers acquire, drain tasks release).
//
// Layout: a set-associative table. A chat (by its 64-bit hash) belongs to one
// bucket of kWays words (one cache line) and may occupy any word of it. A word
// packs (tag:40 | count:24); 0 means free. Because a chat never leaves its
// bucket there are no probe chains, so a word can be freed (set to 0) the
// moment its count drops to zero.
//
// Invariants:
//  1. A word is either 0 or holds a nonzero tag and a count >= 1.
//  2. Summed over a bucket, the counts of words carrying tag t equal the
//     acquired-and-not-released messages of the chats with tag t.
//  3. A single word's count never exceeds the quota (the CAS checks it).
// Limits, written next to the promise: two chats whose hashes agree on the
// bucket and on 40 tag bits share a count (odds ~2^-40 per pair of live
// chats in a bucket). When two threads submit the first message of the same
// chat at the same instant, both may claim a word, and that chat can
// overshoot its quota by at most the number of such concurrent first
// submits; from one submitting thread the quota is exact.
#ifndef CHATSHARD_ENGINE_SRC_CHAT_QUOTA_H_
#define CHATSHARD_ENGINE_SRC_CHAT_QUOTA_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace chatshard::internal {

class ChatQuota {
 public:
  enum class Result { kOk, kOverQuota, kTableFull };
  static constexpr int kWays = 8;

  // `quota` in 1..2^24-1; room for about `chats` chats with unfinished work.
  ChatQuota(uint32_t quota, uint32_t chats);

  Result TryAcquire(uint64_t chat_hash);
  // Releases one message of the chat; returns false if the chat held none
  // (a bug in the caller).
  bool Release(uint64_t chat_hash);
  // Unfinished messages counted for the chat (for tests and stats).
  uint32_t CountOf(uint64_t chat_hash) const;

 private:
  static constexpr int kCountBits = 24;
  static constexpr uint64_t kCountMask = (uint64_t{1} << kCountBits) - 1;

  struct alignas(64) Bucket {
    std::atomic<uint64_t> words[kWays];
  };
  static uint64_t TagOf(uint64_t chat_hash) {
    // High 40 bits; bit 39 forced on so a tag is never 0 (invariant 1).
    return (chat_hash >> 24) | (uint64_t{1} << 39);
  }
  Bucket& BucketOf(uint64_t chat_hash) const { return buckets_[chat_hash & mask_]; }

  const uint64_t quota_;
  uint64_t mask_ = 0;
  std::unique_ptr<Bucket[]> buckets_;
};

}  // namespace chatshard::internal

#endif  // CHATSHARD_ENGINE_SRC_CHAT_QUOTA_H_
