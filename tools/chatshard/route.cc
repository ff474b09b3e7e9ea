#include "route.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "chatshard/options.h"
#include "chatshard/routing.h"
#include "enum_flag.h"
#include "exit_code.h"

namespace chatshard::cli {
namespace {

struct RouteFlags {
  Options options;  // only partitions and routing are used
  std::vector<std::string> chats;
};

int RunRouteCommand(const RouteFlags& flags) {
  if (const Status valid = flags.options.Validate(); !valid.ok()) {
    fmt::print(stderr, "chatshard route: invalid options:\n{}\n", valid.message());
    return kExitUsage;
  }
  const auto print = [&flags](std::string_view chat) {
    fmt::print("{}\t{}\n", chat, ShardFor(chat, flags.options.partitions, flags.options.routing));
  };
  if (!flags.chats.empty()) {
    for (const std::string& chat : flags.chats) print(chat);
  } else {
    std::string line;
    while (std::getline(std::cin, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) print(line);
    }
    if (std::cin.bad()) {
      fmt::print(stderr, "chatshard route: cannot read standard input\n");
      return kExitFileError;
    }
  }
  std::fflush(stdout);
  return std::ferror(stdout) ? kExitFileError : kExitOk;
}

}  // namespace

Subcommand AddRouteCommand(CLI::App& app) {
  auto flags = std::make_shared<RouteFlags>();
  CLI::App* command = app.add_subcommand(
      "route",
      "Print \"<chat>\\t<shard>\" for each CHAT (or each line of standard input when no CHAT "
      "is given), as the engine would route it.");
  command->add_option("--partitions", flags->options.partitions, "Number of shards")->required();
  AddEnumFlag(*command, "--routing", flags->options.routing, {Routing::kModulo, Routing::kJump},
              &RoutingName, "modulo: fnv1a32 % partitions; jump: jump consistent hash");
  command->add_option("CHAT", flags->chats, "Chat ids; none: read one per line from stdin");
  return Subcommand{command, [flags] { return RunRouteCommand(*flags); }};
}

}  // namespace chatshard::cli
