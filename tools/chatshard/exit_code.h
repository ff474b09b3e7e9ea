// The exit codes of the chatshard command, shared by all its subcommands.
#ifndef CHATSHARD_TOOLS_CHATSHARD_EXIT_CODE_H_
#define CHATSHARD_TOOLS_CHATSHARD_EXIT_CODE_H_

namespace chatshard::cli {

enum ExitCode : int {
  kExitOk = 0,
  // An input file could not be read, held a bad line under --strict, or an
  // output file could not be written.
  kExitFileError = 1,
  // Bad command line or invalid engine options.
  kExitUsage = 2,
  // The run did not do what it promised: messages were lost (rejected,
  // failed, handed back unprocessed or run twice) or, with per-chat ordering,
  // a chat's messages ran out of order.
  kExitRunFailed = 3,
};

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_EXIT_CODE_H_
