// Publisher and start-up checks against a real redis-server.
#include "chatshard/redis/publisher.h"

#include <chrono>
#include <future>
#include <string>
#include <vector>

#include "chatshard/redis/consumer.h"
#include "gtest/gtest.h"
#include "redis_server.h"

namespace chatshard::redis {
namespace {

using std::chrono::milliseconds;
using testing::RedisServer;
using testing::TestClient;

PublisherOptions PubOptions(const RedisServer& server, const std::string& prefix,
                            uint32_t partitions = 4) {
  PublisherOptions o;
  o.connection.address = server.address();
  o.connection.prefix = prefix;
  o.connection.partitions = partitions;
  return o;
}

TEST(RedisPublisherTest, PublishesToTheChatsShardStream) {
  RedisServer server;
  auto pub = Publisher::Create(PubOptions(server, "pub"));
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  EXPECT_TRUE((*pub)->Ready());
  std::future<Result<std::string>> f = (*pub)->Publish("chat-7", "hello");
  Result<std::string> id = f.get();
  ASSERT_TRUE(id.ok()) << id.status().ToString();
  const uint32_t shard = ShardFor("chat-7", 4);
  TestClient client(server.port());
  testing::TestReply r =
      client.Run({"XRANGE", "pub:{" + std::to_string(shard) + "}:stream", "-", "+"});
  ASSERT_EQ(r.elements.size(), 1u);
  EXPECT_EQ(r.elements[0].elements[0].str, *id);
  const auto& fields = r.elements[0].elements[1].elements;
  ASSERT_EQ(fields.size(), 4u);
  EXPECT_EQ(fields[1].str, "chat-7");
  EXPECT_EQ(fields[3].str, "hello");
  EXPECT_EQ(client.Run({"HGET", "pub:meta", "partitions"}).str, "4");
  EXPECT_TRUE((*pub)->Close(milliseconds(2000)).ok());
  EXPECT_EQ((*pub)->Stats().published, 1u);
}

TEST(RedisPublisherTest, ManyPipelinedPublishesAreAllConfirmed) {
  RedisServer server;
  PublisherOptions o = PubOptions(server, "many");
  o.publish_timeout = milliseconds(10000);  // wait for room in the window
  auto pub = Publisher::Create(o);
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  constexpr int kN = 50000;
  std::atomic<int> ok{0};
  std::atomic<int> bad{0};
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kN; ++i) {
    Status s = (*pub)->Publish("chat-" + std::to_string(i % 100), std::string(100, 'x'),
                               [&](Result<std::string> r) { (r.ok() ? ok : bad)++; });
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  ASSERT_TRUE((*pub)->Close(milliseconds(30000)).ok());
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(ok.load(), kN);
  EXPECT_EQ(bad.load(), 0);
  TestClient client(server.port());
  long long total = 0;
  for (int s = 0; s < 4; ++s) total += client.Int({"XLEN", "many:{" + std::to_string(s) + "}:stream"});
  EXPECT_EQ(total, kN);
  const RedisStats st = (*pub)->Stats();
  EXPECT_EQ(st.published, static_cast<uint64_t>(kN));
  EXPECT_LT(st.round_trips, static_cast<uint64_t>(kN));  // pipelined
  std::printf("[measure] pipelined publish: %d msgs in %.3f s = %.0f msgs/s, %llu round trips\n",
              kN, secs, kN / secs, static_cast<unsigned long long>(st.round_trips));
}

TEST(RedisPublisherTest, FullWindowRejectsClearlyWhenNotWaiting) {
  RedisServer server;
  PublisherOptions o = PubOptions(server, "win");
  o.max_in_flight = 1;
  auto pub = Publisher::Create(o);
  ASSERT_TRUE(pub.ok());
  int rejected = 0;
  std::vector<std::future<Result<std::string>>> fs;
  for (int i = 0; i < 2000; ++i) {
    fs.push_back((*pub)->Publish("c", "p"));
  }
  for (auto& f : fs) {
    Result<std::string> r = f.get();
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), Status::Code::kUnavailable);
      EXPECT_NE(r.status().message().find("max_in_flight = 1"), std::string::npos);
      ++rejected;
    }
  }
  EXPECT_GT(rejected, 0);
}

TEST(RedisPublisherTest, WaitsForRoomWithinPublishTimeout) {
  RedisServer server;
  PublisherOptions o = PubOptions(server, "wait");
  o.max_in_flight = 4;
  o.publish_timeout = milliseconds(5000);
  auto pub = Publisher::Create(o);
  ASSERT_TRUE(pub.ok());
  std::vector<std::future<Result<std::string>>> fs;
  for (int i = 0; i < 3000; ++i) fs.push_back((*pub)->Publish("c", std::to_string(i)));
  for (auto& f : fs) EXPECT_TRUE(f.get().ok());
}

TEST(RedisPublisherTest, OversizedPayloadIsRefusedAndNothingIsWritten) {
  RedisServer server;
  PublisherOptions o = PubOptions(server, "big");
  o.max_payload_bytes = 1024;
  auto pub = Publisher::Create(o);
  ASSERT_TRUE(pub.ok());
  Status s = (*pub)->Publish("c", std::string(1025, 'x'), [](Result<std::string>) {});
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_NE(s.message().find("max_payload_bytes = 1024"), std::string::npos) << s.ToString();
  Status empty_chat = (*pub)->Publish("", "x", [](Result<std::string>) {});
  EXPECT_EQ(empty_chat.code(), Status::Code::kInvalidArgument);
  EXPECT_TRUE((*pub)->Publish("c", std::string(1024, 'x')).get().ok());
  TestClient client(server.port());
  EXPECT_EQ(client.Int({"XLEN", "big:{" + std::to_string(ShardFor("c", 4)) + "}:stream"}), 1);
}

TEST(RedisStartupTest, WrongPasswordIsAClearError) {
  RedisServer server({"--requirepass", "s3cret"});
  PublisherOptions o = PubOptions(server, "auth");
  o.connection.password = "wrong";
  auto pub = Publisher::Create(o);
  ASSERT_FALSE(pub.ok());
  EXPECT_EQ(pub.status().code(), Status::Code::kInvalidArgument);
  EXPECT_NE(pub.status().message().find("AUTH"), std::string::npos) << pub.status().ToString();
  EXPECT_NE(pub.status().message().find("connection.password"), std::string::npos);

  o.connection.password = "";
  auto none = Publisher::Create(o);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("requires a password"), std::string::npos)
      << none.status().ToString();

  o.connection.password = "s3cret";
  auto good = Publisher::Create(o);
  EXPECT_TRUE(good.ok()) << good.status().ToString();
}

TEST(RedisStartupTest, AclUserAndPasswordAuthenticate) {
  RedisServer server;
  TestClient client(server.port());
  ASSERT_EQ(client.Run({"ACL", "SETUSER", "app", "on", ">apppass", "~*", "+@all"}).str, "OK");
  PublisherOptions o = PubOptions(server, "acl");
  o.connection.username = "app";
  o.connection.password = "apppass";
  auto pub = Publisher::Create(o);
  ASSERT_TRUE(pub.ok()) << pub.status().ToString();
  EXPECT_TRUE((*pub)->Publish("c", "p").get().ok());
  o.connection.password = "nope";
  auto bad = Publisher::Create(o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("user \"app\""), std::string::npos)
      << bad.status().ToString();
}

TEST(RedisStartupTest, PartitionCountMismatchIsRefused) {
  RedisServer server;
  auto first = Publisher::Create(PubOptions(server, "parts", 8));
  ASSERT_TRUE(first.ok());
  auto second = Publisher::Create(PubOptions(server, "parts", 4));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), Status::Code::kFailedPrecondition);
  const std::string m(second.status().message());
  EXPECT_NE(m.find("holds partitions = 8"), std::string::npos) << m;
  EXPECT_NE(m.find("configured with partitions = 4"), std::string::npos) << m;

  ConsumerOptions co;
  co.connection = PubOptions(server, "parts", 4).connection;
  Options eo;
  eo.partitions = 4;
  auto consumer = Consumer::Create(co, eo, [](const StreamMessage&) { return Outcome::kDone; });
  ASSERT_FALSE(consumer.ok());
  EXPECT_NE(consumer.status().message().find("holds partitions = 8"), std::string::npos);
  TestClient client(server.port());
  EXPECT_EQ(client.Run({"HGET", "parts:meta", "partitions"}).str, "8");
}

TEST(RedisStartupTest, NonStreamKeyInTheWayIsRefused) {
  RedisServer server;
  TestClient client(server.port());
  client.Run({"SET", "wt:{3}:stream", "not a stream"});
  auto pub = Publisher::Create(PubOptions(server, "wt"));
  ASSERT_FALSE(pub.ok());
  EXPECT_EQ(pub.status().code(), Status::Code::kFailedPrecondition);
  EXPECT_NE(pub.status().message().find("wt:{3}:stream"), std::string::npos)
      << pub.status().ToString();
  EXPECT_NE(pub.status().message().find("WRONGTYPE"), std::string::npos);

  ConsumerOptions co;
  co.connection = PubOptions(server, "wt").connection;
  Options eo;
  eo.partitions = 4;
  auto consumer = Consumer::Create(co, eo, [](const StreamMessage&) { return Outcome::kDone; });
  ASSERT_FALSE(consumer.ok());
  EXPECT_NE(consumer.status().message().find("wt:{3}:stream"), std::string::npos)
      << consumer.status().ToString();
  EXPECT_EQ(client.Run({"GET", "wt:{3}:stream"}).str, "not a stream");  // untouched

  client.Run({"SET", "wm:meta", "x"});
  auto meta = Publisher::Create(PubOptions(server, "wm"));
  ASSERT_FALSE(meta.ok());
  EXPECT_NE(meta.status().message().find("wm:meta"), std::string::npos)
      << meta.status().ToString();
}

TEST(RedisStartupTest, UnreachableRedisFailsInBoundedTime) {
  PublisherOptions o;
  o.connection.address = "127.0.0.1:" + std::to_string(testing::FreePort());
  o.connection.connect_timeout = milliseconds(500);
  const auto start = std::chrono::steady_clock::now();
  auto pub = Publisher::Create(o);
  ASSERT_FALSE(pub.ok());
  EXPECT_EQ(pub.status().code(), Status::Code::kUnavailable);
  EXPECT_NE(pub.status().message().find(o.connection.address), std::string::npos)
      << pub.status().ToString();
  ConsumerOptions co;
  co.connection = o.connection;
  Options eo;
  eo.partitions = co.connection.partitions;
  auto consumer = Consumer::Create(co, eo, [](const StreamMessage&) { return Outcome::kDone; });
  ASSERT_FALSE(consumer.ok());
  EXPECT_EQ(consumer.status().code(), Status::Code::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

TEST(RedisStartupTest, CloseReturnsByItsDeadlineWhenRedisIsGone) {
  RedisServer server;
  PublisherOptions o = PubOptions(server, "gone");
  o.publish_timeout = milliseconds(10000);
  auto pub = Publisher::Create(o);
  ASSERT_TRUE(pub.ok());
  ASSERT_TRUE((*pub)->Publish("c", "before").get().ok());
  server.Kill();
  std::vector<std::future<Result<std::string>>> fs;
  for (int i = 0; i < 10; ++i) fs.push_back((*pub)->Publish("c", "during"));
  const auto start = std::chrono::steady_clock::now();
  Status s = (*pub)->Close(milliseconds(300));
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_LT(took, milliseconds(400));
  EXPECT_FALSE((*pub)->Ready());
  for (auto& f : fs) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
    Result<std::string> r = f.get();
    EXPECT_FALSE(r.ok());
  }
  (void)s;
}

}  // namespace
}  // namespace chatshard::redis
