// The submit path's routing arithmetic, with results bit-identical to
// chatshard::Fnv1a32 and `% partitions` (routing.h), only cheaper:
//  - Fnv1a32x4 hashes four ids at once. FNV-1a is a chain of dependent
//    multiplies (one per byte), so one id is bound by multiply latency; four
//    independent chains fill the multiplier's pipeline instead.
//  - FastMod32 replaces the division in `hash % partitions` by two
//    multiplies (Lemire, Kaser & Kurz, "Faster Remainder by Direct
//    Computation", 2019), exact for every 32-bit dividend and divisor >= 1.
#ifndef CHATSHARD_ENGINE_SRC_FAST_ROUTING_H_
#define CHATSHARD_ENGINE_SRC_FAST_ROUTING_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace chatshard::internal {

inline constexpr uint32_t kFnv1a32OffsetBasis = 2166136261u;
inline constexpr uint32_t kFnv1a32Prime = 16777619u;

// out[k] = Fnv1a32(ids[k]) for k in 0..3.
inline void Fnv1a32x4(const std::string_view* ids, uint32_t* out) {
  uint32_t h0 = kFnv1a32OffsetBasis, h1 = kFnv1a32OffsetBasis;
  uint32_t h2 = kFnv1a32OffsetBasis, h3 = kFnv1a32OffsetBasis;
  const auto* p0 = reinterpret_cast<const unsigned char*>(ids[0].data());
  const auto* p1 = reinterpret_cast<const unsigned char*>(ids[1].data());
  const auto* p2 = reinterpret_cast<const unsigned char*>(ids[2].data());
  const auto* p3 = reinterpret_cast<const unsigned char*>(ids[3].data());
  // The common prefix in lock-step, then each tail on its own.
  const size_t common =
      std::min(std::min(ids[0].size(), ids[1].size()), std::min(ids[2].size(), ids[3].size()));
  for (size_t i = 0; i < common; ++i) {
    h0 = (h0 ^ p0[i]) * kFnv1a32Prime;
    h1 = (h1 ^ p1[i]) * kFnv1a32Prime;
    h2 = (h2 ^ p2[i]) * kFnv1a32Prime;
    h3 = (h3 ^ p3[i]) * kFnv1a32Prime;
  }
  for (size_t i = common; i < ids[0].size(); ++i) h0 = (h0 ^ p0[i]) * kFnv1a32Prime;
  for (size_t i = common; i < ids[1].size(); ++i) h1 = (h1 ^ p1[i]) * kFnv1a32Prime;
  for (size_t i = common; i < ids[2].size(); ++i) h2 = (h2 ^ p2[i]) * kFnv1a32Prime;
  for (size_t i = common; i < ids[3].size(); ++i) h3 = (h3 ^ p3[i]) * kFnv1a32Prime;
  out[0] = h0;
  out[1] = h1;
  out[2] = h2;
  out[3] = h3;
}

__extension__ using Uint128 = unsigned __int128;  // GCC and Clang; -Wpedantic-clean

// a % divisor for a fixed divisor, without a division instruction.
class FastMod32 {
 public:
  explicit FastMod32(uint32_t divisor)
      : divisor_(divisor == 0 ? 1 : divisor), magic_(UINT64_MAX / divisor_ + 1) {}
  uint32_t operator()(uint32_t a) const {
    // The low 64 bits of magic * a hold the fraction a / divisor; times the
    // divisor, its high 64 bits are the remainder.
    const uint64_t fraction = magic_ * a;
    return static_cast<uint32_t>((static_cast<Uint128>(fraction) * divisor_) >> 64);
  }
  uint32_t divisor() const { return divisor_; }

 private:
  uint32_t divisor_;
  uint64_t magic_;
};

}  // namespace chatshard::internal

#endif  // CHATSHARD_ENGINE_SRC_FAST_ROUTING_H_
