// chatshard_peer_redis_drain: the chatshard side of perf/run's durable
// end-to-end scenario. It consumes shard streams that `chatshard produce`
// filled beforehand with a chatshard::redis::Consumer (XREADGROUP -> engine ->
// handler -> XACK, acked entries trimmed) until --expect entries were acked,
// then closes the consumer and prints one JSON object: the time from creating
// the consumer to the last ack, messages/s and this process' CPU seconds.
//
//   chatshard_peer_redis_drain --address 127.0.0.1:PORT --prefix P --expect N
//       [--partitions 8] [--concurrency 4] [--ordering per_chat|none]
//       [--threads 0] [--work-us 0] [--timeout-s 120] [--read-batch 256]
//       [--window 1024] [--per-chat 64]  (ConsumerOptions read_batch,
//       max_in_flight_per_shard, max_in_flight_per_chat)
//
// Exit codes: 0 every entry acked; 2 bad usage; 3 Redis refused or not every
// entry was acked before the timeout.
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <thread>

#include "chatshard/options.h"
#include "chatshard/redis/consumer.h"
#include "chatshard/redis/options.h"

namespace {

[[noreturn]] void Usage(const std::string& why) {
  std::fprintf(stderr, "chatshard_peer_redis_drain: %s\n", why.c_str());
  std::exit(2);
}

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

}  // namespace

int main(int argc, char** argv) {
  chatshard::redis::ConsumerOptions options;
  chatshard::Options engine;
  engine.partitions = 8;
  engine.concurrency = 4;
  uint64_t expect = 0;
  int64_t work_us = 0;
  double timeout_s = 120;
  std::string ordering = "per_chat";
  for (int i = 1; i < argc; ++i) {
    const std::string name = argv[i];
    if (i + 1 >= argc) Usage("flag " + name + " needs a value");
    const std::string value = argv[++i];
    try {
      if (name == "--address") options.connection.address = value;
      else if (name == "--prefix") options.connection.prefix = value;
      else if (name == "--group") options.group = value;
      else if (name == "--expect") expect = std::stoull(value);
      else if (name == "--partitions") engine.partitions = static_cast<uint32_t>(std::stoul(value));
      else if (name == "--concurrency") engine.concurrency = static_cast<uint32_t>(std::stoul(value));
      else if (name == "--ordering") ordering = value;
      else if (name == "--threads") engine.threads = static_cast<uint32_t>(std::stoul(value));
      else if (name == "--work-us") work_us = std::stoll(value);
      else if (name == "--timeout-s") timeout_s = std::stod(value);
      else if (name == "--read-batch") options.read_batch = static_cast<uint32_t>(std::stoul(value));
      else if (name == "--window")
        options.max_in_flight_per_shard = static_cast<uint32_t>(std::stoul(value));
      else if (name == "--per-chat")
        options.max_in_flight_per_chat = static_cast<uint32_t>(std::stoul(value));
      else Usage("unknown flag " + name);
    } catch (const std::exception&) {
      Usage("bad value for " + name + ": '" + value + "'");
    }
  }
  if (expect == 0) Usage("--expect N (N >= 1) is required");
  if (ordering != "per_chat" && ordering != "none") Usage("--ordering must be per_chat or none");
  engine.ordering = ordering == "none" ? chatshard::Ordering::kNone : chatshard::Ordering::kPerChat;
  options.connection.partitions = engine.partitions;

  std::atomic<uint64_t> handled{0};
  const auto work = std::chrono::microseconds(work_us);
  const double cpu_before = CpuSeconds();
  const auto t0 = std::chrono::steady_clock::now();
  auto created = chatshard::redis::Consumer::Create(
      options, engine, [&](const chatshard::redis::StreamMessage&) {
        if (work_us > 0) {
          const auto until = std::chrono::steady_clock::now() + work;
          while (std::chrono::steady_clock::now() < until) {
          }
        }
        handled.fetch_add(1, std::memory_order_relaxed);
        return chatshard::Outcome::kDone;
      });
  if (!created.ok()) {
    std::fprintf(stderr, "chatshard_peer_redis_drain: %s\n", created.status().ToString().c_str());
    return 3;
  }
  std::unique_ptr<chatshard::redis::Consumer> consumer = std::move(created).value();
  const auto give_up = t0 + std::chrono::duration<double>(timeout_s);
  uint64_t acked = 0;
  while ((acked = consumer->Stats().acked) < expect) {
    if (std::chrono::steady_clock::now() > give_up) {
      std::fprintf(stderr,
                   "chatshard_peer_redis_drain: only %llu of %llu entries acked in %.0f s\n",
                   static_cast<unsigned long long>(acked), static_cast<unsigned long long>(expect),
                   timeout_s);
      (void)consumer->Close(std::chrono::seconds(2));
      return 3;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  const auto t1 = std::chrono::steady_clock::now();
  const double cpu_at_last_ack = CpuSeconds() - cpu_before;
  const chatshard::Status closed = consumer->Close(std::chrono::seconds(5));
  const chatshard::redis::RedisStats stats = consumer->Stats();
  const double duration_s = std::chrono::duration<double>(t1 - t0).count();
  std::printf(
      "{\"peer\":\"chatshard-redis-%s\",\"messages\":%llu,\"handled\":%llu,\"acked\":%llu,"
      "\"dead_lettered\":%llu,\"round_trips\":%llu,\"duration_s\":%.6f,\"throughput_per_s\":%.1f,"
      "\"cpu_s\":%.3f,\"close_ok\":%s}\n",
      ordering.c_str(), static_cast<unsigned long long>(expect),
      static_cast<unsigned long long>(handled.load()),
      static_cast<unsigned long long>(stats.acked),
      static_cast<unsigned long long>(stats.dead_lettered),
      static_cast<unsigned long long>(stats.round_trips), duration_s,
      static_cast<double>(expect) / duration_s, cpu_at_last_ack, closed.ok() ? "true" : "false");
  if (!closed.ok()) {
    std::fprintf(stderr, "chatshard_peer_redis_drain: close: %s\n", closed.ToString().c_str());
  }
  return 0;
}
