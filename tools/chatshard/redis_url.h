// ParseRedisUrl: the one parser of the --redis flag of `chatshard serve`,
// `produce` and `replay --redis`. It turns a URL into the connection fields
// of the Redis adapter's options (chatshard/redis/options.h).
//
// Accepted forms:
//   redis://[[user]:password@]host[:port][/db]     port defaults to 6379, db to 0
//   redis://[user:password@][v6addr]:port[/db]     IPv6 in brackets
//   unix://[[user]:password@]/path/of.sock[?db=N]  a unix socket
// user and password may be percent-encoded (%40 for '@', %3A for ':');
// `redis://:secret@host:6379` is the legacy `AUTH secret` form. db is 0..15.
// rediss:// (TLS) is refused: hiredis 0.14.1 has no TLS, see options.h.
//
// Thread safety: pure functions on values.
#ifndef CHATSHARD_TOOLS_CHATSHARD_REDIS_URL_H_
#define CHATSHARD_TOOLS_CHATSHARD_REDIS_URL_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "chatshard/redis/options.h"
#include "chatshard/status.h"

namespace chatshard::cli {

// The connection fields a URL names; the others keep their defaults.
struct RedisUrl {
  // As redis::ConnectionOptions::address: "host:port", "[v6]:port" or "/path".
  std::string address;
  std::string username;  // empty: legacy AUTH <password>
  std::string password;  // empty: no AUTH
  uint32_t database = 0;

  // Copies the fields above into `options`; leaves the rest alone.
  void ApplyTo(redis::ConnectionOptions& options) const;
  // The URL with the password replaced by "***", for logs and errors:
  // "redis://user:***@host:6379/2", "unix:///run/redis.sock?db=1".
  std::string Redacted() const;
};

// InvalidArgument naming the URL (password redacted) and what is wrong, for
// example "'redis://h:0': the port must be 1..65535".
Result<RedisUrl> ParseRedisUrl(std::string_view url);

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_REDIS_URL_H_
