// `chatshard convert IN OUT`: rewrites a traffic file as JSON Lines or in the
// binary format (traffic_binary.h), from JSON Lines, binary or CSV with a
// header row. Plain functions and values besides the subcommand: no shared
// state.
//
// Formats, unless --from/--to say otherwise: IN named *.csv or *.csv.gz is
// CSV, any other IN is binary or JSON Lines as its content shows; OUT named
// *.jsonl or *.jsonl.gz, or "-" (standard output), is JSON Lines, any other
// OUT is binary. OUT ending in .gz is gzip-compressed whatever its format.
// JSON Lines written here is one `{"ts_us":<int>,"chat":"<id>","bytes":<int>}`
// per message, so a file written by the tool converts to binary and back
// byte for byte.
#ifndef CHATSHARD_TOOLS_CHATSHARD_CONVERT_H_
#define CHATSHARD_TOOLS_CHATSHARD_CONVERT_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "chatshard/status.h"
#include "command.h"
#include "traffic_file.h"

namespace chatshard::cli {

enum class ConvertFormat { kAuto, kJsonLines, kBinary, kCsv };

// "auto", "jsonl", "binary", "csv": the names --from and --to take.
std::string_view ConvertFormatName(ConvertFormat format);

// The CSV header names of the columns that hold each field. Other columns
// are ignored.
struct CsvColumns {
  std::string ts_us = "ts_us";
  std::string chat = "chat";
  std::string bytes = "bytes";
  // When false, a header without the bytes column gives every message 0 bytes
  // (as a JSON line without "bytes" does).
  bool bytes_required = false;
};

// Parses CSV `text` (RFC 4180: ',' separated, '"' quoted with "" for a
// quote, LF or CRLF line ends; a UTF-8 byte order mark is skipped) whose
// first row names the columns. A bad row is reported through `options` as
// "<name>:<line>: <reason>" naming the field, e.g. `field "ts_us" (column
// "time"): expected an integer >= 0, got "x"`, and skipped, or under
// `options.strict` ends the parse with InvalidArgument. Unavailable when the
// header lacks a column.
Result<Traffic> ParseCsvTraffic(std::string_view text, std::string_view name,
                                const CsvColumns& columns, const LoadOptions& options);

// `traffic` as JSON Lines, one `{"ts_us":..,"chat":"..","bytes":..}` line per
// message. Chat ids must be valid UTF-8 (every reader checks this).
std::string FormatJsonLines(const Traffic& traffic);
// Appends one line of that form; `quoted_chat` is the chat id already written
// as a JSON string (quotes and escapes included). `gen` writes with it too.
void AppendJsonLine(std::string* out, int64_t ts_us, std::string_view quoted_chat,
                    uint64_t bytes);

// Registers `convert` on `app`.
Subcommand AddConvertCommand(CLI::App& app);

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_CONVERT_H_
