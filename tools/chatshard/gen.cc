#include "gen.h"

#include <fmt/format.h>
#include <zlib.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <string>
#include <system_error>
#include <unordered_map>
#include <utility>

#include "convert.h"
#include "exit_code.h"

namespace chatshard::cli {
namespace {

constexpr uint64_t kMaxChats = 10'000'000;
constexpr uint64_t kMaxMessages = uint64_t{1} << 40;
constexpr double kMaxRate = 1e9;
constexpr double kMaxSpanS = 1e11;  // keeps ts_us far from INT64_MAX
constexpr double kMaxBytes = 1e12;  // the largest message size
constexpr double kLn2 = 0.6931471805599453094;
constexpr double kSqrtHalf = 0.7071067811865475244;

// ---- Deterministic arithmetic: +, -, *, /, sqrt, frexp and ldexp only. ----

// Natural log of a finite x > 0: x = m 2^e with m in [sqrt(1/2), sqrt(2)),
// ln m = 2 atanh(z) with z = (m - 1) / (m + 1), |z| < 0.172; 14 terms of the
// series leave an error below 1e-22.
double DeterministicLog(double x) {
  int exponent = 0;
  double m = std::frexp(x, &exponent);  // m in [0.5, 1)
  if (m < kSqrtHalf) {
    m *= 2;
    --exponent;
  }
  const double z = (m - 1) / (m + 1);
  const double z2 = z * z;
  double power = z;
  double sum = z;
  for (int k = 3; k <= 29; k += 2) {
    power *= z2;
    sum += power / k;
  }
  return 2 * sum + exponent * kLn2;
}

// e^x for |x| < 700: x = k ln2 + r with |r| <= ln2 / 2; 24 Taylor terms of
// e^r leave an error below 1e-24.
double DeterministicExp(double x) {
  const double k = std::floor(x / kLn2 + 0.5);
  const double r = x - k * kLn2;
  double term = 1;
  double sum = 1;
  for (int n = 1; n <= 24; ++n) {
    term *= r / n;
    sum += term;
  }
  return std::ldexp(sum, static_cast<int>(k));
}

// Uniform draws and distributions over std::mt19937_64.
class Random {
 public:
  explicit Random(uint64_t seed) : engine_(seed) {}

  // Uniform in [0, 1), a multiple of 2^-53.
  double Uniform() { return static_cast<double>(engine_() >> 11) * 0x1p-53; }
  // Uniform in (0, 1].
  double UniformPositive() { return static_cast<double>((engine_() >> 11) + 1) * 0x1p-53; }
  // Exponential with mean 1.
  double Exponential() { return -DeterministicLog(UniformPositive()); }
  // Standard normal (Marsaglia's polar method; one of each pair is used).
  double Normal() {
    for (;;) {
      const double u = 2 * Uniform() - 1;
      const double v = 2 * Uniform() - 1;
      const double s = u * u + v * v;
      if (s > 0 && s < 1) return u * std::sqrt(-2 * DeterministicLog(s) / s);
    }
  }
  // Uniform integer in [0, n), n >= 1, without modulo bias (rejection).
  uint64_t Below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    for (;;) {
      const uint64_t x = engine_();
      if (x < limit) return x % n;
    }
  }

 private:
  std::mt19937_64 engine_;
};

// Picks chat ranks 1..n with probability proportional to rank^-s by binary
// search over the cumulative weights.
class ZipfSampler {
 public:
  ZipfSampler(uint64_t n, double s) : cumulative_(n) {
    double total = 0;
    for (uint64_t rank = 1; rank <= n; ++rank) {
      total += s == 0 ? 1.0 : DeterministicExp(-s * DeterministicLog(static_cast<double>(rank)));
      cumulative_[rank - 1] = total;
    }
  }
  uint64_t Sample(Random& random) const {
    const double target = random.Uniform() * cumulative_.back();
    const auto it = std::upper_bound(cumulative_.begin(), cumulative_.end(), target);
    const auto index = static_cast<uint64_t>(it - cumulative_.begin());
    return std::min<uint64_t>(index, cumulative_.size() - 1) + 1;
  }

 private:
  std::vector<double> cumulative_;
};

uint64_t SampleSize(const GenSize& size, Random& random) {
  switch (size.kind) {
    case GenSize::Kind::kFixed:
      return size.fixed;
    case GenSize::Kind::kUniform:
      return size.min + random.Below(size.max - size.min + 1);
    case GenSize::Kind::kLognormal: {
      const double bytes = size.median * DeterministicExp(size.sigma * random.Normal());
      return static_cast<uint64_t>(std::clamp(std::floor(bytes + 0.5), 1.0, kMaxBytes));
    }
  }
  return 0;
}

// ---- Flag parsing. ----

template <typename Number>
bool ParseNumber(std::string_view text, Number* out) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return error == std::errc() && end == text.data() + text.size();
}

// Splits "CHAT=VALUE" at the last '='.
bool SplitAssignment(std::string_view text, std::string_view* chat, std::string_view* value) {
  const size_t equals = text.rfind('=');
  if (equals == std::string_view::npos) return false;
  *chat = text.substr(0, equals);
  *value = text.substr(equals + 1);
  return true;
}

// Output: a plain file (or stdout) or a gzip stream.
class TrafficWriter {
 public:
  static Result<std::unique_ptr<TrafficWriter>> Open(const std::string& path) {
    auto writer = std::unique_ptr<TrafficWriter>(new TrafficWriter(path));
    errno = 0;
    if (path == "-") {
      writer->plain_ = stdout;
    } else if (path.size() > 3 && path.ends_with(".gz")) {
      writer->gz_ = gzopen(path.c_str(), "wb");
      if (writer->gz_ != nullptr) gzbuffer(writer->gz_, 1 << 18);
    } else {
      writer->plain_ = std::fopen(path.c_str(), "wb");
    }
    if (writer->plain_ == nullptr && writer->gz_ == nullptr) {
      return Status::Unavailable(fmt::format("cannot open {} for writing: {}", path,
                                             errno != 0 ? std::strerror(errno) : "zlib error"));
    }
    return writer;
  }

  ~TrafficWriter() { static_cast<void>(Close()); }

  void Write(std::string_view text) {
    buffer_.append(text);
    if (buffer_.size() >= kFlushBytes) Flush();
  }

  Status Close() {
    Flush();
    bool closed_ok = ok_;
    if (gz_ != nullptr) {
      closed_ok = gzclose(gz_) == Z_OK && closed_ok;
      gz_ = nullptr;
    } else if (plain_ == stdout) {
      closed_ok = std::fflush(stdout) == 0 && closed_ok;
      plain_ = nullptr;
    } else if (plain_ != nullptr) {
      closed_ok = std::fclose(plain_) == 0 && closed_ok;
      plain_ = nullptr;
    }
    ok_ = closed_ok;
    return ok_ ? Status::Ok() : Status::Unavailable(fmt::format("cannot write {}", path_));
  }

 private:
  static constexpr size_t kFlushBytes = size_t{1} << 18;

  explicit TrafficWriter(std::string path) : path_(std::move(path)) {}

  void Flush() {
    if (buffer_.empty()) return;
    if (gz_ != nullptr) {
      ok_ = gzwrite(gz_, buffer_.data(), static_cast<unsigned>(buffer_.size())) ==
                static_cast<int>(buffer_.size()) &&
            ok_;
    } else if (plain_ != nullptr) {
      ok_ = std::fwrite(buffer_.data(), 1, buffer_.size(), plain_) == buffer_.size() && ok_;
    }
    buffer_.clear();
  }

  std::string path_;
  std::FILE* plain_ = nullptr;
  gzFile gz_ = nullptr;
  std::string buffer_;
  bool ok_ = true;
};

struct GenFlags {
  GenConfig config;
  std::string out;
  std::vector<std::string> hot;
  std::vector<std::string> bursts;
  std::string size = "lognormal:120,1";
};

int RunGenCommand(GenFlags& flags) {
  GenConfig& config = flags.config;
  std::string problems;
  const auto parse_all = [&problems](const std::vector<std::string>& texts, std::string_view flag,
                                     auto parse, auto& into) {
    for (const std::string& text : texts) {
      typename std::decay_t<decltype(into)>::value_type value;
      if (std::string reason = parse(text, &value); !reason.empty()) {
        problems += fmt::format("  {} '{}': {}\n", flag, text, reason);
      } else {
        into.push_back(std::move(value));
      }
    }
  };
  parse_all(flags.hot, "--hot", &ParseGenHotChat, config.hot);
  parse_all(flags.bursts, "--burst", &ParseGenBurst, config.bursts);
  if (std::string reason = ParseGenSize(flags.size, &config.size); !reason.empty()) {
    problems += fmt::format("  --size '{}': {}\n", flags.size, reason);
  }
  if (const Status valid = ValidateGenConfig(config); !valid.ok()) {
    problems += fmt::format("{}\n", valid.message());
  }
  if (!problems.empty()) {
    fmt::print(stderr, "chatshard gen: invalid options:\n{}", problems);
    return kExitUsage;
  }
  if (const Status written = WriteGeneratedTraffic(config, flags.out); !written.ok()) {
    fmt::print(stderr, "chatshard gen: {}\n", written.message());
    return kExitFileError;
  }
  if (flags.out != "-") {
    fmt::print("chatshard gen: wrote {} messages to {} (seed {})\n", config.messages, flags.out,
               config.seed);
  }
  return kExitOk;
}

}  // namespace

std::string ParseGenSize(std::string_view text, GenSize* out) {
  const size_t colon = text.find(':');
  const std::string_view kind = text.substr(0, colon);
  const std::string_view args = colon == std::string_view::npos ? "" : text.substr(colon + 1);
  GenSize size;
  if (kind == "fixed") {
    size.kind = GenSize::Kind::kFixed;
    if (!ParseNumber(args, &size.fixed)) return "expected fixed:N with an integer N >= 0";
    if (static_cast<double>(size.fixed) > kMaxBytes) return "N must be at most 1e12";
  } else if (kind == "uniform") {
    size.kind = GenSize::Kind::kUniform;
    const size_t dots = args.find("..");
    if (dots == std::string_view::npos || !ParseNumber(args.substr(0, dots), &size.min) ||
        !ParseNumber(args.substr(dots + 2), &size.max)) {
      return "expected uniform:A..B with integers 0 <= A <= B";
    }
    if (size.min > size.max) return "expected uniform:A..B with A <= B";
    if (static_cast<double>(size.max) > kMaxBytes) return "B must be at most 1e12";
  } else if (kind == "lognormal") {
    size.kind = GenSize::Kind::kLognormal;
    const size_t comma = args.find(',');
    if (comma == std::string_view::npos || !ParseNumber(args.substr(0, comma), &size.median) ||
        !ParseNumber(args.substr(comma + 1), &size.sigma)) {
      return "expected lognormal:MEDIAN,SIGMA";
    }
    if (!(size.median >= 1 && size.median <= 1e9)) return "MEDIAN must be in 1..1e9";
    if (!(size.sigma >= 0 && size.sigma <= 10)) return "SIGMA must be in 0..10";
  } else {
    return "expected fixed:N, uniform:A..B or lognormal:MEDIAN,SIGMA";
  }
  *out = size;
  return {};
}

std::string ParseGenHotChat(std::string_view text, GenHotChat* out) {
  std::string_view chat;
  std::string_view share_text;
  double share = 0;
  if (!SplitAssignment(text, &chat, &share_text) || !ParseNumber(share_text, &share)) {
    return "expected CHAT=SHARE, e.g. lobby=0.3";
  }
  if (chat.empty()) return "empty chat id";
  if (!(share > 0 && share < 1)) return "SHARE must be > 0 and < 1";
  *out = GenHotChat{std::string(chat), share};
  return {};
}

std::string ParseGenBurst(std::string_view text, GenBurst* out) {
  std::string_view chat;
  std::string_view spec;
  if (!SplitAssignment(text, &chat, &spec)) return "expected CHAT=N/SECONDS, e.g. alerts=500/60";
  const size_t slash = spec.find('/');
  GenBurst burst{std::string(chat), 0, 0};
  if (slash == std::string_view::npos || !ParseNumber(spec.substr(0, slash), &burst.count) ||
      !ParseNumber(spec.substr(slash + 1), &burst.every_s)) {
    return "expected CHAT=N/SECONDS, e.g. alerts=500/60";
  }
  if (chat.empty()) return "empty chat id";
  if (burst.count < 1 || burst.count > 10'000'000) return "N must be in 1..10000000";
  if (!(burst.every_s >= 1e-6 && burst.every_s <= 1e9)) return "SECONDS must be in 1e-6..1e9";
  *out = std::move(burst);
  return {};
}

Status ValidateGenConfig(const GenConfig& config) {
  std::string problems;
  const auto problem = [&problems](const std::string& line) {
    problems += (problems.empty() ? "  " : "\n  ") + line;
  };
  if (config.chats < 1 || config.chats > kMaxChats) {
    problem(fmt::format("--chats {}: must be in 1..{}", config.chats, kMaxChats));
  }
  if (config.messages > kMaxMessages) {
    problem(fmt::format("--messages {}: must be at most {}", config.messages, kMaxMessages));
  }
  if (!(config.zipf >= 0 && config.zipf <= 10)) {
    problem(fmt::format("--zipf {}: must be >= 0 and <= 10", config.zipf));
  }
  if (!(config.rate > 0 && config.rate <= kMaxRate)) {
    problem(fmt::format("--rate {}: must be > 0 and <= {:g} messages/s", config.rate, kMaxRate));
  } else if (static_cast<double>(config.messages) / config.rate > kMaxSpanS) {
    problem(fmt::format("--rate {} with --messages {}: the capture would span more than {:g} s",
                        config.rate, config.messages, kMaxSpanS));
  }
  double shares = 0;
  std::set<std::string_view> hot_names;
  for (const GenHotChat& hot : config.hot) {
    if (!(hot.share > 0 && hot.share < 1)) {
      problem(fmt::format("--hot {}={}: SHARE must be > 0 and < 1", hot.chat, hot.share));
    }
    shares += hot.share;
    if (!hot_names.insert(hot.chat).second) {
      problem(fmt::format("--hot {}: the chat is given twice", hot.chat));
    }
    uint64_t rank = 0;
    if (hot.chat.starts_with("chat/") && ParseNumber(std::string_view(hot.chat).substr(5), &rank) &&
        rank >= 1 && rank <= config.chats) {
      problem(fmt::format("--hot {}: the name of a Zipf chat (chat/1..chat/{}); pick another",
                          hot.chat, config.chats));
    }
  }
  if (!config.hot.empty() && !(shares < 1)) {
    problem(fmt::format("--hot: the shares sum to {:g}; they must sum to < 1", shares));
  }
  for (const GenBurst& burst : config.bursts) {
    if (burst.count < 1 || !(burst.every_s > 0)) {
      problem(fmt::format("--burst {}={}/{:g}: N must be >= 1 and SECONDS > 0", burst.chat,
                          burst.count, burst.every_s));
    }
  }
  if (config.size.kind == GenSize::Kind::kUniform && config.size.min > config.size.max) {
    problem(fmt::format("--size uniform:{}..{}: A must be <= B", config.size.min, config.size.max));
  }
  return problems.empty() ? Status::Ok() : Status::InvalidArgument(problems);
}

void GenerateTraffic(
    const GenConfig& config,
    const std::function<void(int64_t ts_us, std::string_view chat, uint64_t bytes)>& emit) {
  Random random(config.seed);
  const ZipfSampler zipf(config.chats, config.zipf);
  std::string zipf_name;
  const double mean_gap_us = 1e6 / config.rate;

  double background_us = mean_gap_us * random.Exponential();
  std::vector<double> next_burst_s;
  for (const GenBurst& burst : config.bursts) next_burst_s.push_back(burst.every_s);

  uint64_t written = 0;
  while (written < config.messages) {
    // The earliest due burst, if it is not later than the next background message.
    size_t burst_index = config.bursts.size();
    for (size_t i = 0; i < config.bursts.size(); ++i) {
      if (next_burst_s[i] * 1e6 <= background_us &&
          (burst_index == config.bursts.size() || next_burst_s[i] < next_burst_s[burst_index])) {
        burst_index = i;
      }
    }
    if (burst_index < config.bursts.size()) {
      const GenBurst& burst = config.bursts[burst_index];
      const auto ts_us = static_cast<int64_t>(std::floor(next_burst_s[burst_index] * 1e6));
      for (uint64_t i = 0; i < burst.count && written < config.messages; ++i, ++written) {
        emit(ts_us, burst.chat, SampleSize(config.size, random));
      }
      next_burst_s[burst_index] += burst.every_s;
      continue;
    }

    std::string_view chat;
    double pick = random.Uniform();
    for (const GenHotChat& hot : config.hot) {
      if (pick < hot.share) {
        chat = hot.chat;
        break;
      }
      pick -= hot.share;
    }
    if (chat.empty()) {
      const uint64_t rank = zipf.Sample(random);
      zipf_name.assign("chat/");
      fmt::format_to(std::back_inserter(zipf_name), "{}", rank);
      chat = zipf_name;
    }
    emit(static_cast<int64_t>(std::floor(background_us)), chat, SampleSize(config.size, random));
    ++written;
    background_us += mean_gap_us * random.Exponential();
  }
}

Status WriteGeneratedTraffic(const GenConfig& config, const std::string& path) {
  Result<std::unique_ptr<TrafficWriter>> opened = TrafficWriter::Open(path);
  if (!opened.ok()) return opened.status();
  TrafficWriter& writer = *opened.value();
  // Chat ids as JSON strings, escaped once per distinct chat.
  std::unordered_map<std::string, std::string> quoted;
  std::string line;
  GenerateTraffic(config, [&](int64_t ts_us, std::string_view chat, uint64_t bytes) {
    auto [it, inserted] = quoted.try_emplace(std::string(chat));
    if (inserted) it->second = nlohmann::json(std::string(chat)).dump();
    line.clear();
    AppendJsonLine(&line, ts_us, it->second, bytes);
    writer.Write(line);
  });
  return writer.Close();
}

Subcommand AddGenCommand(CLI::App& app) {
  auto flags = std::make_shared<GenFlags>();
  GenConfig& config = flags->config;
  CLI::App* command = app.add_subcommand(
      "gen",
      "Write synthetic traffic as JSON Lines (gzip when OUT ends in .gz): Zipf-popular chats "
      "chat/1..chat/N, hot chats with fixed shares, bursts, Poisson arrivals. The same flags "
      "and --seed give a byte-identical file.");
  command->footer(
      "Exit codes: 0 success; 1 OUT cannot be written; 2 bad usage or invalid options.");
  command->add_option("OUT", flags->out, "Output file; - writes standard output")->required();
  command->add_option("--chats", config.chats, "Number of Zipf chats (chat/1 is the most popular)")
      ->capture_default_str();
  command->add_option("--messages", config.messages, "Messages to write, burst messages included")
      ->capture_default_str();
  command
      ->add_option("--zipf", config.zipf,
                   "Zipf exponent s: chat/k has weight k^-s (0 = all chats equally popular)")
      ->capture_default_str();
  command->add_option("--hot", flags->hot,
                      "CHAT=SHARE: CHAT takes this share of the non-burst messages (repeatable; "
                      "shares sum to < 1)");
  command->add_option("--burst", flags->bursts,
                      "CHAT=N/SECONDS: CHAT sends N messages at once every SECONDS of simulated "
                      "time, the first at SECONDS (repeatable)");
  command
      ->add_option("--rate", config.rate,
                   "Mean rate of the non-burst messages per second (exponential gaps)")
      ->capture_default_str();
  command
      ->add_option("--size", flags->size,
                   "Message size in bytes: fixed:N, uniform:A..B (integers) or "
                   "lognormal:MEDIAN,SIGMA (rounded, at least 1)")
      ->capture_default_str();
  command->add_option("--seed", config.seed, "Seed of the mt19937_64 generator")
      ->capture_default_str();
  return Subcommand{command, [flags] { return RunGenCommand(*flags); }};
}

}  // namespace chatshard::cli
