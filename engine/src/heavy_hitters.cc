#include "heavy_hitters.h"

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

#include "chatshard/routing.h"

namespace chatshard::internal {
namespace {

// Counter ids are int32 in the index; 2^24 counters already reserve 4 GiB of
// key storage, far past any sensible sketch.
constexpr size_t kMaxCapacity = size_t{1} << 24;
// Fibonacci hashing: spreads FNV's weaker low bits over the slot bits we use.
constexpr uint64_t kGoldenRatio64 = 0x9e3779b97f4a7c15ull;

[[noreturn]] void DieBecause(const char* what, size_t value) {
  std::fprintf(stderr, "chatshard SpaceSaving: %s (%zu)\n", what, value);
  std::abort();
}

bool EntryBefore(const SpaceSaving::Entry& a, const SpaceSaving::Entry& b) {
  if (a.count != b.count) return a.count > b.count;
  return a.key < b.key;
}

}  // namespace

SpaceSaving::SpaceSaving(size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {
  if (capacity_ > kMaxCapacity) DieBecause("capacity above 2^24 counters", capacity_);
  counters_.resize(capacity_);
  keys_.resize(capacity_ * kSpaceSavingMaxKeyBytes);
  heap_.resize(capacity_);
  // Load factor <= 1/2 keeps linear-probe runs short.
  const size_t slots = std::bit_ceil(capacity_ * 2);
  index_.assign(slots, kEmptySlot);
  index_shift_ = 64 - std::countr_zero(slots);
}

std::string_view SpaceSaving::KeyOf(uint32_t counter) const {
  return std::string_view(keys_.data() + size_t{counter} * kSpaceSavingMaxKeyBytes,
                          counters_[counter].key_size);
}

size_t SpaceSaving::HomeSlot(uint64_t hash) const {
  return static_cast<size_t>((hash * kGoldenRatio64) >> index_shift_);
}

int32_t SpaceSaving::Find(std::string_view key, uint64_t hash) const {
  const size_t mask = index_.size() - 1;
  for (size_t slot = HomeSlot(hash);; slot = (slot + 1) & mask) {
    const int32_t counter = index_[slot];
    // Terminates: the load factor is at most 1/2, so an empty slot exists.
    if (counter == kEmptySlot) return kEmptySlot;
    const Counter& c = counters_[static_cast<uint32_t>(counter)];
    if (c.hash == hash && KeyOf(static_cast<uint32_t>(counter)) == key) return counter;
  }
}

void SpaceSaving::IndexInsert(uint32_t counter) {
  const size_t mask = index_.size() - 1;
  size_t slot = HomeSlot(counters_[counter].hash);
  while (index_[slot] != kEmptySlot) slot = (slot + 1) & mask;
  index_[slot] = static_cast<int32_t>(counter);
}

void SpaceSaving::IndexErase(uint32_t counter) {
  const size_t mask = index_.size() - 1;
  size_t hole = HomeSlot(counters_[counter].hash);
  while (index_[hole] != static_cast<int32_t>(counter)) hole = (hole + 1) & mask;
  // Backward-shift deletion: pull later members of the probe run into the
  // hole when their home slot does not lie cyclically in (hole, slot], so
  // every key stays reachable from its home without tombstones.
  for (size_t slot = (hole + 1) & mask; index_[slot] != kEmptySlot; slot = (slot + 1) & mask) {
    const size_t home = HomeSlot(counters_[static_cast<uint32_t>(index_[slot])].hash);
    const bool home_in_between =
        hole <= slot ? (hole < home && home <= slot) : (hole < home || home <= slot);
    if (home_in_between) continue;
    index_[hole] = index_[slot];
    hole = slot;
  }
  index_[hole] = kEmptySlot;
}

void SpaceSaving::AssignKey(uint32_t counter, std::string_view key, uint64_t hash) {
  if (!key.empty()) {
    std::memcpy(keys_.data() + size_t{counter} * kSpaceSavingMaxKeyBytes, key.data(), key.size());
  }
  counters_[counter].key_size = static_cast<uint32_t>(key.size());
  counters_[counter].hash = hash;
}

void SpaceSaving::Append(std::string_view key, uint64_t hash, uint64_t count, uint64_t error) {
  const uint32_t id = static_cast<uint32_t>(size_++);
  AssignKey(id, key, hash);
  counters_[id].count = count;
  counters_[id].error = error;
  IndexInsert(id);
  counters_[id].heap_position = id;
  heap_[id] = id;
  SiftUp(id);
}

void SpaceSaving::Add(std::string_view key, uint64_t weight) {
  AddHashed(key, Fnv1a32(key), weight);
}

// The index hashes with Fnv1a32 (HomeSlot spreads it over 64 bits), so that
// the engine's precomputed chat hash serves as is.
void SpaceSaving::AddHashed(std::string_view key, uint32_t fnv1a32, uint64_t weight) {
  if (key.size() > kSpaceSavingMaxKeyBytes) DieBecause("key longer than 256 bytes", key.size());
  if (weight == 0) return;
  const uint64_t hash = fnv1a32;
  const int32_t found = Find(key, hash);
  if (found != kEmptySlot) {
    Counter& c = counters_[static_cast<uint32_t>(found)];
    c.count += weight;
    SiftDown(c.heap_position);
    return;
  }
  if (size_ < capacity_) {
    Append(key, hash, weight, 0);
    return;
  }
  // Full: the key takes over the smallest counter, inheriting its count as
  // error, because the key may have occurred up to that often unobserved.
  const uint32_t victim = heap_[0];
  IndexErase(victim);
  AssignKey(victim, key, hash);
  Counter& c = counters_[victim];
  c.error = c.count;
  c.count += weight;
  IndexInsert(victim);
  SiftDown(0);
}

std::vector<SpaceSaving::Entry> SpaceSaving::Top(size_t k) const {
  std::vector<Entry> entries;
  entries.reserve(size_);
  for (uint32_t i = 0; i < size_; ++i) {
    entries.push_back(Entry{std::string(KeyOf(i)), counters_[i].count, counters_[i].error});
  }
  std::sort(entries.begin(), entries.end(), EntryBefore);
  if (entries.size() > k) entries.resize(k);
  return entries;
}

void SpaceSaving::Merge(const SpaceSaving& other) {
  if (&other == this) {
    const SpaceSaving copy = other;
    Merge(copy);
    return;
  }
  // A key missing from a full summary occurred there at most its minimum
  // count times; a summary that is not full saw every key it did not keep
  // zero times.
  const uint64_t own_floor = size_ == capacity_ ? counters_[heap_[0]].count : 0;
  const uint64_t other_floor =
      other.size_ == other.capacity_ ? other.counters_[other.heap_[0]].count : 0;

  std::vector<Entry> merged;
  merged.reserve(size_ + other.size_);
  for (uint32_t i = 0; i < size_; ++i) {
    const std::string_view key = KeyOf(i);
    Entry e{std::string(key), counters_[i].count, counters_[i].error};
    const int32_t there = other.Find(key, counters_[i].hash);
    if (there == kEmptySlot) {
      e.count += other_floor;
      e.error += other_floor;
    } else {
      e.count += other.counters_[static_cast<uint32_t>(there)].count;
      e.error += other.counters_[static_cast<uint32_t>(there)].error;
    }
    merged.push_back(std::move(e));
  }
  for (uint32_t i = 0; i < other.size_; ++i) {
    const std::string_view key = other.KeyOf(i);
    if (Find(key, other.counters_[i].hash) != kEmptySlot) continue;  // done above
    merged.push_back(Entry{std::string(key), other.counters_[i].count + own_floor,
                           other.counters_[i].error + own_floor});
  }
  // Keeping the largest is what bounds the new minimum by N / capacity: the
  // kept counts sum to at most N1 + N2.
  std::sort(merged.begin(), merged.end(), EntryBefore);
  if (merged.size() > capacity_) merged.resize(capacity_);

  Clear();
  for (const Entry& e : merged) Append(e.key, Fnv1a32(e.key), e.count, e.error);
}

void SpaceSaving::Clear() {
  size_ = 0;
  std::fill(index_.begin(), index_.end(), kEmptySlot);
}

void SpaceSaving::SwapHeap(uint32_t a, uint32_t b) {
  std::swap(heap_[a], heap_[b]);
  counters_[heap_[a]].heap_position = a;
  counters_[heap_[b]].heap_position = b;
}

void SpaceSaving::SiftUp(uint32_t position) {
  while (position > 0) {
    const uint32_t parent = (position - 1) / 2;
    if (counters_[heap_[parent]].count <= counters_[heap_[position]].count) return;
    SwapHeap(parent, position);
    position = parent;
  }
}

void SpaceSaving::SiftDown(uint32_t position) {
  const size_t n = size_;
  while (true) {
    const size_t left = size_t{position} * 2 + 1;
    if (left >= n) return;
    size_t smallest = left;
    const size_t right = left + 1;
    if (right < n && counters_[heap_[right]].count < counters_[heap_[left]].count) {
      smallest = right;
    }
    if (counters_[heap_[position]].count <= counters_[heap_[smallest]].count) return;
    SwapHeap(position, static_cast<uint32_t>(smallest));
    position = static_cast<uint32_t>(smallest);
  }
}

}  // namespace chatshard::internal
