#include "chat_table.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "chatshard/routing.h"

namespace chatshard::internal {
namespace {

struct Entry {
  std::string chat;
  uint32_t hash = 0;
  bool keep = true;
};

std::unique_ptr<Entry> Make(const std::string& chat, uint32_t hash) {
  auto e = std::make_unique<Entry>();
  e->chat = chat;
  e->hash = hash;
  return e;
}

TEST(ChatTableTest, FindsWhatWasInsertedAndNothingElse) {
  ChatTable<Entry> table;
  std::vector<std::unique_ptr<Entry>> entries;
  for (int i = 0; i < 5000; ++i) {  // grows well past the initial 64 slots
    const std::string chat = "chat-" + std::to_string(i);
    entries.push_back(Make(chat, Fnv1a32(chat)));
    table.Insert(entries.back().get());
  }
  EXPECT_EQ(table.size(), 5000u);
  for (const auto& e : entries) ASSERT_EQ(table.Find(e->chat, e->hash), e.get()) << e->chat;
  EXPECT_EQ(table.Find("chat-5000", Fnv1a32("chat-5000")), nullptr);
}

TEST(ChatTableTest, EqualHashesAreToldApartByTheId) {
  // Chats of one shard share hash % partitions; here they share the whole
  // hash, the worst case.
  ChatTable<Entry> table;
  std::vector<std::unique_ptr<Entry>> entries;
  for (int i = 0; i < 100; ++i) {
    entries.push_back(Make("same-hash-" + std::to_string(i), 0xdeadbeefu));
    table.Insert(entries.back().get());
  }
  for (const auto& e : entries) ASSERT_EQ(table.Find(e->chat, 0xdeadbeefu), e.get());
  EXPECT_EQ(table.Find("same-hash-100", 0xdeadbeefu), nullptr);
  EXPECT_EQ(table.Find("same-hash-1", 0xdeadbeeeu), nullptr);
}

TEST(ChatTableTest, SharedLowBitsStillSpread) {
  // Every hash is 5 mod 16, as for the chats of shard 5 of 16.
  ChatTable<Entry> table;
  std::vector<std::unique_ptr<Entry>> entries;
  for (uint32_t i = 0; i < 2000; ++i) {
    entries.push_back(Make("c" + std::to_string(i), i * 16 + 5));
    table.Insert(entries.back().get());
  }
  for (const auto& e : entries) ASSERT_EQ(table.Find(e->chat, e->hash), e.get());
}

TEST(ChatTableTest, RebuildKeepsExactlyTheSelectedValues) {
  ChatTable<Entry> table;
  std::vector<std::unique_ptr<Entry>> entries;
  for (int i = 0; i < 3000; ++i) {
    const std::string chat = std::to_string(i);
    entries.push_back(Make(chat, Fnv1a32(chat)));
    entries.back()->keep = i % 3 == 0;
    table.Insert(entries.back().get());
  }
  std::set<const Entry*> dropped;
  table.Rebuild([&](Entry* e) {
    if (!e->keep) dropped.insert(e);
    return e->keep;
  });
  EXPECT_EQ(table.size(), 1000u);
  EXPECT_EQ(dropped.size(), 2000u);
  for (const auto& e : entries) {
    ASSERT_EQ(table.Find(e->chat, e->hash), e->keep ? e.get() : nullptr) << e->chat;
  }
  size_t visited = 0;
  table.ForEach([&](Entry* e) {
    EXPECT_TRUE(e->keep);
    ++visited;
  });
  EXPECT_EQ(visited, 1000u);
  // Inserting after a rebuild still works.
  entries.push_back(Make("late", Fnv1a32("late")));
  table.Insert(entries.back().get());
  EXPECT_EQ(table.Find("late", Fnv1a32("late")), entries.back().get());
}

}  // namespace
}  // namespace chatshard::internal
