// `chatshard replay FILE --redis URL`: the replay through the Redis adapter
// instead of in-process. One process publishes the file with a Publisher (at
// the replay's --speed, as `produce` does) and consumes it with a Consumer
// whose engine is configured by the replay's engine flags; the handler is the
// replay's ReplayProbe, so order violations, duplicates and latency are
// measured as in-process, end to end meaning Publish called -> handler done.
// The report is the replay's (text and --json) with the adapter's counters
// added, and what was left in Redis afterwards.
//
// Keys: the streams of --prefix (default "chatshard-replay", so a replay never
// reads the streams a real producer fills), read by the consumer group
// "chatshard-replay". The streams must be empty at the start: entries already
// there would be delivered to the probe as well. The consumer trims what it
// acked, so a clean replay leaves them empty for the next one.
#ifndef CHATSHARD_TOOLS_CHATSHARD_REPLAY_REDIS_H_
#define CHATSHARD_TOOLS_CHATSHARD_REPLAY_REDIS_H_

#include <cstdint>
#include <string>

#include "chatshard/redis/options.h"
#include "chatshard/redis/stats.h"
#include "chatshard/stats.h"
#include "replay.h"
#include "traffic_file.h"

namespace CLI {
class App;
}  // namespace CLI

namespace chatshard::cli {

inline constexpr char kRedisReplayPrefix[] = "chatshard-replay";
inline constexpr char kRedisReplayGroup[] = "chatshard-replay";

// The replay's flags for the Redis path.
struct RedisReplayFlags {
  std::string url;  // --redis; empty: the replay runs in-process
  std::string prefix = kRedisReplayPrefix;
};

// Adds --redis and --prefix to the replay command.
void AddRedisReplayFlags(CLI::App& command, RedisReplayFlags& flags);

// The adapter's side of a replay through Redis.
struct RedisReplayCounters {
  uint64_t published = 0;       // XADDs Redis confirmed
  uint64_t publish_failed = 0;  // refused or answered with an error
  uint64_t unanswered = 0;      // no answer by the Publisher's Close deadline
  uint64_t not_published = 0;   // never sent: after a failure from Redis
  std::string first_publish_error;
  LatencySummary confirm_latency;  // Publish called -> stream id received
  uint64_t delivered = 0;          // entries the Consumer handed to its engine
  uint64_t acked = 0;              // XACKed (done or dead-lettered)
  uint64_t claimed = 0;            // taken over from the pending list
  uint64_t dead_lettered = 0;      // written to a dead-letter stream
  uint64_t reconnects = 0;         // publisher + consumer
  uint64_t publisher_round_trips = 0;
  uint64_t consumer_round_trips = 0;
  std::string close_error;  // the Consumer's Close, when not OK
  // Asked from Redis after the Consumer closed: entries of the replay's group
  // delivered and not acked, and entries still in the streams (acked and not
  // yet trimmed included). Unknown when Redis could not be asked.
  bool left_known = false;
  uint64_t pending_left = 0;
  uint64_t entries_left = 0;
};

struct RedisReplayResult {
  ReplayResult replay;  // as an in-process replay's; unprocessed = pending_left
  RedisReplayCounters redis;
};

// Runs the replay of `traffic` through Redis at `connection` (its address,
// credentials, prefix; partitions and routing are taken from config.engine).
// Errors: InvalidArgument for invalid options; Unavailable when Redis cannot
// be reached; FailedPrecondition when the streams are not empty or Redis
// refuses the layout.
Result<RedisReplayResult> ReplayThroughRedis(const Traffic& traffic, const ReplayConfig& config,
                                             redis::ConnectionOptions connection);

// Problems ReplayProblems does not see: unpublished messages, a failed Close,
// entries left pending. One per line, or empty.
std::string RedisReplayProblems(const RedisReplayResult& result);

// The whole `replay --redis` command once FILE is loaded: runs, prints the
// report, writes --json, and returns the exit code (exit_code.h).
int RunRedisReplay(const Traffic& traffic, const ReplayConfig& config,
                   const RedisReplayFlags& flags, double load_s);

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_REPLAY_REDIS_H_
