#include "chatshard/routing.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "fairness.h"

namespace chatshard {
namespace {

TEST(Fnv1aTest, MatchesStandard32BitVectors) {
  EXPECT_EQ(Fnv1a32(""), 0x811c9dc5u);
  EXPECT_EQ(Fnv1a32("a"), 0xe40c292cu);
  EXPECT_EQ(Fnv1a32("foobar"), 0xbf9cf968u);
}

TEST(Fnv1aTest, MatchesStandard64BitVectors) {
  EXPECT_EQ(Fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(Fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(Fnv1a64("foobar"), 0x85944171f73967e8ull);
}

TEST(Fnv1aTest, HashesHighBytesAsUnsigned) {
  // "é" is C3 A9; a signed-char implementation would xor in 0xffffffc3.
  // Expected value computed by node (Math.imul over TextEncoder bytes).
  EXPECT_EQ(Fnv1a32("caf\xc3\xa9"), 0xa82b5049u);
  EXPECT_EQ(Fnv1a32(std::string_view("\0", 1)), Fnv1a32(std::string_view("\0", 1)));
  EXPECT_NE(Fnv1a32(std::string_view("\0", 1)), Fnv1a32(""));
}

struct ShardRow {
  const char* chat_id;
  uint32_t partitions;
  uint32_t modulo_shard;
  uint32_t jump_shard;
};

// Computed independently by node 20 (not by this code): modulo with the
// TypeScript system's own loop, `h ^= byte; h = Math.imul(h, 16777619) >>> 0`
// over `new TextEncoder().encode(id)`, then `h % partitions`; jump with a
// BigInt FNV-1a-64 and a BigInt transcription of Lamping & Veach's loop.
constexpr ShardRow kNodeComputedShards[] = {
    {"chat-1", 1, 0, 0},
    {"chat-1", 16, 9, 0},
    {"chat-2", 7, 6, 4},
    {"chat-2", 1000, 880, 699},
    {"room:42", 16, 10, 14},
    {"room:42", 65536, 29290, 14117},
    {"122649/0cbdc42bda9d", 1000, 668, 189},
    {"122649/0cbdc42bda9d", 1, 0, 0},
    {"122653/933ee786a160", 65536, 4449, 4879},
    {"122653/933ee786a160", 7, 2, 0},
    {"user:alice", 1, 0, 0},
    {"user:alice", 16, 0, 15},
    {"user:bob", 7, 2, 5},
    {"user:bob", 1000, 211, 63},
    {"чат-42", 16, 15, 9},
    {"чат-42", 65536, 15471, 48689},
    {"群組/7", 1000, 166, 521},
    {"群組/7", 1, 0, 0},
    {"🚀launch", 65536, 45437, 47448},
    {"🚀launch", 7, 1, 3},
    {"a", 1, 0, 0},
    {"a", 16, 12, 12},
    {"Z", 7, 1, 5},
    {"Z", 1000, 125, 478},
    {"tenant-17/thread-9000", 16, 1, 2},
    {"tenant-17/thread-9000", 65536, 22049, 53148},
    {"café", 65536, 20553, 5654},
    {"café", 7, 3, 4},
    {"12345", 1, 0, 0},
    {"12345", 16, 8, 12},
};

TEST(ShardForTest, ModuloMatchesTypeScriptSystem) {
  for (const ShardRow& row : kNodeComputedShards) {
    EXPECT_EQ(ShardFor(row.chat_id, row.partitions, Routing::kModulo), row.modulo_shard)
        << row.chat_id << " over " << row.partitions;
  }
}

TEST(ShardForTest, ModuloIsTheDefault) {
  for (const ShardRow& row : kNodeComputedShards) {
    EXPECT_EQ(ShardFor(row.chat_id, row.partitions), row.modulo_shard) << row.chat_id;
  }
}

TEST(ShardForTest, JumpMatchesIndependentImplementation) {
  for (const ShardRow& row : kNodeComputedShards) {
    EXPECT_EQ(ShardFor(row.chat_id, row.partitions, Routing::kJump), row.jump_shard)
        << row.chat_id << " over " << row.partitions;
  }
}

TEST(ShardForTest, LongestChatIdMatchesNode) {
  // 256 x's, the longest chat id Submit accepts; node computed 917 and 272.
  const std::string id(256, 'x');
  EXPECT_EQ(Fnv1a32(id), 0x46b491c5u);
  EXPECT_EQ(ShardFor(id, 1000, Routing::kModulo), 917u);
  EXPECT_EQ(ShardFor(id, 1000, Routing::kJump), 272u);
}

TEST(ShardForTest, ZeroPartitionsActsAsOne) {
  for (const ShardRow& row : kNodeComputedShards) {
    EXPECT_EQ(ShardFor(row.chat_id, 0, Routing::kModulo), 0u);
    EXPECT_EQ(ShardFor(row.chat_id, 0, Routing::kJump), 0u);
  }
}

TEST(ShardForTest, AlwaysBelowPartitions) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 10000; ++i) {
    std::string id = "chat-";
    id += std::to_string(rng());
    const uint32_t partitions = static_cast<uint32_t>(rng() % 70000) + 1;
    EXPECT_LT(ShardFor(id, partitions, Routing::kModulo), partitions);
    EXPECT_LT(ShardFor(id, partitions, Routing::kJump), partitions);
  }
}

TEST(JumpConsistentHashTest, OneBucketIsAlwaysZero) {
  std::mt19937_64 rng(42);
  EXPECT_EQ(JumpConsistentHash(0, 1), 0u);
  EXPECT_EQ(JumpConsistentHash(std::numeric_limits<uint64_t>::max(), 1), 0u);
  for (int i = 0; i < 100000; ++i) EXPECT_EQ(JumpConsistentHash(rng(), 1), 0u);
}

TEST(JumpConsistentHashTest, KeyZeroStaysInBucketZero) {
  // The first LCG step turns key 0 into 1, whose jump lands at 2^31, past
  // every bucket count up to 2^31: a fixed point worth pinning down.
  for (uint32_t buckets : {1u, 2u, 16u, 1000u, 65536u, 0x80000000u}) {
    EXPECT_EQ(JumpConsistentHash(0, buckets), 0u) << buckets;
  }
}

TEST(JumpConsistentHashTest, HandlesBucketCountsBeyondInt32) {
  // The reference takes int32 buckets; ours takes uint32, so its int64
  // arithmetic must stay in range up to 2^32 - 1 buckets.
  std::mt19937_64 rng(3);
  for (int i = 0; i < 1000; ++i) EXPECT_LT(JumpConsistentHash(rng(), 0xffffffffu), 0xffffffffu);
}

TEST(JumpConsistentHashTest, ZeroBucketsActsAsOne) {
  // Outside the contract (buckets >= 1), but must not return an out-of-range shard.
  EXPECT_EQ(JumpConsistentHash(0x0123456789abcdefull, 0), 0u);
}

// Loads the distinct chat ids of the shared Rust Zulip capture once.
class CaptureRoutingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    chats_ = new std::vector<std::string>();
    load_error_ = new std::string();
    const std::string path = std::string(CHATSHARD_SHARED_DATA) + "/rust_zulip_traffic.jsonl.gz";
    gzFile file = gzopen(path.c_str(), "rb");
    if (file == nullptr) {
      *load_error_ = "cannot open " + path;
      return;
    }
    std::unordered_set<std::string> seen;
    char line[4096];
    size_t line_number = 0;
    while (gzgets(file, line, sizeof(line)) != nullptr) {
      ++line_number;
      const std::string_view text(line);
      std::string chat;
      if (!ExtractChat(text, &chat)) {
        *load_error_ = "no chat id in line ";
        *load_error_ += std::to_string(line_number);
        *load_error_ += ": ";
        *load_error_ += line;
        break;
      }
      if (seen.insert(chat).second) chats_->push_back(std::move(chat));
    }
    int errnum = Z_OK;
    const char* message = gzerror(file, &errnum);
    if (load_error_->empty() && errnum != Z_OK && errnum != Z_STREAM_END) {
      *load_error_ = std::string("zlib: ") + message;
    }
    gzclose(file);
  }

  static void TearDownTestSuite() {
    delete chats_;
    delete load_error_;
    chats_ = nullptr;
    load_error_ = nullptr;
  }

  void SetUp() override {
    // A missing capture is a failure, not a skip: it ships with the repo.
    ASSERT_TRUE(load_error_->empty()) << *load_error_;
    ASSERT_EQ(chats_->size(), 14812u);
  }

  // The value of "chat" in one JSON line. The capture writes plain ids; the
  // simple escapes are handled anyway, \u escapes are refused.
  static bool ExtractChat(std::string_view line, std::string* chat) {
    constexpr std::string_view kKey = "\"chat\":\"";
    const size_t start = line.find(kKey);
    if (start == std::string_view::npos) return false;
    for (size_t i = start + kKey.size(); i < line.size(); ++i) {
      const char c = line[i];
      if (c == '"') return !chat->empty();
      if (c == '\\') {
        if (++i >= line.size()) return false;
        const char escaped = line[i];
        if (escaped != '"' && escaped != '\\' && escaped != '/') return false;
        chat->push_back(escaped);
      } else {
        chat->push_back(c);
      }
    }
    return false;
  }

  static std::vector<uint64_t> Loads(uint32_t partitions, Routing routing) {
    std::vector<uint64_t> loads(partitions, 0);
    for (const std::string& chat : *chats_) ++loads[ShardFor(chat, partitions, routing)];
    return loads;
  }

  static void ExpectEvenSpread(Routing routing) {
    constexpr uint32_t kPartitions = 16;
    const std::vector<uint64_t> loads = Loads(kPartitions, routing);
    const double mean = static_cast<double>(chats_->size()) / kPartitions;
    for (uint32_t shard = 0; shard < kPartitions; ++shard) {
      EXPECT_GE(static_cast<double>(loads[shard]), 0.85 * mean) << "shard " << shard;
      EXPECT_LE(static_cast<double>(loads[shard]), 1.15 * mean) << "shard " << shard;
    }
    const internal::LoadFairness fairness = internal::ComputeLoadFairness(loads);
    EXPECT_GT(fairness.chi2_p, 0.001) << "chi2 " << fairness.chi2;
    EXPECT_LT(fairness.max_over_mean, 1.15);
    EXPECT_GT(fairness.jain, 0.99);
  }

  static double FractionMoved(uint32_t from, uint32_t to, Routing routing) {
    size_t moved = 0;
    for (const std::string& chat : *chats_) {
      if (ShardFor(chat, from, routing) != ShardFor(chat, to, routing)) ++moved;
    }
    return static_cast<double>(moved) / static_cast<double>(chats_->size());
  }

  static std::vector<std::string>* chats_;
  static std::string* load_error_;
};

std::vector<std::string>* CaptureRoutingTest::chats_ = nullptr;
std::string* CaptureRoutingTest::load_error_ = nullptr;

TEST_F(CaptureRoutingTest, ModuloSpreadsRealChatIdsEvenly) { ExpectEvenSpread(Routing::kModulo); }

TEST_F(CaptureRoutingTest, JumpSpreadsRealChatIdsEvenly) { ExpectEvenSpread(Routing::kJump); }

TEST_F(CaptureRoutingTest, SameChatSameShardOnRepeatedCalls) {
  // Routing keeps no state, so two engines with equal options (or a host
  // routing ahead of Submit) agree: every call is a pure function of its input.
  for (Routing routing : {Routing::kModulo, Routing::kJump}) {
    const std::vector<uint64_t> first = Loads(16, routing);
    for (const std::string& chat : *chats_) {
      const uint32_t shard = ShardFor(chat, 16, routing);
      ASSERT_EQ(ShardFor(std::string(chat), 16, routing), shard) << chat;
      ASSERT_EQ(ShardFor(chat, 16, routing), shard) << chat;
    }
    EXPECT_EQ(Loads(16, routing), first);
  }
}

TEST_F(CaptureRoutingTest, ModuloMovesAlmostEveryChatWhenAddingAShard) {
  EXPECT_GT(FractionMoved(16, 17, Routing::kModulo), 0.85);
}

TEST_F(CaptureRoutingTest, JumpMovesAboutOneSeventeenthWhenAddingAShard) {
  const double moved = FractionMoved(16, 17, Routing::kJump);
  EXPECT_GT(moved, 0.5 / 17);
  EXPECT_LT(moved, 1.6 / 17);
}

TEST_F(CaptureRoutingTest, JumpOnlyMovesChatsIntoTheNewShard) {
  for (uint32_t n = 1; n <= 64; ++n) {
    for (const std::string& chat : *chats_) {
      const uint32_t before = ShardFor(chat, n, Routing::kJump);
      const uint32_t after = ShardFor(chat, n + 1, Routing::kJump);
      if (before != after) {
        ASSERT_EQ(after, n) << chat << " from " << n << " to " << n + 1;
      }
    }
  }
}

}  // namespace
}  // namespace chatshard
