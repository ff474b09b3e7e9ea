// RedisStats: the adapter's counters, copied at one instant. Counters are
// relaxed atomics written by the adapter's I/O thread (and Publish callers for
// `in_flight`); each field is exact for some recent instant and all are exact
// once the adapter is quiet.
#ifndef CHATSHARD_REDIS_STATS_H_
#define CHATSHARD_REDIS_STATS_H_

#include <cstdint>
#include <string>

namespace chatshard::redis {

struct RedisStats {
  uint64_t published = 0;      // XADDs Redis confirmed (publisher)
  uint64_t publish_failed = 0; // publishes answered with an error
  uint64_t delivered = 0;      // entries read or claimed and handed to the engine
  uint64_t acked = 0;          // entries XACKed (done or dead-lettered)
  uint64_t claimed = 0;        // entries taken over from the pending list
  uint64_t dead_lettered = 0;  // entries written to a dead-letter stream
  uint64_t reconnects = 0;     // connections re-established after a loss
  uint64_t in_flight = 0;      // publisher: unanswered XADDs; consumer: unacked entries
  uint64_t parked = 0;         // consumer: entries parked behind their chat's limit
  uint64_t round_trips = 0;    // pipelined request batches sent to Redis
  bool ready = false;          // connected now

  // One JSON object, e.g. {"published":1,...,"ready":true}; a host can add it
  // under a key of its own next to StatsSnapshot::ToJson().
  std::string ToJson() const;
};

}  // namespace chatshard::redis

#endif  // CHATSHARD_REDIS_STATS_H_
