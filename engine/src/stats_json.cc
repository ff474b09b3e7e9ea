// StatsSnapshot::ToJson: hand-written so the engine needs no JSON library.
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

#include "chatshard/message.h"
#include "chatshard/stats.h"

namespace chatshard {
namespace {

// Appends JSON text; the caller places commas through Key().
class JsonWriter {
 public:
  explicit JsonWriter(std::string* out) : out_(out) {}

  void BeginObject() { Open('{'); }
  void EndObject() { Close('}'); }
  void BeginArray() { Open('['); }
  void EndArray() { Close(']'); }

  void Key(std::string_view key) {
    Separate();
    Quoted(key);
    out_->push_back(':');
    after_key_ = true;
  }

  void Uint(uint64_t value) {
    Separate();
    char buf[24];
    const auto result = std::to_chars(buf, buf + sizeof(buf), value);
    out_->append(buf, result.ptr);
  }

  // Shortest text that reads back as the same double; NaN and infinities,
  // which JSON cannot express, become null.
  void Double(double value) {
    Separate();
    if (!std::isfinite(value)) {
      out_->append("null");
      return;
    }
    char buf[32];
    const auto result = std::to_chars(buf, buf + sizeof(buf), value);
    out_->append(buf, result.ptr);
  }

  void String(std::string_view text) {
    Separate();
    Quoted(text);
  }

 private:
  void Open(char bracket) {
    Separate();
    out_->push_back(bracket);
    first_in_container_ = true;
  }
  void Close(char bracket) {
    out_->push_back(bracket);
    first_in_container_ = false;
  }
  // A value directly after its key needs no comma; any other element after a
  // sibling does.
  void Separate() {
    if (after_key_) {
      after_key_ = false;
      return;
    }
    if (!first_in_container_) out_->push_back(',');
    first_in_container_ = false;
  }

  void Quoted(std::string_view text) {
    out_->push_back('"');
    AppendEscaped(text);
    out_->push_back('"');
  }
  void AppendEscaped(std::string_view text);

  std::string* out_;
  bool first_in_container_ = true;
  bool after_key_ = false;
};

// Length of the well-formed UTF-8 sequence starting text[0], or 0 if the
// bytes there are not one (stray continuation, overlong form, surrogate,
// beyond U+10FFFF, or cut short).
size_t Utf8SequenceLength(std::string_view text) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const auto continuation = [&](size_t i) { return i < text.size() && (byte(i) & 0xC0) == 0x80; };
  const unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  if (lead < 0xC2) return 0;  // continuation byte, or overlong 2-byte lead
  if (lead < 0xE0) return continuation(1) ? 2 : 0;
  if (lead < 0xF0) {
    if (!continuation(1) || !continuation(2)) return 0;
    if (lead == 0xE0 && byte(1) < 0xA0) return 0;   // overlong
    if (lead == 0xED && byte(1) >= 0xA0) return 0;  // UTF-16 surrogate
    return 3;
  }
  if (lead < 0xF5) {
    if (!continuation(1) || !continuation(2) || !continuation(3)) return 0;
    if (lead == 0xF0 && byte(1) < 0x90) return 0;   // overlong
    if (lead == 0xF4 && byte(1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

void JsonWriter::AppendEscaped(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t i = 0;
  while (i < text.size()) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '"' || c == '\\') {
      out_->push_back('\\');
      out_->push_back(static_cast<char>(c));
      ++i;
    } else if (c < 0x20) {
      out_->append("\\u00");
      out_->push_back(kHex[c >> 4]);
      out_->push_back(kHex[c & 0xF]);
      ++i;
    } else if (c < 0x80) {
      out_->push_back(static_cast<char>(c));
      ++i;
    } else if (const size_t n = Utf8SequenceLength(text.substr(i)); n > 0) {
      out_->append(text.substr(i, n));  // valid UTF-8 passes through as is
      i += n;
    } else {
      // Chat ids are arbitrary bytes to the engine; a byte that is not UTF-8
      // would make the whole document invalid JSON, so it becomes U+FFFD.
      out_->append("\\ufffd");
      ++i;
    }
  }
}

void WriteLatency(JsonWriter& w, std::string_view key, const LatencySummary& s) {
  w.Key(key);
  w.BeginObject();
  w.Key("count");
  w.Uint(s.count);
  w.Key("mean");
  w.Double(s.mean_us);
  w.Key("p50");
  w.Double(s.p50_us);
  w.Key("p90");
  w.Double(s.p90_us);
  w.Key("p99");
  w.Double(s.p99_us);
  w.Key("p999");
  w.Double(s.p999_us);
  w.Key("max");
  w.Double(s.max_us);
  w.EndObject();
}

// The fields of one shard; `with_shard_id` is false for the totals, whose
// shard number means nothing.
void WriteShard(JsonWriter& w, const ShardStats& s, bool with_shard_id) {
  w.BeginObject();
  if (with_shard_id) {
    w.Key("shard");
    w.Uint(s.shard);
  }
  w.Key("submitted");
  w.Uint(s.submitted);
  w.Key("rejected");
  w.Uint(s.rejected);
  w.Key("rejected_by_reason");
  w.BeginObject();
  // Index 0 is kAccepted, which is never a rejection.
  for (int reason = 1; reason < kSubmitResultCount; ++reason) {
    w.Key(SubmitResultName(static_cast<SubmitResult>(reason)));
    w.Uint(s.rejected_by_reason[static_cast<size_t>(reason)]);
  }
  w.EndObject();
  w.Key("waiting");
  w.Uint(s.waiting);
  w.Key("active");
  w.Uint(s.active);
  w.Key("completed");
  w.Uint(s.completed);
  w.Key("failed");
  w.Uint(s.failed);
  w.Key("retried");
  w.Uint(s.retried);
  WriteLatency(w, "queue_wait_us", s.queue_wait);
  WriteLatency(w, "service_time_us", s.service_time);
  w.EndObject();
}

void WriteFairness(JsonWriter& w, const Fairness& f) {
  w.BeginObject();
  w.Key("jain");
  w.Double(f.jain);
  w.Key("cv");
  w.Double(f.cv);
  w.Key("max_over_mean");
  w.Double(f.max_over_mean);
  w.Key("chi2");
  w.Double(f.chi2);
  w.Key("chi2_p");
  w.Double(f.chi2_p);
  w.Key("backlogged_chat_jain");
  w.Double(f.backlogged_chat_jain);
  w.Key("worst_cold_wait_us");
  w.Double(f.worst_cold_wait_us);
  w.EndObject();
}

}  // namespace

std::string StatsSnapshot::ToJson() const {
  std::string out;
  // About 600 bytes per shard object; one reservation for the common case.
  out.reserve(1024 + 640 * (shards.size() + 1) + 96 * hot_chats.size());
  JsonWriter w(&out);
  w.BeginObject();
  w.Key("uptime_s");
  w.Double(uptime_s);
  w.Key("total");
  WriteShard(w, total, /*with_shard_id=*/false);
  w.Key("shards");
  w.BeginArray();
  for (const ShardStats& shard : shards) WriteShard(w, shard, /*with_shard_id=*/true);
  w.EndArray();
  w.Key("fairness");
  WriteFairness(w, fairness);
  w.Key("hot_chats");
  w.BeginArray();
  for (const HotChat& hot : hot_chats) {
    w.BeginObject();
    w.Key("chat_id");
    w.String(hot.chat_id);
    w.Key("shard");
    w.Uint(hot.shard);
    w.Key("count");
    w.Uint(hot.count);
    w.Key("error");
    w.Uint(hot.error);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return out;
}

}  // namespace chatshard
