#include "traffic_binary.h"

#include <fmt/format.h>
#include <simdjson.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

namespace chatshard::cli {
namespace {

constexpr size_t kHeaderBytes = 36;       // up to and including the header's crc32
constexpr size_t kBlockHeaderBytes = 12;  // record count, length, crc32
constexpr size_t kMinRecordBytes = 3;     // three one-byte varints
constexpr size_t kMinChatEntryBytes = 2;  // length varint and one byte
constexpr uint32_t kNoChat = std::numeric_limits<uint32_t>::max();
constexpr uint64_t kMaxValue = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

uint32_t Crc32(std::string_view bytes) {
  // zlib's crc32 takes a uInt length: feed it in pieces that fit.
  uLong crc = crc32(0L, Z_NULL, 0);
  while (!bytes.empty()) {
    const size_t piece = std::min<size_t>(bytes.size(), std::numeric_limits<uInt>::max());
    crc = crc32(crc, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(piece));
    bytes.remove_prefix(piece);
  }
  return static_cast<uint32_t>(crc);
}

// ---- Writing

void PutFixed32(std::string& out, uint32_t value) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

void PutFixed64(std::string& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

void PutVarint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

uint64_t ZigZag(int64_t value) {
  return (static_cast<uint64_t>(value) << 1) ^ static_cast<uint64_t>(value >> 63);
}

int64_t UnZigZag(uint64_t value) {
  return static_cast<int64_t>(value >> 1) ^ -static_cast<int64_t>(value & 1);
}

// ---- Reading

uint32_t Fixed32At(std::string_view data, size_t at) {
  uint32_t value = 0;
  for (int i = 3; i >= 0; --i) value = (value << 8) | static_cast<uint8_t>(data[at + i]);
  return value;
}

uint64_t Fixed64At(std::string_view data, size_t at) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | static_cast<uint8_t>(data[at + i]);
  return value;
}

// Reads a varint at *at (< end) and advances *at; false when it runs past
// `end` or over 64 bits.
bool GetVarint(const char* data, size_t end, size_t* at, uint64_t* out) {
  uint64_t value = 0;
  for (int shift = 0; shift < 64 && *at < end; shift += 7) {
    const auto byte = static_cast<uint8_t>(data[(*at)++]);
    if (shift == 63 && byte > 1) return false;
    value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if (byte < 0x80) {
      *out = value;
      return true;
    }
  }
  return false;
}

class Decoder {
 public:
  Decoder(std::string_view data, std::string_view name) : data_(data), name_(name) {}

  Result<Traffic> Decode() {
    if (Status header = ReadHeader(); !header.ok()) return header;
    if (Status table = ReadChatTable(); !table.ok()) return table;
    while (traffic_.messages.size() < message_count_) {
      if (Status block = ReadBlock(); !block.ok()) return block;
    }
    if (at_ != data_.size()) {
      return Error(at_, fmt::format("{} unexpected byte(s) after the last of {} messages",
                                    data_.size() - at_, message_count_));
    }
    if (next_new_chat_ != traffic_.chats.size()) {
      return Error(at_, fmt::format("the chat table has {} chats but the messages use {}",
                                    traffic_.chats.size(), next_new_chat_));
    }
    traffic_.format = TrafficFormat::kBinary;
    traffic_.lines = traffic_.messages.size();
    return std::move(traffic_);
  }

 private:
  Status Error(size_t offset, std::string_view reason) const {
    return Status::Unavailable(fmt::format("{}: offset {}: {}", name_, offset, reason));
  }
  Status MessageError(size_t offset, uint64_t message, std::string_view reason) const {
    return Status::Unavailable(
        fmt::format("{}: offset {} (message {}): {}", name_, offset, message, reason));
  }
  Status Truncated(size_t offset, std::string_view what, uint64_t needed) const {
    return Error(offset, fmt::format("truncated: {} needs {} byte(s), {} remain", what, needed,
                                     data_.size() - offset));
  }
  size_t Remaining() const { return data_.size() - at_; }

  Status ReadHeader() {
    if (data_.size() < 12 && kBinaryTrafficMagic.starts_with(data_.substr(0, 8))) {
      return Truncated(0, "the header", kHeaderBytes);
    }
    if (!IsBinaryTraffic(data_)) return Error(0, "not a chatshard binary traffic file (bad magic)");
    if (const uint32_t version = Fixed32At(data_, 8); version != kBinaryTrafficVersion) {
      return Error(8, fmt::format("version {} is not supported (this build reads version {})",
                                  version, kBinaryTrafficVersion));
    }
    if (data_.size() < kHeaderBytes) return Truncated(0, "the header", kHeaderBytes);
    if (Fixed32At(data_, 32) != Crc32(data_.substr(0, 32))) {
      return Error(32, "header checksum mismatch (corrupt file)");
    }
    if (const uint32_t flags = Fixed32At(data_, 12); flags != 0) {
      return Error(12, fmt::format("unknown flags 0x{:x}", flags));
    }
    const uint64_t chat_count = Fixed64At(data_, 16);
    message_count_ = Fixed64At(data_, 24);
    if (chat_count > std::numeric_limits<uint32_t>::max()) {
      return Error(16, fmt::format("{} chats is more than a traffic file can hold", chat_count));
    }
    chat_count_ = static_cast<uint32_t>(chat_count);
    at_ = kHeaderBytes;
    // Reserve no more than the file could hold: a corrupt count must not
    // become a huge allocation.
    traffic_.chats.reserve(std::min<uint64_t>(chat_count_, Remaining() / kMinChatEntryBytes));
    traffic_.messages.reserve(std::min<uint64_t>(message_count_, Remaining() / kMinRecordBytes));
    return Status::Ok();
  }

  Status ReadChatTable() {
    if (Remaining() < 4) return Truncated(at_, "the chat table's length", 4);
    const size_t length_at = at_;
    const uint32_t length = Fixed32At(data_, at_);
    at_ += 4;
    if (Remaining() < uint64_t{length} + 4) {
      return Truncated(length_at, "the chat table", uint64_t{length} + 8);
    }
    const size_t start = at_;
    const size_t end = start + length;
    if (Fixed32At(data_, end) != Crc32(data_.substr(start, length))) {
      return Error(end, "chat table checksum mismatch (corrupt file)");
    }
    std::unordered_set<std::string_view> seen;
    seen.reserve(std::min<size_t>(chat_count_, length / kMinChatEntryBytes));
    for (uint32_t chat = 0; chat < chat_count_; ++chat) {
      const size_t entry_at = at_;
      uint64_t size = 0;
      if (!GetVarint(data_.data(), end, &at_, &size) || size == 0 || size > end - at_) {
        return Error(entry_at, fmt::format("chat {} of {}: bad length", chat + 1, chat_count_));
      }
      const std::string_view id = data_.substr(at_, size);
      at_ += size;
      if (!simdjson::validate_utf8(id)) {
        return Error(entry_at, fmt::format("chat {}: not valid UTF-8", chat + 1));
      }
      if (!seen.insert(id).second) {
        return Error(entry_at, fmt::format("chat {}: duplicate id", chat + 1));
      }
      traffic_.chats.emplace_back(id);
    }
    if (at_ != end) {
      return Error(
          at_, fmt::format("chat table: {} byte(s) left after {} chats", end - at_, chat_count_));
    }
    at_ = end + 4;
    return Status::Ok();
  }

  Status ReadBlock() {
    const uint64_t first = traffic_.messages.size() + 1;
    const size_t block_at = at_;
    if (Remaining() == 0) {
      return Error(at_, fmt::format("truncated: the file ends after {} of {} messages", first - 1,
                                    message_count_));
    }
    if (Remaining() < kBlockHeaderBytes) {
      return Truncated(at_, "a block header", kBlockHeaderBytes);
    }
    const uint32_t records = Fixed32At(data_, at_);
    const uint32_t length = Fixed32At(data_, at_ + 4);
    const uint32_t crc = Fixed32At(data_, at_ + 8);
    at_ += kBlockHeaderBytes;
    if (records == 0 || records > kBinaryRecordsPerBlock ||
        records > message_count_ - (first - 1)) {
      return MessageError(block_at, first, fmt::format("bad block record count {}", records));
    }
    if (Remaining() < length) {
      return Truncated(block_at, fmt::format("a block of {} messages", records),
                       uint64_t{kBlockHeaderBytes} + length);
    }
    const size_t end = at_ + length;
    if (crc != Crc32(data_.substr(at_, length))) {
      return MessageError(block_at, first,
                          fmt::format("checksum mismatch in the block of messages {}..{} "
                                      "(corrupt file)",
                                      first, first + records - 1));
    }
    const char* data = data_.data();
    for (uint32_t i = 0; i < records; ++i) {
      const size_t record_at = at_;
      uint64_t delta = 0;
      uint64_t chat = 0;
      uint64_t bytes = 0;
      if (!GetVarint(data, end, &at_, &delta) || !GetVarint(data, end, &at_, &chat) ||
          !GetVarint(data, end, &at_, &bytes)) {
        return MessageError(record_at, first + i, "bad varint or record past its block");
      }
      int64_t ts_us = 0;
      if (__builtin_add_overflow(previous_ts_us_, UnZigZag(delta), &ts_us) || ts_us < 0) {
        return MessageError(record_at, first + i, "ts_us out of range");
      }
      if (chat > next_new_chat_ || chat >= chat_count_) {
        return MessageError(record_at, first + i,
                            fmt::format("chat index {} out of range ({} chats, {} seen so far)",
                                        chat, chat_count_, next_new_chat_));
      }
      if (chat == next_new_chat_) ++next_new_chat_;
      if (bytes > kMaxValue) {
        return MessageError(record_at, first + i, fmt::format("bytes {} out of range", bytes));
      }
      previous_ts_us_ = ts_us;
      traffic_.messages.push_back(
          TrafficMessage{.ts_us = ts_us, .chat = static_cast<uint32_t>(chat), .bytes = bytes});
    }
    if (at_ != end) {
      return MessageError(at_, first + records - 1,
                          fmt::format("{} byte(s) left at the end of the block", end - at_));
    }
    return Status::Ok();
  }

  const std::string_view data_;
  const std::string_view name_;
  size_t at_ = 0;
  uint32_t chat_count_ = 0;
  uint64_t message_count_ = 0;
  uint64_t next_new_chat_ = 0;
  int64_t previous_ts_us_ = 0;
  Traffic traffic_;
};

}  // namespace

bool IsBinaryTraffic(std::string_view data) { return data.starts_with(kBinaryTrafficMagic); }

Result<std::string> EncodeBinaryTraffic(const Traffic& traffic) {
  // Number chats in order of first appearance, checking the messages.
  std::vector<uint32_t> renumbered(traffic.chats.size(), kNoChat);
  std::vector<uint32_t> order;  // old index of each new one
  for (size_t i = 0; i < traffic.messages.size(); ++i) {
    const TrafficMessage& message = traffic.messages[i];
    if (message.ts_us < 0 || message.bytes > kMaxValue || message.chat >= renumbered.size()) {
      return Status::InvalidArgument(
          fmt::format("message {}: ts_us {}, bytes {} or chat {} out of range", i + 1,
                      message.ts_us, message.bytes, message.chat));
    }
    if (renumbered[message.chat] == kNoChat) {
      renumbered[message.chat] = static_cast<uint32_t>(order.size());
      order.push_back(message.chat);
    }
  }

  std::string out;
  out.reserve(kHeaderBytes + traffic.messages.size() * 6 + traffic.chats.size() * 24);
  out.append(kBinaryTrafficMagic);
  PutFixed32(out, kBinaryTrafficVersion);
  PutFixed32(out, 0);  // flags
  PutFixed64(out, order.size());
  PutFixed64(out, traffic.messages.size());
  PutFixed32(out, Crc32(out));

  const size_t length_at = out.size();
  PutFixed32(out, 0);  // the table's length, filled in below
  for (const uint32_t chat : order) {
    const std::string& id = traffic.chats[chat];
    if (id.empty() || !simdjson::validate_utf8(id)) {
      return Status::InvalidArgument(fmt::format("chat {}: empty or not UTF-8", chat));
    }
    PutVarint(out, id.size());
    out.append(id);
  }
  const size_t table_length = out.size() - length_at - 4;
  if (table_length > std::numeric_limits<uint32_t>::max()) {
    return Status::InvalidArgument("the chat ids take more than 4 GiB");
  }
  for (int i = 0; i < 4; ++i) {
    out[length_at + i] = static_cast<char>((table_length >> (8 * i)) & 0xff);
  }
  PutFixed32(out, Crc32(std::string_view(out).substr(length_at + 4)));

  int64_t previous_ts_us = 0;
  std::string block;
  for (size_t first = 0; first < traffic.messages.size(); first += kBinaryRecordsPerBlock) {
    const size_t records =
        std::min<size_t>(kBinaryRecordsPerBlock, traffic.messages.size() - first);
    block.clear();
    for (size_t i = first; i < first + records; ++i) {
      const TrafficMessage& message = traffic.messages[i];
      PutVarint(block, ZigZag(message.ts_us - previous_ts_us));
      PutVarint(block, renumbered[message.chat]);
      PutVarint(block, message.bytes);
      previous_ts_us = message.ts_us;
    }
    PutFixed32(out, static_cast<uint32_t>(records));
    PutFixed32(out, static_cast<uint32_t>(block.size()));
    PutFixed32(out, Crc32(block));
    out.append(block);
  }
  return out;
}

Result<Traffic> DecodeBinaryTraffic(std::string_view data, std::string_view name) {
  return Decoder(data, name).Decode();
}

}  // namespace chatshard::cli
