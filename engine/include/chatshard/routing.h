// Routing: which shard a chat id belongs to.
//
// These are pure functions, safe to call from any thread, and they are the
// very functions the engine uses, so a host can route ahead of Submit (for
// example to pick a Redis stream) and always agree with the engine.
#ifndef CHATSHARD_ROUTING_H_
#define CHATSHARD_ROUTING_H_

#include <cstdint>
#include <string_view>

namespace chatshard {

enum class Routing {
  // fnv1a32(chat id bytes) % partitions: bit-identical to the TypeScript/BullMQ
  // service chatshard replaces. Changing `partitions` moves almost every chat.
  kModulo,
  // Lamping-Veach jump consistent hash of fnv1a64(chat id bytes): changing
  // partitions from N to N+1 moves about 1/(N+1) of the chats.
  kJump,
};

// FNV-1a, 32 bits (offset basis 2166136261, prime 16777619) over `bytes`.
uint32_t Fnv1a32(std::string_view bytes);
// FNV-1a, 64 bits (offset basis 14695981039346656037, prime 1099511628211).
uint64_t Fnv1a64(std::string_view bytes);
// Lamping & Veach, "A Fast, Minimal Memory, Consistent Hash Algorithm" (2014).
// Returns a bucket in [0, buckets); `buckets` must be >= 1.
uint32_t JumpConsistentHash(uint64_t key, uint32_t buckets);

// The shard of `chat_id` among `partitions` shards (partitions >= 1; 0 is
// treated as 1). `chat_id` is taken as the UTF-8 bytes it holds.
uint32_t ShardFor(std::string_view chat_id, uint32_t partitions,
                  Routing routing = Routing::kModulo);

}  // namespace chatshard

#endif  // CHATSHARD_ROUTING_H_
