// Envelope: one accepted message as the engine stores it (80 bytes).
// Move-only. Chat id and payload share one buffer: inline when they fit (no
// heap allocation), else one heap block — the only allocation a message costs.
#ifndef CHATSHARD_ENGINE_SRC_ENVELOPE_H_
#define CHATSHARD_ENGINE_SRC_ENVELOPE_H_

#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

namespace chatshard::internal {

// moodycamel hands a queue slot back from consumer to producer through a
// relaxed load plus std::atomic_thread_fence, which ThreadSanitizer cannot
// model (moodycamel issues #49, #62), so reusing a block looks like a race
// on the Envelope stored in it. Under TSan, an Envelope's storage therefore
// carries an explicit hand-off: destruction (the consumer's last touch of a
// slot) releases the address and construction (the producer's first touch)
// acquires it. It is a base class so that it runs before the members are
// initialised and after they are destroyed. Empty, and no code, otherwise.
struct TsanSlotHandOff {
#if defined(__SANITIZE_THREAD__)
  TsanSlotHandOff() { __tsan_acquire(this); }
  TsanSlotHandOff(TsanSlotHandOff&&) noexcept { __tsan_acquire(this); }
  TsanSlotHandOff& operator=(TsanSlotHandOff&&) noexcept { return *this; }
  ~TsanSlotHandOff() { __tsan_release(this); }
#endif
};

class Envelope : private TsanSlotHandOff {
 public:
  // Chat id + payload up to this many bytes live inside the Envelope (no
  // heap allocation). 52 keeps a typical 17-byte id with a 32-byte payload
  // inline (bench/ measured 2.4x end-to-end throughput from avoiding the
  // cross-thread malloc/free of a 49-byte message at an older 48) and makes
  // the whole Envelope 80 bytes: every message crosses from the producer's
  // core to the drain thread's, and bench/'s ceiling moved 80-byte elements
  // 2-3x faster than 104-byte ones on the 2-core VM.
  static constexpr uint32_t kInlineBytes = 52;

  Envelope() = default;
  // `chat` is at most kMaxChatIdBytes (checked by the caller).
  Envelope(std::string_view chat, std::string_view payload, uint32_t chat_hash,
           int64_t enqueued_ns) {
    rep_.enqueued_ns = enqueued_ns;
    rep_.chat_len = static_cast<uint16_t>(chat.size());
    rep_.payload_len = static_cast<uint32_t>(payload.size());
    rep_.chat_hash = chat_hash;
    char* dst = rep_.bytes;
    if (on_heap()) {
      dst = new char[chat.size() + payload.size()];
      set_heap(dst);
    }
    if (!chat.empty()) std::memcpy(dst, chat.data(), chat.size());
    if (!payload.empty()) std::memcpy(dst + chat.size(), payload.data(), payload.size());
  }
  // Moves copy the whole representation at once (a fixed-size copy the
  // compiler turns into a few vector moves; bench/ measured it against a
  // field-by-field copy plus a variable-length memcpy) and then take the
  // heap block, if any, away from the source.
  Envelope(Envelope&& other) noexcept : TsanSlotHandOff() { TakeFrom(other); }
  Envelope& operator=(Envelope&& other) noexcept {
    if (this != &other) {
      FreeHeap();
      TakeFrom(other);
    }
    return *this;
  }
  Envelope(const Envelope&) = delete;
  Envelope& operator=(const Envelope&) = delete;
  ~Envelope() { FreeHeap(); }

  std::string_view chat() const { return {data(), rep_.chat_len}; }
  std::string_view payload() const { return {data() + rep_.chat_len, rep_.payload_len}; }
  uint32_t chat_hash() const { return rep_.chat_hash; }
  int64_t enqueued_ns() const { return rep_.enqueued_ns; }
  uint64_t id() const { return rep_.id; }
  void set_id(uint64_t id) { rep_.id = id; }
  uint32_t attempts() const { return rep_.attempts; }  // runs so far
  void add_attempt() { ++rep_.attempts; }

 private:
  // Trivially copyable, so that a move is one fixed-size copy. No padding:
  // the heap pointer, when there is one, is kept in `bytes` (memcpy).
  struct Rep {
    uint64_t id = 0;
    int64_t enqueued_ns = 0;
    uint32_t chat_hash = 0;
    uint32_t payload_len = 0;
    uint16_t chat_len = 0;   // <= kMaxChatIdBytes (256)
    uint16_t attempts = 0;   // <= max_attempts (1000)
    char bytes[kInlineBytes];
  };

  // Where the bytes are follows from their length, so no flag is stored.
  bool on_heap() const { return uint32_t{rep_.chat_len} + rep_.payload_len > kInlineBytes; }
  char* heap() const {
    char* p;
    std::memcpy(&p, rep_.bytes, sizeof(p));
    return p;
  }
  void set_heap(char* p) { std::memcpy(rep_.bytes, &p, sizeof(p)); }
  const char* data() const { return on_heap() ? heap() : rep_.bytes; }
  void FreeHeap() {
    if (on_heap()) delete[] heap();
  }
  void TakeFrom(Envelope& o) {
    rep_ = o.rep_;
    // The source no longer owns the block; it becomes an empty envelope.
    if (on_heap()) {
      o.rep_.chat_len = 0;
      o.rep_.payload_len = 0;
    }
  }

  Rep rep_;
};
static_assert(sizeof(Envelope) == 80);

}  // namespace chatshard::internal

#endif  // CHATSHARD_ENGINE_SRC_ENVELOPE_H_
