// Reading traffic files: the binary format beside JSON Lines, plain and gzip,
// in the same run, on the shared rust-lang Zulip capture (CHATSHARD_SHARED_DATA).
// The capture is written once to temporary files (uncompressed JSON Lines and
// binary); every figure is a whole LoadTraffic of one of them, from the page
// cache.
//
//   BM_LoadTraffic/<format>   items/s = messages read per second, bytes/s of the file
//   BM_BinaryVsJsonLines      each iteration reads the plain JSON Lines and the binary
//                             file; counters read_speedup (JSON Lines time / binary
//                             time), gzip_read_speedup (JSON Lines .gz time / binary
//                             time), size_ratio (JSON Lines bytes / binary bytes)
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "traffic_binary.h"
#include "traffic_file.h"

#ifndef CHATSHARD_SHARED_DATA
#error "CHATSHARD_SHARED_DATA must name ../shared/data (bench/CMakeLists.txt)"
#endif

namespace chatshard::cli {
namespace {

namespace fs = std::filesystem;

// The capture in each format, on disk for the run.
class Files {
 public:
  static const Files& Get() {
    static const Files files;
    return files;
  }

  fs::path gzip = fs::path(CHATSHARD_SHARED_DATA) / "rust_zulip_traffic.jsonl.gz";
  fs::path jsonl;
  fs::path binary;
  uint64_t messages = 0;

  Files(const Files&) = delete;
  Files& operator=(const Files&) = delete;

 private:
  Files() {
    const fs::path dir = fs::temp_directory_path();
    const std::string stem = "chatshard_traffic_bench_" + std::to_string(getpid());
    jsonl = dir / (stem + ".jsonl");
    binary = dir / (stem + ".bin");
    Result<std::string> text = ReadTrafficFileBytes(gzip.string());
    Result<Traffic> traffic = LoadTraffic(gzip.string(), {});
    if (!text.ok() || !traffic.ok()) {
      std::fprintf(stderr, "cannot read %s\n", gzip.c_str());
      std::exit(1);
    }
    Result<std::string> encoded = EncodeBinaryTraffic(traffic.value());
    if (!encoded.ok() || !Write(jsonl, text.value()) || !Write(binary, encoded.value())) {
      std::fprintf(stderr, "cannot write %s or %s\n", jsonl.c_str(), binary.c_str());
      std::exit(1);
    }
    messages = traffic.value().messages.size();
  }
  ~Files() {
    std::error_code ignored;
    fs::remove(jsonl, ignored);
    fs::remove(binary, ignored);
  }

  static bool Write(const fs::path& path, std::string_view bytes) {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return out.good();
  }
};

// Loads `path` whole; aborts the run if it fails or reads the wrong count.
void LoadOrDie(const fs::path& path, uint64_t messages) {
  Result<Traffic> traffic = LoadTraffic(path.string(), {});
  if (!traffic.ok() || traffic.value().messages.size() != messages) {
    std::fprintf(stderr, "cannot load %s\n", path.c_str());
    std::exit(1);
  }
  benchmark::DoNotOptimize(traffic.value().messages.data());
}

enum class Format { kJsonLines, kJsonLinesGzip, kBinary };

void BM_LoadTraffic(benchmark::State& state) {
  const Files& files = Files::Get();
  const auto format = static_cast<Format>(state.range(0));
  const fs::path& path = format == Format::kJsonLines       ? files.jsonl
                         : format == Format::kJsonLinesGzip ? files.gzip
                                                            : files.binary;
  for (auto _ : state) LoadOrDie(path, files.messages);
  const auto file_bytes = static_cast<int64_t>(fs::file_size(path));
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(files.messages));
  state.SetBytesProcessed(state.iterations() * file_bytes);
  state.counters["file_bytes"] = static_cast<double>(file_bytes);
}
BENCHMARK(BM_LoadTraffic)
    ->ArgName("format")  // 0 JSON Lines, 1 JSON Lines .gz, 2 binary
    ->Arg(static_cast<int>(Format::kJsonLines))
    ->Arg(static_cast<int>(Format::kJsonLinesGzip))
    ->Arg(static_cast<int>(Format::kBinary))
    ->Unit(benchmark::kMillisecond);

void BM_BinaryVsJsonLines(benchmark::State& state) {
  using Clock = std::chrono::steady_clock;
  const Files& files = Files::Get();
  Clock::duration jsonl{};
  Clock::duration gzip{};
  Clock::duration binary{};
  const auto timed = [&files](const fs::path& path, Clock::duration& total) {
    const Clock::time_point start = Clock::now();
    LoadOrDie(path, files.messages);
    total += Clock::now() - start;
  };
  for (auto _ : state) {
    timed(files.jsonl, jsonl);
    timed(files.gzip, gzip);
    timed(files.binary, binary);
  }
  const auto ratio = [](Clock::duration a, Clock::duration b) {
    return std::chrono::duration<double>(a) / std::chrono::duration<double>(b);
  };
  state.counters["read_speedup"] = ratio(jsonl, binary);
  state.counters["gzip_read_speedup"] = ratio(gzip, binary);
  state.counters["size_ratio"] = static_cast<double>(fs::file_size(files.jsonl)) /
                                 static_cast<double>(fs::file_size(files.binary));
  state.SetItemsProcessed(state.iterations() * 3 * static_cast<int64_t>(files.messages));
}
BENCHMARK(BM_BinaryVsJsonLines)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace chatshard::cli

BENCHMARK_MAIN();
