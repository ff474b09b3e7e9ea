#include "chatshard/redis/options.h"

#include <string>

#include "gtest/gtest.h"

namespace chatshard::redis {
namespace {

TEST(RedisOptionsTest, DefaultsAreValid) {
  EXPECT_TRUE(PublisherOptions().Validate().ok());
  EXPECT_TRUE(ConsumerOptions().Validate().ok());
}

TEST(RedisOptionsTest, AcceptsUnixSocketAndIpv6Addresses) {
  ConnectionOptions o;
  o.address = "/run/redis/redis.sock";
  EXPECT_TRUE(o.Validate().ok());
  o.address = "[::1]:6380";
  EXPECT_TRUE(o.Validate().ok());
}

TEST(RedisOptionsTest, ReportsEveryBadFieldByName) {
  ConsumerOptions o;
  o.connection.address = "localhost";
  o.connection.username = "app";
  o.connection.database = 16;
  o.connection.connect_timeout = std::chrono::milliseconds(0);
  o.connection.prefix = "a{b}";
  o.connection.partitions = 0;
  o.connection.reconnect_backoff = std::chrono::milliseconds(5000);
  o.read_batch = 0;
  o.claim_timeout = std::chrono::milliseconds(1);
  o.read_block = std::chrono::milliseconds(5000);
  o.group = "";
  o.trim_interval = std::chrono::milliseconds(0);
  const Status s = o.Validate();
  ASSERT_EQ(s.code(), Status::Code::kInvalidArgument);
  const std::string m(s.message());
  for (const char* field :
       {"connection.address = \"localhost\"", "connection.password", "connection.database = 16",
        "connection.connect_timeout = 0 ms", "connection.prefix = \"a{b}\"",
        "connection.partitions = 0", "connection.reconnect_backoff = 5000 ms",
        "read_batch = 0", "claim_timeout = 1 ms", "read_block = 5000 ms", "group = \"\"",
        "trim_interval = 0 ms"}) {
    EXPECT_NE(m.find(field), std::string::npos) << field << "\n" << m;
  }
}

TEST(RedisOptionsTest, RejectsBadPortAndPublisherBounds) {
  PublisherOptions o;
  o.connection.address = "127.0.0.1:70000";
  o.max_in_flight = 0;
  o.max_payload_bytes = 0;
  const std::string m(o.Validate().message());
  EXPECT_NE(m.find("connection.address = \"127.0.0.1:70000\""), std::string::npos) << m;
  EXPECT_NE(m.find("max_in_flight = 0"), std::string::npos) << m;
  EXPECT_NE(m.find("max_payload_bytes = 0"), std::string::npos) << m;
}

}  // namespace
}  // namespace chatshard::redis
