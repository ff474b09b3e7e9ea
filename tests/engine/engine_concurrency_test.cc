// Invariants under concurrency: several producers, payloads carrying
// (producer, sequence); no loss, no duplicate, per-(producer, chat) order.
// Sizes shrink with CHATSHARD_TEST_SCALE=small (sanitizer builds).
#include <atomic>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "chatshard/engine.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace chatshard {
namespace {

using ::chatshard::testing::MakeEngine;
using ::chatshard::testing::Name;
using ::chatshard::testing::Scaled;

struct Payload {
  uint32_t producer;
  uint32_t chat;
  uint64_t seq;  // per producer, increasing
};

std::string_view AsBytes(const Payload& p) {
  return {reinterpret_cast<const char*>(&p), sizeof p};
}

Payload FromBytes(std::string_view s) {
  Payload p;
  EXPECT_EQ(s.size(), sizeof p);
  std::memcpy(&p, s.data(), sizeof p);
  return p;
}

struct Params {
  Ordering ordering;
  bool use_producer_handles;
  uint32_t quantum;
};

class EngineInvariantsTest : public ::testing::TestWithParam<Params> {};

// 4 producers x 250k messages over 1k chats (full scale).
TEST_P(EngineInvariantsTest, NoLossNoDuplicatePerProducerChatOrder) {
  const Params param = GetParam();
  constexpr int kProducers = 4;
  constexpr int kChats = 1000;
  const int per_producer = Scaled(250'000, 20'000);

  Options o;
  o.ordering = param.ordering;
  o.quantum = param.quantum;
  o.shard_capacity = 1 << 22;  // no rejections here: this test is about delivery
  o.threads = 2;

  // seen[p * per_producer + seq] counts runs of each message.
  std::vector<std::atomic<uint8_t>> seen(static_cast<size_t>(kProducers) * per_producer);
  // Last sequence run per (producer, chat). kPerChat: one chat's messages
  // never run concurrently and each run happens-after the previous one of
  // the chat, so plain memory is correct — ThreadSanitizer checks exactly
  // that promise.
  std::vector<int64_t> last(static_cast<size_t>(kProducers) * kChats, -1);
  std::atomic<uint64_t> order_violations{0};

  auto engine = MakeEngine(o, [&](const MessageView& m) {
    const Payload p = FromBytes(m.payload);
    seen[p.producer * static_cast<size_t>(per_producer) + p.seq].fetch_add(
        1, std::memory_order_relaxed);
    if (param.ordering == Ordering::kPerChat) {
      int64_t& l = last[p.producer * kChats + p.chat];
      if (static_cast<int64_t>(p.seq) <= l) order_violations.fetch_add(1, std::memory_order_relaxed);
      l = static_cast<int64_t>(p.seq);
    }
    return Outcome::kDone;
  });
  ASSERT_NE(engine, nullptr);

  std::vector<std::thread> producers;
  std::atomic<uint64_t> rejected{0};
  for (int t = 0; t < kProducers; ++t) {
    producers.emplace_back([&, t] {
      std::mt19937 rng(1234 + t);
      std::uniform_int_distribution<uint32_t> pick(0, kChats - 1);
      std::unique_ptr<Producer> handle;
      if (param.use_producer_handles) handle = engine->CreateProducer();
      std::string chat;
      std::vector<Payload> batch_payloads;
      std::vector<std::string> batch_chats;
      auto flush_batch = [&] {
        std::vector<SubmitItem> items;
        for (size_t k = 0; k < batch_payloads.size(); ++k) {
          items.push_back({batch_chats[k], AsBytes(batch_payloads[k])});
        }
        std::vector<SubmitResult> results(items.size());
        rejected.fetch_add(items.size() - handle->SubmitBatch(items, results));
        batch_payloads.clear();
        batch_chats.clear();
      };
      for (int i = 0; i < per_producer; ++i) {
        const Payload p{static_cast<uint32_t>(t), pick(rng), static_cast<uint64_t>(i)};
        chat = Name("chat-", p.chat);
        if (param.use_producer_handles && i % 2 == 1) {
          // Odd messages go in batches of up to 8 through SubmitBatch.
          batch_payloads.push_back(p);
          batch_chats.push_back(chat);
          if (batch_payloads.size() == 8 || i + 1 >= per_producer) flush_batch();
          continue;
        }
        // Pending batched messages go first, keeping this producer's order.
        if (!batch_payloads.empty()) flush_batch();
        const SubmitResult r = handle ? handle->Submit(chat, AsBytes(p))
                                      : engine->Submit(chat, AsBytes(p));
        if (r != SubmitResult::kAccepted) rejected.fetch_add(1);
      }
    });
  }
  for (auto& t : producers) t.join();
  ASSERT_EQ(rejected.load(), 0u);
  ShutdownReport report = engine->Shutdown(ShutdownMode::kDrain, std::chrono::minutes(5));
  EXPECT_TRUE(report.unprocessed.empty());

  size_t missing = 0, duplicated = 0;
  for (const auto& s : seen) {
    const uint8_t n = s.load(std::memory_order_relaxed);
    missing += n == 0;
    duplicated += n > 1;
  }
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(duplicated, 0u);
  EXPECT_EQ(order_violations.load(), 0u);
  StatsSnapshot stats = engine->Stats();
  EXPECT_EQ(stats.total.completed, seen.size());
  EXPECT_EQ(stats.total.submitted, seen.size());
}

INSTANTIATE_TEST_SUITE_P(
    Modes, EngineInvariantsTest,
    ::testing::Values(Params{Ordering::kPerChat, true, 16}, Params{Ordering::kPerChat, false, 1},
                      Params{Ordering::kNone, true, 16}),
    [](const ::testing::TestParamInfo<Params>& param_info) {
      return std::string(OrderingName(param_info.param.ordering)) +
             (param_info.param.use_producer_handles ? "_producer" : "_implicit") + "_q" +
             std::to_string(param_info.param.quantum);
    });

// Producers race Shutdown: every accepted message is either run or handed
// back, exactly once; everything after the stop is refused with kStopping.
TEST(EngineConcurrencyTest, ShutdownRacingProducersLosesNothing) {
  for (ShutdownMode mode : {ShutdownMode::kAbort, ShutdownMode::kDrain}) {
    constexpr int kProducers = 3;
    const int per_producer = Scaled(100'000, 10'000);
    Options o;
    o.partitions = 8;
    o.shard_capacity = 1 << 22;
    std::vector<std::atomic<uint8_t>> ran(static_cast<size_t>(kProducers) * per_producer);
    auto engine = MakeEngine(o, [&](const MessageView& m) {
      const Payload p = FromBytes(m.payload);
      ran[p.producer * static_cast<size_t>(per_producer) + p.seq].fetch_add(1);
      return Outcome::kDone;
    });
    std::vector<std::vector<uint8_t>> accepted(kProducers, std::vector<uint8_t>(per_producer, 0));
    std::atomic<int> started{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kProducers; ++t) {
      threads.emplace_back([&, t] {
        auto handle = engine->CreateProducer();
        started.fetch_add(1);
        bool stopped = false;
        for (int i = 0; i < per_producer; ++i) {
          const Payload p{static_cast<uint32_t>(t), static_cast<uint32_t>(i % 97),
                          static_cast<uint64_t>(i)};
          const SubmitResult r = handle->Submit(Name("c", p.chat), AsBytes(p));
          if (r == SubmitResult::kAccepted) {
            EXPECT_FALSE(stopped) << "accepted after a kStopping";
            accepted[t][i] = 1;
          } else {
            EXPECT_EQ(r, SubmitResult::kStopping);
            stopped = true;
          }
        }
      });
    }
    while (started.load() < kProducers) std::this_thread::yield();
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ShutdownReport report = engine->Shutdown(mode, std::chrono::seconds(60));
    for (auto& t : threads) t.join();
    EXPECT_EQ(report.still_running, 0u);
    std::vector<uint8_t> handed(ran.size(), 0);
    for (const auto& m : report.unprocessed) {
      const Payload p = FromBytes(m.payload);
      ++handed[p.producer * static_cast<size_t>(per_producer) + p.seq];
    }
    size_t lost = 0, twice = 0, phantom = 0;
    for (int t = 0; t < kProducers; ++t) {
      for (int i = 0; i < per_producer; ++i) {
        const size_t k = t * static_cast<size_t>(per_producer) + i;
        const int total = ran[k].load() + handed[k];
        if (accepted[t][i]) {
          lost += total == 0;
          twice += total > 1;
        } else {
          phantom += total != 0;
        }
      }
    }
    EXPECT_EQ(lost, 0u);
    EXPECT_EQ(twice, 0u);
    EXPECT_EQ(phantom, 0u);
    if (mode == ShutdownMode::kDrain) {
      EXPECT_TRUE(report.unprocessed.empty());
    }
  }
}

// Capacity under concurrent producers: never more than capacity unfinished.
TEST(EngineConcurrencyTest, CapacityHoldsUnderConcurrentProducers) {
  Options o;
  o.partitions = 2;
  o.shard_capacity = 64;
  o.concurrency = 2;
  std::atomic<int> in_engine{0};
  std::atomic<int> accepted_total{0};
  auto engine = MakeEngine(o, [&](const MessageView&) {
    std::this_thread::sleep_for(std::chrono::microseconds(20));
    return Outcome::kDone;
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      auto handle = engine->CreateProducer();
      for (int i = 0; i < Scaled(20000, 3000); ++i) {
        if (handle->Submit(Name("c", (i + t) % 11), "p") == SubmitResult::kAccepted) {
          accepted_total.fetch_add(1);
        }
        if (i % 256 == 0) {
          const StatsSnapshot s = engine->Stats();
          for (const auto& shard : s.shards) {
            EXPECT_LE(shard.waiting + shard.active, 64u);
          }
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  engine->Shutdown(ShutdownMode::kDrain, std::chrono::seconds(60));
  const StatsSnapshot s = engine->Stats();
  EXPECT_EQ(s.total.completed, static_cast<uint64_t>(accepted_total.load()));
  EXPECT_GT(s.total.rejected_by_reason[static_cast<int>(SubmitResult::kShardFull)], 0u);
  (void)in_engine;
}

// Handlers that throw from many threads never stop the engine.
TEST(EngineConcurrencyTest, ThrowingHandlersFromManyThreadsKeepTheEngineRunning) {
  Options o;
  o.threads = 2;
  o.ordering = Ordering::kNone;
  std::atomic<uint64_t> hooked{0};
  auto engine = MakeEngine(
      o,
      [](const MessageView& m) -> Outcome {
        if (m.id % 2 == 0) throw std::runtime_error("even");
        return Outcome::kDone;
      },
      [&](const FailedMessage&) { hooked.fetch_add(1); });
  const int n = Scaled(200000, 20000);
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < n / 2; ++i) {
        ASSERT_EQ(engine->Submit(Name("c", i % 100 + t * 100), "p"),
                  SubmitResult::kAccepted);
      }
    });
  }
  for (auto& t : threads) t.join();
  engine->Shutdown(ShutdownMode::kDrain, std::chrono::seconds(60));
  const StatsSnapshot s = engine->Stats();
  EXPECT_EQ(s.total.completed + s.total.failed, static_cast<uint64_t>(n));
  EXPECT_EQ(s.total.failed, hooked.load());
  EXPECT_GT(s.total.failed, 0u);
  EXPECT_GT(s.total.completed, 0u);
}

}  // namespace
}  // namespace chatshard
