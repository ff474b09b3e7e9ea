// Connection: one hiredis context with the adapter's error handling. Not
// thread-safe: owned and used by one I/O thread (hiredis contexts are not
// thread-safe); only InterruptFromOtherThread() may be called elsewhere.
#ifndef CHATSHARD_REDIS_SRC_CONNECTION_H_
#define CHATSHARD_REDIS_SRC_CONNECTION_H_

#include <hiredis/hiredis.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "chatshard/options.h"
#include "chatshard/redis/options.h"
#include "chatshard/status.h"

namespace chatshard::redis::internal {

// Replies read by a Connection are built in one arena each (connection.cc);
// FreeReply, not freeReplyObject, releases them.
void FreeReply(redisReply* reply);
struct ReplyDeleter {
  void operator()(redisReply* reply) const { FreeReply(reply); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

// Where to connect, parsed from ConnectionOptions::address.
struct Endpoint {
  bool unix_socket = false;
  std::string host;  // or the socket path
  int port = 0;
};
Result<Endpoint> ParseAddress(std::string_view address);

// A guard for the socket of the current connection so that another thread
// can interrupt a blocked call (Close at its deadline).
class SocketSlot {
 public:
  void Set(int fd) {
    std::lock_guard<std::mutex> l(mu_);
    fd_ = fd;
  }
  // shutdown(2) the socket, which makes a blocked send/recv return at once.
  void Interrupt();

 private:
  std::mutex mu_;
  int fd_ = -1;
};

// Capped exponential reconnect backoff, shared by the publisher's and the
// consumer's I/O threads: Next() returns the wait before the next attempt and
// doubles it up to the cap; Reset() after a successful connect.
class ReconnectBackoff {
 public:
  explicit ReconnectBackoff(const ConnectionOptions& o)
      : first_(o.reconnect_backoff), max_(o.reconnect_backoff_max), next_(first_) {}
  std::chrono::milliseconds Next() {
    const std::chrono::milliseconds wait = next_;
    next_ = std::min(next_ * 2, max_);
    return wait;
  }
  void Reset() { next_ = first_; }

 private:
  const std::chrono::milliseconds first_;
  const std::chrono::milliseconds max_;
  std::chrono::milliseconds next_;
};

class Connection {
 public:
  // Connects within `connect_timeout`, sets the command timeout, sends AUTH
  // and SELECT, and PINGs. Errors name the address and what failed.
  static Result<std::unique_ptr<Connection>> Open(const ConnectionOptions& options,
                                                  std::chrono::milliseconds connect_timeout,
                                                  SocketSlot* slot);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Queues one command in the output buffer (written by the next Read). The
  // arguments are copied; they need not outlive the call.
  void Append(std::span<const std::string_view> args);
  void Append(std::initializer_list<std::string_view> args) {
    Append(std::span<const std::string_view>(args.begin(), args.size()));
  }
  // Writes what is buffered and reads one reply. An I/O error (timeout,
  // closed socket, protocol error) breaks the connection for good.
  Result<Reply> Read();
  // Append + Read.
  Result<Reply> Run(std::span<const std::string_view> args);
  Result<Reply> Run(std::initializer_list<std::string_view> args) {
    return Run(std::span<const std::string_view>(args.begin(), args.size()));
  }
  bool broken() const { return broken_; }
  const std::string& address() const { return address_; }

 private:
  Connection(redisContext* context, std::string address, SocketSlot* slot);
  Status IoError(std::string_view what);
  // "<kind><n>\r\n" onto command_.
  void AppendRespHeader(char kind, size_t n);

  redisContext* context_;
  std::string address_;
  SocketSlot* slot_;
  bool broken_ = false;
  std::string command_;  // the RESP being formatted, reused across commands
};

// Error replies as Status; nullptr-safe. `what` names the command and key.
Status ReplyErrorStatus(const redisReply* reply, std::string_view what);
bool IsError(const redisReply* reply);
std::string_view ReplyString(const redisReply* reply);

// Stream entry id "ms-seq" as a comparable pair; {0,0} if malformed.
struct StreamId {
  uint64_t ms = 0;
  uint64_t seq = 0;
  friend auto operator<=>(const StreamId&, const StreamId&) = default;
};
StreamId ParseStreamId(std::string_view id);
// "ms-seq" appended to `out`.
void AppendStreamId(const StreamId& id, std::string& out);
struct StreamIdHash {
  size_t operator()(const StreamId& id) const {
    return std::hash<uint64_t>()(id.ms * 0x9e3779b97f4a7c15ull ^ id.seq);
  }
};

// Key names; the "{<shard>}" hash tag keeps a shard's keys in one cluster slot.
std::string StreamKey(std::string_view prefix, uint32_t shard);
std::string DeadKey(std::string_view prefix, uint32_t shard);
std::string MetaKey(std::string_view prefix);

// Checks Redis >= 6.2 (XAUTOCLAIM), then records or compares the layout in
// "<prefix>:meta" (partitions, routing, version). Refuses a mismatch.
Status CheckServerAndMeta(Connection& connection, const ConnectionOptions& options);

}  // namespace chatshard::redis::internal

#endif  // CHATSHARD_REDIS_SRC_CONNECTION_H_
