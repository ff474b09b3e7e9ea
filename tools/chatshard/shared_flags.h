// Flags that more than one subcommand takes, declared and checked in one
// place so every subcommand spells and validates them the same way: the
// engine's options and the simulated handler cost (replay, serve), the Redis
// URL (produce, replay --redis, serve) and the pace (replay, produce).
#ifndef CHATSHARD_TOOLS_CHATSHARD_SHARED_FLAGS_H_
#define CHATSHARD_TOOLS_CHATSHARD_SHARED_FLAGS_H_

#include <string>

#include "chatshard/options.h"
#include "work_spec.h"

namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace chatshard::cli {

// Adds --partitions, --concurrency, --ordering, --routing, --quantum,
// --threads, --shard-capacity and --chat-quota, stored into `options`, which
// must outlive the parse. Values are range-checked by Options::Validate after
// parsing, which names every bad field at once.
void AddEngineFlags(CLI::App& command, Options& options);

// --work-us (checked by WorkSpec::Parse) and --work-mode.
struct WorkFlags {
  std::string work_us = "0";
  WorkMode work_mode = WorkMode::kBusy;

  // The parsed spec; call after a successful parse (the text was checked).
  WorkSpec Spec() const { return WorkSpec::Parse(work_us, work_mode).value(); }
};
void AddWorkFlags(CLI::App& command, WorkFlags& flags);

// --redis URL, checked by ParseRedisUrl (redis_url.h); `what` starts its
// description, the accepted forms follow.
CLI::Option* AddRedisUrlFlag(CLI::App& command, std::string& url, const std::string& what);

// --speed max|FACTOR, checked by ParseSpeed (pacer.h), default shown.
CLI::Option* AddSpeedFlag(CLI::App& command, std::string& speed, const std::string& description);

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_SHARED_FLAGS_H_
