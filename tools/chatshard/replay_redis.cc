// The Redis path of `chatshard replay`. Besides the adapter's public API it
// uses the adapter's own Connection (adapters/redis/src/connection.h) to ask
// Redis, before and after, what its streams hold: the same address parsing,
// AUTH, SELECT and timeouts as the Publisher and the Consumer.
#include "replay_redis.h"

#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "chatshard/redis/consumer.h"
#include "chatshard/redis/publisher.h"
#include "chatshard/routing.h"
#include "connection.h"
#include "exit_code.h"
#include "html_report.h"
#include "produce.h"
#include "progress.h"
#include "redis_url.h"
#include "report.h"
#include "shared_flags.h"
#include "timeline.h"

namespace chatshard::cli {
namespace {

using std::chrono::duration;
using std::chrono::milliseconds;
using Json = nlohmann::ordered_json;

// How long a publish may wait for Redis before it fails.
constexpr milliseconds kPublishTimeout{5000};
// How long the consumer may take to get ready before publishing starts
// anyway (entries wait in the streams; only the first latencies suffer).
constexpr milliseconds kReadyTimeout{5000};
// Waiting for the last acks gives up after this long without a new one.
constexpr milliseconds kAckStallTimeout{30000};
constexpr milliseconds kConsumerCloseDeadline{10000};

// What the consumer's handler shares with the replay. Held by the handler
// (a shared_ptr): a Consumer whose Close gave up on an unreachable Redis may
// outlive the replay's stack frame.
struct HandlerState {
  HandlerState(const Traffic& traffic, const WorkSpec& work)
      : probe(traffic, work),
        messages(traffic.messages.size()),
        publish_ns(std::make_unique<std::atomic<int64_t>[]>(traffic.messages.size())) {}

  Outcome Handle(const redis::StreamMessage& message) {
    MessageView view;
    view.chat_id = message.chat_id;
    view.shard = message.shard;
    view.attempt = message.attempt;
    const std::optional<uint64_t> index = DecodeTrafficPayloadIndex(message.payload);
    ReplayProbe::Payload encoded{};
    if (index && *index < messages) {
      encoded = probe.PayloadFor(*index);
      view.payload = std::string_view(encoded.data(), encoded.size());
      // Acquire: pairs with PublishTraffic's release store before the
      // Publish call that carried this entry here.
      const int64_t ns = publish_ns[*index].load(std::memory_order_acquire);
      view.enqueued = Clock::time_point(
          std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
    } else {
      view.payload = {};  // not a payload of this replay: the probe counts it corrupt
      view.enqueued = Clock::now();
    }
    view.started = Clock::now();
    return probe.Handle(view);
  }

  ReplayProbe probe;
  const uint64_t messages;
  const std::unique_ptr<std::atomic<int64_t>[]> publish_ns;
};

// Entries in the streams of `options` (XLEN summed over the shards), and the
// entries of `group` delivered and not acked (XPENDING; 0 where the group
// does not exist).
struct StreamCounts {
  uint64_t entries = 0;
  uint64_t pending = 0;
};

Result<StreamCounts> CountStreams(redis::internal::Connection& connection,
                                  const redis::ConnectionOptions& options,
                                  std::string_view group) {
  using redis::internal::IsError;
  using redis::internal::ReplyErrorStatus;
  StreamCounts counts;
  for (uint32_t shard = 0; shard < options.partitions; ++shard) {
    const std::string key = redis::internal::StreamKey(options.prefix, shard);
    connection.Append({"XLEN", key});
    connection.Append({"XPENDING", key, group});
  }
  for (uint32_t shard = 0; shard < options.partitions; ++shard) {
    const std::string key = redis::internal::StreamKey(options.prefix, shard);
    Result<redis::internal::Reply> length = connection.Read();
    if (!length.ok()) return length.status();
    Result<redis::internal::Reply> pending = connection.Read();
    if (!pending.ok()) return pending.status();
    if (IsError(length->get())) return ReplyErrorStatus(length->get(), "XLEN " + key);
    counts.entries += static_cast<uint64_t>(std::max<long long>(length->get()->integer, 0));
    const redisReply* summary = pending->get();
    if (IsError(summary)) {
      // NOGROUP: no such stream or group, so nothing pending in it.
      if (redis::internal::ReplyString(summary).starts_with("NOGROUP")) continue;
      return ReplyErrorStatus(summary, "XPENDING " + key);
    }
    if (summary->type == REDIS_REPLY_ARRAY && summary->elements > 0 &&
        summary->element[0]->type == REDIS_REPLY_INTEGER) {
      counts.pending += static_cast<uint64_t>(std::max<long long>(summary->element[0]->integer, 0));
    }
  }
  return counts;
}

Result<std::unique_ptr<redis::internal::Connection>> OpenInspector(
    const redis::ConnectionOptions& options) {
  return redis::internal::Connection::Open(options, options.connect_timeout, nullptr);
}

Json CountersJson(const RedisReplayCounters& c) {
  return Json{
      {"published", c.published},
      {"publish_failed", c.publish_failed},
      {"unanswered", c.unanswered},
      {"not_published", c.not_published},
      {"delivered", c.delivered},
      {"acked", c.acked},
      {"claimed", c.claimed},
      {"dead_lettered", c.dead_lettered},
      {"reconnects", c.reconnects},
      {"round_trips",
       {{"publisher", c.publisher_round_trips}, {"consumer", c.consumer_round_trips}}},
      {"confirm_latency_us",
       {{"p50", c.confirm_latency.p50_us},
        {"p99", c.confirm_latency.p99_us},
        {"max", c.confirm_latency.max_us}}},
      {"pending_left", c.left_known ? Json(c.pending_left) : Json(nullptr)},
      {"entries_left", c.left_known ? Json(c.entries_left) : Json(nullptr)},
      {"first_publish_error",
       c.first_publish_error.empty() ? Json(nullptr) : Json(c.first_publish_error)},
      {"close_error", c.close_error.empty() ? Json(nullptr) : Json(c.close_error)},
  };
}

std::string FormatCounters(const RedisReplayCounters& c, const std::string& where,
                           const redis::ConnectionOptions& options) {
  std::string out = fmt::format("\nRedis {} (prefix {}, group {})\n", where, options.prefix,
                                kRedisReplayGroup);
  const auto line = [&out](std::string_view label, auto value, std::string_view note = "") {
    out += fmt::format("  {:<22}{:>12}{}\n", label, value, note);
  };
  line("published", c.published, "   (XADDs Redis confirmed)");
  if (c.publish_failed > 0) line("publish failed", c.publish_failed);
  if (c.unanswered > 0) line("unanswered", c.unanswered);
  if (c.not_published > 0) line("not published", c.not_published);
  line("delivered", c.delivered, "   (entries read into the engine)");
  line("acked", c.acked);
  line("claimed", c.claimed);
  line("dead-lettered", c.dead_lettered);
  line("reconnects", c.reconnects);
  line("round trips", fmt::format("{} + {}", c.publisher_round_trips, c.consumer_round_trips),
       "   (publisher + consumer)");
  line("confirm latency p50", fmt::format("{:.1f} µs", c.confirm_latency.p50_us),
       "   (Publish called -> stream id received)");
  line("confirm latency p99", fmt::format("{:.1f} µs", c.confirm_latency.p99_us));
  if (c.left_known) {
    line("left pending", c.pending_left, "   (delivered, not acked; asked from Redis)");
    line("left in the streams", c.entries_left);
  } else {
    out += "  left in Redis          unknown (Redis could not be asked after the run)\n";
  }
  if (!c.first_publish_error.empty()) {
    out += fmt::format("  first publish error: {}\n", c.first_publish_error);
  }
  if (!c.close_error.empty()) out += fmt::format("  consumer close: {}\n", c.close_error);
  out += "  (end to end here is Publish called -> handler done, through Redis)\n";
  return out;
}

}  // namespace

void AddRedisReplayFlags(CLI::App& command, RedisReplayFlags& flags) {
  AddRedisUrlFlag(command, flags.url,
                  "Replay through Redis at this URL instead of in-process: ");
  command
      .add_option("--prefix", flags.prefix,
                  "With --redis: key prefix of the shard streams; they must be empty at the "
                  "start")
      ->capture_default_str();
}

Result<RedisReplayResult> ReplayThroughRedis(const Traffic& traffic, const ReplayConfig& config,
                                             redis::ConnectionOptions connection) {
  connection.partitions = config.engine.partitions;
  connection.routing = config.engine.routing;
  if (Status valid = connection.Validate(); !valid.ok()) return valid;

  // The streams must start empty: whatever they hold would reach the probe.
  Result<std::unique_ptr<redis::internal::Connection>> inspector = OpenInspector(connection);
  if (!inspector.ok()) return inspector.status();
  {
    Result<StreamCounts> before = CountStreams(**inspector, connection, kRedisReplayGroup);
    if (!before.ok()) return before.status();
    if (before->entries > 0) {
      return Status::FailedPrecondition(fmt::format(
          "the streams {}:{{0..{}}}:stream hold {} entries already ({} pending in group {}); a "
          "replay starts from empty streams: pass another --prefix, or consume or delete them",
          connection.prefix, connection.partitions - 1, before->entries, before->pending,
          kRedisReplayGroup));
    }
  }

  auto state = std::make_shared<HandlerState>(traffic, config.work);
  redis::ConsumerOptions consumer_options;
  consumer_options.connection = connection;
  consumer_options.group = kRedisReplayGroup;
  consumer_options.consumer = fmt::format("replay-{}", getpid());
  Result<std::unique_ptr<redis::Consumer>> consumer = redis::Consumer::Create(
      consumer_options, config.engine,
      [state](const redis::StreamMessage& message) { return state->Handle(message); });
  if (!consumer.ok()) return consumer.status();

  const Clock::time_point ready_by = Clock::now() + kReadyTimeout;
  while (!(*consumer)->Ready() && Clock::now() < ready_by) {
    std::this_thread::sleep_for(milliseconds(1));
  }

  redis::PublisherOptions publisher_options;
  publisher_options.connection = connection;
  publisher_options.publish_timeout = kPublishTimeout;
  publisher_options.max_payload_bytes = kMaxTrafficPayloadBytes;
  Result<std::unique_ptr<redis::Publisher>> publisher =
      redis::Publisher::Create(publisher_options);
  if (!publisher.ok()) return publisher.status();

  RedisReplayResult out;
  ReplayResult& result = out.replay;
  RedisReplayCounters& counters = out.redis;
  result.messages = traffic.messages.size();
  result.chats = traffic.chats.size();
  result.bad_lines = traffic.skipped;

  redis::Consumer& running = **consumer;
  ProgressMeter progress(
      traffic.messages.size(), [&running] { return running.Stats().acked; },
      ProgressOptions::ForStderr(config.progress));

  PublishTrafficOptions publish;
  publish.speed = config.speed;
  publish.window = publisher_options.max_in_flight - 1;  // see PublishTrafficOptions::window
  publish.close_deadline = kPublishTimeout + 2 * connection.command_timeout +
                           connection.connect_timeout + milliseconds(1000);
  publish.publish_ns = state->publish_ns.get();
  publish.progress = &progress;
  const Clock::time_point start = Clock::now();
  const PublishTotals published = PublishTraffic(traffic, **publisher, publish);
  publisher.value().reset();

  // Every confirmed entry is acked once handled (or dead-lettered); wait for
  // that while acks keep coming.
  uint64_t acked = (*consumer)->Stats().acked;
  Clock::time_point last_progress = Clock::now();
  while (acked < published.confirmed && Clock::now() - last_progress < kAckStallTimeout) {
    std::this_thread::sleep_for(milliseconds(1));
    const uint64_t now_acked = (*consumer)->Stats().acked;
    if (now_acked != acked) {
      acked = now_acked;
      last_progress = Clock::now();
    }
  }
  const Clock::time_point end = Clock::now();
  progress.Stop();  // before the consumer it samples goes
  result.duration_s = duration<double>(end - start).count();

  const Status closed = (*consumer)->Close(kConsumerCloseDeadline);
  const redis::RedisStats consumed = (*consumer)->Stats();
  result.stats = (*consumer)->engine().Stats();
  consumer.value().reset();  // destroys the engine: every handler run has returned

  counters.published = published.confirmed;
  counters.publish_failed = published.failed;
  counters.unanswered = published.unanswered;
  counters.not_published = published.not_sent;
  counters.first_publish_error = published.first_error;
  counters.confirm_latency = published.confirm_latency;
  counters.delivered = consumed.delivered;
  counters.acked = consumed.acked;
  counters.claimed = consumed.claimed;
  counters.dead_lettered = consumed.dead_lettered;
  counters.reconnects = published.stats.reconnects + consumed.reconnects;
  counters.publisher_round_trips = published.stats.round_trips;
  counters.consumer_round_trips = consumed.round_trips;
  if (!closed.ok()) counters.close_error = std::string(closed.message());

  // What Redis itself says is left, on a fresh connection if the first broke.
  if ((*inspector)->broken()) inspector = OpenInspector(connection);
  if (inspector.ok()) {
    Result<StreamCounts> after = CountStreams(**inspector, connection, kRedisReplayGroup);
    if (after.ok()) {
      counters.left_known = true;
      counters.pending_left = after->pending;
      counters.entries_left = after->entries;
    }
  }

  result.accepted = published.confirmed;
  result.rejected = published.messages - published.confirmed;
  result.completed = result.stats.total.completed;
  result.failed = result.stats.total.failed;
  result.unprocessed = counters.pending_left;
  result.throughput_per_s =
      result.duration_s > 0 ? static_cast<double>(result.completed) / result.duration_s : 0;
  std::vector<uint32_t> chat_shard(traffic.chats.size());
  for (uint32_t chat = 0; chat < traffic.chats.size(); ++chat) {
    chat_shard[chat] =
        ShardFor(traffic.chats[chat], config.engine.partitions, config.engine.routing);
  }
  SummarizeRuns(traffic, chat_shard, state->probe, start, end - start, result);
  return out;
}

std::string RedisReplayProblems(const RedisReplayResult& result) {
  const RedisReplayCounters& c = result.redis;
  std::string problems;
  if (c.published != result.replay.messages) {
    problems += fmt::format(
        "  {} of {} messages were not published (failed {}, unanswered {}, not sent {}){}\n",
        result.replay.messages - std::min(c.published, result.replay.messages),
        result.replay.messages, c.publish_failed, c.unanswered, c.not_published,
        c.first_publish_error.empty() ? "" : "; first error: " + c.first_publish_error);
  }
  if (!c.close_error.empty()) problems += fmt::format("  consumer close: {}\n", c.close_error);
  if (!c.left_known) {
    problems += "  Redis could not be asked what is left pending after the run\n";
  } else if (c.pending_left > 0) {
    problems += fmt::format("  {} entries left pending (delivered, not acked) in group {}\n",
                            c.pending_left, kRedisReplayGroup);
  }
  return problems;
}

int RunRedisReplay(const Traffic& traffic, const ReplayConfig& config,
                   const RedisReplayFlags& flags, double load_s) {
  const Result<RedisUrl> url = ParseRedisUrl(flags.url);  // checked by the parser already
  if (!url.ok()) {
    fmt::print(stderr, "chatshard replay: --redis {}\n", url.status().message());
    return kExitUsage;
  }
  redis::ConnectionOptions connection;
  url->ApplyTo(connection);
  connection.prefix = flags.prefix;

  Result<RedisReplayResult> replayed = ReplayThroughRedis(traffic, config, connection);
  if (!replayed.ok()) {
    fmt::print(stderr, "chatshard replay: through Redis at {}: {}\n", url->Redacted(),
               replayed.status().message());
    return replayed.status().code() == Status::Code::kInvalidArgument ? kExitUsage
                                                                       : kExitRunFailed;
  }
  const RedisReplayResult& result = replayed.value();

  std::string report = FormatReplayReport(result.replay, config, load_s);
  report += FormatCounters(result.redis, url->Redacted(), connection);
  std::fputs(report.c_str(), stdout);
  std::fflush(stdout);

  if (!config.json_path.empty()) {
    Json json = Json::parse(ReplayJson(result.replay));
    json["redis"] = CountersJson(result.redis);
    std::ofstream out(config.json_path, std::ios::trunc);
    out << json.dump(2) << '\n';
    out.close();
    if (!out) {
      fmt::print(stderr, "chatshard replay: cannot write {}\n", config.json_path);
      return kExitFileError;
    }
  }

  if (!config.html_path.empty()) {
    std::ofstream out(config.html_path, std::ios::trunc);
    out << HtmlReport(result.replay, config);
    out.close();
    if (!out) {
      fmt::print(stderr, "chatshard replay: cannot write {}\n", config.html_path);
      return kExitFileError;
    }
  }

  const std::string problems = ReplayProblems(result.replay, config) + RedisReplayProblems(result);
  if (!problems.empty()) {
    fmt::print(stderr, "chatshard replay: FAILED\n{}", problems);
    return kExitRunFailed;
  }
  return kExitOk;
}

}  // namespace chatshard::cli
