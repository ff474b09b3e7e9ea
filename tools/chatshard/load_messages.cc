#include "load_messages.h"

#include <fmt/format.h>

#include <cstdio>

#include "exit_code.h"

namespace chatshard::cli {

LoadOptions PrintingLoadOptions(bool strict) {
  LoadOptions load;
  load.strict = strict;
  load.on_bad_line = [](std::string_view report) { fmt::print(stderr, "{}\n", report); };
  return load;
}

int ReportLoadFailure(std::string_view command, const Status& status) {
  if (status.code() == Status::Code::kInvalidArgument) {
    fmt::print(stderr, "chatshard {}: stopped at the first bad line (--strict)\n", command);
  } else {
    fmt::print(stderr, "chatshard {}: {}\n", command, status.message());
  }
  return kExitFileError;
}

void ReportSkippedLines(std::string_view command, const Traffic& traffic) {
  if (traffic.skipped > 0) {
    fmt::print(stderr, "chatshard {}: skipped {} bad line(s) of {}\n", command, traffic.skipped,
               traffic.lines);
  }
}

}  // namespace chatshard::cli
