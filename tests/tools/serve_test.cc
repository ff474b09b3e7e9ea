// `chatshard serve`, run as an operator would: the binary in the background
// against a real redis-server that each test starts, asked over HTTP with a
// real client (cpp-httplib's), and stopped with SIGTERM or SIGINT. Plus the
// --http parser and the Prometheus mapping on their own.
#include <fcntl.h>
#include <httplib.h>
#include <prometheus/registry.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "chatshard/stats.h"
#include "cli_runner.h"
#include "gtest/gtest.h"
#include "metrics.h"
#include "redis_server.h"
#include "serve.h"

extern char** environ;

namespace chatshard::cli {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using redis::testing::RedisServer;
using redis::testing::TestClient;
using redis::testing::TestReply;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

constexpr auto kWaitLimit = std::chrono::seconds(30);

std::string Url(const RedisServer& server) {
  return "redis://127.0.0.1:" + std::to_string(server.port());
}

// `messages` messages over `chats` chats "room/N", 16-byte payloads.
fs::path WriteTraffic(const std::string& name, int messages, int chats) {
  std::string text;
  for (int i = 0; i < messages; ++i) {
    text += "{\"ts_us\":" + std::to_string(i) + ",\"chat\":\"room/" + std::to_string(i % chats) +
            "\",\"bytes\":16}\n";
  }
  const fs::path path = ScratchDir() / name;
  WriteFile(path, text);
  return path;
}

void Produce(const fs::path& file, const RedisServer& redis, const std::string& prefix) {
  const CommandResult produced = RunCli({"produce", file.string(), "--redis", Url(redis),
                                         "--prefix", prefix, "--no-progress"});
  ASSERT_EQ(produced.exit_code, 0) << produced.err;
}

// Entries of serve's default group delivered and not acked, over the 16 shard
// streams of `prefix`.
long long PendingEntries(const RedisServer& redis, const std::string& prefix) {
  TestClient client(redis.port());
  long long pending = 0;
  for (int shard = 0; shard < 16; ++shard) {
    pending += client.Pending(prefix + ":{" + std::to_string(shard) + "}:stream", "chatshard");
  }
  return pending;
}

// A `chatshard serve` running in the background, its output in files.
class ServeProcess {
 public:
  explicit ServeProcess(std::vector<std::string> args) {
    const fs::path dir = ScratchDir();
    out_path_ = dir / ("serve_" + std::to_string(++count_) + ".out");
    err_path_ = dir / ("serve_" + std::to_string(count_) + ".err");
    args.insert(args.begin(), {CHATSHARD_CLI, "serve"});
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path_.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    EXPECT_EQ(posix_spawn(&pid_, CHATSHARD_CLI, &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
  }
  ~ServeProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  // The port of "listening on http://HOST:PORT", once printed; nullopt if the
  // process ended or never said it within the limit.
  std::optional<int> WaitForPort() {
    const auto until = steady_clock::now() + kWaitLimit;
    while (steady_clock::now() < until) {
      const std::string out = ReadFile(out_path_);
      const std::string key = "listening on http://";
      if (const size_t at = out.find(key); at != std::string::npos) {
        const size_t space = out.find(' ', at + key.size());
        const std::string address = out.substr(at + key.size(), space - at - key.size());
        return std::stoi(address.substr(address.rfind(':') + 1));
      }
      if (Exited()) return std::nullopt;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return std::nullopt;
  }

  // Sends `signal` and waits for the exit code (-1: it did not end in time).
  int StopWith(int signal) {
    kill(pid_, signal);
    const auto until = steady_clock::now() + kWaitLimit;
    while (steady_clock::now() < until) {
      if (Exited()) return exit_code_;
      std::this_thread::sleep_for(milliseconds(10));
    }
    return -1;
  }

  std::string out() const { return ReadFile(out_path_); }
  std::string err() const { return ReadFile(err_path_); }

 private:
  bool Exited() {
    if (pid_ <= 0) return true;
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) != pid_) return false;
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    pid_ = -1;
    return true;
  }

  static inline int count_ = 0;
  fs::path out_path_;
  fs::path err_path_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

// The value of an unlabelled or labelled sample line "NAME{...} VALUE" or
// "NAME VALUE" of a Prometheus exposition; nullopt when absent.
std::optional<double> Sample(const std::string& exposition, const std::string& series) {
  std::istringstream lines(exposition);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.starts_with(series + " ")) return std::stod(line.substr(series.size() + 1));
  }
  return std::nullopt;
}

// Polls GET /metrics until `series` reaches `value`; returns the last text.
std::string WaitForMetric(httplib::Client& http, const std::string& series, double value) {
  std::string text;
  const auto until = steady_clock::now() + kWaitLimit;
  while (steady_clock::now() < until) {
    if (auto response = http.Get("/metrics"); response && response->status == 200) {
      text = response->body;
      if (Sample(text, series).value_or(-1) >= value) return text;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  ADD_FAILURE() << series << " did not reach " << value << ":\n" << text;
  return text;
}

TEST(ServeTest, AnswersItsFourEndpointsAndDrainsOnSigterm) {
  RedisServer redis;
  const int kMessages = 3000;
  Produce(WriteTraffic("traffic.jsonl", kMessages, 40), redis, "srv");
  ServeProcess serve({"--redis", Url(redis), "--http", "127.0.0.1:0", "--prefix", "srv",
                      "--partitions", "16", "--consumer", "test-serve"});
  const std::optional<int> port = serve.WaitForPort();
  ASSERT_TRUE(port.has_value()) << serve.out() << serve.err();
  httplib::Client http("127.0.0.1", *port);

  const std::string metrics = WaitForMetric(http, "chatshard_redis_acked_total", kMessages);
  EXPECT_EQ(Sample(metrics, "chatshard_redis_delivered_total"), kMessages);
  EXPECT_EQ(Sample(metrics, "chatshard_redis_dead_lettered_total"), 0);
  EXPECT_EQ(Sample(metrics, "chatshard_redis_connected"), 1);
  EXPECT_EQ(Sample(metrics, "chatshard_ready"), 1);
  EXPECT_EQ(Sample(metrics, "chatshard_healthy"), 1);
  EXPECT_NE(metrics.find("# TYPE chatshard_completed_total counter"), std::string::npos);
  EXPECT_NE(metrics.find("chatshard_queue_wait_seconds{quantile=\"0.99\",shard=\"0\"}"),
            std::string::npos)
      << metrics;
  double completed = 0;
  for (int shard = 0; shard < 16; ++shard) {
    completed += Sample(metrics, "chatshard_completed_total{shard=\"" + std::to_string(shard) +
                                     "\"}")
                     .value_or(0);
  }
  EXPECT_EQ(completed, kMessages);

  auto healthz = http.Get("/healthz");
  ASSERT_TRUE(healthz);
  EXPECT_EQ(healthz->status, 200);
  EXPECT_EQ(healthz->body, "ok\n");
  auto readyz = http.Get("/readyz");
  ASSERT_TRUE(readyz);
  EXPECT_EQ(readyz->status, 200);
  EXPECT_EQ(readyz->body, "ready\n");

  auto sharding = http.Get("/sharding");
  ASSERT_TRUE(sharding);
  EXPECT_EQ(sharding->status, 200);
  EXPECT_EQ(sharding->get_header_value("Content-Type"), "application/json");
  const json body = json::parse(sharding->body);
  EXPECT_EQ(body["partitions"], 16);
  EXPECT_EQ(body["consumer"], "test-serve");
  ASSERT_EQ(body["shards"].size(), 16u);
  uint64_t sharded = 0;
  for (const json& shard : body["shards"]) {
    for (const char* key : {"shard", "submitted", "completed", "failed", "rejected", "waiting",
                            "active", "queue_wait_us"}) {
      EXPECT_TRUE(shard.contains(key)) << key;
    }
    sharded += shard["completed"].get<uint64_t>();
  }
  EXPECT_EQ(sharded, static_cast<uint64_t>(kMessages));
  for (const char* key : {"jain", "cv", "max_over_mean", "chi2_p"}) {
    EXPECT_TRUE(body["fairness"].contains(key)) << key;
  }
  EXPECT_FALSE(body["hot_chats"].empty());

  auto missing = http.Get("/nothing-here");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);

  EXPECT_EQ(serve.StopWith(SIGTERM), 0) << serve.err();
  EXPECT_NE(serve.out().find("SIGTERM: draining"), std::string::npos) << serve.out();
  EXPECT_NE(serve.out().find(std::to_string(kMessages) + " acked"), std::string::npos)
      << serve.out();
  EXPECT_EQ(PendingEntries(redis, "srv"), 0);
}

TEST(ServeTest, ReadyzFollowsTheRedisConnection) {
  RedisServer redis;
  ServeProcess serve({"--redis", Url(redis), "--http", "127.0.0.1:0", "--prefix", "rdy"});
  const std::optional<int> port = serve.WaitForPort();
  ASSERT_TRUE(port.has_value()) << serve.out() << serve.err();
  httplib::Client http("127.0.0.1", *port);
  const auto wait_for_status = [&http](int status) {
    const auto until = steady_clock::now() + kWaitLimit;
    while (steady_clock::now() < until) {
      if (auto response = http.Get("/readyz"); response && response->status == status) {
        return response->body;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    ADD_FAILURE() << "/readyz never answered " << status;
    return std::string();
  };
  wait_for_status(200);
  redis.Kill();
  EXPECT_NE(wait_for_status(503).find("redis: not connected"), std::string::npos);
  auto healthz = http.Get("/healthz");  // nothing queued: still healthy
  ASSERT_TRUE(healthz);
  EXPECT_EQ(healthz->status, 200);
  redis.Restart();
  wait_for_status(200);
  EXPECT_EQ(serve.StopWith(SIGINT), 0) << serve.err();
}

TEST(ServeTest, ExecRunsACommandPerMessageAndDeadLettersItsFailures) {
  RedisServer redis;
  // room/0 always fails (exit 3); room/1 asks for a retry (exit 75) on every
  // attempt; the rest append "<chat> <attempt> <payload bytes>" to a file.
  const fs::path log = ScratchDir() / "exec.log";
  Produce(WriteTraffic("exec.jsonl", 30, 5), redis, "ex");
  const std::string command =
      "case \"$CHATSHARD_CHAT_ID\" in room/0) exit 3 ;; room/1) exit 75 ;; esac; "
      "echo \"$CHATSHARD_CHAT_ID $CHATSHARD_ATTEMPT $(wc -c)\" >> " +
      log.string();
  ServeProcess serve({"--redis", Url(redis), "--http", "127.0.0.1:0", "--prefix", "ex",
                      "--max-attempts", "2", "--exec", command});
  const std::optional<int> port = serve.WaitForPort();
  ASSERT_TRUE(port.has_value()) << serve.out() << serve.err();
  httplib::Client http("127.0.0.1", *port);
  const std::string metrics = WaitForMetric(http, "chatshard_redis_acked_total", 30);
  EXPECT_EQ(Sample(metrics, "chatshard_redis_dead_lettered_total"), 12);  // 6 each of room/0, 1
  EXPECT_EQ(serve.StopWith(SIGTERM), 0) << serve.err();

  std::istringstream lines(ReadFile(log));
  std::string line;
  int ran = 0;
  while (std::getline(lines, line)) {
    ++ran;
    EXPECT_FALSE(line.starts_with("room/0 ") || line.starts_with("room/1 ")) << line;
    EXPECT_TRUE(line.ends_with(" 1 16")) << line;  // first attempt; the 16-byte payload on stdin
  }
  EXPECT_EQ(ran, 18);

  TestClient client(redis.port());
  int dead = 0;
  for (int shard = 0; shard < 16; ++shard) {
    const TestReply entries =
        client.Run({"XRANGE", "ex:{" + std::to_string(shard) + "}:dead", "-", "+"});
    for (const TestReply& entry : entries.elements) {
      ++dead;
      std::string chat, reason, attempts;
      const std::vector<TestReply>& fields = entry.elements[1].elements;
      for (size_t i = 0; i + 1 < fields.size(); i += 2) {
        if (fields[i].str == "c") chat = fields[i + 1].str;
        if (fields[i].str == "reason") reason = fields[i + 1].str;
        if (fields[i].str == "attempts") attempts = fields[i + 1].str;
      }
      if (chat == "room/0") {
        EXPECT_NE(reason.find("exited with status 3"), std::string::npos) << reason;
        EXPECT_EQ(attempts, "1");
      } else {
        EXPECT_EQ(chat, "room/1");
        EXPECT_EQ(attempts, "2");
      }
    }
  }
  EXPECT_EQ(dead, 12);
}

TEST(ServeTest, ExecTimeoutKillsTheCommandAndFailsTheMessage) {
  RedisServer redis;
  Produce(WriteTraffic("slow.jsonl", 2, 2), redis, "slow");
  ServeProcess serve({"--redis", Url(redis), "--http", "127.0.0.1:0", "--prefix", "slow",
                      "--max-attempts", "1", "--exec", "sleep 30", "--exec-timeout-ms", "200"});
  const std::optional<int> port = serve.WaitForPort();
  ASSERT_TRUE(port.has_value()) << serve.out() << serve.err();
  httplib::Client http("127.0.0.1", *port);
  const auto start = steady_clock::now();
  const std::string metrics = WaitForMetric(http, "chatshard_redis_dead_lettered_total", 2);
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_EQ(serve.StopWith(SIGTERM), 0) << serve.err();
  TestClient client(redis.port());
  const TestReply dead = client.Run({"XRANGE", "slow:{" +
                                                   std::to_string(ShardFor("room/0", 16)) +
                                                   "}:dead", "-", "+"});
  ASSERT_EQ(dead.elements.size(), 1u);
  bool found = false;
  for (const TestReply& field : dead.elements[0].elements[1].elements) {
    found = found || field.str.find("ran longer than 200 ms and was killed") != std::string::npos;
  }
  EXPECT_TRUE(found);
}

TEST(ServeTest, ADrainDeadlineLeavesUnfinishedEntriesPendingAndSaysSo) {
  RedisServer redis;
  Produce(WriteTraffic("stuck.jsonl", 4, 4), redis, "stuck");
  ServeProcess serve({"--redis", Url(redis), "--http", "127.0.0.1:0", "--prefix", "stuck",
                      "--exec", "sleep 30", "--exec-timeout-ms", "0", "--drain-ms", "300"});
  const std::optional<int> port = serve.WaitForPort();
  ASSERT_TRUE(port.has_value()) << serve.out() << serve.err();
  httplib::Client http("127.0.0.1", *port);
  WaitForMetric(http, "chatshard_redis_delivered_total", 4);
  const auto start = steady_clock::now();
  EXPECT_EQ(serve.StopWith(SIGTERM), 3) << serve.err();
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_NE(serve.err().find("stay pending"), std::string::npos) << serve.err();
  EXPECT_EQ(PendingEntries(redis, "stuck"), 4);
}

TEST(ServeTest, UnreachableRedisIsAClearErrorInBoundedTime) {
  const int port = redis::testing::FreePort();
  const auto start = steady_clock::now();
  const CommandResult result = RunCli(
      {"serve", "--redis", "redis://127.0.0.1:" + std::to_string(port), "--http", "127.0.0.1:0"});
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds(15));
  EXPECT_EQ(result.exit_code, 3) << result.err;
  EXPECT_NE(result.err.find("cannot start consuming redis://127.0.0.1:" + std::to_string(port)),
            std::string::npos)
      << result.err;
}

TEST(ServeTest, BadFlagsAreUsageErrorsThatNameTheValue) {
  CommandResult result = RunCli({"serve", "--redis", "redis://127.0.0.1:1", "--http", "nowhere"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("'nowhere'"), std::string::npos) << result.err;
  result = RunCli({"serve", "--redis", "redis://127.0.0.1:1", "--partitions", "0"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("partitions"), std::string::npos) << result.err;
  result = RunCli({"serve", "--redis", "rediss://127.0.0.1:1"});
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("TLS"), std::string::npos) << result.err;
}

TEST(ServeTest, AnAddressInUseIsRefused) {
  RedisServer redis;
  // The redis-server's own port is taken for sure.
  const CommandResult result = RunCli(
      {"serve", "--redis", Url(redis), "--http", "127.0.0.1:" + std::to_string(redis.port())});
  EXPECT_EQ(result.exit_code, 1) << result.err;
  EXPECT_NE(result.err.find("cannot listen on 127.0.0.1:" + std::to_string(redis.port())),
            std::string::npos)
      << result.err;
}

TEST(HttpAddressTest, ParsesTheThreeForms) {
  Result<HttpAddress> address = ParseHttpAddress("127.0.0.1:8080");
  ASSERT_TRUE(address.ok());
  EXPECT_EQ(address->host, "127.0.0.1");
  EXPECT_EQ(address->port, 8080);
  address = ParseHttpAddress(":9000");
  ASSERT_TRUE(address.ok());
  EXPECT_EQ(address->host, "0.0.0.0");
  EXPECT_EQ(address->port, 9000);
  address = ParseHttpAddress("[::1]:0");
  ASSERT_TRUE(address.ok());
  EXPECT_EQ(address->host, "::1");
  EXPECT_EQ(address->port, 0);
  EXPECT_EQ(address->ToString(), "[::1]:0");
}

TEST(HttpAddressTest, RejectsWhatIsNotAnAddress) {
  for (const char* text : {"", "8080", "host:", "host:70000", "host:-1", "host:80x", "::1:80",
                           "[::1]", "[::1]80", "[]:80", "[::1:80"}) {
    const Result<HttpAddress> address = ParseHttpAddress(text);
    EXPECT_FALSE(address.ok()) << text;
    if (!address.ok()) {
      EXPECT_NE(address.status().message().find("'" + std::string(text) + "'"),
                std::string::npos)
          << address.status().message();
    }
  }
}

TEST(MetricsTest, MapsASnapshotAndCountersNeverGoBack) {
  StatsSnapshot stats;
  stats.shards.resize(2);
  stats.shards[0].shard = 0;
  stats.shards[0].submitted = 10;
  stats.shards[0].completed = 9;
  stats.shards[0].queue_wait.p99_us = 250;
  stats.shards[1].shard = 1;
  stats.shards[1].submitted = 4;
  stats.shards[1].rejected_by_reason[static_cast<size_t>(SubmitResult::kShardFull)] = 3;
  stats.fairness.jain = 0.75;
  prometheus::Registry registry;
  UpdateEngineMetrics(stats, registry);
  std::string text = SerializeMetrics(registry);
  EXPECT_EQ(Sample(text, "chatshard_submitted_total{shard=\"0\"}"), 10);
  EXPECT_EQ(Sample(text, "chatshard_completed_total{shard=\"0\"}"), 9);
  EXPECT_EQ(Sample(text, "chatshard_fairness_jain"), 0.75);
  EXPECT_DOUBLE_EQ(
      Sample(text, "chatshard_queue_wait_seconds{quantile=\"0.99\",shard=\"0\"}").value_or(0),
      250e-6);
  EXPECT_EQ(Sample(text, "chatshard_rejected_total{reason=\"shard_full\",shard=\"1\"}"), 3)
      << text;

  stats.shards[0].submitted = 12;
  stats.shards[1].submitted = 1;  // a lower value: the counter stays at 4
  stats.fairness.jain = 0.5;
  UpdateEngineMetrics(stats, registry);
  text = SerializeMetrics(registry);
  EXPECT_EQ(Sample(text, "chatshard_submitted_total{shard=\"0\"}"), 12);
  EXPECT_EQ(Sample(text, "chatshard_submitted_total{shard=\"1\"}"), 4);
  EXPECT_EQ(Sample(text, "chatshard_fairness_jain"), 0.5);
}

}  // namespace
}  // namespace chatshard::cli
