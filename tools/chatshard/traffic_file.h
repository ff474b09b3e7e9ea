// Traffic files: captured chat traffic as JSON Lines, one message per line,
//   {"ts_us": <integer >= 0>, "chat": "<non-empty string>", "bytes": <integer >= 0>}
// ("bytes" is optional, other fields are ignored), gzip-compressed or not
// (told apart by content, not by name); "-" reads standard input. A file in
// the binary format of traffic_binary.h, gzip-compressed or not, is recognised
// by its magic and read as well.
//
// LoadTraffic reads a whole file into memory with chat ids interned to dense
// indexes. A bad line is reported as "<file>:<line>: <reason>" and skipped,
// or, with `strict`, ends the load. Plain functions and values: no shared
// state, safe to use from several threads on different files.
#ifndef CHATSHARD_TOOLS_CHATSHARD_TRAFFIC_FILE_H_
#define CHATSHARD_TOOLS_CHATSHARD_TRAFFIC_FILE_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "chatshard/status.h"

namespace chatshard::cli {

// One message of a traffic file.
struct TrafficMessage {
  int64_t ts_us = 0;   // capture time, microseconds since the capture began
  uint32_t chat = 0;   // index into Traffic::chats
  uint64_t bytes = 0;  // the captured message's size; 0 when the line has none
};

// How a traffic file was written.
enum class TrafficFormat { kJsonLines, kBinary };

// A loaded traffic file.
struct Traffic {
  TrafficFormat format = TrafficFormat::kJsonLines;
  std::vector<std::string> chats;        // chat ids in order of first appearance
  std::vector<TrafficMessage> messages;  // in file order
  uint64_t lines = 0;                    // lines read, good and bad (binary: messages)
  uint64_t skipped = 0;                  // bad lines skipped
};

struct LoadOptions {
  // Stop at the first bad line (LoadTraffic then answers InvalidArgument).
  bool strict = false;
  // Called with "<file>:<line>: <reason>" for each bad line, in file order.
  std::function<void(std::string_view report)> on_bad_line;
};

// One line parsed, its chat id not yet interned.
struct ParsedLine {
  int64_t ts_us = 0;
  std::string chat;
  uint64_t bytes = 0;
};

// Parses one line (without its line break). Empty on success, else the reason
// the line is bad, naming the field when one field is at fault, e.g.
// `field "ts_us": expected an integer >= 0, got string`.
std::string ParseTrafficLine(std::string_view line, ParsedLine* out);

// Loads `path`. Errors: Unavailable when the file cannot be opened or read
// (including a truncated or corrupt gzip stream or binary file, which is
// refused as a whole); InvalidArgument naming the first bad line when
// `options.strict`.
Result<Traffic> LoadTraffic(const std::string& path, const LoadOptions& options);

// All of `path` ("-" = standard input), gunzipped when it is gzip. Errors as
// LoadTraffic's Unavailable.
Result<std::string> ReadTrafficFileBytes(const std::string& path);

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_TRAFFIC_FILE_H_
