#include "redis_url.h"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace chatshard::cli {
namespace {

constexpr uint32_t kDefaultPort = 6379;
constexpr uint32_t kMaxDatabase = 15;  // the adapter's range (options.h)

// Where the user information ends: `rest` is the URL after "scheme://".
// redis: everything before the last '@' (the host and the db hold none).
// unix: a path starts with '/', so user information ends at the first "@/".
std::optional<size_t> UserinfoEnd(std::string_view scheme, std::string_view rest) {
  if (scheme == "unix") {
    if (rest.empty() || rest.front() == '/') return std::nullopt;
    const size_t at = rest.find("@/");
    if (at == std::string_view::npos) return std::nullopt;
    return at;
  }
  const size_t at = rest.rfind('@');
  if (at == std::string_view::npos) return std::nullopt;
  return at;
}

// The URL as an error may show it: a password, or a user information
// without ':' (which may be a password given without its ':'), becomes "***".
std::string RedactRaw(std::string_view url) {
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) return std::string(url);
  const std::string_view scheme = url.substr(0, sep);
  const std::string_view rest = url.substr(sep + 3);
  const std::optional<size_t> end = UserinfoEnd(scheme, rest);
  if (!end) return std::string(url);
  const std::string_view userinfo = rest.substr(0, *end);
  const size_t colon = userinfo.find(':');
  std::string out(url.substr(0, sep + 3));
  if (colon == std::string_view::npos) {
    out += "***";
  } else {
    out += userinfo.substr(0, colon + 1);
    out += "***";
  }
  out += rest.substr(*end);
  return out;
}

bool ParseDecimal(std::string_view text, uint64_t max, uint64_t& out) {
  if (text.empty() || text.size() > 20) return false;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
    if (v > max) return false;
  }
  out = v;
  return true;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> PercentDecode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      out += text[i];
      continue;
    }
    if (i + 2 >= text.size()) return std::nullopt;
    const int hi = HexDigit(text[i + 1]);
    const int lo = HexDigit(text[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

}  // namespace

void RedisUrl::ApplyTo(redis::ConnectionOptions& options) const {
  options.address = address;
  options.username = username;
  options.password = password;
  options.database = database;
}

std::string RedisUrl::Redacted() const {
  const bool unix_socket = !address.empty() && address.front() == '/';
  std::string out = unix_socket ? "unix://" : "redis://";
  if (!password.empty()) out += username + ":***@";
  out += address;
  if (database != 0) {
    out += unix_socket ? "?db=" : "/";
    out += std::to_string(database);
  }
  return out;
}

Result<RedisUrl> ParseRedisUrl(std::string_view url) {
  const auto error = [&url](std::string_view what) {
    return Status::InvalidArgument("'" + RedactRaw(url) + "': " + std::string(what));
  };
  constexpr std::string_view kForms =
      "must be redis://[user:password@]host[:port][/db] or unix://[user:password@]/path[?db=N]";

  const size_t sep = url.find("://");
  if (sep == std::string_view::npos) return error(kForms);
  const std::string_view scheme = url.substr(0, sep);
  if (scheme == "rediss") {
    return error(
        "TLS (rediss://) is not supported by hiredis 0.14; run a local TLS tunnel and give "
        "its plain end");
  }
  if (scheme != "redis" && scheme != "unix") return error(kForms);
  std::string_view rest = url.substr(sep + 3);

  RedisUrl out;
  if (const std::optional<size_t> end = UserinfoEnd(scheme, rest)) {
    const std::string_view userinfo = rest.substr(0, *end);
    rest.remove_prefix(*end + 1);
    const size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos) {
      return error("the user information must be user:password or :password");
    }
    std::optional<std::string> user = PercentDecode(userinfo.substr(0, colon));
    std::optional<std::string> password = PercentDecode(userinfo.substr(colon + 1));
    if (!user || !password) return error("bad percent-encoding in the user or the password");
    if (password->empty()) return error("the password is empty");
    out.username = std::move(*user);
    out.password = std::move(*password);
  }

  uint64_t db = 0;
  if (scheme == "unix") {
    const size_t query = rest.find('?');
    const std::string_view path = rest.substr(0, query);
    if (path.size() < 2 || path.front() != '/') {
      return error("a unix socket URL needs an absolute path: unix:///path/of.sock");
    }
    if (query != std::string_view::npos) {
      const std::string_view q = rest.substr(query + 1);
      if (q.substr(0, 3) != "db=" || !ParseDecimal(q.substr(3), kMaxDatabase, db)) {
        return error("the only query a unix URL takes is ?db=N with N in 0..15");
      }
    }
    out.address = std::string(path);
    out.database = static_cast<uint32_t>(db);
    return out;
  }

  if (rest.find('?') != std::string_view::npos) {
    return error("redis:// takes no query; the database is the path: redis://host:port/db");
  }
  const size_t slash = rest.find('/');
  const std::string_view hostport = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    const std::string_view path = rest.substr(slash + 1);
    if (!path.empty() && !ParseDecimal(path, kMaxDatabase, db)) {
      return error("the database (the path) must be a number in 0..15");
    }
  }

  std::string_view host;
  std::string_view port;
  bool bracketed = false;
  if (!hostport.empty() && hostport.front() == '[') {
    const size_t close = hostport.find(']');
    if (close == std::string_view::npos) return error("an IPv6 host needs its closing ']'");
    host = hostport.substr(1, close - 1);
    const std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return error("expected ':port' after the ']' of an IPv6 host");
      port = after.substr(1);
      if (port.empty()) return error("the port is empty");
    }
    bracketed = true;
  } else {
    const size_t colon = hostport.find(':');
    if (colon != std::string_view::npos && hostport.find(':', colon + 1) != std::string_view::npos) {
      return error("an IPv6 host must be in brackets: redis://[::1]:6379");
    }
    host = hostport.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = hostport.substr(colon + 1);
      if (port.empty()) return error("the port is empty");
    }
  }
  if (host.empty()) return error("the host is empty");
  uint64_t port_number = kDefaultPort;
  if (!port.empty() && (!ParseDecimal(port, 65535, port_number) || port_number == 0)) {
    return error("the port must be 1..65535");
  }
  out.address = bracketed ? "[" + std::string(host) + "]" : std::string(host);
  out.address += ":" + std::to_string(port_number);
  out.database = static_cast<uint32_t>(db);
  return out;
}

}  // namespace chatshard::cli
