#include "replay_probe.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace chatshard::cli {
namespace {

// Traffic of `chats` chats whose messages alternate: message i is of chat i % chats.
Traffic AlternatingTraffic(uint32_t chats, uint64_t messages) {
  Traffic traffic;
  for (uint32_t chat = 0; chat < chats; ++chat)
    traffic.chats.push_back("chat-" + std::to_string(chat));
  for (uint64_t i = 0; i < messages; ++i) {
    traffic.messages.push_back(TrafficMessage{
        .ts_us = static_cast<int64_t>(i), .chat = static_cast<uint32_t>(i % chats), .bytes = 0});
  }
  return traffic;
}

constexpr uint64_t kNotRun = UINT64_MAX;

// Per message of `traffic`: the end-to-end latency of its first run, or
// kNotRun; checks what ForEachFirstRun hands over on the way.
std::vector<uint64_t> EndToEnd(const ReplayProbe& probe, const Traffic& traffic) {
  std::vector<uint64_t> latency(traffic.messages.size(), kNotRun);
  const ReplayProbe::Totals totals = probe.ForEachFirstRun([&](const ReplayProbe::FirstRun& run) {
    EXPECT_LT(run.index, traffic.messages.size());
    EXPECT_EQ(run.chat, traffic.messages[run.index].chat) << run.index;
    EXPECT_EQ(latency[run.index], kNotRun) << "handed over twice: " << run.index;
    EXPECT_GT(run.finished_ns, 0);
    latency[run.index] = run.end_to_end_ns;
  });
  EXPECT_EQ(totals.first_runs(), totals.runs - totals.duplicates);
  EXPECT_EQ(totals.first_runs(),
            static_cast<uint64_t>(std::count_if(latency.begin(), latency.end(),
                                                [](uint64_t ns) { return ns != kNotRun; })));
  return latency;
}

// Runs message `index` of `traffic` through the probe, as the engine would.
Outcome HandleMessage(ReplayProbe& probe, const Traffic& traffic, uint64_t index,
                      Clock::time_point enqueued = Clock::now()) {
  const ReplayProbe::Payload payload = probe.PayloadFor(index);
  MessageView view;
  view.chat_id = traffic.chats[traffic.messages[index].chat];
  view.payload = std::string_view(payload.data(), payload.size());
  view.enqueued = enqueued;
  view.started = Clock::now();
  return probe.Handle(view);
}

TEST(ReplayProbeTest, InOrderRunsOfInterleavedChatsAreNoViolation) {
  const Traffic traffic = AlternatingTraffic(3, 30);
  ReplayProbe probe(traffic, WorkSpec::Fixed(0, WorkMode::kBusy));
  for (uint64_t i = 0; i < 30; ++i) EXPECT_EQ(HandleMessage(probe, traffic, i), Outcome::kDone);
  const ReplayProbe::Totals totals = probe.Collect();
  EXPECT_EQ(totals.runs, 30u);
  EXPECT_EQ(totals.order_violations, 0u);
  EXPECT_EQ(totals.duplicates, 0u);
  EXPECT_EQ(totals.corrupt, 0u);
  for (uint64_t ns : EndToEnd(probe, traffic)) EXPECT_NE(ns, kNotRun);
}

TEST(ReplayProbeTest, CountsAMessageRunAfterALaterOneOfItsChat) {
  const Traffic traffic = AlternatingTraffic(2, 6);  // chat 0: 0, 2, 4; chat 1: 1, 3, 5
  ReplayProbe probe(traffic, WorkSpec::Fixed(0, WorkMode::kBusy));
  HandleMessage(probe, traffic, 4);
  HandleMessage(probe, traffic, 1);  // other chat: fine
  HandleMessage(probe, traffic, 2);  // after 4 of the same chat
  HandleMessage(probe, traffic, 0);  // after 4 too
  HandleMessage(probe, traffic, 3);
  const ReplayProbe::Totals totals = probe.Collect();
  EXPECT_EQ(totals.order_violations, 2u);
  EXPECT_EQ(totals.runs, 5u);
  EXPECT_EQ(EndToEnd(probe, traffic)[5], kNotRun);
}

TEST(ReplayProbeTest, CountsASecondRunOfAMessageAsDuplicate) {
  const Traffic traffic = AlternatingTraffic(1, 3);
  ReplayProbe probe(traffic, WorkSpec::Fixed(0, WorkMode::kBusy));
  HandleMessage(probe, traffic, 0);
  HandleMessage(probe, traffic, 1);
  HandleMessage(probe, traffic, 1);
  const ReplayProbe::Totals totals = probe.Collect();
  EXPECT_EQ(totals.duplicates, 1u);
  EXPECT_EQ(totals.order_violations, 0u);  // a repeat is not a step back
  EXPECT_EQ(totals.runs, 3u);
  EXPECT_EQ(totals.first_runs(), 2u);
  const std::vector<uint64_t> latency = EndToEnd(probe, traffic);
  EXPECT_NE(latency[1], kNotRun);
  EXPECT_EQ(latency[2], kNotRun);
}

TEST(ReplayProbeTest, FailsMessagesTheReplayDidNotSend) {
  const Traffic traffic = AlternatingTraffic(2, 2);
  ReplayProbe probe(traffic, WorkSpec::Fixed(0, WorkMode::kBusy));
  MessageView view;
  view.chat_id = "chat-0";
  view.payload = "short";
  EXPECT_EQ(probe.Handle(view), Outcome::kFail);
  const ReplayProbe::Payload out_of_range = ReplayProbe::EncodePayload(2, 0);
  view.payload = std::string_view(out_of_range.data(), out_of_range.size());
  EXPECT_EQ(probe.Handle(view), Outcome::kFail);
  const ReplayProbe::Payload of_chat_1 = probe.PayloadFor(1);
  view.payload = std::string_view(of_chat_1.data(), of_chat_1.size());
  EXPECT_EQ(probe.Handle(view), Outcome::kFail);  // message 1 belongs to chat-1
  const ReplayProbe::Payload no_such_chat = ReplayProbe::EncodePayload(0, 7);
  view.payload = std::string_view(no_such_chat.data(), no_such_chat.size());
  EXPECT_EQ(probe.Handle(view), Outcome::kFail);  // the file has 2 chats
  const ReplayProbe::Totals totals = probe.Collect();
  EXPECT_EQ(totals.corrupt, 4u);
  EXPECT_EQ(totals.runs, 0u);
}

TEST(ReplayProbeTest, FailsAChatIdThatDiffersInAnyOneByte) {
  // Every length around the inline comparison's 8..32 bytes, every position.
  for (size_t length = 1; length <= 40; ++length) {
    Traffic traffic;
    std::string chat;
    for (size_t i = 0; i < length; ++i) chat.push_back(static_cast<char>('a' + i % 26));
    traffic.chats.push_back(chat);
    traffic.messages.push_back(TrafficMessage{.ts_us = 0, .chat = 0, .bytes = 0});
    ReplayProbe probe(traffic, WorkSpec::Fixed(0, WorkMode::kBusy));
    const ReplayProbe::Payload payload = probe.PayloadFor(0);
    MessageView view;
    view.payload = std::string_view(payload.data(), payload.size());
    view.started = Clock::now();
    for (size_t at = 0; at < length; ++at) {
      std::string other = chat;
      other[at] = 'Z';
      view.chat_id = other;
      EXPECT_EQ(probe.Handle(view), Outcome::kFail) << length << " " << at;
    }
    view.chat_id = chat;
    EXPECT_EQ(probe.Handle(view), Outcome::kDone) << length;
    EXPECT_EQ(probe.Collect().corrupt, length);
  }
}

TEST(ReplayProbeTest, PayloadCarriesIndexAndChatOrDefersALargeChatIndexToTheFile) {
  const Traffic traffic = AlternatingTraffic(3, 9);
  ReplayProbe probe(traffic, WorkSpec::Fixed(0, WorkMode::kBusy));
  // A chat index too large for the payload's 24 bits travels as kChatInFile
  // and the probe takes the chat from the file: message 5 is of chat-2.
  const ReplayProbe::Payload deferred = ReplayProbe::EncodePayload(5, 1u << 24);
  uint64_t value = 0;
  std::memcpy(&value, deferred.data(), sizeof value);
  EXPECT_EQ(value, 5u | (uint64_t{ReplayProbe::kChatInFile} << ReplayProbe::kIndexBits));
  MessageView view;
  view.started = Clock::now();
  view.chat_id = "chat-2";
  view.payload = std::string_view(deferred.data(), deferred.size());
  EXPECT_EQ(probe.Handle(view), Outcome::kDone);
  const ReplayProbe::Payload packed = probe.PayloadFor(4);  // chat-1
  std::memcpy(&value, packed.data(), sizeof value);
  EXPECT_EQ(value, 4u | (uint64_t{1} << ReplayProbe::kIndexBits));
  view.chat_id = "chat-1";
  view.payload = std::string_view(packed.data(), packed.size());
  EXPECT_EQ(probe.Handle(view), Outcome::kDone);
  const ReplayProbe::Totals totals = probe.Collect();
  EXPECT_EQ(totals.runs, 2u);
  EXPECT_EQ(totals.corrupt, 0u);
  const std::vector<uint64_t> latency = EndToEnd(probe, traffic);  // checks each run's chat
  EXPECT_NE(latency[5], kNotRun);
  EXPECT_NE(latency[4], kNotRun);
}

TEST(ReplayProbeTest, RecordsEndToEndLatencyIncludingTheWork) {
  const Traffic traffic = AlternatingTraffic(1, 2);
  ReplayProbe probe(traffic, WorkSpec::Fixed(2000, WorkMode::kSleep));
  HandleMessage(probe, traffic, 0, Clock::now() - std::chrono::milliseconds(5));
  ReplayProbe busy(traffic, WorkSpec::Fixed(1000, WorkMode::kBusy));
  HandleMessage(busy, traffic, 1);
  // Lower bounds only: a loaded machine may add any delay.
  EXPECT_GE(EndToEnd(probe, traffic)[0], 7'000'000u);
  EXPECT_GE(EndToEnd(busy, traffic)[1], 1'000'000u);
}

TEST(ReplayProbeTest, ThreadsHandlingDistinctChatsRecordEveryRun) {
  constexpr uint32_t kThreads = 4;
  constexpr uint64_t kMessages = 40000;
  const Traffic traffic = AlternatingTraffic(kThreads, kMessages);
  ReplayProbe probe(traffic, WorkSpec::Fixed(0, WorkMode::kBusy));
  std::vector<std::thread> threads;
  for (uint32_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = t; i < kMessages; i += kThreads) HandleMessage(probe, traffic, i);
    });
  }
  for (std::thread& thread : threads) thread.join();
  const ReplayProbe::Totals totals = probe.Collect();
  EXPECT_EQ(totals.runs, kMessages);
  EXPECT_EQ(totals.duplicates, 0u);
  EXPECT_EQ(totals.order_violations, 0u);
  const std::vector<uint64_t> latency = EndToEnd(probe, traffic);
  for (uint64_t i = 0; i < kMessages; ++i) ASSERT_NE(latency[i], kNotRun) << i;
}

// Visits with `threads` threads; returns how often each message was visited
// and checks that each call came with a thread number below `threads`.
std::vector<int> VisitCounts(const ReplayProbe& probe, const Traffic& traffic, unsigned threads,
                             ReplayProbe::Totals* totals, std::vector<uint64_t>* per_thread) {
  std::vector<std::atomic<int>> visits(traffic.messages.size());
  std::vector<std::atomic<uint64_t>> by_thread(threads);
  *totals = probe.ForEachFirstRun(threads, [&](unsigned k, const ReplayProbe::FirstRun& run) {
    EXPECT_LT(k, threads);
    if (k < threads) by_thread[k].fetch_add(1, std::memory_order_relaxed);
    visits[run.index].fetch_add(1, std::memory_order_relaxed);
  });
  per_thread->clear();
  for (auto& n : by_thread) per_thread->push_back(n.load());
  std::vector<int> out;
  for (auto& v : visits) out.push_back(v.load());
  return out;
}

TEST(ReplayProbeTest, SplitsTheFirstRunsOverThreadsWhenNoRunRepeats) {
  constexpr uint64_t kMessages = 300000;  // enough records for several threads
  // Chat 0 has the even messages, chat 1 the odd ones: a thread per chat.
  const Traffic traffic = AlternatingTraffic(2, kMessages);
  ReplayProbe probe(traffic, WorkSpec::Fixed(0, WorkMode::kBusy), Ordering::kPerChat);
  std::thread a([&] {
    for (uint64_t i = 0; i < kMessages; i += 2) HandleMessage(probe, traffic, i);
  });
  std::thread b([&] {
    for (uint64_t i = 1; i < kMessages; i += 2) HandleMessage(probe, traffic, i);
  });
  a.join();
  b.join();
  ReplayProbe::Totals totals;
  std::vector<uint64_t> per_thread;
  const std::vector<int> visits = VisitCounts(probe, traffic, 3, &totals, &per_thread);
  EXPECT_EQ(totals.runs, kMessages);
  EXPECT_EQ(totals.first_runs(), kMessages);
  EXPECT_EQ(totals.duplicates, 0u);
  EXPECT_EQ(totals.order_violations, 0u);
  for (uint64_t i = 0; i < kMessages; ++i) ASSERT_EQ(visits[i], 1) << i;
  ASSERT_EQ(per_thread.size(), 3u);
  for (uint64_t n : per_thread) EXPECT_EQ(n, kMessages / 3);  // equal stretches
}

TEST(ReplayProbeTest, ARepeatedRunIsVisitedOnceWhateverTheThreadCount) {
  constexpr uint64_t kMessages = 200000;
  const Traffic traffic = AlternatingTraffic(5, kMessages);
  ReplayProbe probe(traffic, WorkSpec::Fixed(0, WorkMode::kBusy), Ordering::kPerChat);
  for (uint64_t i = 0; i < kMessages; ++i) HandleMessage(probe, traffic, i);
  HandleMessage(probe, traffic, kMessages - 1);  // a repeat of the chat's latest
  HandleMessage(probe, traffic, 17);             // a repeat that also steps back
  ReplayProbe::Totals totals;
  std::vector<uint64_t> per_thread;
  const std::vector<int> visits = VisitCounts(probe, traffic, 4, &totals, &per_thread);
  EXPECT_EQ(totals.runs, kMessages + 2);
  EXPECT_EQ(totals.duplicates, 2u);
  EXPECT_EQ(totals.first_runs(), kMessages);
  EXPECT_EQ(totals.order_violations, 1u);
  for (uint64_t i = 0; i < kMessages; ++i) ASSERT_EQ(visits[i], 1) << i;
}

TEST(ReplayProbeTest, ThreadsRacingOnOneChatCountOnlyRealStepsBack) {
  // Like ordering none: two threads run one chat's messages concurrently, one
  // the even indexes ascending, the other the odd ones descending. Every run
  // is recorded exactly once whatever the interleaving.
  constexpr uint64_t kMessages = 20000;
  const Traffic traffic = AlternatingTraffic(1, kMessages);
  ReplayProbe probe(traffic, WorkSpec::Fixed(0, WorkMode::kBusy));
  std::thread up([&] {
    for (uint64_t i = 0; i < kMessages; i += 2) HandleMessage(probe, traffic, i);
  });
  std::thread down([&] {
    for (uint64_t i = kMessages - 1; i < kMessages; i -= 2) HandleMessage(probe, traffic, i);
  });
  up.join();
  down.join();
  const ReplayProbe::Totals totals = probe.Collect();
  EXPECT_EQ(totals.runs, kMessages);
  EXPECT_EQ(totals.duplicates, 0u);
  // The descending thread steps back on all but (at most) its first run.
  EXPECT_GE(totals.order_violations, kMessages / 2 - 1);
  EXPECT_LT(totals.order_violations, kMessages);
}

}  // namespace
}  // namespace chatshard::cli
