// What `chatshard replay --speed max` adds on top of the engine, on the shared
// rust-lang Zulip capture (CHATSHARD_SHARED_DATA, 499,515 messages over 14,812
// chats), in one run:
//
//   BM_Engine_Capture/ordering:O   the engine alone: Engine::Create, the
//                                  capture's messages in file order through
//                                  Producer::SubmitBatch in batches of 64
//                                  (resubmitting what a full shard refuses), a
//                                  no-op handler, Shutdown(kDrain), and the
//                                  engine's destruction
//   BM_Replay_Capture/ordering:O   cli::Replay of the same capture: what the
//                                  command runs once the file is loaded (the
//                                  same engine life, plus its order-checking,
//                                  latency-recording handler, backpressure,
//                                  and the report's summaries)
//   BM_ReplayOverhead/ordering:O   both in each iteration, alternating; counter
//                                  overhead = replay time / engine time - 1
//
// Both use the replay's default engine options (16 partitions, concurrency 4,
// all CPUs, default shard capacity) and the same 8-byte payload the replay
// sends (the message's index). O is 0 for none and 1 for per_chat. Loading the
// file is not timed: chatshard_traffic_bench measures it.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "chatshard/engine.h"
#include "chatshard/options.h"
#include "replay.h"
#include "replay_probe.h"
#include "traffic_file.h"

#ifndef CHATSHARD_SHARED_DATA
#error "CHATSHARD_SHARED_DATA must name ../shared/data (bench/CMakeLists.txt)"
#endif

namespace chatshard::cli {
namespace {

using Clock = std::chrono::steady_clock;
constexpr size_t kBatch = 64;

const Traffic& Capture() {
  static const Traffic traffic = [] {
    const std::string path = std::string(CHATSHARD_SHARED_DATA) + "/rust_zulip_traffic.jsonl.gz";
    Result<Traffic> loaded = LoadTraffic(path, {});
    if (!loaded.ok()) {
      std::fprintf(stderr, "cannot load %s: %s\n", path.c_str(),
                   loaded.status().ToString().c_str());
      std::exit(1);
    }
    return std::move(loaded).value();
  }();
  return traffic;
}

Options CaptureOptions(Ordering ordering) {
  Options options;  // the replay's defaults
  options.ordering = ordering;
  return options;
}

// The engine alone on the capture; returns the wall time of its whole life
// on it: Create, submit, drain (Shutdown), destroy. The replay's time covers
// the same four steps of its own engine, plus what the tool adds.
Clock::duration RunEngine(Ordering ordering, benchmark::State& state) {
  const Traffic& traffic = Capture();
  const Clock::time_point start = Clock::now();
  Result<std::unique_ptr<Engine>> created =
      Engine::Create(CaptureOptions(ordering), [](const MessageView&) { return Outcome::kDone; });
  if (!created.ok()) {
    state.SkipWithError(created.status().ToString().c_str());
    return {};
  }
  std::unique_ptr<Engine> engine = std::move(created).value();
  std::vector<ReplayProbe::Payload> payloads(kBatch);
  std::vector<SubmitItem> items;
  std::vector<SubmitResult> results(kBatch);
  items.reserve(kBatch);
  {
    std::unique_ptr<Producer> producer = engine->CreateProducer();
    const size_t n = traffic.messages.size();
    for (size_t first = 0; first < n; first += kBatch) {
      items.clear();
      const size_t count = std::min(kBatch, n - first);
      for (size_t i = 0; i < count; ++i) {
        payloads[i] = ReplayProbe::EncodePayload(first + i, traffic.messages[first + i].chat);
        items.push_back(SubmitItem{traffic.chats[traffic.messages[first + i].chat],
                                   std::string_view(payloads[i].data(), payloads[i].size())});
      }
      std::span<const SubmitItem> pending(items);
      while (!pending.empty()) {
        const size_t accepted =
            producer->SubmitBatch(pending, std::span<SubmitResult>(results.data(), pending.size()));
        if (accepted == pending.size()) break;
        // Keep the refused ones, in order, and try them again.
        size_t kept = 0;
        for (size_t i = 0; i < pending.size(); ++i) {
          if (results[i] != SubmitResult::kAccepted) items[kept++] = pending[i];
        }
        items.resize(kept);
        pending = std::span<const SubmitItem>(items);
        std::this_thread::yield();
      }
    }
  }
  const ShutdownReport report = engine->Shutdown(ShutdownMode::kDrain, std::chrono::seconds(60));
  engine.reset();
  const Clock::duration took = Clock::now() - start;
  if (!report.unprocessed.empty()) state.SkipWithError("the engine left messages unprocessed");
  return took;
}

// cli::Replay on the capture; returns its wall time.
Clock::duration RunReplay(Ordering ordering, benchmark::State& state) {
  ReplayConfig config;
  config.engine = CaptureOptions(ordering);
  config.progress = false;
  const Clock::time_point start = Clock::now();
  Result<ReplayResult> result = Replay(Capture(), config);
  const Clock::duration took = Clock::now() - start;
  if (!result.ok()) {
    state.SkipWithError(result.status().ToString().c_str());
  } else if (result->completed != Capture().messages.size() || result->duplicates != 0 ||
             (ordering == Ordering::kPerChat && result->order_violations != 0)) {
    state.SkipWithError("the replay lost, repeated or reordered messages");
  }
  return took;
}

void SetItems(benchmark::State& state, int64_t runs_per_iteration) {
  state.SetItemsProcessed(state.iterations() * runs_per_iteration *
                          static_cast<int64_t>(Capture().messages.size()));
}

void BM_Engine_Capture(benchmark::State& state) {
  const auto ordering = static_cast<Ordering>(state.range(0));
  for (auto _ : state) {
    const Clock::duration took = RunEngine(ordering, state);
    state.SetIterationTime(std::chrono::duration<double>(took).count());
  }
  SetItems(state, 1);
}

void BM_Replay_Capture(benchmark::State& state) {
  const auto ordering = static_cast<Ordering>(state.range(0));
  for (auto _ : state) {
    const Clock::duration took = RunReplay(ordering, state);
    state.SetIterationTime(std::chrono::duration<double>(took).count());
  }
  SetItems(state, 1);
}

void BM_ReplayOverhead(benchmark::State& state) {
  const auto ordering = static_cast<Ordering>(state.range(0));
  Clock::duration engine{};
  Clock::duration replay{};
  for (auto _ : state) {
    engine += RunEngine(ordering, state);
    replay += RunReplay(ordering, state);
  }
  state.counters["overhead"] =
      std::chrono::duration<double>(replay) / std::chrono::duration<double>(engine) - 1;
  SetItems(state, 2);
}

// Ordering::kPerChat and kNone by value: 0 is per_chat, 1 is none (options.h).
void OrderingArgs(benchmark::internal::Benchmark* b) {
  b->ArgName("ordering")
      ->Arg(static_cast<int>(Ordering::kNone))
      ->Arg(static_cast<int>(Ordering::kPerChat))
      ->Unit(benchmark::kMillisecond);
}
BENCHMARK(BM_Engine_Capture)->Apply(OrderingArgs)->UseManualTime()->MinTime(1.0);
BENCHMARK(BM_Replay_Capture)->Apply(OrderingArgs)->UseManualTime()->MinTime(1.0);
BENCHMARK(BM_ReplayOverhead)->Apply(OrderingArgs)->MinTime(2.0);

}  // namespace
}  // namespace chatshard::cli

BENCHMARK_MAIN();
