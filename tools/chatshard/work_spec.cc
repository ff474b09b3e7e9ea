#include "work_spec.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numbers>
#include <optional>
#include <string>
#include <system_error>
#include <thread>

namespace chatshard::cli {
namespace {

using Clock = std::chrono::steady_clock;

// SplitMix64's finaliser: a bijection that spreads consecutive keys over all
// 64 bits (Steele, Lea and Flood 2014).
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// A uniform double in [0, 1) from the top 53 bits.
double Unit(uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

std::optional<double> ParseNumber(std::string_view text) {
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

Status Bad(std::string_view text, std::string_view why) {
  return Status::InvalidArgument(fmt::format(
      "--work-us '{}': {} (expected US, uniform:LO-HI, exp:MEAN or lognormal:MEDIAN,SIGMA, "
      "all in microseconds, at most {:.0f})",
      text, why, WorkSpec::kMaxWorkUs));
}

// Splits "x<sep>y" into two numbers.
std::optional<std::pair<double, double>> ParsePair(std::string_view text, char sep) {
  const size_t at = text.find(sep);
  if (at == std::string_view::npos) return std::nullopt;
  const auto first = ParseNumber(text.substr(0, at));
  const auto second = ParseNumber(text.substr(at + 1));
  if (!first || !second) return std::nullopt;
  return std::make_pair(*first, *second);
}

std::string FormatNumber(double value) { return fmt::format("{:g}", value); }

}  // namespace

std::string_view WorkModeName(WorkMode mode) {
  switch (mode) {
    case WorkMode::kBusy:
      return "busy";
    case WorkMode::kSleep:
      return "sleep";
  }
  return "unknown";
}

WorkSpec WorkSpec::Fixed(double us, WorkMode mode) {
  WorkSpec spec;
  spec.kind_ = Kind::kFixed;
  spec.mode_ = mode;
  spec.a_ = std::clamp(us, 0.0, kMaxWorkUs);
  return spec;
}

Result<WorkSpec> WorkSpec::Parse(std::string_view text, WorkMode mode) {
  WorkSpec spec;
  spec.mode_ = mode;
  const size_t colon = text.find(':');
  if (colon == std::string_view::npos) {
    const auto us = ParseNumber(text);
    if (!us) return Bad(text, "not a number");
    if (*us < 0 || *us > kMaxWorkUs) return Bad(text, "out of range");
    spec.kind_ = Kind::kFixed;
    spec.a_ = *us;
    return spec;
  }
  const std::string_view name = text.substr(0, colon);
  const std::string_view args = text.substr(colon + 1);
  if (name == "uniform") {
    const auto range = ParsePair(args, '-');
    if (!range) return Bad(text, "uniform needs LO-HI");
    if (range->first < 0 || range->second < range->first || range->second > kMaxWorkUs) {
      return Bad(text, "uniform needs 0 <= LO <= HI");
    }
    spec.kind_ = Kind::kUniform;
    spec.a_ = range->first;
    spec.b_ = range->second;
    return spec;
  }
  if (name == "exp") {
    const auto mean = ParseNumber(args);
    if (!mean) return Bad(text, "exp needs a mean");
    if (*mean <= 0 || *mean > kMaxWorkUs) return Bad(text, "the mean must be > 0");
    spec.kind_ = Kind::kExponential;
    spec.a_ = *mean;
    return spec;
  }
  if (name == "lognormal") {
    const auto params = ParsePair(args, ',');
    if (!params) return Bad(text, "lognormal needs MEDIAN,SIGMA");
    if (params->first <= 0 || params->first > kMaxWorkUs) {
      return Bad(text, "the median must be > 0");
    }
    if (params->second < 0 || params->second > 10) return Bad(text, "sigma must be in [0, 10]");
    spec.kind_ = Kind::kLogNormal;
    spec.a_ = params->first;
    spec.b_ = params->second;
    return spec;
  }
  return Bad(text, fmt::format("unknown distribution '{}'", name));
}

double WorkSpec::MeanUs() const {
  switch (kind_) {
    case Kind::kFixed:
    case Kind::kExponential:
      return a_;
    case Kind::kUniform:
      return (a_ + b_) / 2;
    case Kind::kLogNormal:
      return a_ * std::exp(b_ * b_ / 2);
  }
  return 0;
}

std::string WorkSpec::ToString() const {
  switch (kind_) {
    case Kind::kFixed:
      return FormatNumber(a_);
    case Kind::kUniform:
      return "uniform:" + FormatNumber(a_) + "-" + FormatNumber(b_);
    case Kind::kExponential:
      return "exp:" + FormatNumber(a_);
    case Kind::kLogNormal:
      return "lognormal:" + FormatNumber(a_) + "," + FormatNumber(b_);
  }
  return "?";
}

std::chrono::nanoseconds WorkSpec::Sample(uint64_t key) const {
  double us = 0;
  switch (kind_) {
    case Kind::kFixed:
      us = a_;
      break;
    case Kind::kUniform:
      us = a_ + Unit(Mix(key)) * (b_ - a_);
      break;
    case Kind::kExponential:
      us = -a_ * std::log1p(-Unit(Mix(key)));
      break;
    case Kind::kLogNormal: {
      // Box-Muller with two independent uniforms; 1 - u keeps log away from 0.
      const double u1 = 1.0 - Unit(Mix(key));
      const double u2 = Unit(Mix(key ^ 0x5851f42d4c957f2dULL));
      const double z = std::sqrt(-2.0 * std::log(u1)) * std::cos(2 * std::numbers::pi * u2);
      us = a_ * std::exp(b_ * z);
      break;
    }
  }
  us = std::clamp(us, 0.0, kMaxWorkUs);
  return std::chrono::nanoseconds(static_cast<int64_t>(us * 1000.0));
}

void WorkSpec::Perform(uint64_t key) const {
  if (none()) return;
  const std::chrono::nanoseconds work = Sample(key);
  if (work.count() <= 0) return;
  switch (mode_) {
    case WorkMode::kBusy: {
      const Clock::time_point until = Clock::now() + work;
      while (Clock::now() < until) {
      }
      break;
    }
    case WorkMode::kSleep:
      std::this_thread::sleep_for(work);
      break;
  }
}

}  // namespace chatshard::cli
