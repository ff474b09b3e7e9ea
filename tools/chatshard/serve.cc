#include "serve.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <httplib.h>
#include <poll.h>
#include <prometheus/registry.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "chatshard/options.h"
#include "chatshard/redis/options.h"
#include "chatshard/routing.h"
#include "chatshard/stats.h"
#include "shared_flags.h"
#include "exit_code.h"
#include "metrics.h"
#include "redis_url.h"
#include "report.h"
#include "work_spec.h"

extern char** environ;

namespace chatshard::cli {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// The variables ExecHandler sets per message; inherited values of the same
// names are dropped so a command never sees a stale one.
constexpr std::array<std::string_view, 5> kExecVariables = {
    "CHATSHARD_CHAT_ID", "CHATSHARD_STREAM_ID", "CHATSHARD_ATTEMPT", "CHATSHARD_SHARD",
    "CHATSHARD_REDELIVERED"};
// The exit status by which an --exec command asks for a retry (sysexits.h).
constexpr int kExitTempFail = 75;

std::vector<std::string> CopyEnvironment() {
  std::vector<std::string> out;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text(*entry);
    const bool ours = std::any_of(kExecVariables.begin(), kExecVariables.end(),
                                  [text](std::string_view name) {
                                    return text.size() > name.size() && text.starts_with(name) &&
                                           text[name.size()] == '=';
                                  });
    if (!ours) out.emplace_back(text);
  }
  return out;
}

std::string SignalName(int signal) {
  const char* abbrev = sigabbrev_np(signal);
  return abbrev != nullptr ? fmt::format("SIG{}", abbrev) : fmt::format("signal {}", signal);
}

// A pidfd for `pid`, or -1 where the kernel has none (poll then falls back to
// short sleeps).
int OpenPidFd(pid_t pid) {
#ifdef SYS_pidfd_open
  return static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

}  // namespace

std::string HttpAddress::ToString() const {
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

Result<HttpAddress> ParseHttpAddress(std::string_view text) {
  const auto invalid = [text](std::string_view why) {
    return Status::InvalidArgument(fmt::format("--http '{}': {}", text, why));
  };
  HttpAddress address;
  std::string_view port;
  if (text.starts_with('[')) {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return invalid("an IPv6 address needs its closing ']'");
    address.host = std::string(text.substr(1, close - 1));
    if (address.host.empty()) return invalid("the IPv6 address between [ and ] is empty");
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      return invalid("expected ':PORT' after the ']'");
    }
    port = text.substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      return invalid("expected HOST:PORT, [V6ADDR]:PORT or :PORT");
    }
    address.host = std::string(text.substr(0, colon));
    if (address.host.find(':') != std::string::npos) {
      return invalid("an IPv6 address goes in brackets: [V6ADDR]:PORT");
    }
    if (address.host.empty()) address.host = "0.0.0.0";
    port = text.substr(colon + 1);
  }
  int value = -1;
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || error != std::errc() || end != port.data() + port.size() || value < 0 ||
      value > 65535) {
    return invalid(fmt::format("the port must be a number 0..65535, got '{}'", port));
  }
  address.port = value;
  return address;
}

ExecHandler::ExecHandler(std::string command, milliseconds timeout)
    : command_(std::move(command)), timeout_(timeout), base_environment_(CopyEnvironment()) {}

void ExecHandler::KillAll() {
  std::lock_guard<std::mutex> lock(mu_);
  killing_ = true;
  for (const pid_t pid : running_) kill(-pid, SIGKILL);
}

Outcome ExecHandler::Run(const redis::StreamMessage& message) {
  std::vector<std::string> environment = base_environment_;
  environment.push_back(fmt::format("CHATSHARD_CHAT_ID={}", message.chat_id));
  environment.push_back(fmt::format("CHATSHARD_STREAM_ID={}", message.stream_id));
  environment.push_back(fmt::format("CHATSHARD_ATTEMPT={}", message.attempt));
  environment.push_back(fmt::format("CHATSHARD_SHARD={}", message.shard));
  environment.push_back(fmt::format("CHATSHARD_REDELIVERED={}", message.redelivered ? 1 : 0));
  std::vector<char*> envp;
  envp.reserve(environment.size() + 1);
  for (std::string& entry : environment) envp.push_back(entry.data());
  envp.push_back(nullptr);

  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    throw std::runtime_error(fmt::format("exec: pipe: {}", std::strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[0], STDIN_FILENO);
  // Nothing of serve's (Redis sockets, the HTTP listener) leaks into the command.
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF);
  posix_spawnattr_setpgroup(&attr, 0);  // a group of its own: Ctrl-C reaches serve only
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);  // serve blocks SIGINT/SIGTERM; the command must not
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int signal : {SIGPIPE, SIGINT, SIGTERM, SIGCHLD}) sigaddset(&defaults, signal);
  posix_spawnattr_setsigdefault(&attr, &defaults);  // serve ignores SIGPIPE

  std::string shell = "/bin/sh";
  std::string dash_c = "-c";
  std::string command = command_;
  char* argv[] = {shell.data(), dash_c.data(), command.data(), nullptr};
  pid_t pid = -1;
  const int spawned = posix_spawn(&pid, "/bin/sh", &actions, &attr, argv, envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close(pipe_fds[0]);
  if (spawned != 0) {
    close(pipe_fds[1]);
    throw std::runtime_error(fmt::format("exec: cannot start /bin/sh: {}", std::strerror(spawned)));
  }
  bool killed_by_shutdown = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_.insert(pid);
    if (killing_) {
      kill(-pid, SIGKILL);
      killed_by_shutdown = true;
    }
  }

  // Feed the payload without blocking (a command that never reads its input
  // must still time out), and wait for the exit on a pidfd.
  int write_fd = pipe_fds[1];
  fcntl(write_fd, F_SETFL, fcntl(write_fd, F_GETFL) | O_NONBLOCK);
  std::string_view unsent = message.payload;
  if (unsent.empty()) {
    close(write_fd);
    write_fd = -1;
  }
  const int pid_fd = OpenPidFd(pid);
  const Clock::time_point deadline = Clock::now() + timeout_;
  bool timed_out = false;
  int status = 0;
  for (;;) {
    if (write_fd >= 0) {
      const ssize_t n = write(write_fd, unsent.data(), unsent.size());
      if (n > 0) unsent.remove_prefix(static_cast<size_t>(n));
      if (unsent.empty() || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        close(write_fd);  // all sent, or the command closed its input (EPIPE)
        write_fd = -1;
      }
    }
    const pid_t waited = waitpid(pid, &status, WNOHANG);
    if (waited == pid) break;
    if (waited < 0 && errno != EINTR) {
      status = -1;
      break;
    }
    int wait_ms = pid_fd >= 0 ? 100 : 1;
    if (timeout_.count() > 0) {
      const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) {
        kill(-pid, SIGKILL);
        timed_out = true;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        break;
      }
      wait_ms = std::min<int>(wait_ms, static_cast<int>(left.count()) + 1);
    }
    std::array<pollfd, 2> fds{};
    nfds_t count = 0;
    if (pid_fd >= 0) fds[count++] = pollfd{pid_fd, POLLIN, 0};
    if (write_fd >= 0) fds[count++] = pollfd{write_fd, POLLOUT, 0};
    poll(fds.data(), count, wait_ms);
  }
  if (write_fd >= 0) close(write_fd);
  if (pid_fd >= 0) close(pid_fd);
  {
    std::lock_guard<std::mutex> lock(mu_);
    running_.erase(pid);
    killed_by_shutdown = killed_by_shutdown || (killing_ && !timed_out);
  }

  if (killed_by_shutdown) return Outcome::kRetry;  // stays pending in Redis
  if (timed_out) {
    throw std::runtime_error(
        fmt::format("exec: the command ran longer than {} ms and was killed", timeout_.count()));
  }
  if (status == -1) throw std::runtime_error("exec: lost track of the command's process");
  if (WIFEXITED(status)) {
    const int code = WEXITSTATUS(status);
    if (code == 0) return Outcome::kDone;
    if (code == kExitTempFail) return Outcome::kRetry;
    throw std::runtime_error(fmt::format("exec: the command exited with status {}", code));
  }
  if (WIFSIGNALED(status)) {
    throw std::runtime_error(
        fmt::format("exec: the command was killed by {}", SignalName(WTERMSIG(status))));
  }
  throw std::runtime_error(fmt::format("exec: the command ended with wait status {}", status));
}

namespace {

// The flags of `chatshard serve` as parsed.
struct ServeFlags {
  std::string url;
  std::string http = "127.0.0.1:8080";
  redis::ConsumerOptions consumer;
  Options engine;
  WorkFlags work;
  std::string exec;
  uint32_t exec_timeout_ms = 30'000;
  uint32_t drain_ms = 10'000;
};

// The key a message's simulated cost is sampled by: its stream id, so a
// redelivery costs the same as the first delivery.
uint64_t WorkKey(std::string_view stream_id) {
  return std::hash<std::string_view>{}(stream_id);
}

std::string DefaultConsumerName() {
  std::array<char, 256> host{};
  if (gethostname(host.data(), host.size() - 1) != 0 || host[0] == '\0') return "serve";
  return fmt::format("serve-{}", host.data());
}

// Everything the HTTP handlers read. The consumer outlives the server.
class ServeState {
 public:
  ServeState(const ServeFlags& flags, redis::Consumer& consumer)
      : flags_(flags), consumer_(consumer) {}

  void SetStopping() {
    // relaxed: a flag the handlers only report; nothing else is published by it.
    stopping_.store(true, std::memory_order_relaxed);
  }

  // /healthz: the engine's stall detector.
  void Healthz(httplib::Response& response) const {
    if (consumer_.engine().Healthy()) {
      response.set_content("ok\n", "text/plain");
      return;
    }
    response.status = 503;
    response.set_content(
        fmt::format("unhealthy: a shard has had unfinished work and finished none for more "
                    "than {} ms (stall_threshold)\n",
                    flags_.engine.stall_threshold.count()),
        "text/plain");
  }

  // /readyz: engine ready, Redis connected and past recovery, not stopping.
  void Readyz(httplib::Response& response) const {
    std::string reasons;
    if (stopping_.load(std::memory_order_relaxed)) reasons += "stopping: draining after a signal\n";
    if (!consumer_.engine().Ready()) reasons += "engine: not ready\n";
    if (!consumer_.Ready()) reasons += "redis: not connected or still recovering pending entries\n";
    if (reasons.empty()) {
      response.set_content("ready\n", "text/plain");
      return;
    }
    response.status = 503;
    response.set_content(reasons, "text/plain");
  }

  // /metrics: the Prometheus text exposition.
  void Metrics(httplib::Response& response) {
    const StatsSnapshot stats = consumer_.engine().Stats();
    const redis::RedisStats redis_stats = consumer_.Stats();
    std::string text;
    {
      std::lock_guard<std::mutex> lock(metrics_mu_);  // see metrics.h: updates must not overlap
      UpdateEngineMetrics(stats, registry_);
      UpdateRedisMetrics(redis_stats, registry_);
      SetGauge(registry_, "chatshard_ready", "1 while /readyz answers 200, else 0",
               IsReady() ? 1 : 0);
      SetGauge(registry_, "chatshard_healthy", "1 while /healthz answers 200, else 0",
               consumer_.engine().Healthy() ? 1 : 0);
      text = SerializeMetrics(registry_);
    }
    response.set_content(text, std::string(kMetricsContentType));
  }

  // /sharding: the replay report's shards and fairness, plus hot chats.
  void Sharding(httplib::Response& response) const {
    const StatsSnapshot stats = consumer_.engine().Stats();
    nlohmann::ordered_json out;
    out["partitions"] = flags_.engine.partitions;
    out["routing"] = std::string(RoutingName(flags_.engine.routing));
    out["ordering"] = std::string(OrderingName(flags_.engine.ordering));
    out["concurrency"] = flags_.engine.concurrency;
    out["prefix"] = flags_.consumer.connection.prefix;
    out["group"] = flags_.consumer.group;
    out["consumer"] = flags_.consumer.consumer;
    out["uptime_s"] = stats.uptime_s;
    out["shards"] = ShardsJson(stats.shards);
    out["fairness"] = FairnessJson(stats.fairness);
    nlohmann::ordered_json hot = nlohmann::ordered_json::array();
    for (const HotChat& chat : stats.hot_chats) {
      hot.push_back({{"chat", chat.chat_id},
                     {"shard", chat.shard},
                     {"count", chat.count},
                     {"error", chat.error}});
    }
    out["hot_chats"] = std::move(hot);
    response.set_content(out.dump(2) + "\n", "application/json");
  }

 private:
  bool IsReady() const {
    return !stopping_.load(std::memory_order_relaxed) && consumer_.engine().Ready() &&
           consumer_.Ready();
  }

  const ServeFlags& flags_;
  redis::Consumer& consumer_;
  std::atomic<bool> stopping_{false};
  std::mutex metrics_mu_;
  prometheus::Registry registry_;  // guarded by metrics_mu_ for updates
};

int RunServeCommand(ServeFlags& flags) {
  const Result<RedisUrl> url = ParseRedisUrl(flags.url);  // checked by the parser already
  const Result<HttpAddress> http = ParseHttpAddress(flags.http);
  if (!url.ok() || !http.ok()) {
    fmt::print(stderr, "chatshard serve: {}\n",
               !url.ok() ? url.status().message() : http.status().message());
    return kExitUsage;
  }
  redis::ConsumerOptions& options = flags.consumer;
  url->ApplyTo(options.connection);
  options.connection.partitions = flags.engine.partitions;
  options.connection.routing = flags.engine.routing;
  std::string problems;
  if (const Status valid = flags.engine.Validate(); !valid.ok()) {
    problems += std::string(valid.message()) + "\n";
  }
  if (const Status valid = options.Validate(); !valid.ok()) {
    problems += std::string(valid.message()) + "\n";
  }
  if (!problems.empty()) {
    fmt::print(stderr, "chatshard serve: invalid options:\n{}", problems);
    return kExitUsage;
  }

  // SIGINT and SIGTERM are taken by sigwait below: blocked here, before any
  // thread starts, so every thread (TBB's, hiredis', httplib's) inherits the
  // mask and none of them is interrupted. An --exec command's SIGPIPE must
  // not end serve.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  std::shared_ptr<ExecHandler> exec;
  if (!flags.exec.empty()) {
    exec = std::make_shared<ExecHandler>(flags.exec, milliseconds(flags.exec_timeout_ms));
  }
  const WorkSpec work = flags.work.Spec();
  redis::StreamHandler handler = [exec, work](const redis::StreamMessage& message) {
    if (!work.none()) work.Perform(WorkKey(message.stream_id));
    if (exec) return exec->Run(message);
    return Outcome::kDone;
  };

  Result<std::unique_ptr<redis::Consumer>> created =
      redis::Consumer::Create(options, flags.engine, std::move(handler));
  if (!created.ok()) {
    fmt::print(stderr, "chatshard serve: cannot start consuming {}: {}\n", url->Redacted(),
               created.status().ToString());
    return kExitRunFailed;
  }
  redis::Consumer& consumer = **created;
  ServeState state(flags, consumer);

  httplib::Server server;
  server.Get("/healthz", [&state](const httplib::Request&, httplib::Response& response) {
    state.Healthz(response);
  });
  server.Get("/readyz", [&state](const httplib::Request&, httplib::Response& response) {
    state.Readyz(response);
  });
  server.Get("/metrics", [&state](const httplib::Request&, httplib::Response& response) {
    state.Metrics(response);
  });
  server.Get("/sharding", [&state](const httplib::Request&, httplib::Response& response) {
    state.Sharding(response);
  });
  HttpAddress bound = *http;
  if (http->port == 0) {
    bound.port = server.bind_to_any_port(http->host);
  } else if (!server.bind_to_port(http->host, http->port)) {
    bound.port = -1;
  }
  if (bound.port <= 0) {
    fmt::print(stderr, "chatshard serve: cannot listen on {}: {}\n", http->ToString(),
               std::strerror(errno));
    (void)consumer.Close(milliseconds(flags.drain_ms));
    return kExitFileError;
  }
  std::thread http_thread([&server] { server.listen_after_bind(); });

  fmt::print(
      "chatshard serve: listening on http://{} (/healthz /readyz /metrics /sharding); consuming "
      "{} streams {}:{{0..{}}}:stream as {}/{}\n",
      bound.ToString(), url->Redacted(), options.connection.prefix,
      options.connection.partitions - 1, options.group, options.consumer);
  std::fflush(stdout);

  int received = 0;
  while (sigwait(&stop_signals, &received) != 0) {
  }
  fmt::print("chatshard serve: {}: draining, deadline {} ms\n", SignalName(received),
             flags.drain_ms);
  std::fflush(stdout);
  state.SetStopping();
  const Status closed = consumer.Close(milliseconds(flags.drain_ms));
  if (exec) exec->KillAll();  // whatever still runs past the deadline stays pending
  server.stop();
  http_thread.join();
  const redis::RedisStats stats = consumer.Stats();
  created.value().reset();  // the engine goes: every handler run has returned

  fmt::print("chatshard serve: stopped; {} delivered, {} acked, {} dead-lettered, {} claimed, "
             "{} reconnects\n",
             stats.delivered, stats.acked, stats.dead_lettered, stats.claimed, stats.reconnects);
  if (!closed.ok()) {
    fmt::print(stderr, "chatshard serve: {} (they stay pending in Redis for the next consumer)\n",
               closed.message());
    // Close may have left its I/O thread running (Redis unreachable, or a
    // handler that never returned): it still owns the engine, whose handler
    // refers to this function's locals. Leave without running destructors
    // rather than race them; the unfinished entries stay pending in Redis.
    std::fflush(stdout);
    std::fflush(stderr);
    std::_Exit(kExitRunFailed);
  }
  return kExitOk;
}

}  // namespace

Subcommand AddServeCommand(CLI::App& app) {
  auto flags = std::make_shared<ServeFlags>();
  flags->consumer.consumer = DefaultConsumerName();
  CLI::App* command = app.add_subcommand(
      "serve",
      "Consume the Redis shard streams into an engine, run each message through a handler "
      "(no-op, a simulated cost, or a command), and serve /healthz, /readyz, /metrics "
      "(Prometheus) and /sharding (JSON) until SIGINT or SIGTERM, then drain.");
  command->footer(
      "--exec runs /bin/sh -c CMD per message with the payload on stdin and CHATSHARD_CHAT_ID, "
      "CHATSHARD_STREAM_ID, CHATSHARD_ATTEMPT, CHATSHARD_SHARD, CHATSHARD_REDELIVERED set; exit "
      "0 is done, 75 retry, anything else fails the message (dead-lettered after "
      "--max-attempts).\n"
      "Exit codes: 0 stopped by a signal and drained; 1 the HTTP address cannot be bound; 2 bad "
      "usage or invalid options; 3 Redis cannot be reached or refused the layout, or the drain "
      "left entries unacked (they stay pending in Redis).");
  AddRedisUrlFlag(*command, flags->url, "")->required();
  command
      ->add_option("--http", flags->http,
                   "Address to serve HTTP on: HOST:PORT, [V6ADDR]:PORT or :PORT (all IPv4 "
                   "interfaces); port 0 picks a free one (printed at start)")
      ->check(
          [](const std::string& text) -> std::string {
            const Result<HttpAddress> address = ParseHttpAddress(text);
            return address.ok() ? "" : std::string(address.status().message());
          },
          "ADDR")
      ->capture_default_str();
  AddEngineFlags(*command, flags->engine);
  command->add_option("--max-attempts", flags->engine.max_attempts,
                      "Runs of a message (retries included) before it is dead-lettered")
      ->capture_default_str();
  command
      ->add_option("--prefix", flags->consumer.connection.prefix,
                   "Key prefix: streams are <prefix>:{<shard>}:stream")
      ->capture_default_str();
  command->add_option("--group", flags->consumer.group, "Consumer group")->capture_default_str();
  command
      ->add_option("--consumer", flags->consumer.consumer,
                   "This process' name in the group; a restart under the same name takes its "
                   "pending entries back at once")
      ->capture_default_str();
  AddWorkFlags(*command, flags->work);
  command->add_option("--exec", flags->exec,
                      "Run this shell command per message (see below) after any --work-us");
  command
      ->add_option("--exec-timeout-ms", flags->exec_timeout_ms,
                   "Kill an --exec command after this long and fail the run; 0 = no limit")
      ->capture_default_str();
  command
      ->add_option("--drain-ms", flags->drain_ms,
                   "On SIGINT/SIGTERM: how long to finish and ack what was read")
      ->capture_default_str();
  return Subcommand{command, [flags] { return RunServeCommand(*flags); }};
}

}  // namespace chatshard::cli
