// libFuzzer target: JSON Lines traffic files (gzip-compressed or not) through
// LoadTraffic, as `chatshard replay FILE` reads them.
//
// Invariants checked on every input, beyond "no crash, no sanitizer report":
// - every message names a chat that exists, and lines = messages + skipped;
// - an accepted file written back as JSON Lines loads again to the same chats
//   and messages (what `convert` relies on).
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "convert.h"
#include "fuzz_util.h"
#include "traffic_file.h"

namespace {

using chatshard::Result;
using chatshard::cli::FormatJsonLines;
using chatshard::cli::LoadOptions;
using chatshard::cli::LoadTraffic;
using chatshard::cli::Traffic;
using chatshard::fuzz::CheckTraffic;
using chatshard::fuzz::MemoryFile;
using chatshard::fuzz::Require;
using chatshard::fuzz::SameTraffic;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static MemoryFile file("traffic_jsonl_fuzz");
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  LoadOptions options;
  uint64_t reported = 0;
  options.on_bad_line = [&reported](std::string_view report) {
    Require(!report.empty(), "a bad line is reported with a reason");
    ++reported;
  };
  const Result<Traffic> loaded = LoadTraffic(file.Write(input), options);
  if (!loaded.ok()) return 0;
  const Traffic& traffic = loaded.value();
  CheckTraffic(traffic);
  if (traffic.format == chatshard::cli::TrafficFormat::kJsonLines) {
    Require(traffic.lines == traffic.messages.size() + traffic.skipped,
            "lines = messages + skipped");
    Require(reported == traffic.skipped, "every skipped line is reported");
  }

  const Result<Traffic> again = LoadTraffic(file.Write(FormatJsonLines(traffic)), LoadOptions{});
  Require(again.ok(), "JSON Lines written from an accepted file load again");
  Require(again->skipped == 0, "JSON Lines written from an accepted file have no bad line");
  SameTraffic(traffic, again.value());
  return 0;
}
