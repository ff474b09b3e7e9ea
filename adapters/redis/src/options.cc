#include <string>

#include "chatshard/engine.h"
#include "chatshard/redis/options.h"
#include "connection.h"

namespace chatshard::redis {
namespace {

using std::chrono::milliseconds;

class Problems {
 public:
  void Add(std::string_view field, const std::string& value, std::string_view allowed) {
    if (!text_.empty()) text_ += '\n';
    text_ += field;
    text_ += " = ";
    text_ += value;
    text_ += ": ";
    text_ += allowed;
  }
  void Range(std::string_view field, uint64_t value, uint64_t lo, uint64_t hi) {
    if (value < lo || value > hi) {
      Add(field, std::to_string(value),
          "must be in " + std::to_string(lo) + ".." + std::to_string(hi));
    }
  }
  void Duration(std::string_view field, milliseconds value, milliseconds lo, milliseconds hi) {
    if (value < lo || value > hi) {
      Add(field, std::to_string(value.count()) + " ms",
          "must be in " + std::to_string(lo.count()) + ".." + std::to_string(hi.count()) +
              " ms");
    }
  }
  void Merge(const Status& s) {
    if (s.ok()) return;
    if (!text_.empty()) text_ += '\n';
    text_ += s.message();
  }
  Status ToStatus() const { return text_.empty() ? Status::Ok() : Status::InvalidArgument(text_); }

 private:
  std::string text_;
};

bool ValidName(std::string_view s, size_t max) {
  if (s.empty() || s.size() > max) return false;
  for (char c : s) {
    if (c == '{' || c == '}' || c == ' ' || c == '\t' || c == '\r' || c == '\n') return false;
  }
  return true;
}

}  // namespace

Status ConnectionOptions::Validate() const {
  Problems p;
  if (Result<internal::Endpoint> e = internal::ParseAddress(address); !e.ok()) {
    p.Merge(Status::InvalidArgument("connection." + std::string(e.status().message())));
  }
  if (!username.empty() && password.empty()) {
    p.Add("connection.password", "\"\"", "must be set when connection.username is set");
  }
  p.Range("connection.database", database, 0, 15);
  p.Duration("connection.connect_timeout", connect_timeout, milliseconds(1),
             milliseconds(60000));
  p.Duration("connection.command_timeout", command_timeout, milliseconds(10),
             milliseconds(60000));
  p.Duration("connection.reconnect_backoff", reconnect_backoff, milliseconds(1),
             milliseconds(60000));
  p.Duration("connection.reconnect_backoff_max", reconnect_backoff_max, milliseconds(1),
             milliseconds(60000));
  if (reconnect_backoff > reconnect_backoff_max) {
    p.Add("connection.reconnect_backoff", std::to_string(reconnect_backoff.count()) + " ms",
          "must be <= connection.reconnect_backoff_max (" +
              std::to_string(reconnect_backoff_max.count()) + " ms)");
  }
  if (!ValidName(prefix, 128)) {
    p.Add("connection.prefix", "\"" + prefix + "\"",
          "must be 1..128 bytes without '{', '}' or whitespace");
  }
  p.Range("connection.partitions", partitions, 1, 65536);
  return p.ToStatus();
}

Status PublisherOptions::Validate() const {
  Problems p;
  p.Merge(connection.Validate());
  p.Range("max_in_flight", max_in_flight, 1, 1u << 20);
  p.Duration("publish_timeout", publish_timeout, milliseconds(0), milliseconds(60000));
  p.Range("batch_size", batch_size, 1, 65536);
  p.Range("max_payload_bytes", max_payload_bytes, 1, kMaxPayloadBytes);
  return p.ToStatus();
}

Status ConsumerOptions::Validate() const {
  Problems p;
  p.Merge(connection.Validate());
  if (!ValidName(group, 256)) {
    p.Add("group", "\"" + group + "\"", "must be 1..256 bytes without '{', '}' or whitespace");
  }
  if (!ValidName(consumer, 256)) {
    p.Add("consumer", "\"" + consumer + "\"",
          "must be 1..256 bytes without '{', '}' or whitespace");
  }
  p.Range("read_batch", read_batch, 1, 65536);
  p.Range("max_in_flight_per_shard", max_in_flight_per_shard, 1, 1u << 20);
  p.Range("max_in_flight_per_chat", max_in_flight_per_chat, 0, 1u << 20);
  p.Range("max_parked_per_shard", max_parked_per_shard, 1, 1u << 24);
  p.Duration("read_block", read_block, milliseconds(1), milliseconds(10000));
  if (read_block >= connection.command_timeout) {
    p.Add("read_block", std::to_string(read_block.count()) + " ms",
          "must be shorter than connection.command_timeout (" +
              std::to_string(connection.command_timeout.count()) + " ms)");
  }
  p.Range("ack_batch", ack_batch, 1, 65536);
  p.Duration("claim_timeout", claim_timeout, milliseconds(10), milliseconds(3600000));
  p.Duration("claim_interval", claim_interval, milliseconds(10), milliseconds(3600000));
  p.Range("max_deliveries", max_deliveries, 0, 1000000);
  p.Range("dead_letter_retention", dead_letter_retention, 0, uint64_t{1} << 40);
  p.Duration("trim_interval", trim_interval, milliseconds(1), milliseconds(60000));
  return p.ToStatus();
}

}  // namespace chatshard::redis
