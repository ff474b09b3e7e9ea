// A consumer process for RedisCrashTest: logs "<chat> <seq> <stream id>" for
// each message it handles (before the ack) and runs until it is killed. With
// a poison chat it dies (SIGKILL, as a segfault would end it) 300 ms into
// that chat's messages, and max_deliveries sets ConsumerOptions::max_deliveries.
// Usage: chatshard_redis_crash_consumer <address> <prefix> <consumer> <log> <claim_ms>
//        [<poison chat> <max_deliveries>]
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "chatshard/redis/consumer.h"

int main(int argc, char** argv) {
  if (argc != 6 && argc != 8) {
    std::fprintf(stderr,
                 "usage: %s address prefix consumer log claim_ms [poison_chat max_deliveries]\n",
                 argv[0]);
    return 2;
  }
  const std::string poison = argc == 8 ? argv[6] : "";
  const int log = ::open(argv[4], O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (log < 0) return 3;
  chatshard::redis::ConsumerOptions co;
  co.connection.address = argv[1];
  co.connection.prefix = argv[2];
  co.connection.partitions = 8;
  co.consumer = argv[3];
  co.claim_timeout = std::chrono::milliseconds(std::atoi(argv[5]));
  co.claim_interval = std::chrono::milliseconds(200);
  co.max_in_flight_per_shard = 64;
  co.read_batch = 32;
  // Small, so that entries are parked (ids only) when the process dies.
  co.max_in_flight_per_chat = 4;
  if (argc == 8) co.max_deliveries = static_cast<uint32_t>(std::atoi(argv[7]));
  chatshard::Options eo;
  eo.partitions = 8;
  eo.concurrency = 2;
  eo.threads = 2;
  auto consumer = chatshard::redis::Consumer::Create(
      co, eo, [log, poison](const chatshard::redis::StreamMessage& m) {
        if (!poison.empty() && m.chat_id == poison) {
          // Late enough that the entries handled beside it were acked: a
          // crash counts a delivery for every entry still in flight.
          std::this_thread::sleep_for(std::chrono::milliseconds(300));
          ::raise(SIGKILL);
        }
        std::this_thread::sleep_for(std::chrono::microseconds(300));
        std::string line(m.chat_id);
        line += ' ';
        line += m.payload;
        line += ' ';
        line += m.stream_id;
        line += '\n';
        if (::write(log, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
          return chatshard::Outcome::kRetry;
        }
        return chatshard::Outcome::kDone;
      });
  if (!consumer.ok()) {
    std::fprintf(stderr, "%s\n", consumer.status().ToString().c_str());
    return 1;
  }
  while (true) std::this_thread::sleep_for(std::chrono::seconds(1));
}
