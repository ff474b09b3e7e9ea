#include "chatshard/routing.h"

#include <cstdint>
#include <string_view>

namespace chatshard {
namespace {

constexpr uint32_t kFnv32OffsetBasis = 2166136261u;
constexpr uint32_t kFnv32Prime = 16777619u;
constexpr uint64_t kFnv64OffsetBasis = 14695981039346656037ull;
constexpr uint64_t kFnv64Prime = 1099511628211ull;
// The 64-bit linear congruential step of Lamping & Veach's reference code.
constexpr uint64_t kJumpLcgMultiplier = 2862933555777941757ull;

}  // namespace

uint32_t Fnv1a32(std::string_view bytes) {
  uint32_t hash = kFnv32OffsetBasis;
  for (char c : bytes) {
    // Through unsigned char: a char may be signed, and bytes >= 0x80 (UTF-8)
    // must hash as 0x80..0xff, as TextEncoder's Uint8Array does in TypeScript.
    hash ^= static_cast<unsigned char>(c);
    hash *= kFnv32Prime;  // unsigned: wraps mod 2^32 like Math.imul(...) >>> 0
  }
  return hash;
}

uint64_t Fnv1a64(std::string_view bytes) {
  uint64_t hash = kFnv64OffsetBasis;
  for (char c : bytes) {
    hash ^= static_cast<unsigned char>(c);
    hash *= kFnv64Prime;
  }
  return hash;
}

uint32_t JumpConsistentHash(uint64_t key, uint32_t buckets) {
  // The canonical loop from the paper. int64 bookkeeping keeps (b + 1) * 2^31
  // below 2^63 for every uint32 bucket count. buckets == 0 breaks the
  // contract; answering 0 (as for one bucket) beats returning 0xffffffff.
  int64_t b = -1;
  int64_t j = 0;
  const int64_t limit = buckets == 0 ? 1 : static_cast<int64_t>(buckets);
  while (j < limit) {
    b = j;
    key = key * kJumpLcgMultiplier + 1;
    j = static_cast<int64_t>(static_cast<double>(b + 1) * (static_cast<double>(int64_t{1} << 31) /
                                                           static_cast<double>((key >> 33) + 1)));
  }
  return static_cast<uint32_t>(b);
}

uint32_t ShardFor(std::string_view chat_id, uint32_t partitions, Routing routing) {
  if (partitions <= 1) return 0;
  switch (routing) {
    case Routing::kModulo:
      return Fnv1a32(chat_id) % partitions;
    case Routing::kJump:
      return JumpConsistentHash(Fnv1a64(chat_id), partitions);
  }
  // An out-of-range Routing value: fall back to the compatible default.
  return Fnv1a32(chat_id) % partitions;
}

}  // namespace chatshard
