// Options for the Redis Streams adapter: where Redis is, how the shard keys
// are named, and the bounds of the publisher and the consumer. Plain values:
// copy them, change them, pass them to Publisher::Create / Consumer::Create,
// which call Validate() and refuse invalid options.
//
// TLS: hiredis 0.14.1 (Debian 12) has no TLS support. To reach a Redis that
// requires TLS, run a local tunnel (stunnel, or `spiped`) and point `address`
// at its loopback end or unix socket; the adapter then speaks plain RESP to
// the tunnel only.
#ifndef CHATSHARD_REDIS_OPTIONS_H_
#define CHATSHARD_REDIS_OPTIONS_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "chatshard/routing.h"
#include "chatshard/status.h"

namespace chatshard::redis {

// How to reach Redis and which keys the adapter uses.
struct ConnectionOptions {
  // "host:port" (IPv4 or a name; "[v6addr]:port" for IPv6) or the path of a
  // unix socket (anything starting with '/').
  std::string address = "127.0.0.1:6379";
  // ACL user name; empty means the legacy `AUTH <password>` form.
  std::string username;
  // Sent with AUTH after connecting when non-empty.
  std::string password;
  // Logical database chosen with SELECT. Range 0..15 (Redis' default limit).
  uint32_t database = 0;
  // Bound of one connect attempt. Range 1 ms..60 s.
  std::chrono::milliseconds connect_timeout{1000};
  // Bound of one command round trip (socket send/receive timeout). Must be
  // longer than ConsumerOptions::read_block. Range 10 ms..60 s.
  std::chrono::milliseconds command_timeout{2000};
  // Reconnect backoff: first wait, doubled per failed attempt, capped at max.
  // Range 1 ms..60 s (both); reconnect_backoff <= reconnect_backoff_max.
  std::chrono::milliseconds reconnect_backoff{20};
  std::chrono::milliseconds reconnect_backoff_max{1000};
  // Key prefix: keys are "<prefix>:{<shard>}:stream", "<prefix>:{<shard>}:dead"
  // and "<prefix>:meta". 1..128 bytes, no '{', '}' or whitespace.
  std::string prefix = "chatshard";
  // Shard count and routing; must equal what "<prefix>:meta" holds (written
  // by the first process that starts) and, for a consumer, the engine's.
  // partitions range 1..65536.
  uint32_t partitions = 16;
  Routing routing = Routing::kModulo;

  // OK, or InvalidArgument listing every problem, one per line, as
  // "<field> = <value>: <what is allowed>".
  Status Validate() const;
};

struct PublisherOptions {
  ConnectionOptions connection;
  // Publishes accepted and not yet answered by Redis. Range 1..1048576.
  uint32_t max_in_flight = 8192;
  // When the window is full, or Redis is down, Publish waits this long for
  // room before it answers Unavailable; 0 fails fast. A publish queued while
  // Redis is down fails once it has waited this long. Range 0..60 s.
  std::chrono::milliseconds publish_timeout{0};
  // XADDs written in one pipelined round trip at most. Range 1..65536.
  uint32_t batch_size = 256;
  // Largest payload accepted, in bytes. Range 1..(64 MiB), the engine's limit.
  size_t max_payload_bytes = size_t{1} << 20;

  Status Validate() const;
};

struct ConsumerOptions {
  ConnectionOptions connection;
  // Consumer group name; created at the start of each shard stream if absent.
  std::string group = "chatshard";
  // This process' name inside the group; unique among live consumers. A
  // restarted process may reuse its old name or take a new one.
  std::string consumer = "consumer-1";
  // Entries asked for by one XREADGROUP per shard. Range 1..65536.
  uint32_t read_batch = 256;
  // Entries a shard may hold inside the adapter and the engine (read and not
  // yet acked). Range 1..1048576.
  uint32_t max_in_flight_per_shard = 1024;
  // Entries of one chat loaded at once (read into the adapter and the engine,
  // not yet finished) while its shard is crowded (half of
  // max_in_flight_per_shard loaded). The chat's further entries are then
  // parked: the adapter
  // keeps only their stream ids (they stay pending in Redis, so a crash loses
  // nothing) and fetches them again by id (XRANGE), in id order, as the
  // chat's earlier entries finish. A hot chat's backlog then cannot fill the
  // shard's window: reading goes on past it, and the other chats of its shard
  // keep their turns instead of waiting behind it in the stream. Costs one
  // more XRANGE per parked entry. 0 = no per-chat limit (the window is then
  // FIFO: a hot chat can fill it). Range 0..1048576.
  uint32_t max_in_flight_per_chat = 64;
  // Parked entries a shard may hold (about 60 bytes of memory each); reading
  // the shard pauses while it is reached. Range 1..16777216.
  uint32_t max_parked_per_shard = 100000;
  // How long an idle XREADGROUP waits for new entries. Range 1 ms..10 s.
  std::chrono::milliseconds read_block{50};
  // Acks sent in one pipelined round trip at most. Range 1..65536.
  uint32_t ack_batch = 512;
  // An entry pending (delivered, not acked) for longer than this in another
  // consumer is claimed and redelivered. Range 10 ms..1 h.
  std::chrono::milliseconds claim_timeout{std::chrono::seconds(30)};
  // How often the periodic claim pass runs. Range 10 ms..1 h.
  std::chrono::milliseconds claim_interval{std::chrono::seconds(5)};
  // An entry that was delivered this many times without being acked is
  // dead-lettered when it is next recovered (after a restart or reconnect)
  // instead of being delivered again: a message that kills the process that
  // handles it would otherwise crash every consumer forever. The count is
  // Redis' own delivery counter (XPENDING), so it survives restarts. Retries
  // inside one delivery (max_attempts) do not count. Like SQS's
  // maxReceiveCount, a delivery is counted for every entry in flight when the
  // process died: an innocent entry (of any shard) that was in flight beside a
  // poison one, not yet acked, through max_deliveries crashes is dead-lettered
  // too, with the same reason. 0 = no limit. Range 0..1000000.
  uint32_t max_deliveries = 10;
  // Entries kept in each dead-letter stream (XADD MAXLEN ~). 0 = unbounded.
  // Range 0..2^40.
  uint64_t dead_letter_retention = 1000000;
  // Remove acked entries from the shard streams: every trim_interval, each
  // shard stream that had acks since the last pass is cut below the oldest
  // entry that some consumer group has not acked yet (XTRIM MINID, the bound
  // read from Redis: XINFO GROUPS and XPENDING). See the "Trimming" note in
  // src/consumer.cc.
  bool delete_acked = true;
  // How often acked entries are trimmed; at most this much acked history
  // (plus what sits above an unacked entry) stays in a stream. Range 1 ms..60 s.
  std::chrono::milliseconds trim_interval{100};

  Status Validate() const;
};

}  // namespace chatshard::redis

#endif  // CHATSHARD_REDIS_OPTIONS_H_
