// Helpers shared by the fuzz targets: invariant checks that abort (so the
// fuzzer records the input), and an in-memory file for path-based loaders.
#ifndef CHATSHARD_TESTS_FUZZ_FUZZ_UTIL_H_
#define CHATSHARD_TESTS_FUZZ_FUZZ_UTIL_H_

#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "traffic_file.h"

namespace chatshard::fuzz {

// Aborts with `what` unless `condition`: the fuzzer saves the input.
inline void Require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "invariant broken: %s\n", what);
    std::abort();
  }
}

// Every message names an existing chat; chat ids are non-empty.
inline void CheckTraffic(const cli::Traffic& traffic) {
  for (const std::string& chat : traffic.chats) Require(!chat.empty(), "chat ids are non-empty");
  for (const cli::TrafficMessage& message : traffic.messages) {
    Require(message.chat < traffic.chats.size(), "a message names an existing chat");
    Require(message.ts_us >= 0, "ts_us >= 0");
  }
}

inline void SameTraffic(const cli::Traffic& a, const cli::Traffic& b) {
  Require(a.chats == b.chats, "same chats after a round trip");
  Require(a.messages.size() == b.messages.size(), "same message count after a round trip");
  for (size_t i = 0; i < a.messages.size(); ++i) {
    Require(a.messages[i].ts_us == b.messages[i].ts_us && a.messages[i].chat == b.messages[i].chat &&
                a.messages[i].bytes == b.messages[i].bytes,
            "same messages after a round trip");
  }
}

// A file in memory (memfd), rewritten for each input, opened by path through
// /proc/self/fd: the loaders take paths, and a disk file per input would be slow.
class MemoryFile {
 public:
  explicit MemoryFile(const char* name) : fd_(memfd_create(name, 0)) {
    Require(fd_ >= 0, "memfd_create");
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  MemoryFile(const MemoryFile&) = delete;
  MemoryFile& operator=(const MemoryFile&) = delete;

  // Replaces the contents with `data`; returns the path to read them from.
  const std::string& Write(std::string_view data) {
    Require(ftruncate(fd_, 0) == 0, "ftruncate");
    size_t done = 0;
    while (done < data.size()) {
      const ssize_t n = pwrite(fd_, data.data() + done, data.size() - done,
                               static_cast<off_t>(done));
      Require(n > 0, "pwrite");
      done += static_cast<size_t>(n);
    }
    return path_;
  }

 private:
  int fd_;
  std::string path_;
};

}  // namespace chatshard::fuzz

#endif  // CHATSHARD_TESTS_FUZZ_FUZZ_UTIL_H_
