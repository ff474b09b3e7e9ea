// EnvelopeRing: a growable ring buffer of Envelopes (a chat's mailbox).
//
// The storage is raw: only the `size()` live elements are constructed.
// Growing moves the live elements and leaves the new slots untouched, and
// freeing a ring destroys the live elements only, then returns the block
// without reading the rest. With std::vector<Envelope> both constructed every
// slot: growing wrote the whole new block, and destroying an engine whose
// chats had once held a long backlog read every slot of every ring (6 ms of
// the 8 ms an engine took to destroy after a per_chat replay of the shared
// capture, whose rings held ~700k slots in all; bench/replay_bench.cc).
//
// Not thread-safe: a ring belongs to one mailbox, which the shard guards.
// Capacity is 0 or a power of two, so positions wrap with a mask.
#ifndef CHATSHARD_ENGINE_SRC_ENVELOPE_RING_H_
#define CHATSHARD_ENGINE_SRC_ENVELOPE_RING_H_

#include <cstddef>
#include <memory>
#include <new>
#include <utility>

#include "envelope.h"

namespace chatshard::internal {

class EnvelopeRing {
 public:
  EnvelopeRing() = default;
  EnvelopeRing(const EnvelopeRing&) = delete;
  EnvelopeRing& operator=(const EnvelopeRing&) = delete;
  ~EnvelopeRing() { Reset(); }

  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }

  // Inline: once per message on the distribution path.
  void PushBack(Envelope&& e) {
    if (size_ == capacity_) [[unlikely]]
      Grow();
    ::new (static_cast<void*>(slots_ + ((head_ + size_) & (capacity_ - 1)))) Envelope(std::move(e));
    ++size_;
  }
  void PushFront(Envelope&& e) {
    if (size_ == capacity_) Grow();
    head_ = (head_ - 1) & (capacity_ - 1);
    ::new (static_cast<void*>(slots_ + head_)) Envelope(std::move(e));
    ++size_;
  }
  // Requires !empty().
  Envelope PopFront() {
    Envelope& slot = slots_[head_];
    Envelope e(std::move(slot));
    slot.~Envelope();
    head_ = (head_ + 1) & (capacity_ - 1);
    --size_;
    return e;
  }
  // Moves the first `n` (<= size()) messages into out[0, n).
  void PopFrontInto(Envelope* out, size_t n) {
    const size_t mask = capacity_ - 1;
    for (size_t i = 0; i < n; ++i) {
      Envelope& slot = slots_[(head_ + i) & mask];
      out[i] = std::move(slot);
      slot.~Envelope();
    }
    head_ = (head_ + n) & mask;
    size_ -= n;
  }
  // Destroys the live elements and frees the storage.
  void Reset() {
    const size_t mask = capacity_ - 1;
    for (size_t i = 0; i < size_; ++i) slots_[(head_ + i) & mask].~Envelope();
    if (slots_ != nullptr) std::allocator<Envelope>().deallocate(slots_, capacity_);
    slots_ = nullptr;
    capacity_ = head_ = size_ = 0;
  }

 private:
  // Doubles the capacity (4 at first); out of line: rare once a chat's
  // backlog has been seen.
  [[gnu::noinline]] void Grow() {
    const size_t bigger = capacity_ == 0 ? 4 : capacity_ * 2;
    Envelope* moved = std::allocator<Envelope>().allocate(bigger);
    const size_t mask = capacity_ - 1;
    for (size_t i = 0; i < size_; ++i) {
      Envelope& slot = slots_[(head_ + i) & mask];
      ::new (static_cast<void*>(moved + i)) Envelope(std::move(slot));
      slot.~Envelope();
    }
    if (slots_ != nullptr) std::allocator<Envelope>().deallocate(slots_, capacity_);
    slots_ = moved;
    capacity_ = bigger;
    head_ = 0;
  }

  Envelope* slots_ = nullptr;
  size_t capacity_ = 0;
  size_t head_ = 0;
  size_t size_ = 0;
};

}  // namespace chatshard::internal

#endif  // CHATSHARD_ENGINE_SRC_ENVELOPE_RING_H_
