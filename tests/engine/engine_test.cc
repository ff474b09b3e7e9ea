// Behaviour of one engine, mostly single-producer and deterministic.
#include "chatshard/engine.h"

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "test_util.h"

namespace chatshard {
namespace {

using ::chatshard::testing::ChatOnShard;
using ::chatshard::testing::Gate;
using ::chatshard::testing::MakeEngine;
using ::chatshard::testing::Name;
using ::chatshard::testing::WaitFor;
using ::testing::HasSubstr;

Outcome Done(const MessageView&) { return Outcome::kDone; }

TEST(EngineTest, CreateRefusesInvalidOptionsNamingEveryField) {
  Options o;
  o.partitions = 0;
  o.concurrency = 1000;
  o.quantum = 0;
  auto result = Engine::Create(o, Done);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.status().code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("partitions = 0"));
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("concurrency = 1000"));
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("quantum = 0"));
}

TEST(EngineTest, CreateRefusesEmptyHandler) {
  auto result = Engine::Create(Options{}, nullptr);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()), HasSubstr("handler"));
}

TEST(EngineTest, LifecycleReadyUntilShutdownThenRejects) {
  auto engine = MakeEngine(Options{}, Done);
  ASSERT_NE(engine, nullptr);
  EXPECT_TRUE(engine->Ready());
  EXPECT_TRUE(engine->Healthy());
  EXPECT_EQ(engine->Submit("chat-1", "hello"), SubmitResult::kAccepted);
  ShutdownReport report = engine->Shutdown(ShutdownMode::kDrain, std::chrono::seconds(10));
  EXPECT_TRUE(report.unprocessed.empty());
  EXPECT_EQ(report.still_running, 0u);
  EXPECT_FALSE(engine->Ready());
  EXPECT_EQ(engine->Submit("chat-1", "late"), SubmitResult::kStopping);
  auto producer = engine->CreateProducer();
  EXPECT_EQ(producer->Submit("chat-1", "late"), SubmitResult::kStopping);
  StatsSnapshot stats = engine->Stats();
  EXPECT_EQ(stats.total.completed, 1u);
  EXPECT_EQ(stats.total.rejected_by_reason[static_cast<int>(SubmitResult::kStopping)], 2u);
  // A second Shutdown is harmless and hands back nothing.
  EXPECT_TRUE(engine->Shutdown(ShutdownMode::kAbort, std::chrono::seconds(1)).unprocessed.empty());
}

TEST(EngineTest, RejectsInvalidChatIdsAndOversizedPayloads) {
  auto engine = MakeEngine(Options{}, Done);
  EXPECT_EQ(engine->Submit("", "x"), SubmitResult::kInvalidChatId);
  EXPECT_EQ(engine->Submit(std::string(kMaxChatIdBytes + 1, 'c'), "x"),
            SubmitResult::kInvalidChatId);
  EXPECT_EQ(engine->Submit(std::string(kMaxChatIdBytes, 'c'), "x"), SubmitResult::kAccepted);
  const std::string huge(kMaxPayloadBytes + 1, 'p');
  EXPECT_EQ(engine->Submit("chat", huge), SubmitResult::kPayloadTooLarge);
  EXPECT_EQ(engine->Submit("chat", std::string_view(huge).substr(0, 1 << 20)),
            SubmitResult::kAccepted);
  engine->Shutdown(ShutdownMode::kDrain, std::chrono::seconds(10));
  StatsSnapshot stats = engine->Stats();
  EXPECT_EQ(stats.total.completed, 2u);
  EXPECT_EQ(stats.total.rejected_by_reason[static_cast<int>(SubmitResult::kInvalidChatId)], 2u);
  EXPECT_EQ(stats.total.rejected_by_reason[static_cast<int>(SubmitResult::kPayloadTooLarge)], 1u);
}

TEST(EngineTest, HandlerSeesChatPayloadAttemptShardAndEnqueueTime) {
  std::mutex mu;
  std::vector<std::tuple<std::string, std::string, uint32_t, uint32_t, uint64_t>> seen;
  Options o;
  const auto before = Clock::now();
  auto engine = MakeEngine(o, [&](const MessageView& m) {
    std::lock_guard<std::mutex> l(mu);
    EXPECT_GE(m.enqueued, before);
    EXPECT_LE(m.enqueued, Clock::now());
    // The run's start comes from the drain loop's TSC-extrapolated clock,
    // which may differ from steady_clock by its calibration error (far below
    // a millisecond).
    EXPECT_GE(m.started + std::chrono::milliseconds(1), m.enqueued);
    EXPECT_LE(m.started, Clock::now() + std::chrono::milliseconds(1));
    EXPECT_GT(m.started.time_since_epoch().count(), 0);
    seen.emplace_back(std::string(m.chat_id), std::string(m.payload), m.attempt, m.shard, m.id);
    return Outcome::kDone;
  });
  // Long enough to leave the inline buffer.
  const std::string big(300, 'z');
  ASSERT_EQ(engine->Submit("чат/1", "ok"), SubmitResult::kAccepted);
  ASSERT_EQ(engine->Submit("чат/1", big), SubmitResult::kAccepted);
  engine->Shutdown(ShutdownMode::kDrain, std::chrono::seconds(10));
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(std::get<0>(seen[0]), "чат/1");
  EXPECT_EQ(std::get<1>(seen[0]), "ok");
  EXPECT_EQ(std::get<1>(seen[1]), big);
  EXPECT_EQ(std::get<2>(seen[0]), 1u);
  EXPECT_EQ(std::get<3>(seen[0]), ShardFor("чат/1", o.partitions));
  EXPECT_LT(std::get<4>(seen[0]), std::get<4>(seen[1]));
}

TEST(EngineTest, ShardOfMatchesPublicRoutingForBothSchemes) {
  for (Routing routing : {Routing::kModulo, Routing::kJump}) {
    Options o;
    o.partitions = 37;
    o.routing = routing;
    auto engine = MakeEngine(o, Done);
    for (int i = 0; i < 1000; ++i) {
      const std::string id = Name("room-", i);
      EXPECT_EQ(engine->ShardOf(id), ShardFor(id, 37, routing));
    }
  }
}

TEST(EngineTest, MessagesRunOnTheShardTheyRouteTo) {
  Options o;
  o.partitions = 8;
  o.routing = Routing::kJump;
  std::atomic<int> wrong{0};
  auto engine = MakeEngine(o, [&](const MessageView& m) {
    if (ShardFor(m.chat_id, 8, Routing::kJump) != m.shard) wrong.fetch_add(1);
    return Outcome::kDone;
  });
  for (int i = 0; i < 2000; ++i) {
    ASSERT_EQ(engine->Submit(Name("c", i % 97), "p"), SubmitResult::kAccepted);
  }
  engine->Shutdown(ShutdownMode::kDrain, std::chrono::seconds(10));
  EXPECT_EQ(wrong.load(), 0);
  StatsSnapshot s = engine->Stats();
  for (const auto& shard : s.shards) {
    EXPECT_EQ(shard.submitted, shard.completed) << "shard " << shard.shard;
  }
}

TEST(EngineTest, ShardCapacityRejectionIsExact) {
  Gate gate;
  Options o;
  o.partitions = 4;
  o.shard_capacity = 100;
  auto engine = MakeEngine(o, [&](const MessageView&) {
    gate.Wait();
    return Outcome::kDone;
  });
  const std::string chat = ChatOnShard(2, o, "cap-");
  const std::string other = ChatOnShard(3, o, "cap-");
  int accepted = 0, full = 0;
  for (int i = 0; i < 150; ++i) {
    const SubmitResult r = engine->Submit(chat, "m");
    accepted += r == SubmitResult::kAccepted;
    full += r == SubmitResult::kShardFull;
  }
  EXPECT_EQ(accepted, 100);
  EXPECT_EQ(full, 50);
  // Another shard is unaffected.
  EXPECT_EQ(engine->Submit(other, "m"), SubmitResult::kAccepted);
  EXPECT_EQ(engine->Stats().shards[2].rejected_by_reason[static_cast<int>(SubmitResult::kShardFull)],
            50u);
  gate.Open();
  ASSERT_TRUE(WaitFor([&] { return engine->Stats().total.completed == 101; }));
  // Capacity is given back as messages finish.
  EXPECT_EQ(engine->Submit(chat, "m"), SubmitResult::kAccepted);
  engine->Shutdown(ShutdownMode::kDrain, std::chrono::seconds(10));
}

TEST(EngineTest, ChatQuotaRejectionIsExactAndPerChat) {
  Gate gate;
  Options o;
  o.partitions = 1;
  o.chat_quota = 10;
  auto engine = MakeEngine(o, [&](const MessageView&) {
    gate.Wait();
    return Outcome::kDone;
  });
  int accepted = 0, over = 0;
  for (int i = 0; i < 15; ++i) {
    const SubmitResult r = engine->Submit("busy", "m");
    accepted += r == SubmitResult::kAccepted;
    over += r == SubmitResult::kChatOverQuota;
  }
  EXPECT_EQ(accepted, 10);
  EXPECT_EQ(over, 5);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(engine->Submit("quiet", "m"), SubmitResult::kAccepted);
  EXPECT_EQ(engine->Submit("quiet", "m"), SubmitResult::kChatOverQuota);
  gate.Open();
  ASSERT_TRUE(WaitFor([&] { return engine->Stats().total.completed == 20; }));
  EXPECT_EQ(engine->Submit("busy", "m"), SubmitResult::kAccepted);
  engine->Shutdown(ShutdownMode::kDrain, std::chrono::seconds(10));
}

TEST(EngineTest, HandlerExceptionsFailTheMessageAndTheEngineKeepsRunning) {
  std::mutex mu;
  std::vector<std::string> reasons;
  Options o;
  o.partitions = 3;
  auto engine = MakeEngine(
      o,
      [](const MessageView& m) -> Outcome {
        const int n = std::stoi(std::string(m.payload));
        if (n % 3 == 0) throw std::runtime_error(Name("boom ", n));
        if (n % 3 == 1) throw 42;  // not a std::exception
        return Outcome::kDone;
      },
      [&](const FailedMessage& f) {
        std::lock_guard<std::mutex> l(mu);
        reasons.emplace_back(f.reason);
      });
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(engine->Submit(Name("c", i % 7), std::to_string(i)),
              SubmitResult::kAccepted);
  }
  engine->Shutdown(ShutdownMode::kDrain, std::chrono::seconds(10));
  StatsSnapshot s = engine->Stats();
  EXPECT_EQ(s.total.failed, 200u);
  EXPECT_EQ(s.total.completed, 100u);
  ASSERT_EQ(reasons.size(), 200u);
  int boom = 0;
  for (const auto& r : reasons) boom += r.find("exception: boom") == 0;
  EXPECT_EQ(boom, 100);
}

TEST(EngineTest, FailOutcomeReachesFailureHookWithReason) {
  std::atomic<int> hooked{0};
  std::string reason;
  auto engine = MakeEngine(
      Options{}, [](const MessageView&) { return Outcome::kFail; },
      [&](const FailedMessage& f) {
        reason = std::string(f.reason);
        EXPECT_EQ(f.attempts, 1u);
        EXPECT_EQ(f.payload, "p");
        hooked.fetch_add(1);
      });
  ASSERT_EQ(engine->Submit("c", "p"), SubmitResult::kAccepted);
  engine->Shutdown(ShutdownMode::kDrain, std::chrono::seconds(10));
  EXPECT_EQ(hooked.load(), 1);
  EXPECT_THAT(reason, HasSubstr("kFail"));
}

TEST(EngineTest, RetryKeepsItsPlaceInTheChat) {
  // Message "0" asks for a retry twice; "1".."4" of the same chat must not
  // overtake it.
  std::vector<std::pair<std::string, uint32_t>> runs;
  Options o;
  o.partitions = 1;
  o.max_attempts = 3;
  o.retry_backoff = std::chrono::microseconds(200);
  auto engine = MakeEngine(o, [&](const MessageView& m) {
    runs.emplace_back(std::string(m.payload), m.attempt);
    return m.payload == "0" && m.attempt < 3 ? Outcome::kRetry : Outcome::kDone;
  });
  for (int i = 0; i < 5; ++i) ASSERT_EQ(engine->Submit("c", std::to_string(i)), SubmitResult::kAccepted);
  engine->Shutdown(ShutdownMode::kDrain, std::chrono::seconds(10));
  std::vector<std::pair<std::string, uint32_t>> want = {{"0", 1}, {"0", 2}, {"0", 3}, {"1", 1},
                                                        {"2", 1}, {"3", 1}, {"4", 1}};
  EXPECT_EQ(runs, want);
  StatsSnapshot s = engine->Stats();
  EXPECT_EQ(s.total.retried, 2u);
  EXPECT_EQ(s.total.completed, 5u);
}

TEST(EngineTest, RetryOnLastAttemptFailsWithReason) {
  std::string reason;
  uint32_t attempts = 0;
  for (Ordering ordering : {Ordering::kPerChat, Ordering::kNone}) {
    Options o;
    o.ordering = ordering;
    o.max_attempts = 4;
    o.retry_backoff = std::chrono::microseconds(0);
    auto engine = MakeEngine(
        o, [](const MessageView&) { return Outcome::kRetry; },
        [&](const FailedMessage& f) {
          reason = std::string(f.reason);
          attempts = f.attempts;
        });
    ASSERT_EQ(engine->Submit("c", "p"), SubmitResult::kAccepted);
    engine->Shutdown(ShutdownMode::kDrain, std::chrono::seconds(10));
    EXPECT_EQ(attempts, 4u);
    EXPECT_THAT(reason, HasSubstr("max_attempts"));
    EXPECT_EQ(engine->Stats().total.failed, 1u);
    EXPECT_EQ(engine->Stats().total.retried, 3u);
  }
}

TEST(EngineTest, AbortHandsBackExactlyTheUnprocessedMessages) {
  for (Ordering ordering : {Ordering::kPerChat, Ordering::kNone}) {
    std::mutex mu;
    std::set<std::string> processed;
    std::atomic<int> count{0};
    Options o;
    o.partitions = 4;
    o.ordering = ordering;
    o.shard_capacity = 1 << 20;
    auto engine = MakeEngine(o, [&](const MessageView& m) {
      {
        std::lock_guard<std::mutex> l(mu);
        EXPECT_TRUE(processed.insert(std::string(m.payload)).second) << "ran twice: " << m.payload;
      }
      count.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::microseconds(20));
      return Outcome::kDone;
    });
    const int n = 5000;
    for (int i = 0; i < n; ++i) {
      ASSERT_EQ(engine->Submit(Name("chat-", i % 13), std::to_string(i)),
                SubmitResult::kAccepted);
    }
    ASSERT_TRUE(WaitFor([&] { return count.load() >= 100; }));
    ShutdownReport report = engine->Shutdown(ShutdownMode::kAbort, std::chrono::seconds(10));
    EXPECT_EQ(report.still_running, 0u);
    EXPECT_FALSE(report.deadline_reached);
    std::set<std::string> all = processed;
    for (const auto& m : report.unprocessed) {
      EXPECT_TRUE(all.insert(m.payload).second) << "handed back and processed: " << m.payload;
      EXPECT_EQ(m.shard, ShardFor(m.chat_id, o.partitions));
    }
    EXPECT_EQ(all.size(), static_cast<size_t>(n));
    EXPECT_GT(report.unprocessed.size(), 0u);
    if (ordering == Ordering::kPerChat) {
      // Handed back in order within each chat.
      std::map<std::string, int> last;
      for (const auto& m : report.unprocessed) {
        const int v = std::stoi(m.payload);
        auto [it, fresh] = last.emplace(m.chat_id, v);
        if (!fresh) {
          EXPECT_LT(it->second, v) << m.chat_id;
          it->second = v;
        }
      }
    }
  }
}

TEST(EngineTest, DrainWithShortDeadlineHandsBackTheRest) {
  std::atomic<int> count{0};
  Options o;
  o.partitions = 2;
  o.concurrency = 1;
  auto engine = MakeEngine(o, [&](const MessageView&) {
    std::this_thread::sleep_for(std::chrono::microseconds(500));
    count.fetch_add(1);
    return Outcome::kDone;
  });
  const int n = 2000;
  for (int i = 0; i < n; ++i) {
    ASSERT_EQ(engine->Submit(Name("c", i % 5), "p"), SubmitResult::kAccepted);
  }
  const int before = count.load();
  ShutdownReport report = engine->Shutdown(ShutdownMode::kDrain, std::chrono::milliseconds(50));
  EXPECT_TRUE(report.deadline_reached);
  EXPECT_EQ(report.still_running, 0u);
  EXPECT_EQ(count.load() + static_cast<int>(report.unprocessed.size()), n);
  EXPECT_LE(report.completed_during_shutdown, static_cast<uint64_t>(count.load()));
  EXPECT_GE(report.completed_during_shutdown, static_cast<uint64_t>(count.load() - before));
}

TEST(EngineTest, HandlerOutlivingTheDeadlineIsReportedAndCollectedLater) {
  Gate gate;
  std::atomic<bool> started{false};
  Options o;
  o.partitions = 1;
  o.concurrency = 1;
  auto engine = MakeEngine(o, [&](const MessageView&) {
    started.store(true);
    gate.Wait();
    return Outcome::kDone;
  });
  for (int i = 0; i < 10; ++i) ASSERT_EQ(engine->Submit("c", std::to_string(i)), SubmitResult::kAccepted);
  ASSERT_TRUE(WaitFor([&] { return started.load(); }));
  ShutdownReport first = engine->Shutdown(ShutdownMode::kAbort, std::chrono::milliseconds(20));
  EXPECT_TRUE(first.deadline_reached);
  // The running message and the rest of its turn are still held by the task.
  EXPECT_GE(first.still_running, 1u);
  EXPECT_EQ(first.unprocessed.size() + first.still_running, 10u);
  gate.Open();
  ASSERT_TRUE(WaitFor([&] { return engine->Stats().total.completed == 1; }));
  ShutdownReport second;
  ASSERT_TRUE(WaitFor([&] {
    ShutdownReport r = engine->Shutdown(ShutdownMode::kAbort, std::chrono::seconds(1));
    for (auto& m : r.unprocessed) second.unprocessed.push_back(std::move(m));
    return r.still_running == 0;
  }));
  EXPECT_EQ(first.unprocessed.size() + second.unprocessed.size(), 9u);
}

TEST(EngineTest, DestructorIsSafeWithQueuedAndRunningWork) {
  for (Ordering ordering : {Ordering::kPerChat, Ordering::kNone}) {
    std::atomic<int> count{0};
    Options o;
    o.ordering = ordering;
    auto engine = MakeEngine(o, [&](const MessageView&) {
      count.fetch_add(1);
      std::this_thread::sleep_for(std::chrono::microseconds(50));
      return Outcome::kDone;
    });
    for (int i = 0; i < 3000; ++i) (void)engine->Submit(Name("c", i % 50), "p");
    ASSERT_TRUE(WaitFor([&] { return count.load() > 10; }));
    engine.reset();  // must not crash, hang or leak (ASan checks the last)
  }
}

TEST(EngineTest, UnhealthyWhileAShardIsStalled) {
  Gate gate;
  Options o;
  o.partitions = 2;
  o.stall_threshold = std::chrono::milliseconds(30);
  auto engine = MakeEngine(o, [&](const MessageView&) {
    gate.Wait();
    return Outcome::kDone;
  });
  ASSERT_EQ(engine->Submit("c", "p"), SubmitResult::kAccepted);
  ASSERT_TRUE(WaitFor([&] { return !engine->Healthy(); }, std::chrono::seconds(10)));
  EXPECT_TRUE(engine->Ready());
  gate.Open();
  ASSERT_TRUE(WaitFor([&] { return engine->Healthy(); }, std::chrono::seconds(10)));
  engine->Shutdown(ShutdownMode::kDrain, std::chrono::seconds(10));
}

TEST(EngineTest, QuietStatsAreExactAndNameTheHotChat) {
  Options o;
  o.partitions = 4;
  o.hot_chats = 3;
  auto engine = MakeEngine(o, [](const MessageView& m) {
    return m.payload == "f" ? Outcome::kFail : Outcome::kDone;
  });
  uint64_t accepted = 0;
  for (int i = 0; i < 4000; ++i) {
    const std::string chat = i % 2 == 0 ? "hot" : Name("cold-", i % 101);
    accepted += engine->Submit(chat, i % 10 == 1 ? "f" : "ok") == SubmitResult::kAccepted;
  }
  (void)engine->Submit("", "x");
  engine->Shutdown(ShutdownMode::kDrain, std::chrono::seconds(10));
  StatsSnapshot s = engine->Stats();
  EXPECT_EQ(s.total.submitted, accepted);
  EXPECT_EQ(s.total.completed + s.total.failed, accepted);
  EXPECT_EQ(s.total.failed, 400u);
  EXPECT_EQ(s.total.rejected, 1u);
  EXPECT_EQ(s.total.waiting, 0u);
  EXPECT_EQ(s.total.active, 0u);
  EXPECT_EQ(s.total.queue_wait.count, accepted);
  EXPECT_EQ(s.total.service_time.count, accepted);
  uint64_t per_shard = 0;
  for (const auto& shard : s.shards) per_shard += shard.submitted;
  EXPECT_EQ(per_shard, accepted);
  ASSERT_FALSE(s.hot_chats.empty());
  EXPECT_LE(s.hot_chats.size(), 3u);
  EXPECT_EQ(s.hot_chats[0].chat_id, "hot");
  EXPECT_EQ(s.hot_chats[0].shard, ShardFor("hot", 4));
  EXPECT_GE(s.hot_chats[0].count, 2000u);
  EXPECT_GT(s.fairness.jain, 0.25);
  EXPECT_LE(s.fairness.jain, 1.0);
  const std::string json = s.ToJson();
  EXPECT_THAT(json, HasSubstr("\"hot_chats\""));
  EXPECT_THAT(json, HasSubstr("\"fairness\""));
}

TEST(EngineTest, ProducerBatchGroupsByShardKeepsOrderAndAnswersEachItem) {
  Gate gate;
  Options o;
  o.partitions = 4;
  o.shard_capacity = 10;
  std::mutex mu;
  std::vector<std::string> ran;
  auto engine = MakeEngine(o, [&](const MessageView& m) {
    gate.Wait();
    std::lock_guard<std::mutex> l(mu);
    ran.emplace_back(std::string(m.chat_id) + ":" + std::string(m.payload));
    return Outcome::kDone;
  });
  const std::string a = ChatOnShard(1, o, "a-");
  const std::string b = ChatOnShard(2, o, "b-");
  const std::string big(100, 'x');  // not inline: one heap block
  std::vector<std::string> payloads;
  std::vector<SubmitItem> items;
  for (int i = 0; i < 14; ++i) payloads.push_back(Name(i % 3 == 0 ? big : "p", i));
  for (int i = 0; i < 14; ++i) items.push_back({i % 2 == 0 ? a : b, payloads[i]});
  const std::string too_long(kMaxChatIdBytes + 1, 'c');
  items.push_back({"", "empty chat id"});
  items.push_back({too_long, "too long"});
  std::vector<SubmitResult> results(items.size());
  auto producer = engine->CreateProducer();
  EXPECT_EQ(producer->SubmitBatch(items, results), 14u);
  for (int i = 0; i < 14; ++i) EXPECT_EQ(results[i], SubmitResult::kAccepted) << i;
  EXPECT_EQ(results[14], SubmitResult::kInvalidChatId);
  EXPECT_EQ(results[15], SubmitResult::kInvalidChatId);
  // Shard 1 now holds 7 of its 10: of 5 more, the first 3 fit, in order.
  std::vector<SubmitItem> more;
  std::vector<std::string> more_payloads;
  for (int i = 0; i < 5; ++i) more_payloads.push_back(Name("m", i));
  for (int i = 0; i < 5; ++i) more.push_back({a, more_payloads[i]});
  std::vector<SubmitResult> more_results(5);
  EXPECT_EQ(producer->SubmitBatch(more, more_results), 3u);
  EXPECT_EQ(more_results[2], SubmitResult::kAccepted);
  EXPECT_EQ(more_results[3], SubmitResult::kShardFull);
  EXPECT_EQ(more_results[4], SubmitResult::kShardFull);
  gate.Open();
  engine->Shutdown(ShutdownMode::kDrain, std::chrono::seconds(10));
  // Per chat, in submission order.
  std::vector<std::string> ran_a;
  for (const auto& r : ran) {
    if (r.rfind(a + ":", 0) == 0) ran_a.push_back(r.substr(a.size() + 1));
  }
  std::vector<std::string> want_a;
  for (int i = 0; i < 14; i += 2) want_a.push_back(payloads[i]);
  for (int i = 0; i < 3; ++i) want_a.push_back(more_payloads[i]);
  EXPECT_EQ(ran_a, want_a);
  EXPECT_EQ(ran.size(), 17u);
  const StatsSnapshot s = engine->Stats();
  EXPECT_EQ(s.total.rejected_by_reason[static_cast<int>(SubmitResult::kShardFull)], 2u);
  EXPECT_EQ(s.total.rejected_by_reason[static_cast<int>(SubmitResult::kInvalidChatId)], 2u);
  // After stopping, a batch is refused whole.
  EXPECT_EQ(producer->SubmitBatch(more, more_results), 0u);
  EXPECT_EQ(more_results[0], SubmitResult::kStopping);
}

// Hotspot isolation, checked by what ran in between rather than by timing.
// A hot chat with a deep backlog shares shard 0 with a cold chat; with
// per_chat ordering the cold chat must run after at most one turn of the hot
// chat, and other shards must not wait for the hot shard at all.
TEST(EngineTest, HotChatDelaysAColdNeighbourByAtMostOneQuantum) {
  Options o;
  o.partitions = 4;
  o.concurrency = 1;
  o.quantum = 8;
  o.threads = 2;
  std::mutex mu;
  std::vector<std::string> order;  // chats in run order
  Gate first;
  std::atomic<bool> hot_started{false};
  auto engine = MakeEngine(o, [&](const MessageView& m) {
    if (m.chat_id == "hot" && !hot_started.exchange(true)) first.Wait();
    std::lock_guard<std::mutex> l(mu);
    order.emplace_back(m.chat_id);
    return Outcome::kDone;
  });
  const uint32_t hot_shard = ShardFor("hot", 4);
  const std::string cold_same = ChatOnShard(hot_shard, o, "cold-");
  const std::string cold_other = ChatOnShard((hot_shard + 1) % 4, o, "cold-");
  for (int i = 0; i < 500; ++i) ASSERT_EQ(engine->Submit("hot", "h"), SubmitResult::kAccepted);
  ASSERT_TRUE(WaitFor([&] { return hot_started.load(); }));
  // The hot chat's first message is running (held at the gate) with 499
  // queued behind it; now the cold chats arrive.
  ASSERT_EQ(engine->Submit(cold_same, "c"), SubmitResult::kAccepted);
  ASSERT_EQ(engine->Submit(cold_other, "c"), SubmitResult::kAccepted);
  // The other shard runs while the hot shard is blocked.
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard<std::mutex> l(mu);
    return std::find(order.begin(), order.end(), cold_other) != order.end();
  }));
  first.Open();
  engine->Shutdown(ShutdownMode::kDrain, std::chrono::seconds(30));
  size_t hot_before_cold = 0;
  bool seen = false;
  for (const auto& chat : order) {
    if (chat == cold_same) {
      seen = true;
      break;
    }
    hot_before_cold += chat == "hot";
  }
  ASSERT_TRUE(seen);
  // The turn in progress when the cold chat arrived: at most `quantum`.
  EXPECT_LE(hot_before_cold, o.quantum);
  EXPECT_EQ(order.size(), 502u);
}

// A message that arrives while the shard's only running task is inside a
// handler (a hot chat's turn, a kNone batch) starts on a free slot at once,
// instead of waiting for that turn to end: the hot handler stays blocked
// until the cold message has run. Before the producer spawned on an empty
// ingress, this waited forever (the cold message sat behind the turn).
void ColdMessageUsesAFreeSlot(Ordering ordering) {
  Options o;
  o.partitions = 2;
  o.concurrency = 2;
  o.threads = 2;
  o.ordering = ordering;
  Gate hot_gate;
  std::atomic<bool> hot_started{false};
  std::atomic<bool> cold_ran{false};
  auto engine = MakeEngine(o, [&](const MessageView& m) {
    if (m.chat_id == "hot" && !hot_started.exchange(true)) hot_gate.Wait();
    if (m.chat_id != "hot") cold_ran = true;
    return Outcome::kDone;
  });
  const uint32_t shard = ShardFor("hot", 2);
  const std::string cold = ChatOnShard(shard, o, "cold-");
  ASSERT_EQ(engine->Submit("hot", "h"), SubmitResult::kAccepted);
  ASSERT_TRUE(WaitFor([&] { return hot_started.load(); }));
  ASSERT_EQ(engine->Submit(cold, "c"), SubmitResult::kAccepted);
  const bool ran = WaitFor([&] { return cold_ran.load(); }, std::chrono::seconds(10));
  hot_gate.Open();
  EXPECT_TRUE(ran) << "the cold message waited for the blocked hot handler";
  engine->Shutdown(ShutdownMode::kDrain, std::chrono::seconds(30));
}

TEST(EngineTest, PerChatColdMessageStartsWhileTheOnlyTaskIsInAHandler) {
  ColdMessageUsesAFreeSlot(Ordering::kPerChat);
}

TEST(EngineTest, UnorderedMessageStartsWhileTheOnlyTaskIsInAHandler) {
  ColdMessageUsesAFreeSlot(Ordering::kNone);
}

TEST(EngineTest, UnorderedModeRunsEverythingOnceWithConcurrency) {
  Options o;
  o.ordering = Ordering::kNone;
  o.partitions = 2;
  o.concurrency = 4;
  o.threads = 4;
  std::atomic<int> running{0}, peak{0};
  std::mutex mu;
  std::set<std::string> seen;
  auto engine = MakeEngine(o, [&](const MessageView& m) {
    const int now = running.fetch_add(1) + 1;
    int p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    running.fetch_sub(1);
    std::lock_guard<std::mutex> l(mu);
    EXPECT_TRUE(seen.insert(std::string(m.payload)).second);
    return Outcome::kDone;
  });
  const std::string chat = ChatOnShard(0, o, "one-");
  for (int i = 0; i < 400; ++i) ASSERT_EQ(engine->Submit(chat, std::to_string(i)), SubmitResult::kAccepted);
  engine->Shutdown(ShutdownMode::kDrain, std::chrono::seconds(30));
  EXPECT_EQ(seen.size(), 400u);
  // One shard, one chat: ordering none lets up to `concurrency` run at once.
  EXPECT_GE(peak.load(), 2);
  EXPECT_LE(peak.load(), 4);
}

TEST(EngineTest, PerChatNeverRunsOneChatConcurrentlyButRunsChatsInParallel) {
  Options o;
  o.partitions = 1;
  o.concurrency = 3;
  o.threads = 4;
  std::mutex mu;
  std::map<std::string, int> in_chat;
  std::atomic<int> running{0}, peak{0};
  std::atomic<int> overlap{0};
  auto engine = MakeEngine(o, [&](const MessageView& m) {
    {
      std::lock_guard<std::mutex> l(mu);
      if (++in_chat[std::string(m.chat_id)] > 1) overlap.fetch_add(1);
    }
    const int now = running.fetch_add(1) + 1;
    int p = peak.load();
    while (now > p && !peak.compare_exchange_weak(p, now)) {
    }
    std::this_thread::sleep_for(std::chrono::microseconds(300));
    running.fetch_sub(1);
    std::lock_guard<std::mutex> l(mu);
    --in_chat[std::string(m.chat_id)];
    return Outcome::kDone;
  });
  for (int i = 0; i < 600; ++i) {
    ASSERT_EQ(engine->Submit(Name("c", i % 6), "p"), SubmitResult::kAccepted);
  }
  engine->Shutdown(ShutdownMode::kDrain, std::chrono::seconds(30));
  EXPECT_EQ(overlap.load(), 0);
  EXPECT_GE(peak.load(), 2);
  EXPECT_LE(peak.load(), 3);
  EXPECT_EQ(engine->Stats().total.completed, 600u);
}

}  // namespace
}  // namespace chatshard
