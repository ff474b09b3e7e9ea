#include "connection.h"

#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <cstring>
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


// Reply arenas. hiredis' default reader makes one calloc per reply element
// and one malloc per string, and frees them one by one: callgrind put that
// at about half of the adapter's instructions in the end-to-end benchmark
// (an XREADGROUP entry is 13 allocations). Here each top-level reply lives in
// a chain of blocks: the first block holds the header and the root object,
// every descendant is bump-allocated from the chain, and FreeReply frees the
// chain. This relies on three things hiredis 0.14 does: it creates a parent
// before its children, calls freeObject only on a top-level reply, and keeps
// a partly read reply (and so its chain) across reads.
struct ArenaBlock {
  ArenaBlock* previous;  // the chain, newest first; nullptr in the first block
  size_t used;
  size_t capacity;
};
struct ArenaHeader {
  ArenaBlock first;
  ArenaBlock* current;  // the block being filled
};
constexpr size_t kArenaAlign = alignof(std::max_align_t);

constexpr size_t AlignUp(size_t n) { return (n + kArenaAlign - 1) & ~(kArenaAlign - 1); }
constexpr size_t kFirstHeader = AlignUp(sizeof(ArenaHeader));
constexpr size_t kBlockHeader = AlignUp(sizeof(ArenaBlock));

void* ArenaAlloc(ArenaHeader* arena, size_t bytes) {
  bytes = AlignUp(bytes);
  ArenaBlock* b = arena->current;
  if (b->used + bytes > b->capacity) {
    const size_t capacity = std::max(2 * b->capacity, bytes);
    auto* fresh = static_cast<ArenaBlock*>(std::malloc(kBlockHeader + capacity));
    if (fresh == nullptr) return nullptr;
    *fresh = ArenaBlock{b, 0, capacity};
    arena->current = fresh;
    b = fresh;
  }
  char* data = reinterpret_cast<char*>(b) + (b == &arena->first ? kFirstHeader : kBlockHeader);
  void* out = data + b->used;
  b->used += bytes;
  return out;
}

ArenaHeader* ArenaOf(redisReply* root) {
  return reinterpret_cast<ArenaHeader*>(reinterpret_cast<char*>(root) - kFirstHeader);
}

// The arena of the reply `task` belongs to: its root's, once the root exists.
ArenaHeader* ArenaOfTask(const redisReadTask* task, redisReply* created) {
  const redisReadTask* top = task;
  while (top->parent != nullptr) top = top->parent;
  return ArenaOf(top == task ? created : static_cast<redisReply*>(top->obj));
}

// A new object for `task`, linked into its parent. A root starts a chain
// whose first block has room for the root and `extra` bytes, so a small
// reply (an XADD's id) costs one small malloc.
redisReply* NewObject(const redisReadTask* task, int type, size_t extra) {
  redisReply* r = nullptr;
  if (task->parent == nullptr) {
    const size_t capacity = AlignUp(sizeof(redisReply)) + AlignUp(extra);
    auto* arena = static_cast<ArenaHeader*>(std::malloc(kFirstHeader + capacity));
    if (arena == nullptr) return nullptr;
    arena->first = ArenaBlock{nullptr, AlignUp(sizeof(redisReply)), capacity};
    arena->current = &arena->first;
    r = reinterpret_cast<redisReply*>(reinterpret_cast<char*>(arena) + kFirstHeader);
  } else {
    r = static_cast<redisReply*>(ArenaAlloc(ArenaOfTask(task, nullptr), sizeof(redisReply)));
    if (r == nullptr) return nullptr;
    static_cast<redisReply*>(task->parent->obj)->element[task->idx] = r;
  }
  *r = redisReply{};
  r->type = type;
  return r;
}

void* CreateString(const redisReadTask* task, char* str, size_t len) {
  redisReply* r = NewObject(task, task->type, len + 1);
  if (r == nullptr) return nullptr;
  auto* text = static_cast<char*>(ArenaAlloc(ArenaOfTask(task, r), len + 1));
  if (text == nullptr) return nullptr;
  std::memcpy(text, str, len);
  text[len] = '\0';
  r->str = text;
  r->len = len;
  return r;
}

void* CreateArray(const redisReadTask* task, int elements) {
  const auto n = static_cast<size_t>(std::max(elements, 0));
  // For a root: its element slots and a guess of 128 bytes per element.
  redisReply* r = NewObject(task, REDIS_REPLY_ARRAY, n * (sizeof(redisReply*) + 128));
  if (r == nullptr) return nullptr;
  r->elements = n;
  if (n > 0) {
    void* slots = ArenaAlloc(ArenaOfTask(task, r), n * sizeof(redisReply*));
    if (slots == nullptr) return nullptr;
    std::memset(slots, 0, n * sizeof(redisReply*));
    r->element = static_cast<redisReply**>(slots);
  }
  return r;
}

void* CreateInteger(const redisReadTask* task, long long value) {
  redisReply* r = NewObject(task, REDIS_REPLY_INTEGER, 0);
  if (r != nullptr) r->integer = value;
  return r;
}

void* CreateNil(const redisReadTask* task) { return NewObject(task, REDIS_REPLY_NIL, 0); }

void FreeObject(void* reply) { FreeReply(static_cast<redisReply*>(reply)); }

redisReplyObjectFunctions kArenaReplyFunctions = {CreateString, CreateArray, CreateInteger,
                                                  CreateNil, FreeObject};

}  // namespace

void FreeReply(redisReply* reply) {
  if (reply == nullptr) return;
  ArenaHeader* arena = ArenaOf(reply);
  ArenaBlock* b = arena->current;
  while (b != &arena->first) {
    ArenaBlock* previous = b->previous;
    std::free(b);
    b = previous;
  }
  std::free(arena);
}

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
  // Before the first command: every reply read here is an arena reply.
  context_->reader->fn = &kArenaReplyFunctions;
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

void Connection::Append(std::span<const std::string_view> args) {
  if (broken_) return;
  // RESP, formatted here rather than by redisAppendCommandArgv: hiredis
  // builds each command with sdscatfmt per argument, which callgrind showed
  // as 30% of the adapter's instructions in the end-to-end benchmark.
  command_.clear();
  AppendRespHeader('*', args.size());
  for (std::string_view a : args) {
    AppendRespHeader('$', a.size());
    command_.append(a);
    command_.append("\r\n");
  }
  if (redisAppendFormattedCommand(context_, command_.data(), command_.size()) != REDIS_OK) {
    (void)IoError("append");
  }
}

void Connection::AppendRespHeader(char kind, size_t n) {
  char buffer[24];
  buffer[0] = kind;
  char* end = std::to_chars(buffer + 1, buffer + sizeof(buffer) - 2, n).ptr;
  *end++ = '\r';
  *end++ = '\n';
  command_.append(buffer, static_cast<size_t>(end - buffer));
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

Result<Reply> Connection::Run(std::span<const std::string_view> args) {
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

void AppendStreamId(const StreamId& id, std::string& out) {
  char buffer[48];
  char* end = std::to_chars(buffer, buffer + 20, id.ms).ptr;
  *end++ = '-';
  end = std::to_chars(end, buffer + sizeof(buffer), id.seq).ptr;
  out.append(buffer, static_cast<size_t>(end - buffer));
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
