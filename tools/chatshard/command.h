// How the chatshard command is put together: each subcommand lives in its own
// file and exposes one `Subcommand Add<Name>Command(CLI::App& app)` that
// declares its flags on a CLI11 subcommand and returns the function that runs
// it once the command line has been parsed. main.cc lists them; adding a
// subcommand is one new file and one line there.
#ifndef CHATSHARD_TOOLS_CHATSHARD_COMMAND_H_
#define CHATSHARD_TOOLS_CHATSHARD_COMMAND_H_

#include <functional>

namespace CLI {
class App;
}  // namespace CLI

namespace chatshard::cli {

struct Subcommand {
  CLI::App* app = nullptr;  // owned by the parent App
  // Runs the subcommand with the parsed flags; returns the process exit code
  // (see exit_code.h).
  std::function<int()> run;
};

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_COMMAND_H_
