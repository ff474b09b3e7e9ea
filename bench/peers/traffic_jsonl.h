// A small reader of traffic files in JSON Lines (gzip or not, by content):
// {"ts_us": <int>, "chat": "<id>", "bytes": <int>} per line, other fields
// ignored. The peers keep their own reader so they build without the
// chatshard command's library; `chatshard replay` reads the same files.
// Plain functions: safe from any thread on different files.
#ifndef CHATSHARD_BENCH_PEERS_TRAFFIC_JSONL_H_
#define CHATSHARD_BENCH_PEERS_TRAFFIC_JSONL_H_

#include <cstdint>
#include <string>
#include <vector>

namespace chatshard::bench {

struct PeerMessage {
  int64_t ts_us = 0;
  uint32_t chat = 0;  // index into PeerTraffic::chats
  uint64_t bytes = 0;
};

struct PeerTraffic {
  std::vector<std::string> chats;  // in order of first appearance
  std::vector<PeerMessage> messages;
  uint64_t skipped = 0;  // lines without a "chat" string
};

// Loads `path`; false with `*error` set when it cannot be read.
bool LoadPeerTraffic(const std::string& path, PeerTraffic* traffic, std::string* error);

}  // namespace chatshard::bench

#endif  // CHATSHARD_BENCH_PEERS_TRAFFIC_JSONL_H_
