#include "connection.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <charconv>
#include <string>
#include <utility>

namespace chatshard::redis::internal {
namespace {

timeval ToTimeval(std::chrono::milliseconds d) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}

bool ParseUint(std::string_view s, uint64_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

Result<Endpoint> ParseAddress(std::string_view address) {
  Endpoint e;
  if (!address.empty() && address.front() == '/') {
    e.unix_socket = true;
    e.host = std::string(address);
    return e;
  }
  std::string_view host;
  std::string_view port;
  if (!address.empty() && address.front() == '[') {
    const size_t close = address.find(']');
    if (close == std::string_view::npos || close + 1 >= address.size() ||
        address[close + 1] != ':') {
      return Status::InvalidArgument("address = \"" + std::string(address) +
                                     "\": must be host:port, [ipv6]:port or /path/of.sock");
    }
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == std::string_view::npos) {
      return Status::InvalidArgument("address = \"" + std::string(address) +
                                     "\": must be host:port, [ipv6]:port or /path/of.sock");
    }
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  uint64_t p = 0;
  if (host.empty() || !ParseUint(port, p) || p == 0 || p > 65535) {
    return Status::InvalidArgument("address = \"" + std::string(address) +
                                   "\": must be host:port with port in 1..65535, or a "
                                   "unix socket path starting with '/'");
  }
  e.host = std::string(host);
  e.port = static_cast<int>(p);
  return e;
}

void SocketSlot::Interrupt() {
  std::lock_guard<std::mutex> l(mu_);
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);
}

Connection::Connection(redisContext* context, std::string address, SocketSlot* slot)
    : context_(context), address_(std::move(address)), slot_(slot) {
  if (slot_ != nullptr) slot_->Set(context_->fd);
}

Connection::~Connection() {
  if (slot_ != nullptr) slot_->Set(-1);
  redisFree(context_);
}

Result<std::unique_ptr<Connection>> Connection::Open(const ConnectionOptions& options,
                                                     std::chrono::milliseconds connect_timeout,
                                                     SocketSlot* slot) {
  Result<Endpoint> endpoint = ParseAddress(options.address);
  if (!endpoint.ok()) return endpoint.status();
  const timeval tv = ToTimeval(connect_timeout);
  redisContext* c = endpoint->unix_socket
                        ? redisConnectUnixWithTimeout(endpoint->host.c_str(), tv)
                        : redisConnectWithTimeout(endpoint->host.c_str(), endpoint->port, tv);
  if (c == nullptr) {
    return Status::Unavailable("cannot connect to Redis at " + options.address +
                               ": out of memory allocating the hiredis context");
  }
  if (c->err != 0) {
    std::string msg = "cannot connect to Redis at " + options.address + " within " +
                      std::to_string(connect_timeout.count()) + " ms: " + c->errstr;
    redisFree(c);
    return Status::Unavailable(msg);
  }
  if (redisSetTimeout(c, ToTimeval(options.command_timeout)) != REDIS_OK) {
    std::string msg = "cannot set the command timeout on " + options.address + ": " + c->errstr;
    redisFree(c);
    return Status::Unavailable(msg);
  }
  std::unique_ptr<Connection> conn(new Connection(c, options.address, slot));
  if (!options.password.empty()) {
    Result<Reply> r = options.username.empty()
                          ? conn->Run({"AUTH", options.password})
                          : conn->Run({"AUTH", options.username, options.password});
    if (!r.ok()) return r.status();
    if (IsError(r->get())) {
      return Status::InvalidArgument(
          "AUTH to Redis at " + options.address + " failed for " +
          (options.username.empty() ? std::string("the default user")
                                    : "user \"" + options.username + "\"") +
          " (check connection.username / connection.password): " +
          std::string(ReplyString(r->get())));
    }
  }
  if (options.database != 0) {
    const std::string db = std::to_string(options.database);
    Result<Reply> r = conn->Run({"SELECT", db});
    if (!r.ok()) return r.status();
    if (IsError(r->get())) {
      return Status::InvalidArgument("SELECT " + db + " on " + options.address +
                                     " failed (connection.database): " +
                                     std::string(ReplyString(r->get())));
    }
  }
  Result<Reply> ping = conn->Run({"PING"});
  if (!ping.ok()) return ping.status();
  if (IsError(ping->get())) {
    const std::string_view err = ReplyString(ping->get());
    const bool noauth = err.starts_with("NOAUTH");
    return Status::InvalidArgument(
        "Redis at " + options.address + " refused PING" +
        (noauth ? " (it requires a password: set connection.password)" : std::string()) + ": " +
        std::string(err));
  }
  return conn;
}

void Connection::Append(const std::vector<std::string_view>& args) {
  argv_.clear();
  argv_len_.clear();
  for (std::string_view a : args) {
    argv_.push_back(a.data());
    argv_len_.push_back(a.size());
  }
  if (broken_) return;
  if (redisAppendCommandArgv(context_, static_cast<int>(argv_.size()), argv_.data(),
                             argv_len_.data()) != REDIS_OK) {
    (void)IoError("append");
  }
}

Status Connection::IoError(std::string_view what) {
  broken_ = true;
  return Status::Unavailable("Redis connection to " + address_ + " lost (" + std::string(what) +
                             "): " + (context_->err != 0 ? context_->errstr : "unknown error"));
}

Result<Reply> Connection::Read() {
  if (broken_) {
    return Status::Unavailable("Redis connection to " + address_ + " is broken");
  }
  void* raw = nullptr;
  if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) {
    return IoError("read");
  }
  return Reply(static_cast<redisReply*>(raw));
}

Result<Reply> Connection::Run(const std::vector<std::string_view>& args) {
  Append(args);
  return Read();
}

bool IsError(const redisReply* reply) {
  return reply != nullptr && reply->type == REDIS_REPLY_ERROR;
}

std::string_view ReplyString(const redisReply* reply) {
  if (reply == nullptr || reply->str == nullptr) return {};
  return std::string_view(reply->str, reply->len);
}

Status ReplyErrorStatus(const redisReply* reply, std::string_view what) {
  if (reply == nullptr) return Status::Internal(std::string(what) + ": no reply");
  if (reply->type != REDIS_REPLY_ERROR) return Status::Ok();
  const std::string_view err = ReplyString(reply);
  if (err.starts_with("WRONGTYPE")) {
    return Status::FailedPrecondition(std::string(what) +
                                      ": a key of another type is in the way: " +
                                      std::string(err));
  }
  return Status::Internal(std::string(what) + ": " + std::string(err));
}

StreamId ParseStreamId(std::string_view id) {
  StreamId out;
  const size_t dash = id.find('-');
  if (dash == std::string_view::npos) return {};
  if (!ParseUint(id.substr(0, dash), out.ms) || !ParseUint(id.substr(dash + 1), out.seq)) {
    return {};
  }
  return out;
}

std::string StreamKey(std::string_view prefix, uint32_t shard) {
  std::string k(prefix);
  k += ":{";
  k += std::to_string(shard);
  k += "}:stream";
  return k;
}

std::string DeadKey(std::string_view prefix, uint32_t shard) {
  std::string k(prefix);
  k += ":{";
  k += std::to_string(shard);
  k += "}:dead";
  return k;
}

std::string MetaKey(std::string_view prefix) {
  std::string k(prefix);
  k += ":meta";
  return k;
}

namespace {
constexpr std::string_view kLayoutVersion = "1";
}  // namespace

Status CheckServerAndMeta(Connection& conn, const ConnectionOptions& options) {
  Result<Reply> info = conn.Run({"INFO", "server"});
  if (!info.ok()) return info.status();
  if (IsError(info->get())) return ReplyErrorStatus(info->get(), "INFO server");
  const std::string_view text = ReplyString(info->get());
  const size_t at = text.find("redis_version:");
  if (at != std::string_view::npos) {
    std::string_view v = text.substr(at + 14);
    v = v.substr(0, v.find_first_of("\r\n"));
    uint64_t major = 0;
    uint64_t minor = 0;
    const size_t dot = v.find('.');
    const size_t dot2 = dot == std::string_view::npos ? dot : v.find('.', dot + 1);
    if (dot != std::string_view::npos && ParseUint(v.substr(0, dot), major) &&
        ParseUint(v.substr(dot + 1, dot2 == std::string_view::npos ? dot2 : dot2 - dot - 1),
                  minor)) {
      if (major < 6 || (major == 6 && minor < 2)) {
        return Status::FailedPrecondition("Redis at " + options.address + " is version " +
                                          std::string(v) +
                                          "; the adapter needs >= 6.2 (XAUTOCLAIM)");
      }
    }
  }

  const std::string meta = MetaKey(options.prefix);
  const std::string partitions = std::to_string(options.partitions);
  const std::string routing(RoutingName(options.routing));
  // HSETNX per field: the first process to start records the layout; later
  // ones (and racing ones) compare against what won.
  conn.Append({"HSETNX", meta, "partitions", partitions});
  conn.Append({"HSETNX", meta, "routing", routing});
  conn.Append({"HSETNX", meta, "version", kLayoutVersion});
  conn.Append({"HMGET", meta, "partitions", "routing", "version"});
  Reply replies[4];
  for (Reply& r : replies) {
    Result<Reply> got = conn.Read();
    if (!got.ok()) return got.status();
    r = std::move(got).value();
  }
  for (const Reply& r : replies) {
    if (IsError(r.get())) {
      return ReplyErrorStatus(r.get(), "metadata key \"" + meta + "\" (must be a hash)");
    }
  }
  const redisReply* got = replies[3].get();
  if (got->type != REDIS_REPLY_ARRAY || got->elements != 3) {
    return Status::Internal("HMGET " + meta + ": unexpected reply");
  }
  const std::string_view stored_partitions = ReplyString(got->element[0]);
  const std::string_view stored_routing = ReplyString(got->element[1]);
  const std::string_view stored_version = ReplyString(got->element[2]);
  if (stored_partitions != partitions || stored_routing != routing ||
      stored_version != kLayoutVersion) {
    return Status::FailedPrecondition(
        "\"" + meta + "\" holds partitions = " + std::string(stored_partitions) +
        ", routing = " + std::string(stored_routing) + ", version = " +
        std::string(stored_version) + " but this process is configured with partitions = " +
        partitions + ", routing = " + routing + ", version = " + std::string(kLayoutVersion) +
        ": refusing to mix layouts (use another connection.prefix, or migrate the streams)");
  }
  return Status::Ok();
}

}  // namespace chatshard::redis::internal
