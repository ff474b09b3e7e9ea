// `chatshard serve`: consumes the Redis shard streams with the Redis adapter
// into an in-process Engine, runs each message through a handler (no-op, a
// simulated cost, or an external command), and serves /healthz, /readyz,
// /metrics (Prometheus) and /sharding (JSON) over HTTP until SIGINT or
// SIGTERM, then drains within a deadline.
#ifndef CHATSHARD_TOOLS_CHATSHARD_SERVE_H_
#define CHATSHARD_TOOLS_CHATSHARD_SERVE_H_

#include <sys/types.h>

#include <chrono>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "chatshard/message.h"
#include "chatshard/redis/consumer.h"
#include "chatshard/status.h"
#include "command.h"

namespace chatshard::cli {

// The --http ADDR of serve: "HOST:PORT", "[V6ADDR]:PORT" or ":PORT" (every
// IPv4 interface). PORT 0 asks the system for a free port.
struct HttpAddress {
  std::string host;  // without brackets
  int port = 0;

  // "HOST:PORT", with brackets around an IPv6 host.
  std::string ToString() const;
};
// InvalidArgument naming the text and what is wrong.
Result<HttpAddress> ParseHttpAddress(std::string_view text);

// The --exec handler: runs `command` with /bin/sh -c once per message, the
// payload on its standard input, and these variables added to serve's
// environment: CHATSHARD_CHAT_ID, CHATSHARD_STREAM_ID, CHATSHARD_ATTEMPT
// (1 on the first run of this delivery), CHATSHARD_SHARD and
// CHATSHARD_REDELIVERED (1 when taken over after a restart, else 0). Its
// standard output and error are serve's. The command runs in a process
// group of its own, so a terminal's Ctrl-C reaches serve only, and serve
// drains.
//
// Outcome: exit 0 is done; exit 75 (EX_TEMPFAIL) is retry (run again after
// the backoff, up to --max-attempts runs); any other exit, death by a signal,
// or running longer than the timeout (the group is killed) fails the message,
// which the adapter then dead-letters with the reason.
//
// Thread safety: Run may be called from any number of threads at once; Kill
// from any thread. Lives as long as the consumer whose handler calls it.
class ExecHandler {
 public:
  // The process' environment is copied now. timeout 0 means no limit.
  ExecHandler(std::string command, std::chrono::milliseconds timeout);

  // Runs one message. A failure is thrown as std::runtime_error whose what()
  // is the reason (the engine turns it into a failed outcome).
  Outcome Run(const redis::StreamMessage& message);

  // Kills (SIGKILL) the process group of every command still running and of
  // any started from now on: their runs answer kRetry, so the entries stay
  // pending in Redis. For the end of a shutdown, after the drain deadline.
  void KillAll();

 private:
  const std::string command_;
  const std::chrono::milliseconds timeout_;
  // "NAME=value" entries of the environment, without the CHATSHARD_* names
  // set per message.
  const std::vector<std::string> base_environment_;

  std::mutex mu_;
  std::set<pid_t> running_;  // spawned and not yet reaped; guarded by mu_
  bool killing_ = false;     // guarded by mu_
};

// Registers `serve` on `app`.
Subcommand AddServeCommand(CLI::App& app);

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_SERVE_H_
