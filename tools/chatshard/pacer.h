// Pacer: when the messages of a traffic file are due, for the subcommands that
// send a file at its recorded pace sped up by a factor, or as fast as possible
// (`replay`, `produce`: --speed max|FACTOR). Message i is due
// (ts_us[i] - ts_us[first]) / factor after the first was sent; a timestamp
// earlier than the first one's (an unsorted file) is due at once.
//
// Thread safety: a Pacer is used by the one thread that sends; plain values.
#ifndef CHATSHARD_TOOLS_CHATSHARD_PACER_H_
#define CHATSHARD_TOOLS_CHATSHARD_PACER_H_

#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string_view>
#include <system_error>
#include <thread>

#include "chatshard/message.h"

namespace chatshard::cli {

// --speed: "max" -> 0 (no pacing), "<factor>" -> factor > 0; otherwise nullopt.
inline std::optional<double> ParseSpeed(std::string_view text) {
  if (text == "max") return 0.0;
  double factor = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), factor);
  if (error != std::errc() || end != text.data() + text.size() || !std::isfinite(factor) ||
      factor <= 0) {
    return std::nullopt;
  }
  return factor;
}

class Pacer {
 public:
  // `speed` 0 never waits. The clock starts now; `first_ts_us` is the
  // timestamp of the first message, due at once.
  Pacer(double speed, int64_t first_ts_us)
      : speed_(speed), first_ts_us_(first_ts_us), start_(Clock::now()) {}

  // Sleeps until a message stamped `ts_us` is due.
  void WaitUntilDue(int64_t ts_us) const {
    if (speed_ <= 0 || ts_us <= first_ts_us_) return;
    const Clock::time_point due = Due(ts_us);
    if (Clock::now() < due) std::this_thread::sleep_until(due);
  }

  // Whether a message stamped `ts_us` is due now; reads no clock at speed 0.
  bool IsDue(int64_t ts_us) const {
    return speed_ <= 0 || ts_us <= first_ts_us_ || Clock::now() >= Due(ts_us);
  }

 private:
  Clock::time_point Due(int64_t ts_us) const {
    const std::chrono::duration<double, std::micro> offset(
        static_cast<double>(ts_us - first_ts_us_) / speed_);
    return start_ + std::chrono::duration_cast<Clock::duration>(offset);
  }

  const double speed_;
  const int64_t first_ts_us_;
  const Clock::time_point start_;
};

}  // namespace chatshard::cli

#endif  // CHATSHARD_TOOLS_CHATSHARD_PACER_H_
