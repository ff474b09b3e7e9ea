// chatshard: the command-line companion of the chatshard engine.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <vector>

#include "analyze.h"
#include "command.h"
#include "convert.h"
#include "exit_code.h"
#include "gen.h"
#include "produce.h"
#include "replay.h"
#include "route.h"
#include "serve.h"

#ifndef CHATSHARD_VERSION
#error "CHATSHARD_VERSION must be defined by the build"
#endif

int main(int argc, char** argv) {
  using namespace chatshard::cli;  // NOLINT(build/namespaces): main only

  CLI::App app(
      "chatshard: replay captured chat traffic into the chatshard engine and see how "
      "it routes, orders and isolates chats.",
      "chatshard");
  app.set_version_flag("--version", "chatshard " CHATSHARD_VERSION);
  app.require_subcommand(1);
  app.footer("Run 'chatshard <command> --help' for a command's options.");

  const std::vector<Subcommand> commands = {
      AddReplayCommand(app),
      AddRouteCommand(app),
      AddConvertCommand(app),
      AddGenCommand(app),
      AddAnalyzeCommand(app),
      AddProduceCommand(app),
      AddServeCommand(app),
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    // Help and version print and succeed; every other parse error is usage.
    return app.exit(error) == 0 ? kExitOk : kExitUsage;
  }

  try {
    for (const Subcommand& command : commands) {
      if (command.app->parsed()) return command.run();
    }
  } catch (const std::exception& error) {
    // Not expected: the engine reports errors as values. An allocation failure
    // or a bug ends here rather than in std::terminate.
    fmt::print(stderr, "chatshard: {}\n", error.what());
    return kExitRunFailed;
  }
  return kExitUsage;
}
