// ChatTable: the per-shard index from chat id to its mailbox.
//
// Open addressing with linear probing over (hash, pointer) pairs. The hash is
// the chat id's Fnv1a32, computed once by the producer and carried in the
// envelope, so a lookup hashes nothing: it reads one probe run (usually one
// 16-byte slot) and compares the id only on a full hash match. It replaced a
// std::unordered_map whose node walk and string compare were about a fifth of
// the kPerChat drain path's instructions (callgrind, bench/).
//
// Chats of one shard share `hash % partitions`, so the low bits are useless
// for placement; the slot comes from the high bits of hash * 2^32/phi
// (Fibonacci hashing). Entries are never erased one by one: Rebuild keeps the
// values a predicate selects. The load factor stays at or below 1/2.
//
// Not thread-safe: the shard guards it with its consumer lock. `Value` needs
// members `std::string chat` and `uint32_t hash`.
#ifndef CHATSHARD_ENGINE_SRC_CHAT_TABLE_H_
#define CHATSHARD_ENGINE_SRC_CHAT_TABLE_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace chatshard::internal {

template <typename Value>
class ChatTable {
 public:
  ChatTable() { slots_.resize(kInitialSlots); }

  Value* Find(std::string_view chat, uint32_t hash) const {
    for (size_t i = Home(hash);; i = (i + 1) & mask()) {
      const Slot& s = slots_[i];
      if (s.value == nullptr) return nullptr;
      if (s.hash == hash && s.value->chat == chat) return s.value;
    }
  }

  // `value` must not be in the table yet.
  void Insert(Value* value) {
    if (2 * (size_ + 1) > slots_.size()) Resize(slots_.size() * 2);
    Place(value);
    ++size_;
  }

  // Keeps the values for which keep(value) is true.
  template <typename Keep>
  void Rebuild(Keep keep) {
    std::vector<Value*> kept;
    kept.reserve(size_);
    for (const Slot& s : slots_) {
      if (s.value != nullptr && keep(s.value)) kept.push_back(s.value);
    }
    size_t want = kInitialSlots;
    while (2 * kept.size() > want) want *= 2;
    slots_.assign(want, Slot{});
    size_ = 0;
    for (Value* v : kept) {
      Place(v);
      ++size_;
    }
  }

  template <typename Fn>
  void ForEach(Fn fn) const {
    for (const Slot& s : slots_) {
      if (s.value != nullptr) fn(s.value);
    }
  }

  size_t size() const { return size_; }

 private:
  static constexpr size_t kInitialSlots = 64;
  struct Slot {
    uint32_t hash = 0;
    Value* value = nullptr;
  };

  size_t mask() const { return slots_.size() - 1; }
  size_t Home(uint32_t hash) const {
    const int bits = std::countr_zero(slots_.size());
    return static_cast<size_t>((hash * 0x9E3779B9u) >> (32 - bits));
  }
  void Place(Value* value) {
    size_t i = Home(value->hash);
    while (slots_[i].value != nullptr) i = (i + 1) & mask();
    slots_[i] = Slot{value->hash, value};
  }
  void Resize(size_t slots) {
    std::vector<Slot> old(slots, Slot{});
    old.swap(slots_);
    for (const Slot& s : old) {
      if (s.value != nullptr) Place(s.value);
    }
  }

  std::vector<Slot> slots_;  // size: a power of two >= kInitialSlots
  size_t size_ = 0;
};

}  // namespace chatshard::internal

#endif  // CHATSHARD_ENGINE_SRC_CHAT_TABLE_H_
