#include "produce.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "chatshard/options.h"
#include "enum_flag.h"
#include "exit_code.h"
#include "histogram.h"
#include "load_messages.h"
#include "pacer.h"
#include "redis_url.h"
#include "shared_flags.h"

namespace chatshard::cli {
namespace {

using std::chrono::duration;
using std::chrono::milliseconds;

constexpr char kPayloadFiller = '.';

// "<index>\n" then filler up to `bytes` (capped), into `out`.
void AssignTrafficPayload(uint64_t index, uint64_t bytes, std::string& out) {
  char digits[24];
  const auto [end, error] = std::to_chars(digits, digits + sizeof digits, index);
  (void)error;  // 24 chars hold any uint64_t
  out.assign(digits, end);
  out += '\n';
  const uint64_t size = std::min(bytes, kMaxTrafficPayloadBytes);
  if (size > out.size()) out.append(size - out.size(), kPayloadFiller);
}

// Shared by the sending thread and the Publisher's I/O thread, which runs the
// callbacks. Held by a shared_ptr in every callback: a callback can run after
// PublishTraffic returned when Close gave up waiting on a connect attempt.
struct PublishState {
  explicit PublishState(uint32_t window_size) : window(window_size) {}

  // A callback: one answer from Redis (or the Publisher's verdict on close).
  void Answer(uint64_t index, const Result<std::string>& result, Clock::time_point called) {
    const Clock::time_point now = Clock::now();
    {
      std::lock_guard<std::mutex> lock(mu);
      if (result.ok()) {
        ++confirmed;
        confirm_ns.Record(static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::nanoseconds>(now - called).count()));
      } else {
        ++failed_answers;
        if (first_error.empty()) first_error = Describe(index, result.status());
      }
      last_answer = now;
    }
    // Relaxed: a hint for the sender to stop; the counts travel under mu.
    if (!result.ok()) redis_failed.store(true, std::memory_order_relaxed);
    Release();
  }

  // The sender: Publish refused the message, so no callback will run.
  void Refused(uint64_t index, const Status& status) {
    {
      std::lock_guard<std::mutex> lock(mu);
      if (first_error.empty()) first_error = Describe(index, status);
    }
    Release();
  }

  // One send fewer awaiting an answer. The sender waits only while the count
  // equals the window (it adds only below it), so only that step wakes it.
  // Release: pairs with the sender's acquire load, which then sees room.
  void Release() {
    if (outstanding.fetch_sub(1, std::memory_order_release) == window) outstanding.notify_one();
  }

  static std::string Describe(uint64_t index, const Status& status) {
    return fmt::format("message {} of the file: {}", index, status.ToString());
  }

  // Const after construction.
  const uint32_t window;

  // Sends awaiting an answer: the sender adds one before each Publish, the
  // callback (or the sender, for a refused Publish) takes it back.
  std::atomic<uint64_t> outstanding{0};
  std::atomic<bool> redis_failed{false};

  std::mutex mu;
  uint64_t confirmed = 0;       // guarded by mu
  uint64_t failed_answers = 0;  // guarded by mu
  std::string first_error;      // guarded by mu
  internal::HistogramData confirm_ns;  // guarded by mu
  Clock::time_point last_answer{};     // guarded by mu
};

// The flags of `chatshard produce` as parsed.
struct ProduceFlags {
  std::string path;
  std::string url;
  std::string speed = "max";
  uint32_t timeout_ms = 5000;
  uint32_t max_in_flight = 8192;
  bool strict = false;
  bool progress = true;
  redis::PublisherOptions publisher;
};

std::string FormatProduceSummary(const ProduceFlags& flags, const RedisUrl& url,
                                 const Traffic& traffic, double load_s, double speed,
                                 const PublishTotals& totals) {
  const redis::ConnectionOptions& c = flags.publisher.connection;
  std::string out;
  out += fmt::format("chatshard produce {} -> {} (prefix {}, partitions {}, routing {})\n",
                     flags.path, url.Redacted(), c.prefix, c.partitions, RoutingName(c.routing));
  out += fmt::format("  loaded {} messages of {} chats in {:.2f} s ({} bad lines skipped)\n",
                     traffic.messages.size(), traffic.chats.size(), load_s, traffic.skipped);
  out += fmt::format("  speed {}, in-flight window {}, publish timeout {} ms\n",
                     speed > 0 ? fmt::format("x{:g}", speed) : "max", flags.max_in_flight,
                     flags.timeout_ms);
  out += "\n";
  const auto line = [&out](std::string_view label, auto value, std::string_view note = "") {
    out += fmt::format("  {:<22}{:>12}{}\n", label, value, note);
  };
  line("messages", totals.messages);
  line("confirmed", totals.confirmed);
  line("failed", totals.failed);
  if (totals.unanswered > 0) line("unanswered", totals.unanswered, " (at Close's deadline)");
  line("not sent", totals.not_sent);
  line("duration", fmt::format("{:.3f} s", totals.duration_s), "   (first publish -> last answer)");
  const double rate =
      totals.duration_s > 0 ? static_cast<double>(totals.confirmed) / totals.duration_s : 0;
  line("publish rate", fmt::format("{:.0f} msgs/s", rate), "   (confirmed / duration)");
  line("confirm latency p50", fmt::format("{:.1f} µs", totals.confirm_latency.p50_us),
       "   (Publish called -> stream id received)");
  line("confirm latency p99", fmt::format("{:.1f} µs", totals.confirm_latency.p99_us));
  line("confirm latency max", fmt::format("{:.1f} µs", totals.confirm_latency.max_us));
  line("round trips", totals.stats.round_trips, "   (pipelined XADD batches)");
  line("reconnects", totals.stats.reconnects);
  if (!totals.first_error.empty()) out += fmt::format("  first error: {}\n", totals.first_error);
  return out;
}

int RunProduceCommand(ProduceFlags& flags) {
  const double speed = ParseSpeed(flags.speed).value_or(0);  // checked by the parser already
  const Result<RedisUrl> url = ParseRedisUrl(flags.url);      // checked by the parser already
  if (!url.ok()) {
    fmt::print(stderr, "chatshard produce: --redis {}\n", url.status().message());
    return kExitUsage;
  }
  redis::PublisherOptions& options = flags.publisher;
  url->ApplyTo(options.connection);
  options.publish_timeout = milliseconds(flags.timeout_ms);
  options.max_payload_bytes = kMaxTrafficPayloadBytes;
  options.max_in_flight = flags.max_in_flight + 1;  // see PublishTrafficOptions::window
  if (const Status valid = options.Validate(); !valid.ok()) {
    fmt::print(stderr, "chatshard produce: invalid options:\n{}\n", valid.message());
    return kExitUsage;
  }

  const Clock::time_point load_start = Clock::now();
  Result<Traffic> loaded = LoadTraffic(flags.path, PrintingLoadOptions(flags.strict));
  if (!loaded.ok()) return ReportLoadFailure("produce", loaded.status());
  const Traffic& traffic = loaded.value();
  const double load_s = duration<double>(Clock::now() - load_start).count();
  ReportSkippedLines("produce", traffic);

  Result<std::unique_ptr<redis::Publisher>> created = redis::Publisher::Create(options);
  if (!created.ok()) {
    fmt::print(stderr, "chatshard produce: cannot publish to {}: {}\n", url->Redacted(),
               created.status().message());
    return created.status().code() == Status::Code::kInvalidArgument ? kExitUsage
                                                                      : kExitRunFailed;
  }
  if (speed > 0 && traffic.messages.size() > 1) {
    const auto [first, last] = std::minmax_element(
        traffic.messages.begin(), traffic.messages.end(),
        [](const TrafficMessage& a, const TrafficMessage& b) { return a.ts_us < b.ts_us; });
    const double recorded_s = static_cast<double>(last->ts_us - first->ts_us) / 1e6;
    fmt::print(stderr,
               "chatshard produce: {} messages recorded over {:.1f} s; at speed x{:g} this "
               "takes about {:.1f} s\n",
               traffic.messages.size(), recorded_s, speed, recorded_s / speed);
  }

  PublishTrafficOptions publish;
  publish.speed = speed;
  publish.window = flags.max_in_flight;
  // Every sent publish is answered within publish_timeout once Redis is
  // gone, or within a command timeout while it answers slowly.
  publish.close_deadline = options.publish_timeout + 2 * options.connection.command_timeout +
                           options.connection.connect_timeout + milliseconds(1000);
  redis::Publisher& publisher = **created;
  ProgressMeter progress(
      traffic.messages.size(), [&publisher] { return publisher.Stats().published; },
      ProgressOptions::ForStderr(flags.progress));
  publish.progress = &progress;
  const PublishTotals totals = PublishTraffic(traffic, publisher, publish);
  progress.Stop();  // before the publisher it samples goes
  created.value().reset();

  std::fputs(FormatProduceSummary(flags, *url, traffic, load_s, speed, totals).c_str(), stdout);
  std::fflush(stdout);
  if (totals.confirmed != totals.messages) {
    fmt::print(stderr,
               "chatshard produce: FAILED: {} of {} messages not confirmed by Redis (failed {}, "
               "unanswered {}, not sent {})\n",
               totals.messages - totals.confirmed, totals.messages, totals.failed,
               totals.unanswered, totals.not_sent);
    if (!totals.first_error.empty()) {
      fmt::print(stderr, "chatshard produce: first error: {}\n", totals.first_error);
    }
    return kExitRunFailed;
  }
  return kExitOk;
}

}  // namespace

std::string EncodeTrafficPayload(uint64_t index, uint64_t bytes) {
  std::string out;
  AssignTrafficPayload(index, bytes, out);
  return out;
}

std::optional<uint64_t> DecodeTrafficPayloadIndex(std::string_view payload) {
  const size_t newline = payload.find('\n');
  if (newline == 0 || newline == std::string_view::npos) return std::nullopt;
  uint64_t index = 0;
  const auto [end, error] = std::from_chars(payload.data(), payload.data() + newline, index);
  if (error != std::errc() || end != payload.data() + newline) return std::nullopt;
  return index;
}

PublishTotals PublishTraffic(const Traffic& traffic, redis::Publisher& publisher,
                             const PublishTrafficOptions& options) {
  auto state = std::make_shared<PublishState>(std::max<uint32_t>(options.window, 1));
  PublishTotals totals;
  totals.messages = traffic.messages.size();
  uint64_t refused = 0;
  uint64_t next = 0;  // the first message not handed to Publish
  std::string payload;
  const Clock::time_point start = Clock::now();
  if (!traffic.messages.empty()) {
    const Pacer pacer(options.speed, traffic.messages.front().ts_us);
    for (; next < traffic.messages.size(); ++next) {
      if (state->redis_failed.load(std::memory_order_relaxed)) break;
      const TrafficMessage& message = traffic.messages[next];
      pacer.WaitUntilDue(message.ts_us);

      // Backpressure: wait for room in the window rather than let Publish
      // block (its wait would count as latency) or refuse.
      uint64_t outstanding = state->outstanding.load(std::memory_order_acquire);
      while (outstanding >= state->window) {
        state->outstanding.wait(outstanding, std::memory_order_acquire);
        outstanding = state->outstanding.load(std::memory_order_acquire);
      }
      state->outstanding.fetch_add(1, std::memory_order_relaxed);

      AssignTrafficPayload(next, message.bytes, payload);
      const Clock::time_point called = Clock::now();
      if (options.publish_ns != nullptr) {
        // Release: the handler that runs this message loads it with acquire;
        // the message reaches it only after this store (through the
        // Publisher's queue, Redis and the Consumer).
        options.publish_ns[next].store(
            std::chrono::duration_cast<std::chrono::nanoseconds>(called.time_since_epoch())
                .count(),
            std::memory_order_release);
      }
      const uint64_t index = next;
      const Status queued = publisher.Publish(
          traffic.chats[message.chat], payload,
          [state, index, called](Result<std::string> result) {
            state->Answer(index, result, called);
          });
      if (options.progress != nullptr) options.progress->SetSubmitted(index + 1);
      if (queued.ok()) {
        ++totals.sent;
        continue;
      }
      state->Refused(index, queued);
      ++refused;
      if (queued.code() != Status::Code::kInvalidArgument) {
        ++next;
        break;
      }
    }
  }
  totals.close_status = publisher.Close(options.close_deadline);
  totals.stats = publisher.Stats();

  std::lock_guard<std::mutex> lock(state->mu);
  totals.confirmed = state->confirmed;
  totals.failed = refused + state->failed_answers;
  totals.unanswered = totals.sent - std::min(totals.sent, state->confirmed + state->failed_answers);
  totals.not_sent = totals.messages - next;
  totals.first_error = state->first_error;
  const Clock::time_point end =
      state->confirm_ns.count > 0 || state->failed_answers > 0 ? state->last_answer : Clock::now();
  totals.duration_s = duration<double>(end - start).count();
  totals.confirm_latency = state->confirm_ns.SummaryMicros();
  return totals;
}

Subcommand AddProduceCommand(CLI::App& app) {
  auto flags = std::make_shared<ProduceFlags>();
  redis::ConnectionOptions& connection = flags->publisher.connection;
  CLI::App* command = app.add_subcommand(
      "produce",
      "Publish a traffic file into Redis Streams (the Redis adapter's shard streams) at the "
      "recorded pace or as fast as possible, and wait until Redis confirmed every message.");
  command->footer(
      "Each entry is {c: chat id, p: payload}; the payload is the message's index in FILE and "
      "a newline, padded with '.' to the message's bytes (at most 1 MiB).\n"
      "Exit codes: 0 every message confirmed; 1 FILE cannot be read (or has a bad line, with "
      "--strict); 2 bad usage or invalid options; 3 Redis cannot be reached, refused the "
      "layout, or did not confirm every message.");
  command->add_option("FILE", flags->path, "Traffic file; - reads standard input")->required();
  AddRedisUrlFlag(*command, flags->url, "")->required();
  AddSpeedFlag(*command, flags->speed,
               "max: as fast as possible; a factor F: the recorded pace sped up F times");
  command
      ->add_option("--partitions", connection.partitions,
                   "Number of shard streams; must match the consumers' engine")
      ->capture_default_str();
  AddEnumFlag(*command, "--routing", connection.routing, {Routing::kModulo, Routing::kJump},
              &RoutingName, "modulo: fnv1a32 % partitions; jump: jump consistent hash");
  command
      ->add_option("--prefix", connection.prefix,
                   "Key prefix: streams are <prefix>:{<shard>}:stream")
      ->capture_default_str();
  command
      ->add_option("--max-in-flight", flags->max_in_flight,
                   "Publishes awaiting Redis' answer at most; the file waits for room")
      ->check(CLI::Range(1u, (1u << 20) - 1))
      ->capture_default_str();
  command
      ->add_option("--timeout-ms", flags->timeout_ms,
                   "How long a publish waits for Redis (a reconnect) before it fails")
      ->capture_default_str();
  command->add_flag("--strict", flags->strict,
                    "Stop at the first bad line of FILE (exit 1) instead of skipping it");
  command->add_flag("--no-progress{false}", flags->progress,
                    "Show no progress on stderr (messages sent and confirmed, rate, ETA)");
  return Subcommand{command, [flags] { return RunProduceCommand(*flags); }};
}

}  // namespace chatshard::cli
