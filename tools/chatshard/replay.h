// `chatshard replay`: submits a captured traffic file to an Engine from one
// thread, at the recorded pace scaled by a factor or as fast as possible, and
// measures what the engine did with it: loss, per-chat order, latency,
// per-shard load, fairness and how well a hot chat is isolated.
#ifndef CHATSHARD_TOOLS_CHATSHARD_REPLAY_H_
#define CHATSHARD_TOOLS_CHATSHARD_REPLAY_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "chatshard/engine.h"
#include "command.h"
#include "replay_probe.h"
#include "timeline.h"
#include "traffic_file.h"
#include "work_spec.h"

namespace chatshard::cli {

struct ReplayConfig {
  std::string path;  // traffic file; "-" is standard input
  Options engine;
  // 0 replays as fast as possible; otherwise message i is submitted no
  // earlier than (ts_us[i] - ts_us[0]) / speed after the first.
  double speed = 0;
  WorkSpec work;  // simulated cost of each handler run (none by default)
  bool strict = false;    // stop at the first bad line of the file
  std::string json_path;  // also write the result as JSON here, if set
  std::string html_path;  // also write the report as an HTML page here, if set
  bool progress = true;   // show progress on stderr while replaying (progress.h)
};

// End-to-end latency (accepted -> handler finished) of a group of messages.
struct GroupLatency {
  uint64_t messages = 0;  // of the group, handled
  LatencySummary end_to_end;
};

// One non-empty bucket of a latency histogram: `count` values in
// (lower_us, upper_us].
struct LatencyBucket {
  double lower_us = 0;
  double upper_us = 0;
  uint64_t count = 0;
};

// How the hottest chat's neighbours fared.
struct Isolation {
  bool known = false;  // false when the engine reported no hot chat
  std::string hot_chat;
  uint32_t hot_shard = 0;
  uint64_t hot_chat_messages = 0;  // in the file
  GroupLatency hot_chat_latency;   // the hot chat itself
  GroupLatency hot_shard_others;   // the other chats of its shard
  GroupLatency other_shards;       // the chats of every other shard
};

// What one replay measured.
struct ReplayResult {
  uint64_t messages = 0;   // loaded from the file
  uint64_t chats = 0;      // distinct chat ids in the file
  uint64_t bad_lines = 0;  // skipped while loading
  uint64_t accepted = 0;   // Submit answered kAccepted
  uint64_t rejected = 0;   // Submit answered anything else, after any backpressure
  std::array<uint64_t, kSubmitResultCount> rejected_by_reason{};
  // Submit answered kShardFull, kChatOverQuota or kTooManyChats and the
  // replay paused and tried the same message again: once per pause.
  uint64_t backpressure_waits = 0;
  uint64_t completed = 0;   // engine: finished kDone
  uint64_t failed = 0;      // engine: finished failed
  uint64_t handled = 0;     // handler runs seen by the replay's own probe
  uint64_t duplicates = 0;  // handler runs of a message that had already run
  // Handler runs of a message after a later message of the same chat.
  uint64_t order_violations = 0;
  uint64_t corrupt = 0;      // handler runs of a message the replay did not send
  uint64_t unprocessed = 0;  // handed back by Shutdown
  bool shutdown_deadline_reached = false;
  double duration_s = 0;        // first Submit -> Shutdown returned
  double throughput_per_s = 0;  // completed / duration_s
  LatencySummary end_to_end;    // over all handled messages
  // The histogram behind end_to_end, fastest bucket first.
  std::vector<LatencyBucket> end_to_end_histogram;
  Timeline timeline;            // accepted and completed over time
  StatsSnapshot stats;          // the engine's, taken after Shutdown
  Isolation isolation;
};

// Runs the replay of already loaded `traffic`. Fails only when the engine
// cannot be created (InvalidArgument for invalid options).
Result<ReplayResult> Replay(const Traffic& traffic, const ReplayConfig& config);

// Whether the result breaks a replay's promises (see kExitRunFailed); the
// reasons, one per line, or empty.
std::string ReplayProblems(const ReplayResult& result, const ReplayConfig& config);

// Fills result's run counts (handled, duplicates, order_violations, corrupt),
// end_to_end latency and histogram, isolation (around the hottest chat of
// result.stats) and timeline (over [start, start + span)) from what `probe`
// recorded, in one pass. chat_shard[c] is chat c's shard. Call it once every
// handler run has returned (see ReplayProbe). Used by replay_redis.cc too.
void SummarizeRuns(const Traffic& traffic, const std::vector<uint32_t>& chat_shard,
                   const ReplayProbe& probe, Clock::time_point start, Clock::duration span,
                   ReplayResult& result);

// Registers `replay` on `app`.
Subcommand AddReplayCommand(CLI::App& app);

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_REPLAY_H_
