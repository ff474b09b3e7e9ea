// chatshard_peer_replay: replays one traffic file through one in-process
// engine (chatshard::Engine, the naive mutex pool of bench/naive_engine.h, or
// Boost.Asio strands) with the same producer loop, the same handler and the
// same measurements, and prints the results as one JSON object. perf/run
// drives it; every engine sees byte-identical input.
//
//   chatshard_peer_replay --engine chatshard|naive|asio --file TRAFFIC
//       [--partitions 8] [--concurrency 4] [--ordering per_chat|none]
//       [--threads 0] [--quantum 16] [--naive-workers 1] [--speed max|F]
//       [--work-us 0] [--work-mode busy|sleep] [--max-payload 4096] [--json OUT]
//
// The producer is the main thread. Message i carries its index in the first 8
// payload bytes, padded to min(bytes, --max-payload). The handler checks
// per-chat order (an index lower than the chat's last one is a violation),
// does the simulated work, and records enqueue->start and enqueue->done. The
// clock starts at the first Submit and stops when the last handler finished.
// Isolation: the hottest chat's shard (ShardFor at --partitions) against the
// other shards, p99 enqueue->done of the other chats on it vs of chats
// elsewhere (for asio, which has no shards, the same split is reported for
// comparison only).
// The file is any traffic file `chatshard replay` reads (JSON Lines, gzip or
// not, or binary), read by the same cli::LoadTraffic.
// Exit codes: 0 ok; 1 the file cannot be read or OUT written; 2 bad usage;
// 3 a message was lost.
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "asio_strand_engine.h"
#include "chatshard/engine.h"
#include "chatshard/options.h"
#include "chatshard/routing.h"
#include "naive_engine.h"
#include "traffic_file.h"  // tools/chatshard: the reader `chatshard replay` uses

namespace {

using chatshard::Clock;

struct Flags {
  std::string engine = "chatshard";
  std::string file;
  uint32_t partitions = 8;
  uint32_t concurrency = 4;
  std::string ordering = "per_chat";
  uint32_t threads = 0;
  uint32_t quantum = 16;
  uint32_t naive_workers = 1;
  double speed = 0;  // 0 = max
  int64_t work_us = 0;
  bool work_sleep = false;
  size_t max_payload = 4096;
  std::string json;
};

[[noreturn]] void Usage(const std::string& why) {
  std::fprintf(stderr, "chatshard_peer_replay: %s\n", why.c_str());
  std::exit(2);
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string name = argv[i];
    if (i + 1 >= argc) Usage("flag " + name + " needs a value");
    const std::string value = argv[++i];
    try {
      if (name == "--engine") f.engine = value;
      else if (name == "--file") f.file = value;
      else if (name == "--partitions") f.partitions = static_cast<uint32_t>(std::stoul(value));
      else if (name == "--concurrency") f.concurrency = static_cast<uint32_t>(std::stoul(value));
      else if (name == "--ordering") f.ordering = value;
      else if (name == "--threads") f.threads = static_cast<uint32_t>(std::stoul(value));
      else if (name == "--quantum") f.quantum = static_cast<uint32_t>(std::stoul(value));
      else if (name == "--naive-workers") f.naive_workers = static_cast<uint32_t>(std::stoul(value));
      else if (name == "--speed") f.speed = value == "max" ? 0 : std::stod(value);
      else if (name == "--work-us") f.work_us = std::stoll(value);
      else if (name == "--work-mode") f.work_sleep = value == "sleep";
      else if (name == "--max-payload") f.max_payload = std::stoul(value);
      else if (name == "--json") f.json = value;
      else Usage("unknown flag " + name);
    } catch (const std::exception&) {
      Usage("bad value for " + name + ": '" + value + "'");
    }
  }
  if (f.file.empty()) Usage("--file is required");
  if (f.engine != "chatshard" && f.engine != "naive" && f.engine != "asio") {
    Usage("--engine must be chatshard, naive or asio, got '" + f.engine + "'");
  }
  if (f.ordering != "per_chat" && f.ordering != "none") {
    Usage("--ordering must be per_chat or none, got '" + f.ordering + "'");
  }
  if (f.partitions == 0 || f.concurrency == 0 || f.naive_workers == 0) {
    Usage("--partitions, --concurrency and --naive-workers must be >= 1");
  }
  if (f.speed < 0) Usage("--speed must be max or > 0");
  if (f.max_payload < 8) f.max_payload = 8;
  return f;
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0, max = 0;
  uint64_t count = 0;
};

// Nearest-rank percentiles of `ns`, in microseconds.
Percentiles Summarize(std::vector<int64_t> ns) {
  Percentiles p;
  p.count = ns.size();
  if (ns.empty()) return p;
  std::sort(ns.begin(), ns.end());
  auto at = [&](double q) {
    size_t rank = static_cast<size_t>(q * static_cast<double>(ns.size()) + 0.999999);
    rank = std::clamp<size_t>(rank, 1, ns.size());
    return static_cast<double>(ns[rank - 1]) / 1e3;
  };
  p.p50 = at(0.50);
  p.p90 = at(0.90);
  p.p99 = at(0.99);
  p.max = static_cast<double>(ns.back()) / 1e3;
  return p;
}

std::string Json(const Percentiles& p) {
  char buffer[256];
  std::snprintf(buffer, sizeof buffer,
                "{\"count\":%llu,\"p50\":%.1f,\"p90\":%.1f,\"p99\":%.1f,\"max\":%.1f}",
                static_cast<unsigned long long>(p.count), p.p50, p.p90, p.p99, p.max);
  return buffer;
}

std::string Escape(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  const Flags flags = ParseFlags(argc, argv);
  chatshard::Result<chatshard::cli::Traffic> loaded = chatshard::cli::LoadTraffic(flags.file, {});
  if (!loaded.ok()) {
    std::fprintf(stderr, "chatshard_peer_replay: %s\n", loaded.status().ToString().c_str());
    return 1;
  }
  const chatshard::cli::Traffic& traffic = *loaded;
  const size_t n = traffic.messages.size();
  if (n == 0) {
    std::fprintf(stderr, "chatshard_peer_replay: %s holds no messages\n", flags.file.c_str());
    return 1;
  }

  // Payloads, built up front so the producer loop only submits.
  std::vector<std::string> payloads(n);
  for (size_t i = 0; i < n; ++i) {
    const size_t size = std::clamp<size_t>(traffic.messages[i].bytes, 8, flags.max_payload);
    payloads[i].assign(size, '.');
    const uint64_t index = i;
    std::memcpy(payloads[i].data(), &index, sizeof index);
  }
  // The hottest chat and the shard of every chat.
  std::vector<uint64_t> per_chat(traffic.chats.size(), 0);
  for (const auto& m : traffic.messages) ++per_chat[m.chat];
  const uint32_t hot_chat = static_cast<uint32_t>(
      std::max_element(per_chat.begin(), per_chat.end()) - per_chat.begin());
  std::vector<uint32_t> chat_shard(traffic.chats.size());
  for (size_t c = 0; c < traffic.chats.size(); ++c) {
    chat_shard[c] = chatshard::ShardFor(traffic.chats[c], flags.partitions);
  }

  std::unique_ptr<std::atomic<int64_t>[]> submit_ns(new std::atomic<int64_t>[n]);
  std::vector<int64_t> start_latency(n, -1), done_latency(n, -1);
  std::unique_ptr<std::atomic<int64_t>[]> last_index(new std::atomic<int64_t>[traffic.chats.size()]);
  for (size_t c = 0; c < traffic.chats.size(); ++c) last_index[c].store(-1);
  std::atomic<uint64_t> done{0}, violations{0}, runs{0};

  const int64_t work_ns = flags.work_us * 1000;
  const bool work_sleep = flags.work_sleep;
  auto handler = [&](const chatshard::MessageView& m) {
    const int64_t started = NowNs();
    uint64_t index = 0;
    if (m.payload.size() >= 8) std::memcpy(&index, m.payload.data(), sizeof index);
    if (index >= n) return chatshard::Outcome::kDone;
    runs.fetch_add(1, std::memory_order_relaxed);
    const uint32_t chat = traffic.messages[index].chat;
    const int64_t previous = last_index[chat].exchange(static_cast<int64_t>(index),
                                                       std::memory_order_relaxed);
    if (previous > static_cast<int64_t>(index)) violations.fetch_add(1, std::memory_order_relaxed);
    if (work_ns > 0) {
      if (work_sleep) {
        std::this_thread::sleep_for(std::chrono::nanoseconds(work_ns));
      } else {
        while (NowNs() - started < work_ns) {
        }
      }
    }
    const int64_t finished = NowNs();
    // Acquire: pairs with the producer's release store before Submit (the
    // engines' queues order it already; this keeps the driver self-evident).
    const int64_t submitted = submit_ns[index].load(std::memory_order_acquire);
    start_latency[index] = started - submitted;
    done_latency[index] = finished - submitted;
    done.fetch_add(1, std::memory_order_release);
    return chatshard::Outcome::kDone;
  };

  std::unique_ptr<chatshard::Engine> engine;
  std::unique_ptr<chatshard::Producer> producer;
  std::unique_ptr<chatshard::bench::NaiveEngine> naive;
  std::unique_ptr<chatshard::bench::AsioStrandEngine> asio;
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  if (flags.engine == "chatshard") {
    chatshard::Options options;
    options.partitions = flags.partitions;
    options.concurrency = flags.concurrency;
    options.ordering =
        flags.ordering == "none" ? chatshard::Ordering::kNone : chatshard::Ordering::kPerChat;
    options.threads = flags.threads;
    options.quantum = flags.quantum;
    auto created = chatshard::Engine::Create(options, handler);
    if (!created.ok()) {
      std::fprintf(stderr, "chatshard_peer_replay: %s\n", created.status().ToString().c_str());
      return 2;
    }
    engine = std::move(created).value();
    producer = engine->CreateProducer();
  } else if (flags.engine == "naive") {
    chatshard::bench::NaiveEngine::Options options;
    options.partitions = flags.partitions;
    options.workers_per_shard = flags.naive_workers;
    naive = std::make_unique<chatshard::bench::NaiveEngine>(options, handler);
  } else {
    asio = std::make_unique<chatshard::bench::AsioStrandEngine>(
        flags.threads == 0 ? hw : flags.threads, handler);
  }

  uint64_t backpressure_waits = 0;
  const double cpu_before = CpuSeconds();
  const int64_t t0 = NowNs();
  const int64_t ts0 = traffic.messages[0].ts_us;
  for (size_t i = 0; i < n; ++i) {
    const auto& m = traffic.messages[i];
    if (flags.speed > 0) {
      const int64_t due =
          t0 + static_cast<int64_t>(static_cast<double>(m.ts_us - ts0) * 1000.0 / flags.speed);
      for (int64_t now = NowNs(); now < due; now = NowNs()) {
        if (due - now > 200'000) std::this_thread::sleep_for(std::chrono::nanoseconds(due - now - 100'000));
      }
    }
    const std::string& chat = traffic.chats[m.chat];
    submit_ns[i].store(NowNs(), std::memory_order_release);
    if (producer) {
      for (;;) {
        const chatshard::SubmitResult r = producer->Submit(chat, payloads[i]);
        if (r == chatshard::SubmitResult::kAccepted) break;
        if (r != chatshard::SubmitResult::kShardFull && r != chatshard::SubmitResult::kChatOverQuota) {
          std::fprintf(stderr, "chatshard_peer_replay: Submit refused message %zu: %s\n", i,
                       std::string(chatshard::SubmitResultName(r)).c_str());
          return 3;
        }
        ++backpressure_waits;
        std::this_thread::yield();
        submit_ns[i].store(NowNs(), std::memory_order_release);
      }
    } else if (naive) {
      naive->Submit(chat, payloads[i]);
    } else {
      asio->Submit(chat, payloads[i]);
    }
  }
  // Wait for the last handler; a stall of 120 s means something was lost.
  const int64_t give_up = NowNs() + 120'000'000'000;
  while (done.load(std::memory_order_acquire) < n) {
    if (NowNs() > give_up) {
      std::fprintf(stderr, "chatshard_peer_replay: only %llu of %zu messages finished in 120 s\n",
                   static_cast<unsigned long long>(done.load()), n);
      return 3;
    }
    std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
  const int64_t t1 = NowNs();
  const double cpu_s = CpuSeconds() - cpu_before;
  if (engine) (void)engine->Shutdown(chatshard::ShutdownMode::kDrain, std::chrono::seconds(5));
  producer.reset();
  engine.reset();
  naive.reset();
  asio.reset();

  std::vector<int64_t> hot, cold_same, cold_other;
  const uint32_t hot_shard = chat_shard[hot_chat];
  for (size_t i = 0; i < n; ++i) {
    const uint32_t c = traffic.messages[i].chat;
    if (c == hot_chat) hot.push_back(done_latency[i]);
    else if (chat_shard[c] == hot_shard) cold_same.push_back(done_latency[i]);
    else cold_other.push_back(done_latency[i]);
  }
  const Percentiles p_hot = Summarize(hot), p_same = Summarize(cold_same),
                    p_other = Summarize(cold_other);
  const double duration_s = static_cast<double>(t1 - t0) / 1e9;
  std::string label = flags.engine;
  if (flags.engine == "chatshard") label += "-" + flags.ordering;
  if (flags.engine == "chatshard" && flags.quantum != 16) label += "-q" + std::to_string(flags.quantum);
  if (flags.engine == "naive") label += "-c" + std::to_string(flags.naive_workers);

  char head[1024];
  std::snprintf(
      head, sizeof head,
      "{\"peer\":\"%s\",\"engine\":\"%s\",\"file\":\"%s\",\"partitions\":%u,\"concurrency\":%u,"
      "\"ordering\":\"%s\",\"threads\":%u,\"quantum\":%u,\"naive_workers\":%u,\"speed\":%g,\"work_us\":%lld,"
      "\"work_mode\":\"%s\",\"messages\":%zu,\"chats\":%zu,\"completed\":%llu,\"runs\":%llu,"
      "\"order_violations\":%llu,\"backpressure_waits\":%llu,\"duration_s\":%.6f,"
      "\"throughput_per_s\":%.1f,\"cpu_s\":%.3f,",
      label.c_str(), flags.engine.c_str(), Escape(flags.file).c_str(), flags.partitions,
      flags.concurrency, flags.ordering.c_str(), flags.threads, flags.quantum, flags.naive_workers, flags.speed,
      static_cast<long long>(flags.work_us), work_sleep ? "sleep" : "busy", n,
      traffic.chats.size(), static_cast<unsigned long long>(done.load()),
      static_cast<unsigned long long>(runs.load()),
      static_cast<unsigned long long>(violations.load()),
      static_cast<unsigned long long>(backpressure_waits), duration_s,
      static_cast<double>(n) / duration_s, cpu_s);
  std::string out = head;
  out += "\"latency_us\":{\"start\":" + Json(Summarize(start_latency)) +
         ",\"done\":" + Json(Summarize(done_latency)) + "},";
  char iso[512];
  std::snprintf(iso, sizeof iso,
                "\"isolation\":{\"hot_chat_id\":\"%s\",\"hot_shard\":%u,\"hot_share\":%.4f,",
                Escape(traffic.chats[hot_chat]).c_str(), hot_shard,
                static_cast<double>(per_chat[hot_chat]) / static_cast<double>(n));
  out += iso;
  out += "\"hot_chat\":" + Json(p_hot) + ",\"cold_on_hot_shard\":" + Json(p_same) +
         ",\"other_shards\":" + Json(p_other) + "}}\n";
  if (flags.json.empty()) {
    std::fputs(out.c_str(), stdout);
  } else {
    FILE* file = std::fopen(flags.json.c_str(), "w");
    if (file == nullptr || std::fputs(out.c_str(), file) < 0 || std::fclose(file) != 0) {
      std::fprintf(stderr, "chatshard_peer_replay: cannot write %s\n", flags.json.c_str());
      return 1;
    }
  }
  return 0;
}
