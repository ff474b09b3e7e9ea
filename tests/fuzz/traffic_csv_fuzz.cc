// libFuzzer target: CSV traffic (`chatshard convert in.csv out`), with the
// default column names ts_us, chat and bytes.
//
// Invariants checked on every input, beyond "no crash, no sanitizer report":
// - every message names a chat that exists, and every skipped row was
//   reported with a reason;
// - an accepted file written as JSON Lines parses back line by line to the
//   same messages.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "convert.h"
#include "fuzz_util.h"
#include "traffic_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using chatshard::Result;
  using chatshard::cli::CsvColumns;
  using chatshard::cli::LoadOptions;
  using chatshard::cli::ParseCsvTraffic;
  using chatshard::cli::ParsedLine;
  using chatshard::cli::Traffic;
  using chatshard::fuzz::Require;

  const std::string_view input(reinterpret_cast<const char*>(data), size);
  LoadOptions options;
  uint64_t reported = 0;
  options.on_bad_line = [&reported](std::string_view report) {
    Require(!report.empty(), "a bad row is reported with a reason");
    ++reported;
  };
  const Result<Traffic> parsed = ParseCsvTraffic(input, "fuzz.csv", CsvColumns{}, options);
  if (!parsed.ok()) {
    Require(!parsed.status().message().empty(), "a refused file says why");
    return 0;
  }
  const Traffic& traffic = parsed.value();
  chatshard::fuzz::CheckTraffic(traffic);
  Require(reported == traffic.skipped, "every skipped row is reported");

  const std::string lines = chatshard::cli::FormatJsonLines(traffic);
  size_t at = 0;
  for (const chatshard::cli::TrafficMessage& message : traffic.messages) {
    const size_t end = lines.find('\n', at);
    Require(end != std::string::npos, "one JSON line per message");
    ParsedLine line;
    const std::string error =
        chatshard::cli::ParseTrafficLine(std::string_view(lines).substr(at, end - at), &line);
    Require(error.empty(), "a JSON line written from CSV parses");
    Require(line.ts_us == message.ts_us && line.bytes == message.bytes &&
                line.chat == traffic.chats[message.chat],
            "a JSON line written from CSV says what the row said");
    at = end + 1;
  }
  Require(at == lines.size(), "nothing after the last line");
  return 0;
}
