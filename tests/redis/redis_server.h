// A real redis-server for the tests: started on a free loopback port with
// AOF on and its own temporary directory, killed and removed at the end.
// Also a tiny synchronous client for inspecting keys from the tests.
#ifndef CHATSHARD_TESTS_REDIS_REDIS_SERVER_H_
#define CHATSHARD_TESTS_REDIS_REDIS_SERVER_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct redisContext;

namespace chatshard::redis::testing {

// One reply flattened for assertions.
struct TestReply {
  enum class Type { kNil, kString, kInteger, kArray, kError, kStatus };
  Type type = Type::kNil;
  std::string str;
  long long integer = 0;
  std::vector<TestReply> elements;
};

class TestClient {
 public:
  // Connects (and AUTHs when `password` is set); aborts the test run if not.
  TestClient(int port, const std::string& password = "");
  ~TestClient();
  TestClient(const TestClient&) = delete;
  TestClient& operator=(const TestClient&) = delete;
  TestReply Run(const std::vector<std::string>& args);
  long long Int(const std::vector<std::string>& args) { return Run(args).integer; }
  // Pending entries of a group on a stream (XPENDING summary count).
  long long Pending(const std::string& stream, const std::string& group);
  // INFO memory used_memory, in bytes.
  long long UsedMemory();

 private:
  redisContext* context_;
};

class RedisServer {
 public:
  // Extra arguments are appended to the redis-server command line.
  explicit RedisServer(std::vector<std::string> extra_args = {});
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& dir() const { return dir_; }
  // SIGKILL and reap.
  void Kill();
  // Starts again on the same port and directory (AOF is replayed).
  void Restart();

 private:
  void Launch();
  std::vector<std::string> extra_args_;
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// A loopback port nobody listens on (bound and released).
int FreePort();

}  // namespace chatshard::redis::testing

#endif  // CHATSHARD_TESTS_REDIS_REDIS_SERVER_H_
