#include "traffic_file.h"

#include <fmt/format.h>
#include <simdjson.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "traffic_binary.h"

namespace chatshard::cli {
namespace {

constexpr size_t kReadChunkBytes = size_t{1} << 18;

std::string_view JsonTypeName(simdjson::dom::element_type type) {
  using simdjson::dom::element_type;
  switch (type) {
    case element_type::ARRAY:
      return "array";
    case element_type::OBJECT:
      return "object";
    case element_type::INT64:
    case element_type::UINT64:
      return "integer";
    case element_type::DOUBLE:
      return "number";
    case element_type::STRING:
      return "string";
    case element_type::BOOL:
      return "boolean";
    case element_type::NULL_VALUE:
      return "null";
  }
  return "unknown";
}

// A non-negative integer that fits int64, or the reason it is not one.
std::string NonNegativeInteger(std::string_view field, simdjson::dom::element value, int64_t* out) {
  using simdjson::dom::element_type;
  const element_type type = value.type();
  if (type == element_type::UINT64) {
    return fmt::format("field \"{}\": {} is out of range (at most {})", field,
                       value.get_uint64().value_unsafe(), std::numeric_limits<int64_t>::max());
  }
  if (type != element_type::INT64) {
    return fmt::format("field \"{}\": expected an integer >= 0, got {}", field, JsonTypeName(type));
  }
  const int64_t number = value.get_int64().value_unsafe();
  if (number < 0) {
    return fmt::format("field \"{}\": expected an integer >= 0, got {}", field, number);
  }
  *out = number;
  return {};
}

// Parses lines with one reusable simdjson parser and padded buffer.
class LineParser {
 public:
  std::string Parse(std::string_view line, ParsedLine* out) {
    // simdjson reads up to SIMDJSON_PADDING bytes past the end: parse a copy.
    padded_.resize(line.size() + simdjson::SIMDJSON_PADDING);
    std::memcpy(padded_.data(), line.data(), line.size());
    std::memset(padded_.data() + line.size(), 0, simdjson::SIMDJSON_PADDING);

    simdjson::dom::element root;
    if (const auto error = parser_.parse(padded_.data(), line.size(), false).get(root)) {
      if (line.find_first_not_of(" \t") == std::string_view::npos) return "empty line";
      return fmt::format("invalid JSON ({})", simdjson::error_message(error));
    }
    simdjson::dom::object object;
    if (root.get(object) != simdjson::SUCCESS) {
      return fmt::format("expected a JSON object, got {}", JsonTypeName(root.type()));
    }

    bool has_ts = false;
    bool has_chat = false;
    bool has_bytes = false;
    ParsedLine parsed;
    for (const simdjson::dom::key_value_pair field : object) {
      if (field.key == "ts_us") {
        if (has_ts) return "duplicate field \"ts_us\"";
        has_ts = true;
        if (std::string reason = NonNegativeInteger("ts_us", field.value, &parsed.ts_us);
            !reason.empty()) {
          return reason;
        }
      } else if (field.key == "chat") {
        if (has_chat) return "duplicate field \"chat\"";
        has_chat = true;
        std::string_view chat;
        if (field.value.get(chat) != simdjson::SUCCESS) {
          return fmt::format("field \"chat\": expected a string, got {}",
                             JsonTypeName(field.value.type()));
        }
        if (chat.empty()) return "field \"chat\": empty";
        parsed.chat.assign(chat);
      } else if (field.key == "bytes") {
        if (has_bytes) return "duplicate field \"bytes\"";
        has_bytes = true;
        int64_t bytes = 0;
        if (std::string reason = NonNegativeInteger("bytes", field.value, &bytes);
            !reason.empty()) {
          return reason;
        }
        parsed.bytes = static_cast<uint64_t>(bytes);
      }
    }
    if (!has_ts) return "missing field \"ts_us\"";
    if (!has_chat) return "missing field \"chat\"";
    *out = std::move(parsed);
    return {};
  }

 private:
  simdjson::dom::parser parser_;
  std::vector<char> padded_;
};

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct GzCloser {
  void operator()(gzFile file) const { gzclose(file); }
};
using GzFilePtr = std::unique_ptr<gzFile_s, GzCloser>;

// Opens `path` ("-" = standard input) for gzread, which passes data that is
// not gzip through unchanged.
Result<GzFilePtr> OpenTrafficFile(const std::string& path) {
  gzFile file = nullptr;
  if (path == "-") {
    const int fd = dup(STDIN_FILENO);  // gzclose closes it; keep fd 0 open
    if (fd >= 0) file = gzdopen(fd, "rb");
    if (file == nullptr && fd >= 0) close(fd);
  } else {
    file = gzopen(path.c_str(), "rb");
  }
  if (file == nullptr) {
    // gzopen leaves errno set when open(2) failed, 0 when zlib ran out of memory.
    const int error = errno;
    return Status::Unavailable(
        fmt::format("cannot open {}: {}", path, error != 0 ? std::strerror(error) : "zlib error"));
  }
  gzbuffer(file, static_cast<unsigned>(kReadChunkBytes));
  return GzFilePtr(file);
}

// OK when every gzread of `file` so far succeeded, else why not.
Status ReadStatus(gzFile file, const std::string& path) {
  int zlib_error = Z_OK;
  const char* zlib_message = gzerror(file, &zlib_error);
  if (zlib_error == Z_OK) return Status::Ok();
  if (zlib_error == Z_ERRNO) {
    return Status::Unavailable(fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  }
  // zlib's message reads "<path>: <what>"; keep the what.
  std::string_view what(zlib_message);
  if (const size_t colon = what.rfind(": "); colon != std::string_view::npos) {
    what.remove_prefix(colon + 2);
  }
  return Status::Unavailable(
      fmt::format("cannot read {}: {} (a truncated or corrupt gzip file?)", path, what));
}

}  // namespace

std::string ParseTrafficLine(std::string_view line, ParsedLine* out) {
  LineParser parser;
  return parser.Parse(line, out);
}

Result<Traffic> LoadTraffic(const std::string& path, const LoadOptions& options) {
  errno = 0;
  Result<GzFilePtr> opened = OpenTrafficFile(path);
  if (!opened.ok()) return opened.status();
  gzFile file = opened.value().get();

  Traffic traffic;
  std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>> chat_index;
  LineParser parser;
  ParsedLine parsed;
  Status stop;  // set by a bad line under --strict

  // Returns false to stop reading.
  auto handle_line = [&](std::string_view line) {
    ++traffic.lines;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);  // CRLF files
    std::string reason = parser.Parse(line, &parsed);
    if (reason.empty() && traffic.chats.size() == std::numeric_limits<uint32_t>::max()) {
      reason = "too many distinct chats";
    }
    if (!reason.empty()) {
      const std::string report = fmt::format("{}:{}: {}", path, traffic.lines, reason);
      if (options.on_bad_line) options.on_bad_line(report);
      if (options.strict) {
        stop = Status::InvalidArgument(report);
        return false;
      }
      ++traffic.skipped;
      return true;
    }
    auto [it, inserted] =
        chat_index.try_emplace(parsed.chat, static_cast<uint32_t>(traffic.chats.size()));
    if (inserted) traffic.chats.push_back(parsed.chat);
    traffic.messages.push_back(
        TrafficMessage{.ts_us = parsed.ts_us, .chat = it->second, .bytes = parsed.bytes});
    return true;
  };

  std::vector<char> chunk(kReadChunkBytes);
  std::string partial;  // a line split across chunks
  bool more = true;
  bool binary = false;  // the whole file goes to `partial`, for DecodeBinaryTraffic
  for (bool first_chunk = true; more; first_chunk = false) {
    const int n = gzread(file, chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) break;  // reported below through gzerror
    if (n == 0) break;
    std::string_view data(chunk.data(), static_cast<size_t>(n));
    // A binary file, or a cut one: no JSON line starts with the magic's 0x89.
    if (first_chunk) binary = kBinaryTrafficMagic.starts_with(data.substr(0, 8));
    if (binary) {
      partial.append(data);
      continue;
    }
    while (more && !data.empty()) {
      const size_t newline = data.find('\n');
      if (newline == std::string_view::npos) {
        partial.append(data);
        break;
      }
      if (partial.empty()) {
        more = handle_line(data.substr(0, newline));
      } else {
        partial.append(data.substr(0, newline));
        more = handle_line(partial);
        partial.clear();
      }
      data.remove_prefix(newline + 1);
    }
  }
  if (!stop.ok()) return stop;
  if (Status read = ReadStatus(file, path); !read.ok()) return read;
  if (binary) return DecodeBinaryTraffic(partial, path);
  if (!partial.empty() && !handle_line(partial)) return stop;  // a last line without '\n'
  return traffic;
}

Result<std::string> ReadTrafficFileBytes(const std::string& path) {
  errno = 0;
  Result<GzFilePtr> opened = OpenTrafficFile(path);
  if (!opened.ok()) return opened.status();
  gzFile file = opened.value().get();
  std::string bytes;
  std::vector<char> chunk(kReadChunkBytes);
  int n = 0;
  while ((n = gzread(file, chunk.data(), static_cast<unsigned>(chunk.size()))) > 0) {
    bytes.append(chunk.data(), static_cast<size_t>(n));
  }
  if (Status read = ReadStatus(file, path); !read.ok()) return read;
  return bytes;
}

}  // namespace chatshard::cli
