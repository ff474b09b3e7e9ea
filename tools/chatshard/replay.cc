#include "replay.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "exit_code.h"
#include "histogram.h"
#include "html_report.h"
#include "load_messages.h"
#include "pacer.h"
#include "progress.h"
#include "replay_redis.h"
#include "report.h"
#include "shared_flags.h"
#include "timeline.h"

namespace chatshard::cli {
namespace {

using std::chrono::duration;
using std::chrono::duration_cast;

// Backpressure: the first pauses only yield (the shard usually frees a slot
// within microseconds), later ones sleep so the producer leaves the CPU to
// the handlers. A message the engine refuses this long is counted rejected.
constexpr int kBackpressureYields = 16;
constexpr auto kBackpressureSleep = std::chrono::microseconds(50);
constexpr auto kBackpressureGiveUp = std::chrono::seconds(30);
// How long Shutdown(kDrain) may take to finish the queued work.
constexpr auto kDrainDeadline = std::chrono::seconds(30);
// Messages that are due together go to the engine in one SubmitBatch, as a
// server that reads a socket buffer would submit them.
constexpr size_t kSubmitBatch = 64;

bool IsBackpressure(SubmitResult result) {
  // kTooManyChats too: like the other two it clears as queued work finishes
  // (a chat slot frees when its last message does), so the capture's message
  // is delayed, not refused.
  return result == SubmitResult::kShardFull || result == SubmitResult::kChatOverQuota ||
         result == SubmitResult::kTooManyChats;
}

GroupLatency Summarize(const internal::HistogramData& histogram) {
  return GroupLatency{.messages = histogram.count, .end_to_end = histogram.SummaryMicros()};
}

// Submits message `index` through `producer`, applying backpressure; counts
// the outcome in `result`.
void SubmitOne(const Traffic& traffic, uint64_t index, Producer& producer,
               ReplayResult& result) {
  const ReplayProbe::Payload payload = ReplayProbe::EncodePayload(index, traffic.messages[index].chat);
  const std::string_view chat_id = traffic.chats[traffic.messages[index].chat];
  const std::string_view payload_view(payload.data(), payload.size());
  Clock::time_point first_refusal{};
  for (int pauses = 0;; ++pauses) {
    const SubmitResult answer = producer.Submit(chat_id, payload_view);
    if (answer == SubmitResult::kAccepted) {
      ++result.accepted;
      return;
    }
    const bool retry = IsBackpressure(answer) &&
                       (pauses == 0 || Clock::now() - first_refusal < kBackpressureGiveUp);
    if (!retry) {
      ++result.rejected;
      ++result.rejected_by_reason[static_cast<size_t>(answer)];
      return;
    }
    if (pauses == 0) first_refusal = Clock::now();
    ++result.backpressure_waits;
    if (pauses < kBackpressureYields) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(kBackpressureSleep);
    }
  }
}

// Submits the messages [first, first + count) with SubmitBatch, resubmitting
// what a full shard refused until it is taken. A shard accepts a prefix of
// its part of a batch (Shard::AdmitBatch reserves capacity once), and a chat
// lives on one shard, so the refused items of each chat are the tail of its
// items and resubmitting them in order keeps every chat's order. (With a chat
// quota the engine admits item by item and a later item of a chat could pass
// where an earlier one was refused, so SubmitAll does not batch then.)
void SubmitRun(const Traffic& traffic, uint64_t first, size_t count, Producer& producer,
               ReplayResult& result) {
  std::array<ReplayProbe::Payload, kSubmitBatch> payloads;
  std::array<SubmitItem, kSubmitBatch> items;
  std::array<uint64_t, kSubmitBatch> indexes;
  std::array<SubmitResult, kSubmitBatch> answers;
  for (size_t i = 0; i < count; ++i) {
    payloads[i] = ReplayProbe::EncodePayload(first + i, traffic.messages[first + i].chat);
    items[i] = SubmitItem{traffic.chats[traffic.messages[first + i].chat],
                          std::string_view(payloads[i].data(), payloads[i].size())};
    indexes[i] = first + i;
  }
  Clock::time_point first_refusal{};
  for (int pauses = 0; count > 0; ++pauses) {
    const size_t accepted = producer.SubmitBatch(std::span<const SubmitItem>(items.data(), count),
                                                 std::span<SubmitResult>(answers.data(), count));
    result.accepted += accepted;
    if (accepted == count) return;
    if (pauses == 0) first_refusal = Clock::now();
    const bool give_up = pauses > 0 && Clock::now() - first_refusal >= kBackpressureGiveUp;
    size_t kept = 0;
    for (size_t i = 0; i < count; ++i) {
      if (answers[i] == SubmitResult::kAccepted) continue;
      if (IsBackpressure(answers[i]) && !give_up) {
        items[kept] = items[i];  // the payload views still point into `payloads`
        indexes[kept] = indexes[i];
        ++kept;
      } else {
        ++result.rejected;
        ++result.rejected_by_reason[static_cast<size_t>(answers[i])];
      }
    }
    count = kept;
    if (count == 0) return;
    ++result.backpressure_waits;
    if (pauses < kBackpressureYields) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(kBackpressureSleep);
    }
  }
}

// Submits every message of `traffic` in file order through one Producer: in
// runs of up to kSubmitBatch messages that are due (all of them at --speed
// max), or one by one with a chat quota.
void SubmitAll(const Traffic& traffic, const ReplayConfig& config, Producer& producer,
               ProgressMeter& progress, ReplayResult& result) {
  if (traffic.messages.empty()) return;
  const Pacer pacer(config.speed, traffic.messages.front().ts_us);
  const bool batch = config.engine.chat_quota == 0;
  const uint64_t n = traffic.messages.size();
  for (uint64_t index = 0; index < n;) {
    pacer.WaitUntilDue(traffic.messages[index].ts_us);
    if (!batch) {
      SubmitOne(traffic, index, producer, result);
      progress.SetSubmitted(++index);
      continue;
    }
    size_t count = 1;
    while (count < kSubmitBatch && index + count < n &&
           pacer.IsDue(traffic.messages[index + count].ts_us)) {
      ++count;
    }
    SubmitRun(traffic, index, count, producer, result);
    index += count;
    progress.SetSubmitted(index);
  }
}

// The flags of `chatshard replay` as parsed.
struct ReplayFlags {
  ReplayConfig config;
  std::string speed = "max";
  WorkFlags work;
  RedisReplayFlags redis;
};

int RunReplayCommand(ReplayFlags& flags) {
  ReplayConfig& config = flags.config;
  config.speed = ParseSpeed(flags.speed).value_or(0);  // checked by the parser already
  config.work = flags.work.Spec();

  if (const Status valid = config.engine.Validate(); !valid.ok()) {
    fmt::print(stderr, "chatshard replay: invalid options:\n{}\n", valid.message());
    return kExitUsage;
  }

  const Clock::time_point load_start = Clock::now();
  Result<Traffic> loaded = LoadTraffic(config.path, PrintingLoadOptions(config.strict));
  if (!loaded.ok()) return ReportLoadFailure("replay", loaded.status());
  const Traffic& traffic = loaded.value();
  const double load_s = duration<double>(Clock::now() - load_start).count();
  ReportSkippedLines("replay", traffic);

  if (config.speed > 0 && traffic.messages.size() > 1) {
    // A paced replay can take long: say how long before it starts.
    const auto [first, last] = std::minmax_element(
        traffic.messages.begin(), traffic.messages.end(),
        [](const TrafficMessage& a, const TrafficMessage& b) { return a.ts_us < b.ts_us; });
    const double recorded_s = static_cast<double>(last->ts_us - first->ts_us) / 1e6;
    fmt::print(stderr,
               "chatshard replay: {} messages recorded over {:.1f} s; at speed x{:g} the "
               "replay takes about {:.1f} s\n",
               traffic.messages.size(), recorded_s, config.speed, recorded_s / config.speed);
  }

  if (!flags.redis.url.empty()) return RunRedisReplay(traffic, config, flags.redis, load_s);
  Result<ReplayResult> replayed = Replay(traffic, config);
  if (!replayed.ok()) {
    fmt::print(stderr, "chatshard replay: cannot start the engine: {}\n",
               replayed.status().message());
    return replayed.status().code() == Status::Code::kInvalidArgument ? kExitUsage : kExitRunFailed;
  }
  const ReplayResult& result = replayed.value();

  std::fputs(FormatReplayReport(result, config, load_s).c_str(), stdout);
  std::fflush(stdout);

  if (!config.json_path.empty()) {
    std::ofstream out(config.json_path, std::ios::trunc);
    out << ReplayJson(result) << '\n';
    out.close();
    if (!out) {
      fmt::print(stderr, "chatshard replay: cannot write {}\n", config.json_path);
      return kExitFileError;
    }
  }
  if (!config.html_path.empty()) {
    std::ofstream out(config.html_path, std::ios::trunc);
    out << HtmlReport(result, config);
    out.close();
    if (!out) {
      fmt::print(stderr, "chatshard replay: cannot write {}\n", config.html_path);
      return kExitFileError;
    }
  }

  if (const std::string problems = ReplayProblems(result, config); !problems.empty()) {
    fmt::print(stderr, "chatshard replay: FAILED\n{}", problems);
    return kExitRunFailed;
  }
  return kExitOk;
}

}  // namespace

Result<ReplayResult> Replay(const Traffic& traffic, const ReplayConfig& config) {
  ReplayProbe probe(traffic, config.work, config.engine.ordering);
  Result<std::unique_ptr<Engine>> created = Engine::Create(
      config.engine, [&probe](const MessageView& message) { return probe.Handle(message); });
  if (!created.ok()) return created.status();
  std::unique_ptr<Engine> engine = std::move(created).value();

  std::vector<uint32_t> chat_shard(traffic.chats.size());
  for (uint32_t chat = 0; chat < traffic.chats.size(); ++chat) {
    chat_shard[chat] = engine->ShardOf(traffic.chats[chat]);
  }

  ReplayResult result;
  result.messages = traffic.messages.size();
  result.chats = traffic.chats.size();
  result.bad_lines = traffic.skipped;

  ProgressMeter progress(
      traffic.messages.size(),
      [&engine] {
        const StatsSnapshot stats = engine->Stats();
        return stats.total.completed + stats.total.failed;
      },
      ProgressOptions::ForStderr(config.progress));
  const Clock::time_point start = Clock::now();
  {
    std::unique_ptr<Producer> producer = engine->CreateProducer();
    SubmitAll(traffic, config, *producer, progress, result);
  }  // a Producer must be destroyed before its Engine
  const ShutdownReport shutdown = engine->Shutdown(ShutdownMode::kDrain, kDrainDeadline);
  const Clock::time_point end = Clock::now();
  progress.Stop();  // before the engine it samples goes
  result.duration_s = duration<double>(end - start).count();
  result.unprocessed = shutdown.unprocessed.size();
  result.shutdown_deadline_reached = shutdown.deadline_reached;
  result.stats = engine->Stats();
  // The probe may be read once every handler run has returned. When none
  // outlived Shutdown that is now, and the engine's destruction (freeing its
  // queues and mailboxes, milliseconds after a large replay) overlaps the
  // summary below; otherwise the destructor waits for those runs first.
  std::thread destroyer;
  if (shutdown.still_running == 0) {
    try {
      destroyer = std::thread([doomed = std::move(engine)]() mutable { doomed.reset(); });
    } catch (const std::system_error&) {
      // No thread to be had: the closure that held the engine destroyed it.
    }
  }
  engine.reset();

  result.completed = result.stats.total.completed;
  result.failed = result.stats.total.failed;
  result.throughput_per_s =
      result.duration_s > 0 ? static_cast<double>(result.completed) / result.duration_s : 0;
  SummarizeRuns(traffic, chat_shard, probe, start, end - start, result);
  if (destroyer.joinable()) destroyer.join();  // before `probe`, which its handler uses, goes
  return result;
}

std::string ReplayProblems(const ReplayResult& result, const ReplayConfig& config) {
  std::string problems;
  if (result.completed != result.messages) {
    problems += fmt::format(
        "  {} of {} messages did not complete (rejected {}, failed {}, unprocessed {})\n",
        result.messages - std::min(result.completed, result.messages), result.messages,
        result.rejected, result.failed, result.unprocessed);
  }
  if (result.duplicates > 0) {
    problems +=
        fmt::format("  {} handler runs of a message that had already run\n", result.duplicates);
  }
  if (result.corrupt > 0) {
    problems +=
        fmt::format("  {} handler runs of a message the replay did not send\n", result.corrupt);
  }
  if (config.engine.ordering == Ordering::kPerChat && result.order_violations > 0) {
    problems +=
        fmt::format("  {} order violations with ordering per_chat\n", result.order_violations);
  }
  return problems;
}

void SummarizeRuns(const Traffic& traffic, const std::vector<uint32_t>& chat_shard,
                   const ReplayProbe& probe, Clock::time_point start, Clock::duration span,
                   ReplayResult& result) {
  // The hottest chat by the engine's sketch, found in the file.
  Isolation& isolation = result.isolation;
  uint32_t hot_chat = 0;
  if (!result.stats.hot_chats.empty()) {
    const HotChat& hottest = result.stats.hot_chats.front();
    for (uint32_t chat = 0; chat < traffic.chats.size(); ++chat) {
      if (traffic.chats[chat] == hottest.chat_id) {
        isolation.known = true;
        isolation.hot_chat = hottest.chat_id;
        isolation.hot_shard = chat_shard[chat];
        hot_chat = chat;
        break;
      }
    }
  }
  // Each chat's isolation group: the hot chat, the other chats of its shard,
  // the chats of the other shards; kNoGroup when there is no hot chat.
  enum Group : uint8_t { kHot, kHotShardOthers, kOtherShards, kNoGroup };
  std::vector<uint8_t> group(traffic.chats.size(), kNoGroup);
  if (isolation.known) {
    for (uint32_t chat = 0; chat < traffic.chats.size(); ++chat) {
      group[chat] = chat == hot_chat                          ? kHot
                    : chat_shard[chat] == isolation.hot_shard ? kHotShardOthers
                                                              : kOtherShards;
    }
  }

  // One pass over the runs, split over the CPUs: latency, isolation groups
  // and the timeline, each thread in its own Partial, merged after.
  struct alignas(64) Partial {
    Partial(Clock::time_point start, Clock::duration span) : timeline(start, span) {}
    internal::HistogramData all;
    std::array<internal::HistogramData, 3> groups;
    TimelineBuilder timeline;
  };
  const unsigned threads = std::clamp(std::thread::hardware_concurrency(), 1u, 4u);
  std::vector<Partial> partials;
  partials.reserve(threads);
  for (unsigned k = 0; k < threads; ++k) partials.emplace_back(start, span);
  const ReplayProbe::Totals totals =
      probe.ForEachFirstRun(threads, [&](unsigned k, const ReplayProbe::FirstRun& run) {
        Partial& mine = partials[k];
        const int bucket = internal::HistogramBucketOf(run.end_to_end_ns);
        mine.all.RecordIn(bucket, run.end_to_end_ns);
        if (const uint8_t g = group[run.chat]; g != kNoGroup) {
          mine.groups[g].RecordIn(bucket, run.end_to_end_ns);
        }
        mine.timeline.Add(run.finished_ns, run.end_to_end_ns);
      });
  internal::HistogramData& all = partials[0].all;
  std::array<internal::HistogramData, 3>& groups = partials[0].groups;
  for (unsigned k = 1; k < threads; ++k) {
    all.Merge(partials[k].all);
    for (size_t g = 0; g < groups.size(); ++g) groups[g].Merge(partials[k].groups[g]);
    partials[0].timeline.Merge(partials[k].timeline);
  }
  result.handled = totals.runs;
  result.duplicates = totals.duplicates;
  result.order_violations = totals.order_violations;
  result.corrupt = totals.corrupt;
  result.timeline = std::move(partials[0].timeline).Take();

  if (isolation.known) {
    // Every message ran once: the hot chat's runs are its messages in the
    // file. Otherwise count them there.
    if (totals.first_runs() == traffic.messages.size()) {
      isolation.hot_chat_messages = groups[kHot].count;
    } else {
      for (const TrafficMessage& message : traffic.messages) {
        isolation.hot_chat_messages += message.chat == hot_chat;
      }
    }
  }
  result.end_to_end = all.SummaryMicros();
  result.end_to_end_histogram.clear();
  for (int bucket = 0; bucket < internal::kHistogramBuckets; ++bucket) {
    if (all.counts[bucket] == 0) continue;
    const uint64_t lower = bucket == 0 ? 0 : internal::HistogramBucketUpperBound(bucket - 1);
    const uint64_t upper = std::min(internal::HistogramBucketUpperBound(bucket), all.max);
    result.end_to_end_histogram.push_back(LatencyBucket{
        static_cast<double>(lower) / 1e3, static_cast<double>(upper) / 1e3, all.counts[bucket]});
  }
  isolation.hot_chat_latency = Summarize(groups[kHot]);
  isolation.hot_shard_others = Summarize(groups[kHotShardOthers]);
  isolation.other_shards = Summarize(groups[kOtherShards]);
}

Subcommand AddReplayCommand(CLI::App& app) {
  auto flags = std::make_shared<ReplayFlags>();
  ReplayConfig& config = flags->config;
  Options& engine = config.engine;
  CLI::App* command = app.add_subcommand(
      "replay",
      "Replay a traffic file (JSON Lines, gzip or not) into an engine and report loss, "
      "per-chat order, latency, per-shard load, fairness and hot-chat isolation.");
  command->footer(
      "Exit codes: 0 success; 1 the file cannot be read (or has a bad line, with --strict) or "
      "--json or --html cannot be written; 2 bad usage or invalid options; 3 messages were "
      "lost or, with --ordering per_chat, ran out of order.");

  command->add_option("FILE", config.path, "Traffic file; - reads standard input")->required();
  AddEngineFlags(*command, engine);
  AddSpeedFlag(*command, flags->speed,
               "max: as fast as possible; a factor F: the recorded pace sped up F times "
                   "(message i is due (ts_us[i] - ts_us[0]) / F microseconds after the first)");
  AddWorkFlags(*command, flags->work);
  command->add_option("--json", config.json_path, "Also write the results as JSON to this file");
  command->add_flag("--strict", config.strict,
                    "Stop at the first bad line of FILE (exit 1) instead of skipping it");
  command->add_option("--html", config.html_path,
                      "Also write the report as one self-contained HTML page with charts "
                      "(opens offline) to this file");
  command->add_flag("--no-progress{false}", config.progress,
                    "Show no progress on stderr (by default: a redrawn line on a terminal, "
                    "otherwise a plain line every 2 s; nothing for runs under 1 s)");
  AddRedisReplayFlags(*command, flags->redis);

  return Subcommand{command, [flags] { return RunReplayCommand(*flags); }};
}

}  // namespace chatshard::cli
