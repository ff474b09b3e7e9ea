// How every subcommand that reads a traffic file talks about it on stderr,
// in one place so that replay, analyze and convert say the same things:
// each bad line as "<file>:<line>: <reason>", a failed load as
// "chatshard <command>: <why>", and the count of skipped lines.
#ifndef CHATSHARD_TOOLS_CHATSHARD_LOAD_MESSAGES_H_
#define CHATSHARD_TOOLS_CHATSHARD_LOAD_MESSAGES_H_

#include <string_view>

#include "chatshard/status.h"
#include "traffic_file.h"

namespace chatshard::cli {

// LoadOptions that print each bad line to stderr as it is found.
LoadOptions PrintingLoadOptions(bool strict);

// Prints why a load failed (a --strict stop, or the file's error) and returns
// kExitFileError.
int ReportLoadFailure(std::string_view command, const Status& status);

// Prints "chatshard <command>: skipped N bad line(s) of M" when N > 0.
void ReportSkippedLines(std::string_view command, const Traffic& traffic);

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_LOAD_MESSAGES_H_
