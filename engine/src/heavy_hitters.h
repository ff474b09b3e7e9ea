// SpaceSaving (Metwally, Agrawal, El Abbadi, 2005): the approximately hottest
// keys of a stream in a fixed number of counters. Not thread-safe: one owner
// (in the engine, one per shard per recording thread), merged for snapshots.
//
// Guarantees, for a stream of total weight N fed to a summary of `capacity`
// counters: every reported count over-estimates, count - error <= true count
// <= count; every key whose true count exceeds N / capacity is present.
// Merge keeps both for summaries of equal capacity.
//
// Add never allocates: keys (at most kSpaceSavingMaxKeyBytes bytes) are copied
// into storage reserved by the constructor, and the key index is a flat
// open-addressing table sized there too.
#ifndef CHATSHARD_ENGINE_SRC_HEAVY_HITTERS_H_
#define CHATSHARD_ENGINE_SRC_HEAVY_HITTERS_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "chatshard/options.h"

namespace chatshard::internal {

// Chat ids are the keys, and Submit refuses longer ones.
inline constexpr size_t kSpaceSavingMaxKeyBytes = kMaxChatIdBytes;

class SpaceSaving {
 public:
  // capacity >= 1 counters (0 is taken as 1). Reserves
  // capacity * kSpaceSavingMaxKeyBytes bytes of key storage up front.
  explicit SpaceSaving(size_t capacity);

  // Counts `weight` more occurrences of `key`. O(log capacity); no allocation.
  // A key longer than kSpaceSavingMaxKeyBytes breaks the contract and aborts.
  void Add(std::string_view key, uint64_t weight = 1);
  // The same, for a caller that already has Fnv1a32(key) (the engine carries
  // it in every envelope); `fnv1a32` must be exactly that.
  void AddHashed(std::string_view key, uint32_t fnv1a32, uint64_t weight);

  struct Entry {
    std::string key;
    uint64_t count = 0;  // upper bound of the true count
    uint64_t error = 0;  // count - error is a lower bound
  };
  // The k largest counters: count descending, ties by key ascending.
  std::vector<Entry> Top(size_t k) const;

  // Folds `other` in (Agarwal et al., "Mergeable Summaries", 2012, in the
  // SpaceSaving form of Cafaro et al. 2016): a key missing from a full summary
  // is charged that summary's minimum count, as count and as error; then the
  // capacity() largest are kept. Afterwards the guarantees hold for the two
  // streams together when both capacities are equal. May allocate.
  void Merge(const SpaceSaving& other);

  size_t capacity() const { return capacity_; }
  size_t size() const { return size_; }
  // Forgets every key; keeps the reserved storage.
  void Clear();

 private:
  static constexpr int32_t kEmptySlot = -1;

  struct Counter {
    uint64_t count = 0;
    uint64_t error = 0;
    uint64_t hash = 0;
    uint32_t key_size = 0;
    uint32_t heap_position = 0;
  };

  std::string_view KeyOf(uint32_t counter) const;
  // The counter holding `key`, or kEmptySlot.
  int32_t Find(std::string_view key, uint64_t hash) const;
  size_t HomeSlot(uint64_t hash) const;
  void IndexInsert(uint32_t counter);
  void IndexErase(uint32_t counter);
  void AssignKey(uint32_t counter, std::string_view key, uint64_t hash);
  // Adds a new counter (size_ < capacity_) and places it in index and heap.
  void Append(std::string_view key, uint64_t hash, uint64_t count, uint64_t error);
  // Min-heap on count over heap_ (counter ids).
  void SiftUp(uint32_t position);
  void SiftDown(uint32_t position);
  void SwapHeap(uint32_t a, uint32_t b);

  size_t capacity_;
  size_t size_ = 0;
  std::vector<Counter> counters_;  // [0, size_) in use
  std::vector<char> keys_;         // counter i's key at i * kSpaceSavingMaxKeyBytes
  std::vector<uint32_t> heap_;     // [0, size_): min-heap of counter ids by count
  std::vector<int32_t> index_;     // open addressing, linear probing: counter id or kEmptySlot
  int index_shift_ = 0;            // 64 - log2(index_.size())
};

}  // namespace chatshard::internal

#endif  // CHATSHARD_ENGINE_SRC_HEAVY_HITTERS_H_
