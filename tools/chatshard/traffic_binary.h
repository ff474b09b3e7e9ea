// The binary traffic format: the same information as a JSON Lines traffic
// file (ts_us, chat, bytes per message; see traffic_file.h), about 10x smaller
// and read many times faster. LoadTraffic recognises it by its magic, gzip-
// compressed or not. Plain functions and values: no shared state.
//
// Layout, version 1 (integers little-endian; varint = unsigned LEB128, at
// most 10 bytes; crc32 = zlib's crc32, the one gzip uses):
//
//   offset  size  header
//        0     8  magic "\x89CSTRAF\n" (the first byte is not ASCII, so it is
//                 never a JSON line; gzip starts 1f 8b)
//        8     4  u32 version = 1
//       12     4  u32 flags = 0 (reserved: a reader refuses any bit it does
//                 not know)
//       16     8  u64 chat_count
//       24     8  u64 message_count
//       32     4  u32 crc32 of bytes 0..31
//   chat table (at offset 36)
//              4  u32 L, the table's length in bytes
//              L  chat_count entries: varint length (>= 1), then the chat id
//                 (valid UTF-8, no two equal), in order of first appearance
//              4  u32 crc32 of the L bytes
//   blocks, until message_count messages have been read
//              4  u32 record count R (1..kBinaryRecordsPerBlock)
//              4  u32 B, the records' length in bytes
//              4  u32 crc32 of the B bytes
//              B  R records: varint zigzag(ts_us - previous ts_us) (the
//                 previous of the first message is 0, and it carries across
//                 blocks), varint chat index, varint bytes
//   nothing after the last block.
//
// A record's chat index is either one already used or the next unused one
// (chats are numbered in order of first appearance), and every chat is used:
// each Traffic has exactly one encoding, so JSON Lines -> binary -> JSON Lines
// -> binary gives the same bytes. ts_us and bytes are integers >= 0 that fit
// an int64, as in JSON Lines. A JSON line's "payload" (and any other field)
// is not part of a Traffic, so neither format written by the tool carries it.
//
// A truncated or corrupt file is refused as a whole with
// "<name>: offset <byte>[ (message <n>)]: <reason>"; messages are numbered
// from 1, as lines are.
#ifndef CHATSHARD_TOOLS_CHATSHARD_TRAFFIC_BINARY_H_
#define CHATSHARD_TOOLS_CHATSHARD_TRAFFIC_BINARY_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "chatshard/status.h"
#include "traffic_file.h"

namespace chatshard::cli {

inline constexpr std::string_view kBinaryTrafficMagic(
    "\x89"
    "CSTRAF\n",
    8);
inline constexpr uint32_t kBinaryTrafficVersion = 1;
inline constexpr uint32_t kBinaryRecordsPerBlock = 4096;

// True when `data` starts with the binary format's magic.
bool IsBinaryTraffic(std::string_view data);

// The binary encoding of `traffic`'s messages. Chats are renumbered in order
// of first appearance and unused ones dropped. InvalidArgument when a message
// has ts_us < 0, bytes > INT64_MAX or a chat index out of range, or a chat id
// is empty or not UTF-8.
Result<std::string> EncodeBinaryTraffic(const Traffic& traffic);

// Decodes a whole binary traffic file held in `data`; `name` names it in
// errors. Unavailable, with the offset and reason, when it is truncated or
// corrupt. The result has format kBinary, lines = messages and skipped = 0.
Result<Traffic> DecodeBinaryTraffic(std::string_view data, std::string_view name);

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_TRAFFIC_BINARY_H_
