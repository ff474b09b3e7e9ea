#include "traffic_binary.h"

#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gtest/gtest.h"
#include "traffic_file.h"

namespace chatshard::cli {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kName = "t.bin";

bool SameMessages(const Traffic& a, const Traffic& b) {
  if (a.chats != b.chats || a.messages.size() != b.messages.size()) return false;
  for (size_t i = 0; i < a.messages.size(); ++i) {
    const TrafficMessage& x = a.messages[i];
    const TrafficMessage& y = b.messages[i];
    if (x.ts_us != y.ts_us || x.chat != y.chat || x.bytes != y.bytes) return false;
  }
  return true;
}

// Random traffic with chats in order of first appearance, as a reader makes
// it: unsorted times, extreme values, ids with quotes, line breaks and
// non-ASCII text.
Traffic RandomTraffic(uint64_t seed, size_t messages) {
  std::mt19937_64 random(seed);
  const std::vector<std::string> pool = {"a",      "hot/lobby",          "122649/0cbdc42bda9d",
                                         "日本語", "quote\"and\\back",   "line\nbreak",
                                         "tab\tx", std::string(300, 'z')};
  Traffic traffic;
  std::unordered_map<std::string, uint32_t> index;
  for (size_t i = 0; i < messages; ++i) {
    std::string chat = pool[random() % pool.size()];
    if (random() % 3 == 0) chat += "/" + std::to_string(random() % 5000);
    auto [it, inserted] = index.try_emplace(chat, static_cast<uint32_t>(traffic.chats.size()));
    if (inserted) traffic.chats.push_back(chat);
    TrafficMessage message;
    switch (random() % 8) {
      case 0:
        message.ts_us = std::numeric_limits<int64_t>::max();
        message.bytes = std::numeric_limits<int64_t>::max();
        break;
      case 1:
        message.ts_us = 0;
        break;
      default:
        message.ts_us = static_cast<int64_t>(random() % (uint64_t{1} << (random() % 62)));
        message.bytes = random() % 100000;
    }
    message.chat = it->second;
    traffic.messages.push_back(message);
  }
  return traffic;
}

std::string Encode(const Traffic& traffic) {
  Result<std::string> encoded = EncodeBinaryTraffic(traffic);
  EXPECT_TRUE(encoded.ok()) << encoded.status().ToString();
  return encoded.ok() ? encoded.value() : std::string();
}

fs::path ScratchFile(const std::string& name) {
  return fs::path(::testing::TempDir()) /
         ("traffic_binary_" + std::to_string(getpid()) + "_" + name);
}

void WriteBytes(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

TEST(TrafficBinaryTest, RoundTripsRandomTraffic) {
  for (const uint64_t seed : {1u, 2u, 3u}) {
    // Enough messages for several blocks, and a few for part of one.
    for (const size_t count : {size_t{0}, size_t{1}, size_t{7}, size_t{3 * 4096 + 5}}) {
      const Traffic traffic = RandomTraffic(seed, count);
      const std::string encoded = Encode(traffic);
      ASSERT_TRUE(IsBinaryTraffic(encoded));
      Result<Traffic> decoded = DecodeBinaryTraffic(encoded, kName);
      ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
      EXPECT_TRUE(SameMessages(decoded.value(), traffic)) << "seed " << seed << ", " << count;
      EXPECT_EQ(decoded.value().format, TrafficFormat::kBinary);
      EXPECT_EQ(decoded.value().lines, count);
      EXPECT_EQ(Encode(decoded.value()), encoded) << "seed " << seed << ", " << count;
    }
  }
}

TEST(TrafficBinaryTest, EncoderNumbersChatsInOrderOfFirstUseAndDropsUnusedOnes) {
  Traffic traffic;
  traffic.chats = {"unused", "b", "a"};
  traffic.messages = {{.ts_us = 5, .chat = 2, .bytes = 1},
                      {.ts_us = 3, .chat = 1, .bytes = 2},
                      {.ts_us = 9, .chat = 2, .bytes = 3}};
  Result<Traffic> decoded = DecodeBinaryTraffic(Encode(traffic), kName);
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded.value().chats, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(decoded.value().messages.size(), 3u);
  EXPECT_EQ(decoded.value().messages[0].chat, 0u);
  EXPECT_EQ(decoded.value().messages[1].chat, 1u);
  EXPECT_EQ(decoded.value().messages[1].ts_us, 3);
  EXPECT_EQ(decoded.value().messages[2].bytes, 3u);
}

TEST(TrafficBinaryTest, EncoderRefusesWhatNoReaderAccepts) {
  Traffic traffic;
  traffic.chats = {"a", ""};
  traffic.messages = {{.ts_us = -1, .chat = 0, .bytes = 0}};
  EXPECT_FALSE(EncodeBinaryTraffic(traffic).ok());
  traffic.messages = {{.ts_us = 0, .chat = 7, .bytes = 0}};
  EXPECT_FALSE(EncodeBinaryTraffic(traffic).ok());
  traffic.messages = {{.ts_us = 0, .chat = 1, .bytes = 0}};  // the empty id
  EXPECT_FALSE(EncodeBinaryTraffic(traffic).ok());
  traffic.messages = {{.ts_us = 0, .chat = 0, .bytes = uint64_t{1} << 63}};
  EXPECT_FALSE(EncodeBinaryTraffic(traffic).ok());
}

TEST(TrafficBinaryTest, IsAbout8BytesPerMessageOrLess) {
  Traffic traffic;
  traffic.chats = {"122649/0cbdc42bda9d"};
  for (int i = 0; i < 10000; ++i) {
    traffic.messages.push_back(
        {.ts_us = 1'700'000'000'000'000 + i * 1000, .chat = 0, .bytes = 300});
  }
  // {"ts_us":1700000000000000,"chat":"122649/0cbdc42bda9d","bytes":300} is 67 bytes.
  EXPECT_LT(Encode(traffic).size(), 10000u * 6);
}

// Every proper prefix of a file is refused as truncated, with its offset.
TEST(TrafficBinaryTest, RefusesATruncatedFileAtEveryCutPoint) {
  const std::string whole = Encode(RandomTraffic(7, 4096 + 30));  // two blocks
  for (size_t cut = 0; cut < whole.size(); cut += cut < 300 || whole.size() - cut < 300 ? 1 : 97) {
    Result<Traffic> decoded = DecodeBinaryTraffic(std::string_view(whole).substr(0, cut), kName);
    ASSERT_FALSE(decoded.ok()) << "cut at " << cut;
    EXPECT_EQ(decoded.status().code(), Status::Code::kUnavailable);
    const std::string_view message = decoded.status().message();
    EXPECT_EQ(message.rfind("t.bin: offset ", 0), 0u) << message;
    EXPECT_NE(message.find("truncated"), std::string_view::npos)
        << "cut at " << cut << ": " << message;
  }
}

// Any one byte changed is caught: by the magic, the version, or a checksum.
TEST(TrafficBinaryTest, RefusesAFileWithAnyOneByteChanged) {
  const std::string whole = Encode(RandomTraffic(11, 300));
  for (size_t at = 0; at < whole.size(); ++at) {
    for (const uint8_t flip : {0x01, 0x80, 0xff}) {
      std::string corrupt = whole;
      corrupt[at] = static_cast<char>(static_cast<uint8_t>(corrupt[at]) ^ flip);
      Result<Traffic> decoded = DecodeBinaryTraffic(corrupt, kName);
      ASSERT_FALSE(decoded.ok()) << "byte " << at << " ^ " << int{flip};
      EXPECT_EQ(decoded.status().message().rfind("t.bin: offset ", 0), 0u)
          << decoded.status().message();
    }
  }
}

TEST(TrafficBinaryTest, NamesWhatIsWrong) {
  const std::string whole = Encode(RandomTraffic(5, 100));
  const auto message = [](std::string_view data) {
    Result<Traffic> decoded = DecodeBinaryTraffic(data, kName);
    EXPECT_FALSE(decoded.ok());
    return decoded.ok() ? std::string() : std::string(decoded.status().message());
  };
  EXPECT_EQ(message("{\"ts_us\":0}\n"),
            "t.bin: offset 0: not a chatshard binary traffic file (bad magic)");
  std::string future = whole;
  future[8] = 2;
  EXPECT_EQ(message(future),
            "t.bin: offset 8: version 2 is not supported (this build reads version 1)");
  std::string header = whole;
  header[20] ^= 1;
  EXPECT_EQ(message(header), "t.bin: offset 32: header checksum mismatch (corrupt file)");
  std::string record = whole;
  record[record.size() - 1] ^= 1;
  EXPECT_NE(message(record).find("(message 1): checksum mismatch in the block of messages "
                                 "1..100 (corrupt file)"),
            std::string::npos)
      << message(record);
  EXPECT_NE(message(whole + "x").find(": 1 unexpected byte(s) after the last of 100 messages"),
            std::string::npos);
}

// A corrupt count in a header whose checksum matches is refused without
// allocating for it.
TEST(TrafficBinaryTest, RefusesAHugeMessageCountWithoutAllocatingIt) {
  std::string file = Encode(RandomTraffic(3, 10));
  for (int i = 24; i < 32; ++i) file[i] = static_cast<char>(0x7f);
  const uLong crc = crc32(0L, reinterpret_cast<const Bytef*>(file.data()), 32);
  for (int i = 0; i < 4; ++i) file[32 + i] = static_cast<char>((crc >> (8 * i)) & 0xff);
  Result<Traffic> decoded = DecodeBinaryTraffic(file, kName);
  ASSERT_FALSE(decoded.ok());
  EXPECT_NE(decoded.status().message().find("truncated: the file ends after 10 of"),
            std::string_view::npos)
      << decoded.status().message();
}

TEST(TrafficBinaryTest, LoadTrafficReadsBinaryByContentPlainOrGzip) {
  const Traffic traffic = RandomTraffic(9, 5000);
  const std::string encoded = Encode(traffic);
  const fs::path plain = ScratchFile("named_like.jsonl");
  const fs::path gzip = ScratchFile("binary.gz");
  WriteBytes(plain, encoded);
  gzFile file = gzopen(gzip.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  ASSERT_EQ(gzwrite(file, encoded.data(), static_cast<unsigned>(encoded.size())),
            static_cast<int>(encoded.size()));
  ASSERT_EQ(gzclose(file), Z_OK);

  for (const fs::path& path : {plain, gzip}) {
    Result<Traffic> loaded = LoadTraffic(path.string(), {});
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    EXPECT_EQ(loaded.value().format, TrafficFormat::kBinary);
    EXPECT_TRUE(SameMessages(loaded.value(), traffic)) << path;
  }

  // A cut file is refused even under the default (skipping) options, and even
  // when the cut leaves only part of the magic.
  for (const size_t cut : {size_t{1}, size_t{5}, size_t{40}, encoded.size() / 2}) {
    WriteBytes(plain, std::string_view(encoded).substr(0, cut));
    Result<Traffic> loaded = LoadTraffic(plain.string(), {});
    ASSERT_FALSE(loaded.ok()) << cut;
    EXPECT_EQ(loaded.status().code(), Status::Code::kUnavailable);
    EXPECT_EQ(loaded.status().message().rfind(plain.string() + ": offset ", 0), 0u)
        << loaded.status().message();
  }
  fs::remove(plain);
  fs::remove(gzip);
}

}  // namespace
}  // namespace chatshard::cli
