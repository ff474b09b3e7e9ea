#include "convert.h"

#include <fmt/format.h>
#include <simdjson.h>
#include <zlib.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "enum_flag.h"
#include "exit_code.h"
#include "load_messages.h"
#include "traffic_binary.h"

namespace chatshard::cli {
namespace {

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

// Splits CSV text into records of fields, counting lines.
class CsvRecords {
 public:
  explicit CsvRecords(std::string_view text) : text_(text) {}

  bool done() const { return at_ >= text_.size(); }
  // The line the last record read starts on, from 1.
  uint64_t line() const { return record_line_; }

  // Reads the next record into `fields`. Empty on success, else why the
  // record is malformed (the rest of its line is then skipped).
  std::string Next(std::vector<std::string>& fields) {
    fields.clear();
    record_line_ = line_;
    std::string field;
    while (true) {
      if (at_ == text_.size()) {
        fields.push_back(std::move(field));
        return {};
      }
      const char c = text_[at_];
      if (c == '"' && field.empty()) {
        if (std::string reason = ReadQuoted(field); !reason.empty()) {
          SkipLine();
          return reason;
        }
        if (at_ < text_.size() && !AtFieldEnd()) {
          SkipLine();
          return fmt::format("field {}: text after its closing quote", fields.size() + 1);
        }
        continue;
      }
      if (c == ',') {
        fields.push_back(std::move(field));
        field.clear();
        ++at_;
      } else if (AtLineEnd()) {
        fields.push_back(std::move(field));
        SkipLineEnd();
        return {};
      } else {
        field.push_back(c);
        ++at_;
      }
    }
  }

 private:
  bool AtLineEnd() const {
    return text_[at_] == '\n' ||
           (text_[at_] == '\r' && at_ + 1 < text_.size() && text_[at_ + 1] == '\n');
  }
  bool AtFieldEnd() const { return text_[at_] == ',' || AtLineEnd(); }
  void SkipLineEnd() {
    at_ += text_[at_] == '\r' ? 2 : 1;
    ++line_;
  }
  void SkipLine() {
    while (at_ < text_.size() && !AtLineEnd()) ++at_;
    if (at_ < text_.size()) SkipLineEnd();
  }
  // At an opening quote: appends the field's text, leaving at_ after the
  // closing quote.
  std::string ReadQuoted(std::string& field) {
    for (++at_; at_ < text_.size(); ++at_) {
      const char c = text_[at_];
      if (c == '"') {
        if (at_ + 1 < text_.size() && text_[at_ + 1] == '"') {
          field.push_back('"');
          ++at_;
          continue;
        }
        ++at_;
        return {};
      }
      if (c == '\n') ++line_;
      field.push_back(c);
    }
    return "unterminated quoted field";
  }

  const std::string_view text_;
  size_t at_ = 0;
  uint64_t line_ = 1;
  uint64_t record_line_ = 1;
};

// `field "<field>"` or, when the column is named otherwise,
// `field "<field>" (column "<column>")`.
std::string FieldName(std::string_view field, std::string_view column) {
  if (field == column) return fmt::format("field \"{}\"", field);
  return fmt::format("field \"{}\" (column \"{}\")", field, column);
}

// A decimal integer in [0, INT64_MAX], or the reason `text` is not one.
std::string ParseCount(std::string_view text, std::string_view field_name, int64_t* out) {
  if (text.empty()) return fmt::format("{}: empty", field_name);
  int64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [stop, error] = std::from_chars(text.data(), end, value);
  if (stop == end && error == std::errc() && value >= 0) {
    *out = value;
    return {};
  }
  if (stop == end && error == std::errc()) {
    return fmt::format("{}: expected an integer >= 0, got {}", field_name, value);
  }
  if (stop == end && error == std::errc::result_out_of_range && text.front() != '-') {
    return fmt::format("{}: {} is out of range (at most {})", field_name, text,
                       std::numeric_limits<int64_t>::max());
  }
  return fmt::format("{}: expected an integer >= 0, got \"{}\"", field_name, text);
}

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

bool IsJsonLinesName(std::string_view path) {
  if (path.ends_with(".gz")) path.remove_suffix(3);
  return path == "-" || path.ends_with(".jsonl");
}

bool IsCsvName(std::string_view path) {
  if (path.ends_with(".gz")) path.remove_suffix(3);
  return path.ends_with(".csv");
}

// Writes `bytes` to `path` ("-" = standard output), gzip when `path` ends in
// ".gz". A file that was opened but could not be written whole is removed.
Status WriteOutput(const std::string& path, std::string_view bytes) {
  bool ok = true;
  bool opened = false;
  errno = 0;
  if (path == "-") {
    ok = std::fwrite(bytes.data(), 1, bytes.size(), stdout) == bytes.size();
    ok = std::fflush(stdout) == 0 && ok;
  } else if (path.ends_with(".gz")) {
    gzFile file = gzopen(path.c_str(), "wb");
    ok = opened = file != nullptr;
    for (std::string_view rest = bytes; ok && !rest.empty();) {
      const size_t piece = std::min<size_t>(rest.size(), size_t{1} << 30);
      ok = gzwrite(file, rest.data(), static_cast<unsigned>(piece)) == static_cast<int>(piece);
      rest.remove_prefix(piece);
    }
    if (file != nullptr) ok = gzclose(file) == Z_OK && ok;
  } else {
    std::FILE* file = std::fopen(path.c_str(), "wb");
    opened = file != nullptr;
    ok = opened && std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size();
    if (file != nullptr) ok = std::fclose(file) == 0 && ok;
  }
  if (ok) return Status::Ok();
  const int error = errno;
  if (opened) std::remove(path.c_str());
  return Status::Unavailable(
      fmt::format("cannot write {}: {}", path, error != 0 ? std::strerror(error) : "I/O error"));
}

struct ConvertFlags {
  std::string in;
  std::string out;
  ConvertFormat from = ConvertFormat::kAuto;
  ConvertFormat to = ConvertFormat::kAuto;
  CsvColumns csv;
  bool strict = false;
  // The --csv-* options, to tell whether any was given.
  std::vector<const CLI::Option*> csv_options;
};

int RunConvertCommand(ConvertFlags& flags) {
  const ConvertFormat from = flags.from != ConvertFormat::kAuto ? flags.from
                             : IsCsvName(flags.in)              ? ConvertFormat::kCsv
                                                   : ConvertFormat::kAuto;  // content decides
  const ConvertFormat to = flags.to != ConvertFormat::kAuto ? flags.to
                           : IsJsonLinesName(flags.out)     ? ConvertFormat::kJsonLines
                                                            : ConvertFormat::kBinary;
  const bool csv_flags = std::any_of(flags.csv_options.begin(), flags.csv_options.end(),
                                     [](const CLI::Option* option) { return option->count() > 0; });
  if (csv_flags && from != ConvertFormat::kCsv) {
    fmt::print(stderr,
               "chatshard convert: --csv-ts, --csv-chat and --csv-bytes need CSV input "
               "(IN named *.csv or --from csv)\n");
    return kExitUsage;
  }
  if (flags.to == ConvertFormat::kAuto && IsCsvName(flags.out)) {
    fmt::print(stderr, "chatshard convert: cannot write CSV ({}); give --to jsonl or --to binary\n",
               flags.out);
    return kExitUsage;
  }

  const LoadOptions load = PrintingLoadOptions(flags.strict);
  Result<Traffic> loaded = Status::Internal("not loaded");
  if (from == ConvertFormat::kCsv) {
    Result<std::string> text = ReadTrafficFileBytes(flags.in);
    loaded = text.ok() ? ParseCsvTraffic(text.value(), flags.in, flags.csv, load) : text.status();
  } else {
    loaded = LoadTraffic(flags.in, load);
  }
  if (!loaded.ok()) return ReportLoadFailure("convert", loaded.status());
  const Traffic& traffic = loaded.value();
  const ConvertFormat read_as =
      traffic.format == TrafficFormat::kBinary ? ConvertFormat::kBinary : ConvertFormat::kJsonLines;
  if (from != ConvertFormat::kAuto && from != ConvertFormat::kCsv && from != read_as) {
    fmt::print(stderr, "chatshard convert: {} is {}, not {} (--from)\n", flags.in,
               ConvertFormatName(read_as), ConvertFormatName(from));
    return kExitFileError;
  }
  ReportSkippedLines("convert", traffic);

  std::string bytes;
  if (to == ConvertFormat::kJsonLines) {
    bytes = FormatJsonLines(traffic);
  } else {
    Result<std::string> encoded = EncodeBinaryTraffic(traffic);
    if (!encoded.ok()) {  // not expected: every reader checks what the encoder does
      fmt::print(stderr, "chatshard convert: {}\n", encoded.status().message());
      return kExitFileError;
    }
    bytes = std::move(encoded.value());
  }
  if (const Status written = WriteOutput(flags.out, bytes); !written.ok()) {
    fmt::print(stderr, "chatshard convert: {}\n", written.message());
    return kExitFileError;
  }
  fmt::print(stderr, "chatshard convert: {} messages, {} chats: {} ({}) -> {} ({}, {} bytes)\n",
             traffic.messages.size(), traffic.chats.size(), flags.in,
             ConvertFormatName(from == ConvertFormat::kCsv ? from : read_as), flags.out,
             ConvertFormatName(to), bytes.size());
  return kExitOk;
}

}  // namespace

std::string_view ConvertFormatName(ConvertFormat format) {
  switch (format) {
    case ConvertFormat::kAuto:
      return "auto";
    case ConvertFormat::kJsonLines:
      return "jsonl";
    case ConvertFormat::kBinary:
      return "binary";
    case ConvertFormat::kCsv:
      return "csv";
  }
  return "unknown";
}

Result<Traffic> ParseCsvTraffic(std::string_view text, std::string_view name,
                                const CsvColumns& columns, const LoadOptions& options) {
  if (text.starts_with(kUtf8Bom)) text.remove_prefix(kUtf8Bom.size());
  CsvRecords records(text);
  std::vector<std::string> fields;
  if (records.done()) return Status::Unavailable(fmt::format("{}: no header row", name));
  if (std::string reason = records.Next(fields); !reason.empty()) {
    return Status::Unavailable(fmt::format("{}:1: header: {}", name, reason));
  }
  const std::vector<std::string> header = fields;
  // The index of `column` in the header; nullopt when absent.
  auto find_column = [&header](const std::string& column) -> std::optional<size_t> {
    const auto it = std::find(header.begin(), header.end(), column);
    if (it == header.end()) return std::nullopt;
    return static_cast<size_t>(it - header.begin());
  };
  const std::optional<size_t> ts_column = find_column(columns.ts_us);
  const std::optional<size_t> chat_column = find_column(columns.chat);
  const std::optional<size_t> bytes_column = find_column(columns.bytes);
  for (const auto& [column, found, required] :
       {std::tuple(columns.ts_us, ts_column, true), std::tuple(columns.chat, chat_column, true),
        std::tuple(columns.bytes, bytes_column, columns.bytes_required)}) {
    if (!found && required) {
      return Status::Unavailable(fmt::format("{}:1: no column \"{}\" in the header ({})", name,
                                             column, fmt::join(header, ",")));
    }
    if (found && std::count(header.begin(), header.end(), column) > 1) {
      return Status::Unavailable(
          fmt::format("{}:1: column \"{}\" appears more than once in the header", name, column));
    }
  }
  const std::string ts_name = FieldName("ts_us", columns.ts_us);
  const std::string chat_name = FieldName("chat", columns.chat);
  const std::string bytes_name = FieldName("bytes", columns.bytes);

  Traffic traffic;
  std::unordered_map<std::string, uint32_t, StringHash, std::equal_to<>> chat_index;
  // Empty when `fields` is a good row, else why not.
  auto check_row = [&](int64_t* ts_us, int64_t* bytes) -> std::string {
    if (fields.size() == 1 && fields[0].empty() && header.size() > 1) return "empty line";
    if (fields.size() != header.size()) {
      return fmt::format("expected {} fields (as in the header), got {}", header.size(),
                         fields.size());
    }
    if (std::string reason = ParseCount(fields[*ts_column], ts_name, ts_us); !reason.empty()) {
      return reason;
    }
    const std::string& chat = fields[*chat_column];
    if (chat.empty()) return chat_name + ": empty";
    if (!simdjson::validate_utf8(chat)) return chat_name + ": not valid UTF-8";
    *bytes = 0;
    if (bytes_column) return ParseCount(fields[*bytes_column], bytes_name, bytes);
    return {};
  };
  while (!records.done()) {
    std::string reason = records.Next(fields);
    ++traffic.lines;
    int64_t ts_us = 0;
    int64_t bytes = 0;
    if (reason.empty()) reason = check_row(&ts_us, &bytes);
    if (!reason.empty()) {
      const std::string report = fmt::format("{}:{}: {}", name, records.line(), reason);
      if (options.on_bad_line) options.on_bad_line(report);
      if (options.strict) return Status::InvalidArgument(report);
      ++traffic.skipped;
      continue;
    }
    const std::string& chat = fields[*chat_column];
    auto [it, inserted] = chat_index.try_emplace(chat, static_cast<uint32_t>(traffic.chats.size()));
    if (inserted) traffic.chats.push_back(chat);
    traffic.messages.push_back(
        TrafficMessage{.ts_us = ts_us, .chat = it->second, .bytes = static_cast<uint64_t>(bytes)});
  }
  return traffic;
}

std::string FormatJsonLines(const Traffic& traffic) {
  // Each chat id quoted and escaped once, as nlohmann::json writes strings.
  std::vector<std::string> quoted;
  quoted.reserve(traffic.chats.size());
  for (const std::string& chat : traffic.chats) quoted.push_back(nlohmann::json(chat).dump());
  std::string out;
  out.reserve(traffic.messages.size() * 64);
  for (const TrafficMessage& message : traffic.messages) {
    AppendJsonLine(&out, message.ts_us, quoted[message.chat], message.bytes);
  }
  return out;
}

void AppendJsonLine(std::string* out, int64_t ts_us, std::string_view quoted_chat,
                    uint64_t bytes) {
  fmt::format_to(std::back_inserter(*out), "{{\"ts_us\":{},\"chat\":{},\"bytes\":{}}}\n", ts_us,
                 quoted_chat, bytes);
}

Subcommand AddConvertCommand(CLI::App& app) {
  auto flags = std::make_shared<ConvertFlags>();
  CLI::App* command = app.add_subcommand(
      "convert",
      "Rewrite a traffic file as JSON Lines or in the compact binary format, from JSON Lines, "
      "binary or CSV with a header row. Without --from, IN named *.csv[.gz] is CSV and any "
      "other IN is JSON Lines or binary by its content; without --to, OUT named *.jsonl[.gz] "
      "or - (stdout) gets JSON Lines and any other OUT binary. OUT ending in .gz is "
      "gzip-compressed.");
  command->add_option("IN", flags->in, "Input traffic file; - reads standard input")->required();
  command->add_option("OUT", flags->out, "Output file; - writes standard output")->required();
  AddEnumFlag(*command, "--from", flags->from,
              {ConvertFormat::kJsonLines, ConvertFormat::kBinary, ConvertFormat::kCsv},
              &ConvertFormatName, "Input format (default: from IN's name and content)");
  AddEnumFlag(*command, "--to", flags->to, {ConvertFormat::kJsonLines, ConvertFormat::kBinary},
              &ConvertFormatName, "Output format (default: from OUT's name)");
  flags->csv_options = {
      command->add_option("--csv-ts", flags->csv.ts_us, "CSV column holding ts_us")
          ->capture_default_str(),
      command->add_option("--csv-chat", flags->csv.chat, "CSV column holding the chat id")
          ->capture_default_str(),
      command->add_option_function<std::string>(
          "--csv-bytes",
          [flags](const std::string& column) {
            flags->csv.bytes = column;
            flags->csv.bytes_required = true;
          },
          "CSV column holding bytes (default \"bytes\"; optional unless given)"),
  };
  command->add_flag("--strict", flags->strict,
                    "Stop at the first bad line (exit 1) instead of skipping and counting");
  return Subcommand{command, [flags] { return RunConvertCommand(*flags); }};
}

}  // namespace chatshard::cli
