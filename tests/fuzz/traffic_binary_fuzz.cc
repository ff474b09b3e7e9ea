// libFuzzer target: the binary traffic format's decoder, as LoadTraffic uses
// it for a file that starts with the magic.
//
// Invariants checked on every input, beyond "no crash, no sanitizer report,
// no allocation the input's size does not justify":
// - every message names a chat that exists;
// - an accepted input encodes again and decodes to the same chats and
//   messages.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "traffic_binary.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using chatshard::Result;
  using chatshard::cli::DecodeBinaryTraffic;
  using chatshard::cli::EncodeBinaryTraffic;
  using chatshard::cli::Traffic;
  using chatshard::fuzz::Require;

  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const Result<Traffic> decoded = DecodeBinaryTraffic(input, "fuzz");
  if (!decoded.ok()) {
    Require(!decoded.status().message().empty(), "a refused file says why");
    return 0;
  }
  chatshard::fuzz::CheckTraffic(decoded.value());
  const Result<std::string> encoded = EncodeBinaryTraffic(decoded.value());
  Require(encoded.ok(), "an accepted file encodes again");
  const Result<Traffic> again = DecodeBinaryTraffic(encoded.value(), "fuzz");
  Require(again.ok(), "what the encoder wrote decodes");
  chatshard::fuzz::SameTraffic(decoded.value(), again.value());
  return 0;
}
