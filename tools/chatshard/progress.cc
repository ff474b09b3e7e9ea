#include "progress.h"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <mutex>
#include <string>
#include <utility>

#include "chatshard/message.h"

namespace chatshard::cli {
namespace {

constexpr size_t kDefaultWidth = 80;
constexpr size_t kBarCells = 20;
// Below this width the line drops its bar.
constexpr size_t kWidthForBar = 100;

double Percent(uint64_t part, uint64_t whole) {
  return whole == 0 ? 100.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

std::string Rate(const ProgressSample& sample) {
  return sample.rate_per_s < 0 ? std::string("-- msgs/s")
                               : fmt::format("{:.0f} msgs/s", sample.rate_per_s);
}

std::string Eta(const ProgressSample& sample) {
  if (sample.completed >= sample.total) return "0 s";
  if (sample.rate_per_s <= 0) return "?";
  return FormatEta(static_cast<double>(sample.total - sample.completed) / sample.rate_per_s);
}

size_t TerminalWidth(std::FILE* out) {
  winsize size{};
  if (ioctl(fileno(out), TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return kDefaultWidth;
}

}  // namespace

ProgressOptions ProgressOptions::ForStderr(bool enabled) {
  ProgressOptions options;
  options.enabled = enabled;
  options.terminal = isatty(fileno(stderr)) == 1;
  options.out = stderr;
  return options;
}

std::string FormatEta(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  if (seconds < 60) return fmt::format("{:.1f} s", seconds);
  const auto whole = static_cast<uint64_t>(seconds + 0.5);
  if (whole < 3600) return fmt::format("{} min {:02} s", whole / 60, whole % 60);
  return fmt::format("{} h {:02} min", whole / 3600, whole / 60 % 60);
}

std::string FormatProgressBar(const ProgressSample& sample, size_t width) {
  const double percent = Percent(sample.submitted, sample.total);
  std::string text = fmt::format("{:5.1f}%  {}/{} submitted  {} completed  {}  ETA {}", percent,
                                 sample.submitted, sample.total, sample.completed, Rate(sample),
                                 Eta(sample));
  if (width >= kWidthForBar) {
    const auto filled = static_cast<size_t>(std::clamp(percent, 0.0, 100.0) / 100.0 * kBarCells);
    text = fmt::format("[{}{}] {}", std::string(filled, '#'), std::string(kBarCells - filled, '-'),
                       text);
  }
  // Leave the last column free: writing into it makes some terminals wrap.
  if (width > 0 && text.size() >= width) text.resize(width - 1);
  return text;
}

std::string FormatProgressLine(const ProgressSample& sample) {
  return fmt::format(
      "chatshard replay: {}/{} submitted ({:.1f}%), {} completed, {}, ETA {}, {:.1f} s elapsed",
      sample.submitted, sample.total, Percent(sample.submitted, sample.total), sample.completed,
      Rate(sample), Eta(sample), sample.elapsed_s);
}

ProgressMeter::ProgressMeter(uint64_t total, std::function<uint64_t()> completed,
                             ProgressOptions options)
    : total_(total), completed_(std::move(completed)), options_(options) {
  if (options_.enabled && options_.out != nullptr) thread_ = std::thread([this] { Run(); });
}

ProgressMeter::~ProgressMeter() { Stop(); }

void ProgressMeter::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ProgressMeter::Run() {
  using std::chrono::duration;
  struct Point {
    Clock::time_point at;
    uint64_t completed;
  };
  const Clock::time_point start = Clock::now();
  const Clock::duration tick = std::min(options_.terminal_interval, options_.plain_interval);
  std::deque<Point> recent;  // the samples of about the last rate_window
  Clock::time_point last_line = start;
  bool shown = false;

  const auto sample_now = [&] {
    const Clock::time_point now = Clock::now();
    ProgressSample sample;
    sample.total = total_;
    // Relaxed: see SetSubmitted.
    sample.submitted = submitted_.load(std::memory_order_relaxed);
    sample.completed = completed_ ? completed_() : 0;
    sample.elapsed_s = duration<double>(now - start).count();
    recent.push_back(Point{now, sample.completed});
    // Keep the newest point at least rate_window old as the rate's base.
    while (recent.size() > 2 && now - recent[1].at >= options_.rate_window) recent.pop_front();
    const double span_s = duration<double>(now - recent.front().at).count();
    sample.rate_per_s =
        recent.size() < 2 || span_s <= 0
            ? -1
            : static_cast<double>(sample.completed - recent.front().completed) / span_s;
    return std::pair{now, sample};
  };

  std::unique_lock<std::mutex> lock(mu_);
  while (!wake_.wait_for(lock, tick, [this] { return stopping_; })) {
    lock.unlock();
    const auto [now, sample] = sample_now();
    if (now - start >= options_.delay) {
      if (options_.terminal) {
        const std::string line = FormatProgressBar(sample, TerminalWidth(options_.out));
        std::fprintf(options_.out, "\r%s\033[K", line.c_str());
        std::fflush(options_.out);
        shown = true;
      } else if (now - last_line >= options_.plain_interval) {
        std::fprintf(options_.out, "%s\n", FormatProgressLine(sample).c_str());
        std::fflush(options_.out);
        last_line = now;
        shown = true;
      }
    }
    lock.lock();
  }
  lock.unlock();

  if (!shown) return;
  if (options_.terminal) {
    std::fputs("\r\033[K", options_.out);  // the report follows; leave no half line
  } else {
    std::fprintf(options_.out, "%s\n", FormatProgressLine(sample_now().second).c_str());
  }
  std::fflush(options_.out);
}

}  // namespace chatshard::cli
