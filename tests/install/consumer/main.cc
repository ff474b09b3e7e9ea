// Uses the installed headers and library: the routing vector, then a whole
// engine (which pulls in the engine's TBB dependency through the package).
// Built with CHATSHARD_CONSUMER_REDIS, it also validates Redis adapter
// options, which links chatshard::redis (and hiredis through the package).
#include <chatshard/engine.h>
#ifdef CHATSHARD_CONSUMER_REDIS
#include <chatshard/redis/options.h>
#endif

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string_view>
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

#ifdef CHATSHARD_CONSUMER_REDIS
  chatshard::redis::PublisherOptions publisher_options;
  if (const chatshard::Status s = publisher_options.Validate(); !s.ok()) {
    std::fprintf(stderr, "default PublisherOptions refused: %s\n", s.ToString().c_str());
    return 1;
  }
  publisher_options.connection.partitions = 0;
  const chatshard::Status refused = publisher_options.Validate();
  if (refused.ok() || refused.message().find("connection.partitions") == std::string_view::npos) {
    std::fprintf(stderr, "partitions = 0 not refused by name: %s\n", refused.ToString().c_str());
    return 1;
  }
  std::printf("consumer: chatshard::redis refused %s\n", refused.ToString().c_str());
#endif
  return 0;
}
