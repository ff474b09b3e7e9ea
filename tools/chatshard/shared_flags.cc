#include "shared_flags.h"

#include <CLI/CLI.hpp>
#include <string>
#include <string_view>

#include "chatshard/options.h"
#include "enum_flag.h"
#include "pacer.h"
#include "redis_url.h"
#include "work_spec.h"

namespace chatshard::cli {

void AddEngineFlags(CLI::App& command, Options& engine) {
  command.add_option("--partitions", engine.partitions, "Number of shards")->capture_default_str();
  command
      .add_option("--concurrency", engine.concurrency,
                   "Messages of one shard that may run at the same time")
      ->capture_default_str();
  AddEnumFlag(command, "--ordering", engine.ordering, {Ordering::kPerChat, Ordering::kNone},
              &OrderingName,
              "per_chat: one chat's messages run one at a time, in order; none: any order");
  AddEnumFlag(command, "--routing", engine.routing, {Routing::kModulo, Routing::kJump},
              &RoutingName, "modulo: fnv1a32 % partitions; jump: jump consistent hash");
  command
      .add_option("--quantum", engine.quantum,
                   "Messages a chat runs per turn before the next chat of its shard")
      ->capture_default_str();
  command
      .add_option("--threads", engine.threads,
                   "Threads of the engine's task arena; 0 = as many as CPUs")
      ->capture_default_str();
  command
      .add_option("--shard-capacity", engine.shard_capacity,
                   "Unfinished messages a shard holds before Submit answers kShardFull")
      ->capture_default_str();
  command
      .add_option("--chat-quota", engine.chat_quota,
                   "Unfinished messages a chat holds before Submit answers kChatOverQuota; "
                   "0 = no quota")
      ->capture_default_str();
}

void AddWorkFlags(CLI::App& command, WorkFlags& flags) {
  command
      .add_option("--work-us", flags.work_us,
                   "Work per handler run in microseconds: US, uniform:LO-HI, exp:MEAN or "
                   "lognormal:MEDIAN,SIGMA (sampled per message, the same in every run)")
      ->check(
          [](const std::string& text) -> std::string {
            const Result<WorkSpec> spec = WorkSpec::Parse(text);
            if (spec.ok()) return "";
            // CLI11 names the flag itself: drop the "--work-us " the message starts with.
            std::string_view message = spec.status().message();
            if (message.starts_with("--work-us ")) message.remove_prefix(10);
            return std::string(message);
          },
          "US|DIST")
      ->capture_default_str();
  AddEnumFlag(command, "--work-mode", flags.work_mode, {WorkMode::kBusy, WorkMode::kSleep},
              &WorkModeName,
              "busy: the handler spins (CPU-bound work); sleep: it sleeps (I/O-bound work)");
}

CLI::Option* AddRedisUrlFlag(CLI::App& command, std::string& url, const std::string& what) {
  return command
      .add_option("--redis", url,
                  what + "redis://[user:password@]host[:port][/db] or unix:///path[?db=N]")
      ->check(
          [](const std::string& text) -> std::string {
            const Result<RedisUrl> parsed = ParseRedisUrl(text);
            return parsed.ok() ? "" : std::string(parsed.status().message());
          },
          "URL");
}

CLI::Option* AddSpeedFlag(CLI::App& command, std::string& speed, const std::string& description) {
  return command.add_option("--speed", speed, description)
      ->check(
          [](const std::string& text) -> std::string {
            return ParseSpeed(text) ? "" : "expected 'max' or a factor > 0, got '" + text + "'";
          },
          "max|FACTOR")
      ->capture_default_str();
}

}  // namespace chatshard::cli
