// Consumer against a real redis-server: round trip, parking of a hot chat's
// backlog, dead letters, restart of Redis, the trimming of acked entries (and only of acked ones), and the
// memory left behind with and without it.
#include "chatshard/redis/consumer.h"

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
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
using testing::RedisServer;
using testing::TestClient;

constexpr uint32_t kPartitions = 8;

ConnectionOptions Conn(const RedisServer& server, const std::string& prefix) {
  ConnectionOptions c;
  c.address = server.address();
  c.prefix = prefix;
  c.partitions = kPartitions;
  c.reconnect_backoff = milliseconds(10);
  c.reconnect_backoff_max = milliseconds(200);
  return c;
}

Options EngineOptions() {
  Options o;
  o.partitions = kPartitions;
  o.concurrency = 2;
  o.threads = 2;
  o.retry_backoff = std::chrono::microseconds(100);
  o.retry_backoff_max = std::chrono::microseconds(1000);
  return o;
}

bool WaitUntil(const std::function<bool()>& done, milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return done();
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

long long TotalPending(TestClient& client, const std::string& prefix) {
  long long n = 0;
  for (uint32_t s = 0; s < kPartitions; ++s) {
    n += client.Pending(prefix + ":{" + std::to_string(s) + "}:stream", "chatshard");
  }
  return n;
}

long long TotalLen(TestClient& client, const std::string& prefix, const char* kind) {
  long long n = 0;
  for (uint32_t s = 0; s < kPartitions; ++s) {
    n += client.Int({"XLEN", prefix + ":{" + std::to_string(s) + "}:" + kind});
  }
  return n;
}

// Records (seq, stream id) per chat; payloads are "<seq>".
struct Recorder {
  std::mutex mu;
  std::map<std::string, std::vector<int>> seqs;
  std::set<std::string> ids;
  std::atomic<int> handled{0};
  std::atomic<int> duplicates{0};

  Outcome Handle(const StreamMessage& m) {
    std::lock_guard<std::mutex> l(mu);
    // Stream ids are unique per shard stream only.
    if (!ids.insert(std::to_string(m.shard) + "/" + std::string(m.stream_id)).second) {
      duplicates++;
    }
    seqs[std::string(m.chat_id)].push_back(std::stoi(std::string(m.payload)));
    handled++;
    return Outcome::kDone;
  }
};

TEST(RedisConsumerTest, RoundTripProcessesEachMessageOnceInPerChatOrder) {
  RedisServer server;
  const int kChats = 200;
  const int kPerChat = 100;
  const int kN = kChats * kPerChat;
  PublisherOptions po;
  po.connection = Conn(server, "rt");
  po.publish_timeout = milliseconds(10000);
  auto pub = Publisher::Create(po);
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();

  Recorder rec;
  ConsumerOptions co;
  co.connection = po.connection;
  co.claim_timeout = milliseconds(5000);
  auto consumer = Consumer::Create(co, EngineOptions(),
                                   [&](const StreamMessage& m) { return rec.Handle(m); });
  ASSERT_TRUE(consumer.ok()) << consumer.status().ToString();

  const auto start = std::chrono::steady_clock::now();
  std::atomic<int> confirmed{0};
  for (int i = 0; i < kPerChat; ++i) {
    for (int c = 0; c < kChats; ++c) {
      ASSERT_TRUE((*pub)->Publish("chat-" + std::to_string(c), std::to_string(i),
                                  [&](Result<std::string> r) {
                                    if (r.ok()) confirmed++;
                                  })
                      .ok());
    }
  }
  ASSERT_TRUE(WaitUntil([&] { return (*consumer)->Stats().acked == static_cast<uint64_t>(kN); },
                        milliseconds(120000)))
      << (*consumer)->Stats().ToJson();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(confirmed.load(), kN);
  EXPECT_EQ(rec.handled.load(), kN);
  EXPECT_EQ(rec.duplicates.load(), 0);
  ASSERT_EQ(rec.seqs.size(), static_cast<size_t>(kChats));
  for (const auto& [chat, seqs] : rec.seqs) {
    ASSERT_EQ(seqs.size(), static_cast<size_t>(kPerChat)) << chat;
    for (int i = 0; i < kPerChat; ++i) ASSERT_EQ(seqs[i], i) << chat;
  }
  TestClient client(server.port());
  EXPECT_EQ(TotalPending(client, "rt"), 0);
  // Acked entries are trimmed within a trim interval (100 ms; 2 s of slack).
  EXPECT_TRUE(WaitUntil([&] { return TotalLen(client, "rt", "stream") == 0; },
                        milliseconds(2000)))
      << TotalLen(client, "rt", "stream");
  EXPECT_EQ(TotalLen(client, "rt", "dead"), 0);
  EXPECT_TRUE((*consumer)->Close(milliseconds(5000)).ok());
  const RedisStats st = (*consumer)->Stats();
  EXPECT_EQ(st.acked, static_cast<uint64_t>(kN));
  EXPECT_EQ(st.in_flight, 0u);
  EXPECT_EQ((*consumer)->engine().Stats().total.completed, static_cast<uint64_t>(kN));
  const std::string joined = (*consumer)->StatsJson();
  EXPECT_EQ(joined.rfind("{\"engine\":{", 0), 0u) << joined;
  EXPECT_NE(joined.find(",\"redis\":" + st.ToJson() + "}"), std::string::npos) << joined;
  std::printf("[measure] end-to-end publish->handle->ack: %d msgs in %.3f s = %.0f msgs/s; %s\n",
              kN, secs, kN / secs, st.ToJson().c_str());
}

// A hot chat's backlog sits in its shard's stream ahead of the cold chats of
// that shard. Pre-loaded: 1,500 hot entries (0.4 ms each, one at a time),
// then one entry for each of 40 cold chats of the same shard. The window
// (max_in_flight_per_shard 64) would hold only hot entries; with parking
// (max_in_flight_per_chat 8) the reads go past the hot backlog and the cold
// chats run while the hot chat has most of its backlog left. With parking off
// (0) they wait for the backlog: the control that shows the test can fail.
struct HotRun {
  int hot_done_before_last_cold = -1;  // hot entries handled before the last cold one
  uint64_t max_parked = 0;
};

HotRun RunHotBacklog(uint32_t per_chat_limit, const std::string& prefix) {
  RedisServer server;
  const int kHot = 1500;
  const uint32_t hot_shard = ShardFor("hot", kPartitions);
  std::vector<std::string> cold;
  for (int i = 0; cold.size() < 40; ++i) {
    std::string c = "cold-" + std::to_string(i);
    if (ShardFor(c, kPartitions) == hot_shard) cold.push_back(std::move(c));
  }
  PublisherOptions po;
  po.connection = Conn(server, prefix);
  po.publish_timeout = milliseconds(10000);
  auto pub = Publisher::Create(po);
  EXPECT_TRUE(pub.ok()) << pub.status().ToString();
  if (!pub.ok()) return {};
  auto ignore = [](Result<std::string>) {};  // Close below waits for every reply
  for (int i = 0; i < kHot; ++i) EXPECT_TRUE((*pub)->Publish("hot", std::to_string(i), ignore).ok());
  for (const std::string& c : cold) EXPECT_TRUE((*pub)->Publish(c, "0", ignore).ok());
  EXPECT_TRUE((*pub)->Close(milliseconds(10000)).ok());

  Recorder rec;
  std::atomic<int> hot_done{0};
  std::atomic<int> cold_done{0};
  HotRun run;
  ConsumerOptions co;
  co.connection = po.connection;
  co.max_in_flight_per_shard = 64;
  co.max_in_flight_per_chat = per_chat_limit;
  co.claim_interval = milliseconds(50);  // RefreshParked runs too
  Options eo = EngineOptions();
  eo.concurrency = 4;
  eo.threads = 4;
  auto consumer = Consumer::Create(co, eo, [&](const StreamMessage& m) {
    if (m.chat_id == "hot") {
      std::this_thread::sleep_for(std::chrono::microseconds(400));
      hot_done++;
    } else if (++cold_done == static_cast<int>(cold.size())) {
      run.hot_done_before_last_cold = hot_done.load();
    }
    return rec.Handle(m);
  });
  EXPECT_TRUE(consumer.ok()) << consumer.status().ToString();
  if (!consumer.ok()) return {};
  const uint64_t total = kHot + cold.size();
  EXPECT_TRUE(WaitUntil(
      [&] {
        run.max_parked = std::max(run.max_parked, (*consumer)->Stats().parked);
        return (*consumer)->Stats().acked == total;
      },
      milliseconds(60000)))
      << (*consumer)->Stats().ToJson();
  EXPECT_EQ(rec.handled.load(), static_cast<int>(total));
  EXPECT_EQ(rec.duplicates.load(), 0);
  const std::vector<int>& hot = rec.seqs["hot"];
  EXPECT_EQ(hot.size(), static_cast<size_t>(kHot));
  for (size_t i = 0; i < hot.size(); ++i) {
    if (hot[i] != static_cast<int>(i)) {
      ADD_FAILURE() << "hot chat out of order at " << i << ": " << hot[i];
      break;
    }
  }
  TestClient client(server.port());
  EXPECT_EQ(TotalPending(client, prefix), 0);
  EXPECT_TRUE((*consumer)->Close(milliseconds(5000)).ok());
  const RedisStats st = (*consumer)->Stats();
  EXPECT_EQ(st.parked, 0u);
  EXPECT_EQ(st.in_flight, 0u);
  std::printf("[measure] max_in_flight_per_chat %u: %d of %d hot entries ran before the last "
              "cold chat; at most %llu parked\n",
              per_chat_limit, run.hot_done_before_last_cold, kHot,
              static_cast<unsigned long long>(run.max_parked));
  return run;
}

TEST(RedisConsumerTest, ParkingLetsColdChatsPassAHotChatsBacklogInOrder) {
  const HotRun parked = RunHotBacklog(8, "park");
  EXPECT_GE(parked.hot_done_before_last_cold, 0);
  EXPECT_LT(parked.hot_done_before_last_cold, 300);
  EXPECT_GT(parked.max_parked, 1000u);
  const HotRun fifo = RunHotBacklog(0, "fifo");
  EXPECT_GT(fifo.hot_done_before_last_cold, 1300);
  EXPECT_EQ(fifo.max_parked, 0u);
}

TEST(RedisConsumerTest, PoisonMessageLandsInDeadLetterStreamWithReason) {
  RedisServer server;
  PublisherOptions po;
  po.connection = Conn(server, "dl");
  auto pub = Publisher::Create(po);
  ASSERT_TRUE(pub.ok());
  std::atomic<int> poison_runs{0};
  std::atomic<int> good{0};
  ConsumerOptions co;
  co.connection = po.connection;
  Options eo = EngineOptions();
  eo.max_attempts = 3;
  auto consumer = Consumer::Create(co, eo, [&](const StreamMessage& m) {
    if (m.payload == "poison") {
      poison_runs++;
      return Outcome::kRetry;
    }
    if (m.payload == "throws") throw std::runtime_error("handler blew up");
    good++;
    return Outcome::kDone;
  });
  ASSERT_TRUE(consumer.ok()) << consumer.status().ToString();
  Result<std::string> poison_id = (*pub)->Publish("chat-p", "poison").get();
  Result<std::string> throw_id = (*pub)->Publish("chat-t", "throws").get();
  ASSERT_TRUE(poison_id.ok());
  ASSERT_TRUE(throw_id.ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE((*pub)->Publish("chat-p", "fine").get().ok());
  ASSERT_TRUE(WaitUntil([&] { return (*consumer)->Stats().acked == 12; }, milliseconds(20000)))
      << (*consumer)->Stats().ToJson();
  EXPECT_EQ(poison_runs.load(), 3);
  EXPECT_EQ(good.load(), 10);
  EXPECT_EQ((*consumer)->Stats().dead_lettered, 2u);
  TestClient client(server.port());
  EXPECT_EQ(TotalPending(client, "dl"), 0);
  const std::string dead = "dl:{" + std::to_string(ShardFor("chat-p", kPartitions)) + "}:dead";
  testing::TestReply r = client.Run({"XRANGE", dead, "-", "+"});
  ASSERT_GE(r.elements.size(), 1u);
  std::map<std::string, std::string> fields;
  const auto& f = r.elements[0].elements[1].elements;
  for (size_t i = 0; i + 1 < f.size(); i += 2) fields[f[i].str] = f[i + 1].str;
  EXPECT_EQ(fields["id"], *poison_id);
  EXPECT_EQ(fields["c"], "chat-p");
  EXPECT_EQ(fields["p"], "poison");
  EXPECT_EQ(fields["attempts"], "3");
  EXPECT_EQ(fields["reason"], "retry asked on the last attempt (max_attempts reached)");
  const std::string dead_t = "dl:{" + std::to_string(ShardFor("chat-t", kPartitions)) + "}:dead";
  testing::TestReply rt = client.Run({"XRANGE", dead_t, "-", "+"});
  bool found = false;
  for (const auto& e : rt.elements) {
    const auto& ff = e.elements[1].elements;
    for (size_t i = 0; i + 1 < ff.size(); i += 2) {
      if (ff[i].str == "reason" && ff[i + 1].str == "exception: handler blew up") found = true;
    }
  }
  EXPECT_TRUE(found);
  EXPECT_TRUE((*consumer)->Close(milliseconds(5000)).ok());
}

TEST(RedisConsumerTest, RedisRestartMidRunLosesNothingConfirmed) {
  RedisServer server({"--appendfsync", "always"});
  const int kChats = 50;
  const int kPerChat = 200;
  PublisherOptions po;
  po.connection = Conn(server, "rs");
  po.publish_timeout = milliseconds(15000);
  po.max_in_flight = 256;
  auto pub = Publisher::Create(po);
  ASSERT_TRUE(pub.ok());
  Recorder rec;
  ConsumerOptions co;
  co.connection = po.connection;
  co.claim_timeout = milliseconds(500);
  co.claim_interval = milliseconds(200);
  auto consumer = Consumer::Create(co, EngineOptions(), [&](const StreamMessage& m) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
    return rec.Handle(m);
  });
  ASSERT_TRUE(consumer.ok()) << consumer.status().ToString();

  std::mutex mu;
  std::set<std::pair<std::string, int>> confirmed;
  std::atomic<int> answered{0};
  std::atomic<int> failed{0};
  std::thread producer([&] {
    for (int i = 0; i < kPerChat; ++i) {
      for (int c = 0; c < kChats; ++c) {
        const std::string chat = "chat-" + std::to_string(c);
        Status s = (*pub)->Publish(chat, std::to_string(i), [&, chat, i](Result<std::string> r) {
          if (r.ok()) {
            std::lock_guard<std::mutex> l(mu);
            confirmed.emplace(chat, i);
          } else {
            failed++;
          }
          answered++;
        });
        if (!s.ok()) {
          failed++;
          answered++;
        }
      }
      std::this_thread::sleep_for(milliseconds(2));
    }
  });
  ASSERT_TRUE(WaitUntil([&] { return rec.handled.load() > kChats * kPerChat / 4; },
                        milliseconds(60000)));
  server.Kill();
  EXPECT_TRUE(WaitUntil([&] { return !(*consumer)->Ready() && !(*pub)->Ready(); },
                        milliseconds(5000)));
  std::this_thread::sleep_for(milliseconds(300));
  server.Restart();
  producer.join();
  ASSERT_TRUE(WaitUntil([&] { return answered.load() == kChats * kPerChat; },
                        milliseconds(60000)));
  EXPECT_TRUE(WaitUntil([&] { return (*consumer)->Ready() && (*pub)->Ready(); },
                        milliseconds(10000)));
  // Every confirmed message is processed (at least once).
  auto all_processed = [&] {
    std::lock_guard<std::mutex> l1(mu);
    std::lock_guard<std::mutex> l2(rec.mu);
    for (const auto& [chat, seq] : confirmed) {
      auto it = rec.seqs.find(chat);
      if (it == rec.seqs.end()) return false;
      if (std::find(it->second.begin(), it->second.end(), seq) == it->second.end()) return false;
    }
    return true;
  };
  EXPECT_TRUE(WaitUntil(all_processed, milliseconds(60000)));
  TestClient client(server.port());
  EXPECT_TRUE(WaitUntil([&] { return TotalPending(client, "rs") == 0; }, milliseconds(20000)));
  const RedisStats cs = (*consumer)->Stats();
  EXPECT_GE(cs.reconnects, 1u);
  EXPECT_GE((*pub)->Stats().reconnects, 1u);
  std::printf("[measure] redis restart: confirmed %zu, publish failures %d, handled %d "
              "(duplicates %d); consumer %s\n",
              confirmed.size(), failed.load(), rec.handled.load(), rec.duplicates.load(),
              cs.ToJson().c_str());
  EXPECT_TRUE((*consumer)->Close(milliseconds(5000)).ok());
}

TEST(RedisConsumerTest, CloseReturnsByItsDeadlineWhenRedisIsGone) {
  RedisServer server;
  ConsumerOptions co;
  co.connection = Conn(server, "cg");
  co.connection.reconnect_backoff_max = milliseconds(50);
  auto consumer = Consumer::Create(co, EngineOptions(),
                                   [](const StreamMessage&) { return Outcome::kDone; });
  ASSERT_TRUE(consumer.ok());
  ASSERT_TRUE(WaitUntil([&] { return (*consumer)->Ready(); }, milliseconds(5000)));
  server.Kill();
  ASSERT_TRUE(WaitUntil([&] { return !(*consumer)->Ready(); }, milliseconds(5000)));
  const auto start = std::chrono::steady_clock::now();
  Status s = (*consumer)->Close(milliseconds(300));
  EXPECT_LT(std::chrono::steady_clock::now() - start, milliseconds(400));
  (void)s;
}

// Never trims what is not acked: an entry whose handler has not finished
// keeps itself and everything above it in its shard stream, and a second
// consumer group that has read nothing keeps every entry. Once both are
// done, the streams empty.
TEST(RedisConsumerTest, TrimmingKeepsEntriesNotAckedByEveryGroup) {
  RedisServer server;
  TestClient client(server.port());
  PublisherOptions po;
  po.connection = Conn(server, "trim");
  po.publish_timeout = milliseconds(10000);
  auto pub = Publisher::Create(po);
  ASSERT_TRUE(pub.ok());
  const uint32_t slow_shard = ShardFor("slow", kPartitions);
  const std::string slow_key = "trim:{" + std::to_string(slow_shard) + "}:stream";
  const std::string other_key = "trim:{" + std::to_string((slow_shard + 1) % kPartitions) +
                                "}:stream";
  ASSERT_EQ(client.Run({"XGROUP", "CREATE", other_key, "audit", "0", "MKSTREAM"}).str, "OK");
  std::atomic<bool> release{false};
  std::atomic<int> handled{0};
  ConsumerOptions co;
  co.connection = po.connection;
  co.trim_interval = milliseconds(10);
  Options eo = EngineOptions();  // "slow" retries for up to 1000 x 10 ms
  eo.max_attempts = 1000;
  eo.retry_backoff = std::chrono::microseconds(10000);
  eo.retry_backoff_max = std::chrono::microseconds(10000);
  auto consumer = Consumer::Create(co, eo, [&](const StreamMessage& m) {
    if (m.chat_id == "slow" && !release.load()) return Outcome::kRetry;
    handled++;
    return Outcome::kDone;
  });
  ASSERT_TRUE(consumer.ok()) << consumer.status().ToString();
  Result<std::string> slow_id = (*pub)->Publish("slow", "s").get();
  ASSERT_TRUE(slow_id.ok());
  constexpr int kN = 2000;
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE((*pub)->Publish("chat-" + std::to_string(i % 200), "x", [](Result<std::string>) {})
                    .ok());
  }
  ASSERT_TRUE(WaitUntil([&] { return (*consumer)->Stats().acked == kN; }, milliseconds(10000)))
      << (*consumer)->Stats().ToJson() << " handled " << handled.load();
  std::this_thread::sleep_for(milliseconds(300));  // many trim intervals
  const long long slow_len = client.Int({"XLEN", slow_key});
  const long long other_len = client.Int({"XLEN", other_key});
  const testing::TestReply first = client.Run({"XRANGE", slow_key, "-", "+", "COUNT", "1"});
  ASSERT_EQ(first.elements.size(), 1u);
  EXPECT_EQ(first.elements[0].elements[0].str, *slow_id);  // unacked: kept
  EXPECT_GT(slow_len, 1);  // and the acked entries above it
  // The audit group has read nothing: its stream keeps every entry published to it.
  long long published_other = 0;
  for (int i = 0; i < 200; ++i) {
    if (ShardFor("chat-" + std::to_string(i), kPartitions) == (slow_shard + 1) % kPartitions) {
      published_other += kN / 200;
    }
  }
  EXPECT_EQ(other_len, published_other);
  // Other shards (one group, all acked) are empty.
  long long rest = 0;
  for (uint32_t s = 0; s < kPartitions; ++s) {
    if (s == slow_shard || s == (slow_shard + 1) % kPartitions) continue;
    rest += client.Int({"XLEN", "trim:{" + std::to_string(s) + "}:stream"});
  }
  EXPECT_EQ(rest, 0);
  // Release the slow entry, drop the audit group, and ack one more entry on
  // its shard: both streams empty.
  release = true;
  ASSERT_EQ(client.Int({"XGROUP", "DESTROY", other_key, "audit"}), 1);
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE((*pub)->Publish("chat-" + std::to_string(i), "y", [](Result<std::string>) {})
                    .ok());
  }
  EXPECT_TRUE(WaitUntil([&] { return TotalLen(client, "trim", "stream") == 0; },
                        milliseconds(5000)))
      << TotalLen(client, "trim", "stream");
  EXPECT_EQ(handled.load(), kN + 1 + 200);
  EXPECT_EQ(TotalPending(client, "trim"), 0);
  EXPECT_TRUE((*consumer)->Close(milliseconds(5000)).ok());
}

// Measures Redis memory after a run with acked entries trimmed and without.
TEST(RedisConsumerTest, DeletingAckedEntriesKeepsRedisMemoryFlat) {
  long long used[2] = {0, 0};
  long long baseline[2] = {0, 0};
  for (int del = 0; del < 2; ++del) {
    RedisServer server;
    TestClient client(server.port());
    const std::string prefix = del ? "mem-del" : "mem-keep";
    PublisherOptions po;
    po.connection = Conn(server, prefix);
    po.publish_timeout = milliseconds(10000);
    auto pub = Publisher::Create(po);
    ASSERT_TRUE(pub.ok());
    std::atomic<int> handled{0};
    ConsumerOptions co;
    co.connection = po.connection;
    co.delete_acked = del == 1;
    auto consumer = Consumer::Create(co, EngineOptions(), [&](const StreamMessage&) {
      handled++;
      return Outcome::kDone;
    });
    ASSERT_TRUE(consumer.ok());
    baseline[del] = client.UsedMemory();
    constexpr int kN = 100000;
    for (int i = 0; i < kN; ++i) {
      ASSERT_TRUE((*pub)->Publish("chat-" + std::to_string(i % 1000), std::string(100, 'x'),
                                  [](Result<std::string>) {})
                      .ok());
    }
    ASSERT_TRUE(WaitUntil([&] { return (*consumer)->Stats().acked == kN; }, milliseconds(120000)));
    if (del == 1) {  // after a trim interval, nothing acked is left
      EXPECT_TRUE(WaitUntil([&] { return TotalLen(client, prefix, "stream") == 0; },
                            milliseconds(2000)));
    }
    used[del] = client.UsedMemory();
    EXPECT_EQ(TotalPending(client, prefix), 0);
    EXPECT_TRUE((*consumer)->Close(milliseconds(5000)).ok());
  }
  std::printf("[measure] redis used_memory after 100000 msgs of 100 B acked: "
              "keep %lld B (+%lld), trimmed after ack %lld B (+%lld)\n",
              used[0], used[0] - baseline[0], used[1], used[1] - baseline[1]);
  EXPECT_LT(used[1] - baseline[1], (used[0] - baseline[0]) / 4);
}

}  // namespace
}  // namespace chatshard::redis
