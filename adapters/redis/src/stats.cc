#include <string>

#include "chatshard/redis/stats.h"

namespace chatshard::redis {

std::string RedisStats::ToJson() const {
  std::string out = "{";
  auto field = [&out](const char* name, uint64_t value) {
    out += '"';
    out += name;
    out += "\":";
    out += std::to_string(value);
    out += ',';
  };
  field("published", published);
  field("publish_failed", publish_failed);
  field("delivered", delivered);
  field("acked", acked);
  field("claimed", claimed);
  field("dead_lettered", dead_lettered);
  field("reconnects", reconnects);
  field("in_flight", in_flight);
  field("parked", parked);
  field("round_trips", round_trips);
  out += "\"ready\":";
  out += ready ? "true" : "false";
  out += '}';
  return out;
}

}  // namespace chatshard::redis
