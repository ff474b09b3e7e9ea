// `chatshard gen`: synthetic traffic files. Chats "chat/1" .. "chat/N" get
// Zipf-distributed popularity (rank k has weight k^-s), named hot chats take
// fixed shares of the stream, bursts add N messages of one chat at once every
// T seconds, arrivals are a Poisson process of the given mean rate, and sizes
// follow a fixed, uniform or lognormal distribution.
//
// Deterministic for a seed: the only randomness is std::mt19937_64 (its output
// is fixed by the standard), turned into uniform doubles, exponential, normal
// and Zipf draws by code in gen.cc that uses only +, -, *, /, sqrt, frexp and
// ldexp (all exactly rounded in IEEE 754), never the std:: distributions or
// libm's log/exp, whose results may differ between implementations. So the
// same flags and seed give a byte-identical file on every platform, as long as
// the compiler does not fuse multiply-adds (-ffp-contract=off, or a target
// without FMA such as the default x86-64 one). A .gz file is byte-identical
// for the same zlib version.
//
// Plain functions and values; safe to use from several threads.
#ifndef CHATSHARD_TOOLS_CHATSHARD_GEN_H_
#define CHATSHARD_TOOLS_CHATSHARD_GEN_H_

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "chatshard/status.h"
#include "command.h"

namespace chatshard::cli {

// A named chat that takes a fixed share of the background (non-burst) stream.
struct GenHotChat {
  std::string chat;
  double share = 0;  // in (0, 1); the shares of all hot chats sum to < 1
};

// `count` messages of `chat`, all with the same timestamp, at every multiple
// of `every_s` seconds of simulated time (the first at every_s).
struct GenBurst {
  std::string chat;
  uint64_t count = 0;  // >= 1
  double every_s = 0;  // > 0
};

// Message sizes in bytes.
struct GenSize {
  enum class Kind { kFixed, kUniform, kLognormal };
  Kind kind = Kind::kLognormal;
  uint64_t fixed = 0;   // kFixed: every message has this size
  uint64_t min = 0;     // kUniform: uniform integer in [min, max]
  uint64_t max = 0;     //
  double median = 120;  // kLognormal: median * e^(sigma Z), Z standard normal,
  double sigma = 1.0;   //   rounded to the nearest integer, at least 1
};

// Parses "fixed:N", "uniform:A..B" or "lognormal:MEDIAN,SIGMA"; empty on
// success, else why `text` is not one of them.
std::string ParseGenSize(std::string_view text, GenSize* out);
// Parses "CHAT=SHARE" (split at the last '=').
std::string ParseGenHotChat(std::string_view text, GenHotChat* out);
// Parses "CHAT=N/SECONDS" (split at the last '=').
std::string ParseGenBurst(std::string_view text, GenBurst* out);

struct GenConfig {
  uint64_t chats = 1000;        // Zipf chats "chat/1" .. "chat/<chats>", 1..10'000'000
  uint64_t messages = 100'000;  // messages written, bursts included
  double zipf = 1.0;            // Zipf exponent s >= 0 (0 = uniform popularity)
  std::vector<GenHotChat> hot;  // fixed shares of the non-burst stream
  std::vector<GenBurst> bursts;
  double rate = 1000;  // mean rate of the non-burst stream, messages/s, > 0
  GenSize size;
  uint64_t seed = 1;
};

// Every problem with `config` at once, one line each, naming the flag and the
// value ("--zipf -1: must be >= 0"); OK when valid.
Status ValidateGenConfig(const GenConfig& config);

// Calls `emit` for each generated message in time order. `config` must be
// valid.
void GenerateTraffic(
    const GenConfig& config,
    const std::function<void(int64_t ts_us, std::string_view chat, uint64_t bytes)>& emit);

// Writes the traffic as JSON Lines to `path` ("-" = standard output), gzip
// when `path` ends in ".gz". Unavailable when the file cannot be written.
Status WriteGeneratedTraffic(const GenConfig& config, const std::string& path);

// Registers `gen` on `app`.
Subcommand AddGenCommand(CLI::App& app);

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_GEN_H_
