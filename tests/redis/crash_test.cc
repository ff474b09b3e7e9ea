// kill -9 of a consumer process mid-run, then a new consumer process: every
// message is processed, duplicates are only entries in flight at the kill
// (reported with their stream ids), and per-chat order holds across the two.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "chatshard/redis/publisher.h"
#include "chatshard/routing.h"
#include "gtest/gtest.h"
#include "redis_server.h"

namespace chatshard::redis {
namespace {

using std::chrono::milliseconds;

struct Line {
  std::string chat;
  int seq = 0;
  std::string id;
};

std::vector<Line> ReadLog(const std::string& path) {
  std::vector<Line> out;
  std::ifstream in(path);
  std::string text;
  while (std::getline(in, text)) {
    std::istringstream ss(text);
    Line l;
    if (ss >> l.chat >> l.seq >> l.id) out.push_back(l);
  }
  return out;
}

pid_t Spawn(const std::string& address, const std::string& name, const std::string& log,
            const std::string& poison = "", int max_deliveries = 0) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const std::string limit = std::to_string(max_deliveries);
    if (poison.empty()) {
      ::execl(CHATSHARD_CRASH_CONSUMER, CHATSHARD_CRASH_CONSUMER, address.c_str(), "crash",
              name.c_str(), log.c_str(), "500", static_cast<char*>(nullptr));
    } else {
      ::execl(CHATSHARD_CRASH_CONSUMER, CHATSHARD_CRASH_CONSUMER, address.c_str(), "crash",
              name.c_str(), log.c_str(), "500", poison.c_str(), limit.c_str(),
              static_cast<char*>(nullptr));
    }
    ::_exit(127);
  }
  return pid;
}

// Publishes `per_chat` messages "0".."per_chat-1" to each chat, round-robin.
void PublishAll(const testing::RedisServer& server, const std::vector<std::string>& chats,
                int per_chat) {
  PublisherOptions po;
  po.connection.address = server.address();
  po.connection.prefix = "crash";
  po.connection.partitions = 8;
  po.publish_timeout = milliseconds(10000);
  auto pub = Publisher::Create(po);
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  std::atomic<int> confirmed{0};
  for (int i = 0; i < per_chat; ++i) {
    for (const std::string& chat : chats) {
      ASSERT_TRUE((*pub)->Publish(chat, std::to_string(i),
                                  [&](Result<std::string> r) {
                                    if (r.ok()) confirmed++;
                                  })
                      .ok());
    }
  }
  ASSERT_TRUE((*pub)->Close(milliseconds(20000)).ok());
  ASSERT_EQ(confirmed.load(), static_cast<int>(chats.size()) * per_chat);
}

void KillNine(pid_t pid) {
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
}

TEST(RedisCrashTest, KilledConsumerIsReplacedWithoutLossAndInPerChatOrder) {
  testing::RedisServer server;
  const int kChats = 40;
  const int kPerChat = 150;
  const int kN = kChats * kPerChat;
  std::vector<std::string> chats;
  for (int c = 0; c < kChats; ++c) chats.push_back("chat-" + std::to_string(c));
  PublishAll(server, chats, kPerChat);

  const std::string log_a = server.dir() + "/a.log";
  const std::string log_b = server.dir() + "/b.log";
  const pid_t a = Spawn(server.address(), "consumer-a", log_a);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (ReadLog(log_a).size() < static_cast<size_t>(kN / 3) &&
         std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  KillNine(a);
  const std::vector<Line> first = ReadLog(log_a);
  ASSERT_GE(first.size(), static_cast<size_t>(kN / 3));
  ASSERT_LT(first.size(), static_cast<size_t>(kN));

  const pid_t b = Spawn(server.address(), "consumer-b", log_b);
  testing::TestClient client(server.port());
  auto distinct = [&] {
    std::set<std::pair<std::string, int>> seen;
    for (const Line& l : first) seen.emplace(l.chat, l.seq);
    for (const Line& l : ReadLog(log_b)) seen.emplace(l.chat, l.seq);
    return seen.size();
  };
  auto pending = [&] {
    long long n = 0;
    for (int s = 0; s < 8; ++s) {
      n += client.Pending("crash:{" + std::to_string(s) + "}:stream", "chatshard");
    }
    return n;
  };
  const auto until_b = std::chrono::steady_clock::now() + std::chrono::seconds(90);
  while ((distinct() < static_cast<size_t>(kN) || pending() != 0) &&
         std::chrono::steady_clock::now() < until_b) {
    std::this_thread::sleep_for(milliseconds(20));
  }
  KillNine(b);
  const std::vector<Line> second = ReadLog(log_b);
  EXPECT_EQ(distinct(), static_cast<size_t>(kN));
  EXPECT_EQ(pending(), 0);

  // Per chat: A handled a prefix 0..a-1 in order; B continues in order from
  // some point <= a; the overlap is the duplicates.
  std::map<std::string, std::vector<Line>> by_chat_a;
  std::map<std::string, std::vector<Line>> by_chat_b;
  for (const Line& l : first) by_chat_a[l.chat].push_back(l);
  for (const Line& l : second) by_chat_b[l.chat].push_back(l);
  std::map<std::pair<std::string, int>, std::string> id_of;
  for (const Line& l : first) id_of[{l.chat, l.seq}] = l.id;
  int duplicates = 0;
  std::string dup_ids;
  for (int c = 0; c < kChats; ++c) {
    const std::string chat = "chat-" + std::to_string(c);
    const auto& la = by_chat_a[chat];
    const auto& lb = by_chat_b[chat];
    for (size_t i = 0; i < la.size(); ++i) ASSERT_EQ(la[i].seq, static_cast<int>(i)) << chat;
    const int next = lb.empty() ? kPerChat : lb.front().seq;
    EXPECT_LE(next, static_cast<int>(la.size())) << chat;
    int chat_duplicates = 0;
    for (size_t i = 0; i < lb.size(); ++i) {
      ASSERT_EQ(lb[i].seq, next + static_cast<int>(i)) << chat << " order broken in B";
      auto it = id_of.find({chat, lb[i].seq});
      if (it != id_of.end()) {
        ++chat_duplicates;
        EXPECT_EQ(it->second, lb[i].id) << "a duplicate must carry the same stream id";
        dup_ids += lb[i].id + " ";
      }
    }
    duplicates += chat_duplicates;
    // Every message of the chat ran, the duplicates once more.
    EXPECT_EQ(static_cast<int>(la.size() + lb.size()) - chat_duplicates, kPerChat) << chat;
  }
  // In flight at the kill: at most the window of each shard (64 x 8).
  EXPECT_LE(duplicates, 64 * 8);
  EXPECT_EQ(first.size() + second.size() - duplicates, static_cast<size_t>(kN));
  std::printf("[measure] kill -9: A handled %zu, B handled %zu, duplicates %d (ids: %.200s)\n",
              first.size(), second.size(), duplicates, dup_ids.c_str());
}

// A message that kills every process that handles it: each restart takes it
// back from the pending list (and runs it, and dies) until Redis' delivery
// counter reaches max_deliveries; the next restart dead-letters it with the
// count and reason, and everything else is handled.
TEST(RedisCrashTest, MessageThatKillsEveryConsumerIsDeadLetteredAfterMaxDeliveries) {
  testing::RedisServer server;
  // The other chats live on other shards than "poison" (shard 1 of 8), and
  // the poison handler waits 300 ms before it kills the process, so they are
  // handled and acked first: an entry still in flight at each crash would
  // count deliveries too (see ConsumerOptions::max_deliveries) and be
  // dead-lettered with it.
  const std::vector<std::string> chats = {"poison", "chat-b", "chat-c", "chat-d"};
  const int kPerChat = 1;
  PublishAll(server, chats, kPerChat);
  const int kMaxDeliveries = 3;
  const std::string log = server.dir() + "/poison.log";
  testing::TestClient client(server.port());
  const uint32_t shard = ShardFor("poison", 8);
  for (const std::string& chat : chats) {
    if (chat != "poison") {
      ASSERT_NE(ShardFor(chat, 8), shard) << chat;
    }
  }
  const std::string dead_key = "crash:{" + std::to_string(shard) + "}:dead";
  int deaths = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (client.Int({"XLEN", dead_key}) == 0 && std::chrono::steady_clock::now() < until) {
    const pid_t pid = Spawn(server.address(), "consumer-p", log, "poison", kMaxDeliveries);
    // Until it dies by the poison, or the dead letter appears.
    int status = 0;
    pid_t done = 0;
    while ((done = ::waitpid(pid, &status, WNOHANG)) == 0 && client.Int({"XLEN", dead_key}) == 0 &&
           std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(milliseconds(10));
    }
    if (done == pid) {
      ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << status;
      ++deaths;
    } else {
      // Wait for the ack of the dead-lettered entry and the other chats.
      const auto settle = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (client.Pending("crash:{" + std::to_string(shard) + "}:stream", "chatshard") > 0 &&
             std::chrono::steady_clock::now() < settle) {
        std::this_thread::sleep_for(milliseconds(10));
      }
      KillNine(pid);
    }
  }
  EXPECT_EQ(deaths, kMaxDeliveries);
  const testing::TestReply dead = client.Run({"XRANGE", dead_key, "-", "+"});
  ASSERT_EQ(dead.elements.size(), 1u);
  std::map<std::string, std::string> fields;
  const auto& kv = dead.elements[0].elements[1].elements;
  for (size_t i = 0; i + 1 < kv.size(); i += 2) fields[kv[i].str] = kv[i + 1].str;
  EXPECT_EQ(fields["c"], "poison");
  EXPECT_EQ(fields["attempts"], std::to_string(kMaxDeliveries));
  EXPECT_NE(fields["reason"].find("delivered 3 times without an ack (max_deliveries)"),
            std::string::npos)
      << fields["reason"];
  EXPECT_EQ(client.Pending("crash:{" + std::to_string(shard) + "}:stream", "chatshard"), 0);
  std::set<std::string> handled;
  for (const Line& l : ReadLog(log)) handled.insert(l.chat);
  EXPECT_EQ(handled, (std::set<std::string>{"chat-b", "chat-c", "chat-d"}));
}

}  // namespace
}  // namespace chatshard::redis
