// Uses the installed headers and library: the routing vector, then a whole
// engine (which pulls in the engine's TBB dependency through the package).
#include <chatshard/engine.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <utility>

int main() {
  const uint32_t shard = chatshard::ShardFor("foobar", 16);
  if (shard != 0xbf9cf968u % 16) {
    std::fprintf(stderr, "ShardFor(\"foobar\", 16) = %u, want %u\n", shard, 0xbf9cf968u % 16);
    return 1;
  }

  std::atomic<int> handled{0};
  chatshard::Options options;
  options.partitions = 4;
  auto created = chatshard::Engine::Create(options, [&handled](const chatshard::MessageView&) {
    handled.fetch_add(1, std::memory_order_relaxed);
    return chatshard::Outcome::kDone;
  });
  if (!created.ok()) {
    std::fprintf(stderr, "Engine::Create: %s\n", created.status().ToString().c_str());
    return 1;
  }
  std::unique_ptr<chatshard::Engine> engine = std::move(created).value();
  constexpr int kMessages = 100;
  for (int i = 0; i < kMessages; ++i) {
    if (engine->Submit(i % 2 == 0 ? "foobar" : "lobby", "hello") !=
        chatshard::SubmitResult::kAccepted) {
      std::fprintf(stderr, "Submit refused message %d\n", i);
      return 1;
    }
  }
  const chatshard::ShutdownReport report =
      engine->Shutdown(chatshard::ShutdownMode::kDrain, std::chrono::seconds(30));
  // Shutdown's return makes every handler run's writes visible here.
  const int done = handled.load(std::memory_order_relaxed);
  if (done != kMessages || !report.unprocessed.empty()) {
    std::fprintf(stderr, "handled %d of %d, %zu unprocessed\n", done, kMessages,
                 report.unprocessed.size());
    return 1;
  }
  std::printf("consumer: ShardFor(\"foobar\", 16) = %u; engine handled %d messages\n", shard, done);
  return 0;
}
