// `chatshard route`: prints the shard of each chat id, computed by
// chatshard::ShardFor, the function the engine routes with.
#ifndef CHATSHARD_TOOLS_CHATSHARD_ROUTE_H_
#define CHATSHARD_TOOLS_CHATSHARD_ROUTE_H_

#include "command.h"

namespace chatshard::cli {

// Registers `route` on `app`.
Subcommand AddRouteCommand(CLI::App& app);

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_ROUTE_H_
