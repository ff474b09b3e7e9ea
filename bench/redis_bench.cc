// chatshard_redis_bench: the Redis adapter's figures beside Redis' own
// ceiling, in one process, one run and against one redis-server that the
// binary starts itself on a free loopback port (tests/redis/redis_server.h).
//
// Families, run in this order (each later one reports its ratio to the
// earlier ones; a filtered run measures a missing baseline on demand):
//   BM_Redis_Ceiling_XaddP64   `redis-benchmark -P 64` XADD, entries of our size
//   BM_Redis_Publish           chatshard::redis::Publisher, pipelined XADD
//   BM_Redis_EndToEnd          publish -> Consumer -> no-op handler -> XACK (+ XTRIM)
//   BM_Redis_Latency_HalfMax   publish-to-handler latency, paced at half the
//                              end-to-end maximum measured above
//
// Workload: 16 shards, 1,000 chats with 17-byte ids ("1234/5d41402abc4b")
// taken round-robin, 32-byte payloads: the shape bench/engine_bench.cc uses.
// Entries are {c: chat id, p: payload}, and the ceiling XADDs the same fields
// and sizes. Server: Redis as Debian ships it, started with persistence off
// (appendonly no, no RDB snapshots), so that the figures measure the adapter
// and Redis' command path rather than this VM's disk. (One run with AOF on,
// appendfsync everysec, before the adapter's optimisations, measured a
// ceiling 2.4x lower on this VM, and the adapter's ratios to it no lower.)
//
// Threads: the 2 CPUs are shared by redis-server, the benchmark thread, the
// adapter's I/O threads and one engine worker (Options::threads = 1).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "chatshard/message.h"
#include "chatshard/options.h"
#include "chatshard/redis/consumer.h"
#include "chatshard/redis/options.h"
#include "chatshard/redis/publisher.h"
#include "redis_server.h"

namespace chatshard::redis::bench {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using testing::RedisServer;
using testing::TestClient;

constexpr uint32_t kPartitions = 16;
constexpr size_t kChats = 1000;
constexpr size_t kChatIdBytes = 17;  // "1234/5d41402abc4b"
constexpr size_t kPayloadBytes = 32;
constexpr int64_t kCeilingRequests = 1'000'000;
constexpr int kCeilingClients = 50;    // redis-benchmark's default
constexpr int kCeilingPipeline = 64;   // the issue's -P 64
constexpr int64_t kPublishMessages = 500'000;
constexpr int64_t kEndToEndMessages = 300'000;
constexpr auto kPacedWindow = std::chrono::seconds(2);
constexpr auto kPaceTick = milliseconds(1);
constexpr auto kRunDeadline = std::chrono::seconds(60);

// ---------------------------------------------------------------- workload

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The same ids as bench/engine_bench.cc: "<4-digit tenant>/<12 hex digits>".
const std::vector<std::string>& ChatIds() {
  static const std::vector<std::string> ids = [] {
    std::vector<std::string> out;
    for (size_t i = 0; i < kChats; ++i) {
      const uint64_t bits = SplitMix64(i);
      char buffer[kChatIdBytes + 1];
      std::snprintf(buffer, sizeof(buffer), "%04u/%012llx",
                    static_cast<unsigned>(1000 + bits % 9000),
                    static_cast<unsigned long long>(bits >> 16));
      out.emplace_back(buffer, kChatIdBytes);
    }
    return out;
  }();
  return ids;
}

const std::string& Payload() {
  static const std::string payload = [] {
    std::string p = "{\"text\":\"";
    p.resize(kPayloadBytes - 2, 'x');
    return p + "\"}";
  }();
  return payload;
}

// Latency runs carry "<16 hex digits: sequence><16 hex digits: send time ns>",
// exactly kPayloadBytes, so the handler can tell when its message was sent.
std::string StampedPayload(uint64_t seq, Clock::time_point sent) {
  char buffer[kPayloadBytes + 1];
  std::snprintf(buffer, sizeof(buffer), "%016" PRIx64 "%016" PRIx64, seq,
                static_cast<uint64_t>(sent.time_since_epoch().count()));
  return std::string(buffer, kPayloadBytes);
}

uint64_t ParseHex(std::string_view s) {
  uint64_t v = 0;
  for (const char c : s) v = v * 16 + static_cast<uint64_t>(c <= '9' ? c - '0' : c - 'a' + 10);
  return v;
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// ------------------------------------------------------------------ server

// One redis-server for the whole run; made in main before any benchmark.
RedisServer* server = nullptr;

// Rates measured so far in this run (items/s), for the ratios. Written and
// read by the benchmark thread only.
struct Measured {
  double ceiling = 0;
  double publish = 0;
  double end_to_end = 0;
};
Measured measured;

ConnectionOptions ConnectionTo(const std::string& prefix) {
  ConnectionOptions c;
  c.address = server->address();
  c.prefix = prefix;
  c.partitions = kPartitions;
  return c;
}

// Every key of this benchmark family goes, so that runs do not add up in
// Redis' memory and a repetition starts empty.
void FlushRedis() {
  TestClient client(server->port());
  client.Run({"FLUSHALL"});
}

// Pending entries (read, not acked) and entries left, over all shard streams.
struct Leftover {
  long long pending = 0;
  long long length = 0;
};
Leftover LeftInRedis(const std::string& prefix, const std::string& group) {
  TestClient client(server->port());
  Leftover left;
  for (uint32_t s = 0; s < kPartitions; ++s) {
    const std::string key = prefix + ":{" + std::to_string(s) + "}:stream";
    left.pending += client.Pending(key, group);
    left.length += client.Int({"XLEN", key});
  }
  return left;
}

// ----------------------------------------------------------------- ceiling

// redis-benchmark -P 64 XADD against our server: Redis' own best case with
// entries of our size (one stream, kCeilingClients connections). Returns
// requests/s from its CSV report, or 0 with `error` set.
double RunRedisBenchmark(int64_t requests, std::string& error) {
  const std::string command = std::string(CHATSHARD_REDIS_BENCHMARK) + " -h 127.0.0.1 -p " +
                              std::to_string(server->port()) + " -c " +
                              std::to_string(kCeilingClients) + " -P " +
                              std::to_string(kCeilingPipeline) + " -n " +
                              std::to_string(requests) + " --csv XADD bench:ceiling '*' c " +
                              ChatIds()[0] + " p '" + Payload() + "' 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) {
    error = "cannot run: " + command;
    return 0;
  }
  std::string output;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  const int rc = ::pclose(pipe);
  // The data line is "\"XADD ...\",\"<rps>\",...": the first field after the
  // test name.
  const size_t line = output.find("\"XADD");
  const size_t field = line == std::string::npos ? line : output.find("\",\"", line);
  if (rc != 0 || field == std::string::npos) {
    error = "redis-benchmark exited " + std::to_string(rc) + " without a result: " + output;
    return 0;
  }
  return std::strtod(output.c_str() + field + 3, nullptr);
}

double CeilingRate(std::string& error) {
  if (measured.ceiling == 0) {
    measured.ceiling = RunRedisBenchmark(kCeilingRequests, error);
    FlushRedis();
  }
  return measured.ceiling;
}

void BM_Redis_Ceiling_XaddP64(benchmark::State& state) {
  std::string error;
  for (auto _ : state) {
    measured.ceiling = 0;
    const double rps = CeilingRate(error);
    if (rps <= 0) {
      state.SkipWithError(error.c_str());
      return;
    }
    state.SetIterationTime(static_cast<double>(kCeilingRequests) / rps);
  }
  state.SetItemsProcessed(state.iterations() * kCeilingRequests);
  state.counters["clients"] = kCeilingClients;
  state.counters["pipeline"] = kCeilingPipeline;
}

// Adds "<name>_over_ceiling" = rate / ceiling; the ceiling's own figure
// stands beside it as a counter, so every figure has its baseline.
void ReportAgainstCeiling(benchmark::State& state, const char* name, double rate) {
  std::string error;
  const double ceiling = CeilingRate(error);
  if (ceiling <= 0) {
    state.SkipWithError(error.c_str());
    return;
  }
  state.counters["ceiling_per_s"] = ceiling;
  state.counters[std::string(name) + "_over_ceiling"] = rate / ceiling;
}

// ----------------------------------------------------------------- publish

Result<std::unique_ptr<Publisher>> MakePublisher(const std::string& prefix) {
  PublisherOptions options;
  options.connection = ConnectionTo(prefix);
  // Wait for room instead of failing when the window is full: the producer
  // outruns Redis by design here.
  options.publish_timeout = std::chrono::seconds(5);
  return Publisher::Create(options);
}

// Publish completions, counted on the publisher's I/O thread.
struct Confirmed {
  // release: pairs with the acquire in Wait, so the failure text written
  // before the count is visible to the benchmark thread.
  void Add(const Result<std::string>& r) {
    if (!r.ok() && failed.load(std::memory_order_relaxed) == 0) {
      first_error = r.status().ToString();
    }
    (r.ok() ? ok : failed).fetch_add(1, std::memory_order_release);
  }
  bool WaitFor(uint64_t count) const {
    const auto until = Clock::now() + kRunDeadline;
    while (ok.load(std::memory_order_acquire) + failed.load(std::memory_order_acquire) < count) {
      if (Clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    return true;
  }

  std::atomic<uint64_t> ok{0};
  std::atomic<uint64_t> failed{0};
  std::string first_error;  // written by the I/O thread before the first failure count
};

// Publishes `count` messages, chats round-robin; returns the publishes that
// were refused at once (their text in `error`).
uint64_t PublishAll(Publisher& publisher, Confirmed& confirmed, int64_t count,
                    std::string& error) {
  const auto& ids = ChatIds();
  const std::string& payload = Payload();
  uint64_t refused = 0;
  for (int64_t i = 0; i < count; ++i) {
    const Status s = publisher.Publish(ids[static_cast<size_t>(i) % kChats], payload,
                                       [&confirmed](Result<std::string> r) { confirmed.Add(r); });
    if (!s.ok()) {
      if (refused++ == 0) error = s.ToString();
    }
  }
  return refused;
}

void BM_Redis_Publish(benchmark::State& state) {
  for (auto _ : state) {
    Result<std::unique_ptr<Publisher>> created = MakePublisher("bench-publish");
    if (!created.ok()) {
      state.SkipWithError(created.status().ToString().c_str());
      return;
    }
    Publisher& publisher = **created;
    Confirmed confirmed;
    std::string error;
    const Clock::time_point start = Clock::now();
    const uint64_t refused = PublishAll(publisher, confirmed, kPublishMessages, error);
    const bool answered = confirmed.WaitFor(kPublishMessages - refused);
    const double seconds = Seconds(Clock::now() - start);
    const RedisStats stats = publisher.Stats();
    (void)publisher.Close(std::chrono::seconds(5));
    if (!answered || refused > 0 || confirmed.failed.load(std::memory_order_acquire) > 0) {
      const std::string why = "publish: " + std::to_string(refused) + " refused, " +
                              std::to_string(confirmed.failed.load(std::memory_order_acquire)) +
                              " failed, answered in time: " + (answered ? "yes" : "no") + "; " +
                              error + confirmed.first_error;
      state.SkipWithError(why.c_str());
      return;
    }
    state.SetIterationTime(seconds);
    measured.publish = static_cast<double>(kPublishMessages) / seconds;
    state.counters["per_round_trip"] =
        static_cast<double>(kPublishMessages) / static_cast<double>(stats.round_trips);
    FlushRedis();
  }
  state.SetItemsProcessed(state.iterations() * kPublishMessages);
  ReportAgainstCeiling(state, "publish", measured.publish);
}

// -------------------------------------------------------------- end to end

ConsumerOptions MakeConsumerOptions(const std::string& prefix) {
  ConsumerOptions options;
  options.connection = ConnectionTo(prefix);
  return options;
}

Options MakeEngineOptions() {
  Options options;
  options.partitions = kPartitions;
  options.threads = 1;  // one worker; the other CPU serves Redis
  return options;
}

// What one end-to-end run verified after its consumer closed.
struct EndToEndCheck {
  uint64_t acked = 0;    // the consumer's count
  uint64_t handled = 0;  // handler runs
  Leftover left;         // pending entries and stream entries left in Redis
};

// One end-to-end run: a consumer (with its engine) attached to an empty
// prefix, then `count` publishes; done when every entry is acked. Returns
// messages/s, or 0 with `error` set.
double RunEndToEnd(int64_t count, const std::string& prefix, std::string& error,
                   EndToEndCheck& check) {
  // Handler runs, from engine workers; relaxed: only the total is read, after
  // Close (which drains the engine) has ordered every run before it.
  std::atomic<uint64_t> handled{0};
  ConsumerOptions consumer_options = MakeConsumerOptions(prefix);
  Result<std::unique_ptr<Consumer>> consumer =
      Consumer::Create(consumer_options, MakeEngineOptions(), [&handled](const StreamMessage&) {
        handled.fetch_add(1, std::memory_order_relaxed);
        return Outcome::kDone;
      });
  if (!consumer.ok()) {
    error = "Consumer::Create: " + consumer.status().ToString();
    return 0;
  }
  Result<std::unique_ptr<Publisher>> publisher = MakePublisher(prefix);
  if (!publisher.ok()) {
    error = "Publisher::Create: " + publisher.status().ToString();
    return 0;
  }
  while (!(*consumer)->Ready()) std::this_thread::sleep_for(milliseconds(1));

  Confirmed confirmed;
  const Clock::time_point start = Clock::now();
  const uint64_t refused = PublishAll(**publisher, confirmed, count, error);
  const auto until = start + kRunDeadline;
  while ((*consumer)->Stats().acked < static_cast<uint64_t>(count) && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  const double seconds = Seconds(Clock::now() - start);
  (void)(*publisher)->Close(std::chrono::seconds(5));
  const RedisStats stats = (*consumer)->Stats();
  const Status closed = (*consumer)->Close(std::chrono::seconds(5));
  const Leftover left = LeftInRedis(prefix, consumer_options.group);
  const uint64_t runs = handled.load(std::memory_order_relaxed);
  check = EndToEndCheck{stats.acked, runs, left};
  if (refused > 0 || confirmed.failed.load(std::memory_order_acquire) > 0 ||
      stats.acked != static_cast<uint64_t>(count) || runs != static_cast<uint64_t>(count) ||
      left.pending != 0 || left.length != 0 || !closed.ok()) {
    error += "end to end: published " + std::to_string(count - static_cast<int64_t>(refused)) +
             " (failed " + std::to_string(confirmed.failed.load(std::memory_order_acquire)) +
             "), handled " + std::to_string(runs) + ", acked " + std::to_string(stats.acked) +
             ", pending in Redis " + std::to_string(left.pending) + ", entries left " +
             std::to_string(left.length) + ", Close: " + closed.ToString() + " " +
             confirmed.first_error;
    return 0;
  }
  return static_cast<double>(count) / seconds;
}

void BM_Redis_EndToEnd(benchmark::State& state) {
  for (auto _ : state) {
    std::string error;
    EndToEndCheck check;
    const double rate = RunEndToEnd(kEndToEndMessages, "bench-e2e", error, check);
    FlushRedis();
    if (rate <= 0) {
      state.SkipWithError(error.c_str());
      return;
    }
    measured.end_to_end = rate;
    state.SetIterationTime(static_cast<double>(kEndToEndMessages) / rate);
    state.counters["acked"] = static_cast<double>(check.acked);
    state.counters["handled"] = static_cast<double>(check.handled);
    state.counters["left_pending"] = static_cast<double>(check.left.pending);
    state.counters["left_entries"] = static_cast<double>(check.left.length);
  }
  state.SetItemsProcessed(state.iterations() * kEndToEndMessages);
  ReportAgainstCeiling(state, "e2e", measured.end_to_end);
  if (measured.publish > 0) state.counters["publish_per_s"] = measured.publish;
}

// ---------------------------------------------------------------- latency

// Publishes at half the end-to-end maximum of this run for kPacedWindow,
// kPaceTick at a time (each tick sends what is due, then sleeps to the next
// one), and records send-to-handler-start latency per message.
void BM_Redis_Latency_HalfMax(benchmark::State& state) {
  std::string error;
  if (measured.end_to_end == 0) {
    EndToEndCheck check;
    measured.end_to_end = RunEndToEnd(kEndToEndMessages, "bench-e2e", error, check);
    FlushRedis();
    if (measured.end_to_end <= 0) {
      state.SkipWithError(error.c_str());
      return;
    }
  }
  const double rate = measured.end_to_end / 2;
  const auto count = static_cast<uint64_t>(rate * Seconds(kPacedWindow));
  for (auto _ : state) {
    const std::string prefix = "bench-latency";
    // One slot per message, written once by the handler run of that message
    // (its sequence number is in the payload) and read after Close, which
    // drains the engine and so orders every handler run before the read.
    std::vector<int64_t> latency_ns(count, -1);
    Result<std::unique_ptr<Consumer>> consumer = Consumer::Create(
        MakeConsumerOptions(prefix), MakeEngineOptions(), [&](const StreamMessage& m) {
          const int64_t now = Clock::now().time_since_epoch().count();
          const uint64_t seq = ParseHex(m.payload.substr(0, 16));
          const auto sent = static_cast<int64_t>(ParseHex(m.payload.substr(16, 16)));
          if (seq < latency_ns.size()) latency_ns[seq] = now - sent;
          return Outcome::kDone;
        });
    Result<std::unique_ptr<Publisher>> publisher = MakePublisher(prefix);
    if (!consumer.ok() || !publisher.ok()) {
      state.SkipWithError(
          (consumer.status().ToString() + " " + publisher.status().ToString()).c_str());
      return;
    }
    while (!(*consumer)->Ready()) std::this_thread::sleep_for(milliseconds(1));
    Confirmed confirmed;
    const auto& ids = ChatIds();
    uint64_t refused = 0;
    uint64_t seq = 0;
    const Clock::time_point start = Clock::now();
    for (Clock::time_point tick = start; seq < count; tick += kPaceTick) {
      std::this_thread::sleep_until(tick);
      const double due_seconds = Seconds(tick - start + kPaceTick);
      const auto due = std::min<uint64_t>(count, static_cast<uint64_t>(rate * due_seconds));
      for (; seq < due; ++seq) {
        const Status s =
            (*publisher)->Publish(ids[seq % kChats], StampedPayload(seq, Clock::now()),
                                  [&confirmed](Result<std::string> r) { confirmed.Add(r); });
        if (!s.ok() && refused++ == 0) error = s.ToString();
      }
    }
    const double offered_seconds = Seconds(Clock::now() - start);
    const auto until = Clock::now() + kRunDeadline;
    while ((*consumer)->Stats().acked < count - refused && Clock::now() < until) {
      std::this_thread::sleep_for(milliseconds(1));
    }
    (void)(*publisher)->Close(std::chrono::seconds(5));
    const Status closed = (*consumer)->Close(std::chrono::seconds(5));
    FlushRedis();
    std::vector<int64_t> samples;
    samples.reserve(count);
    for (const int64_t ns : latency_ns) {
      if (ns >= 0) samples.push_back(ns);
    }
    if (refused > 0 || samples.size() != count || !closed.ok()) {
      const std::string why = "latency: " + std::to_string(refused) + " refused (" + error +
                              "), " + std::to_string(samples.size()) + " of " +
                              std::to_string(count) + " handled; Close: " + closed.ToString();
      state.SkipWithError(why.c_str());
      return;
    }
    std::sort(samples.begin(), samples.end());
    const auto at = [&](double q) {
      const auto i = static_cast<size_t>(q * static_cast<double>(samples.size() - 1));
      return static_cast<double>(samples[i]) / 1e3;
    };
    state.SetIterationTime(offered_seconds);
    state.counters["target_rate"] = rate;
    state.counters["offered_rate"] = static_cast<double>(count) / offered_seconds;
    state.counters["p50_us"] = at(0.5);
    state.counters["p99_us"] = at(0.99);
    state.counters["p99.9_us"] = at(0.999);
    state.counters["max_us"] = at(1.0);
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * count));
  state.counters["e2e_max_per_s"] = measured.end_to_end;
}

void RegisterAll() {
  using benchmark::kMillisecond;
  for (auto* b :
       {benchmark::RegisterBenchmark("BM_Redis_Ceiling_XaddP64", BM_Redis_Ceiling_XaddP64),
        benchmark::RegisterBenchmark("BM_Redis_Publish", BM_Redis_Publish),
        benchmark::RegisterBenchmark("BM_Redis_EndToEnd", BM_Redis_EndToEnd),
        benchmark::RegisterBenchmark("BM_Redis_Latency_HalfMax", BM_Redis_Latency_HalfMax)}) {
    b->Iterations(1)->UseManualTime()->Unit(kMillisecond);
  }
}

}  // namespace
}  // namespace chatshard::redis::bench

int main(int argc, char** argv) {
  using chatshard::redis::bench::server;
  chatshard::redis::bench::RegisterAll();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  // No AOF, no RDB: see the header comment.
  chatshard::redis::testing::RedisServer redis(
      {"--appendonly", "no"});
  server = &redis;
  benchmark::AddCustomContext("redis", "redis-server " + redis.address() +
                                           ", appendonly no, save \"\"");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  server = nullptr;
  return 0;
}
