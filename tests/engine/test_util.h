// Helpers shared by the engine tests.
#ifndef CHATSHARD_TESTS_ENGINE_TEST_UTIL_H_
#define CHATSHARD_TESTS_ENGINE_TEST_UTIL_H_

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "chatshard/engine.h"
#include "gtest/gtest.h"

namespace chatshard::testing {

// CHATSHARD_TEST_SCALE=small shrinks the big invariant tests (sanitizer
// builds run 5-20x slower).
inline bool SmallScale() {
  const char* s = std::getenv("CHATSHARD_TEST_SCALE");
  return s != nullptr && std::strcmp(s, "small") == 0;
}
inline int Scaled(int full, int small) { return SmallScale() ? small : full; }

// A gate handlers wait on until the test opens it.
class Gate {
 public:
  void Open() {
    std::lock_guard<std::mutex> l(mu_);
    open_ = true;
    cv_.notify_all();
  }
  void Wait() {
    std::unique_lock<std::mutex> l(mu_);
    cv_.wait(l, [&] { return open_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// Polls `done` until true or `timeout`; returns its last value.
inline bool WaitFor(const std::function<bool()>& done,
                    std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > until) return done();
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

// prefix + n. (Not `"literal" + std::to_string(n)`: GCC 12 warns falsely
// with -Wrestrict there in optimised builds, GCC bug 105329.)
inline std::string Name(std::string_view prefix, long long n) {
  std::string s(prefix);
  s += std::to_string(n);
  return s;
}

inline std::unique_ptr<Engine> MakeEngine(const Options& options, Handler handler,
                                          FailureHook hook = nullptr) {
  auto result = Engine::Create(options, std::move(handler), std::move(hook));
  EXPECT_TRUE(result.ok()) << result.status().ToString();
  return result.ok() ? std::move(result).value() : nullptr;
}

// Finds a chat id routed to `shard` (and different from `avoid`).
inline std::string ChatOnShard(uint32_t shard, const Options& o, const std::string& prefix,
                               int skip = 0) {
  for (int i = 0;; ++i) {
    std::string id = Name(prefix, i);
    if (ShardFor(id, o.partitions, o.routing) == shard && skip-- == 0) return id;
  }
}

}  // namespace chatshard::testing

#endif  // CHATSHARD_TESTS_ENGINE_TEST_UTIL_H_
