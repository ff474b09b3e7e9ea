#include "traffic_jsonl.h"

#include <zlib.h>

#include <cstdlib>
#include <string_view>
#include <unordered_map>

namespace chatshard::bench {
namespace {

// The integer after "key": in `line`, or -1.
int64_t IntField(std::string_view line, std::string_view key) {
  const size_t at = line.find(key);
  if (at == std::string_view::npos) return -1;
  size_t i = at + key.size();
  while (i < line.size() && (line[i] == ' ' || line[i] == ':')) ++i;
  int64_t value = 0;
  bool any = false;
  while (i < line.size() && line[i] >= '0' && line[i] <= '9') {
    value = value * 10 + (line[i] - '0');
    ++i;
    any = true;
  }
  return any ? value : -1;
}

// The string after "chat": in `line` (no escapes expected in chat ids), or false.
bool ChatField(std::string_view line, std::string* out) {
  const size_t at = line.find("\"chat\"");
  if (at == std::string_view::npos) return false;
  size_t i = line.find('"', at + 6);
  if (i == std::string_view::npos) return false;
  std::string chat;
  for (++i; i < line.size() && line[i] != '"'; ++i) {
    if (line[i] == '\\' && i + 1 < line.size()) ++i;
    chat += line[i];
  }
  if (i >= line.size() || chat.empty()) return false;
  *out = std::move(chat);
  return true;
}

}  // namespace

bool LoadPeerTraffic(const std::string& path, PeerTraffic* traffic, std::string* error) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) {
    *error = "cannot open " + path;
    return false;
  }
  gzbuffer(file, 1 << 20);
  std::string data;
  char buffer[1 << 16];
  for (;;) {
    const int got = gzread(file, buffer, sizeof buffer);
    if (got < 0) {
      int code = 0;
      *error = path + ": " + gzerror(file, &code);
      gzclose(file);
      return false;
    }
    if (got == 0) break;
    data.append(buffer, static_cast<size_t>(got));
  }
  gzclose(file);
  std::unordered_map<std::string, uint32_t> index;
  std::string chat;
  size_t begin = 0;
  while (begin < data.size()) {
    size_t end = data.find('\n', begin);
    if (end == std::string::npos) end = data.size();
    const std::string_view line(data.data() + begin, end - begin);
    begin = end + 1;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    const int64_t ts = IntField(line, "\"ts_us\"");
    if (ts < 0 || !ChatField(line, &chat)) {
      ++traffic->skipped;
      continue;
    }
    const int64_t bytes = IntField(line, "\"bytes\"");
    auto [it, inserted] = index.try_emplace(chat, static_cast<uint32_t>(traffic->chats.size()));
    if (inserted) traffic->chats.push_back(chat);
    traffic->messages.push_back(
        PeerMessage{ts, it->second, bytes < 0 ? 0 : static_cast<uint64_t>(bytes)});
  }
  return true;
}

}  // namespace chatshard::bench
