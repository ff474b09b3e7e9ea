#include "redis_url.h"

#include <string>

#include "chatshard/redis/options.h"
#include "gtest/gtest.h"

namespace chatshard::cli {
namespace {

RedisUrl Parsed(std::string_view url) {
  Result<RedisUrl> parsed = ParseRedisUrl(url);
  EXPECT_TRUE(parsed.ok()) << url << ": " << parsed.status().ToString();
  return parsed.ok() ? parsed.value() : RedisUrl{};
}

std::string Error(std::string_view url) {
  Result<RedisUrl> parsed = ParseRedisUrl(url);
  EXPECT_FALSE(parsed.ok()) << url << " parsed as " << (parsed.ok() ? parsed->address : "");
  EXPECT_EQ(parsed.status().code(), Status::Code::kInvalidArgument);
  return std::string(parsed.status().message());
}

TEST(RedisUrlTest, ParsesHostAndPort) {
  const RedisUrl url = Parsed("redis://127.0.0.1:6380");
  EXPECT_EQ(url.address, "127.0.0.1:6380");
  EXPECT_EQ(url.username, "");
  EXPECT_EQ(url.password, "");
  EXPECT_EQ(url.database, 0u);
}

TEST(RedisUrlTest, DefaultsThePortTo6379) {
  EXPECT_EQ(Parsed("redis://cache.internal").address, "cache.internal:6379");
  EXPECT_EQ(Parsed("redis://cache.internal/").address, "cache.internal:6379");
}

TEST(RedisUrlTest, TakesTheDatabaseFromThePath) {
  const RedisUrl url = Parsed("redis://localhost:6379/15");
  EXPECT_EQ(url.address, "localhost:6379");
  EXPECT_EQ(url.database, 15u);
}

TEST(RedisUrlTest, TakesUserAndPassword) {
  const RedisUrl url = Parsed("redis://alice:s3cret@10.0.0.5:7000/2");
  EXPECT_EQ(url.address, "10.0.0.5:7000");
  EXPECT_EQ(url.username, "alice");
  EXPECT_EQ(url.password, "s3cret");
  EXPECT_EQ(url.database, 2u);
}

TEST(RedisUrlTest, TakesAPasswordWithoutUserAsLegacyAuth) {
  const RedisUrl url = Parsed("redis://:hunter2@localhost:6379");
  EXPECT_EQ(url.username, "");
  EXPECT_EQ(url.password, "hunter2");
}

TEST(RedisUrlTest, DecodesPercentEscapesAndKeepsRawAtSignsInThePassword) {
  EXPECT_EQ(Parsed("redis://bob:p%40ss%3Aword@h:1").password, "p@ss:word");
  // The user information ends at the last '@'.
  EXPECT_EQ(Parsed("redis://bob:a@b/c@h:1").password, "a@b/c");
  EXPECT_EQ(Parsed("redis://bob:a@b/c@h:1").address, "h:1");
}

TEST(RedisUrlTest, ParsesBracketedIpv6) {
  EXPECT_EQ(Parsed("redis://[::1]:6390/3").address, "[::1]:6390");
  EXPECT_EQ(Parsed("redis://[::1]/3").address, "[::1]:6379");
  EXPECT_EQ(Parsed("redis://[::1]/3").database, 3u);
}

TEST(RedisUrlTest, ParsesUnixSockets) {
  RedisUrl url = Parsed("unix:///run/redis/redis.sock");
  EXPECT_EQ(url.address, "/run/redis/redis.sock");
  EXPECT_EQ(url.database, 0u);
  url = Parsed("unix:///tmp/r.sock?db=4");
  EXPECT_EQ(url.address, "/tmp/r.sock");
  EXPECT_EQ(url.database, 4u);
  url = Parsed("unix://u:pw@/tmp/r.sock");
  EXPECT_EQ(url.address, "/tmp/r.sock");
  EXPECT_EQ(url.username, "u");
  EXPECT_EQ(url.password, "pw");
}

TEST(RedisUrlTest, RefusesMalformedUrlsSayingWhy) {
  EXPECT_NE(Error("127.0.0.1:6379").find("must be redis://"), std::string::npos);
  EXPECT_NE(Error("http://h:1").find("must be redis://"), std::string::npos);
  EXPECT_NE(Error("rediss://h:1").find("TLS"), std::string::npos);
  EXPECT_NE(Error("redis://h:0").find("port must be 1..65535"), std::string::npos);
  EXPECT_NE(Error("redis://h:65536").find("port must be 1..65535"), std::string::npos);
  EXPECT_NE(Error("redis://h:abc").find("port must be 1..65535"), std::string::npos);
  EXPECT_NE(Error("redis://h:").find("port is empty"), std::string::npos);
  EXPECT_NE(Error("redis://:6379").find("host is empty"), std::string::npos);
  EXPECT_NE(Error("redis://h:1/16").find("0..15"), std::string::npos);
  EXPECT_NE(Error("redis://h:1/x").find("0..15"), std::string::npos);
  EXPECT_NE(Error("redis://h:1?db=2").find("no query"), std::string::npos);
  EXPECT_NE(Error("redis://::1:6379").find("brackets"), std::string::npos);
  EXPECT_NE(Error("redis://[::1:6379").find("']'"), std::string::npos);
  EXPECT_NE(Error("redis://u:@h:1").find("password is empty"), std::string::npos);
  EXPECT_NE(Error("redis://u:%zz@h:1").find("percent-encoding"), std::string::npos);
  EXPECT_NE(Error("unix://").find("absolute path"), std::string::npos);
  EXPECT_NE(Error("unix://relative.sock").find("absolute path"), std::string::npos);
  EXPECT_NE(Error("unix:///tmp/r.sock?db=99").find("?db=N"), std::string::npos);
}

TEST(RedisUrlTest, ErrorsNameTheUrlButNeverThePassword) {
  std::string message = Error("redis://alice:topsecret@h:0");
  EXPECT_NE(message.find("'redis://alice:***@h:0'"), std::string::npos) << message;
  EXPECT_EQ(message.find("topsecret"), std::string::npos) << message;
  // A user information without ':' may be a password: hidden whole.
  message = Error("redis://topsecret@h:1");
  EXPECT_EQ(message.find("topsecret"), std::string::npos) << message;
}

TEST(RedisUrlTest, RedactedHidesThePassword) {
  EXPECT_EQ(Parsed("redis://alice:pw@h:1/2").Redacted(), "redis://alice:***@h:1/2");
  EXPECT_EQ(Parsed("redis://:pw@h:1").Redacted(), "redis://:***@h:1");
  EXPECT_EQ(Parsed("redis://h").Redacted(), "redis://h:6379");
  EXPECT_EQ(Parsed("unix:///tmp/r.sock?db=1").Redacted(), "unix:///tmp/r.sock?db=1");
}

TEST(RedisUrlTest, FillsTheAdapterConnectionOptionsWhichThenValidate) {
  redis::ConnectionOptions options;
  options.prefix = "custom";
  Parsed("redis://alice:pw@[::1]:6390/7").ApplyTo(options);
  EXPECT_EQ(options.address, "[::1]:6390");
  EXPECT_EQ(options.username, "alice");
  EXPECT_EQ(options.password, "pw");
  EXPECT_EQ(options.database, 7u);
  EXPECT_EQ(options.prefix, "custom");  // untouched
  EXPECT_TRUE(options.Validate().ok()) << options.Validate().ToString();

  Parsed("unix:///tmp/r.sock").ApplyTo(options);
  EXPECT_TRUE(options.Validate().ok()) << options.Validate().ToString();
}

}  // namespace
}  // namespace chatshard::cli
