// Messages as the handler sees them, what it answers, and what Submit answers.
#ifndef CHATSHARD_MESSAGE_H_
#define CHATSHARD_MESSAGE_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace chatshard {

using Clock = std::chrono::steady_clock;

// What Submit answers. Anything but kAccepted means the engine did not take
// the message and will never run it.
enum class SubmitResult : uint8_t {
  kAccepted = 0,
  kShardFull,       // the shard holds shard_capacity unfinished messages
  kChatOverQuota,   // the chat holds chat_quota unfinished messages
  kTooManyChats,    // chat_quota is on and the shard tracks no more chats
  kStopping,        // Shutdown was called
  kInvalidChatId,   // empty, or longer than kMaxChatIdBytes
  kPayloadTooLarge, // longer than kMaxPayloadBytes
};
inline constexpr int kSubmitResultCount = 7;
std::string_view SubmitResultName(SubmitResult result);

// A read-only view of one message, valid only during the handler call.
struct MessageView {
  std::string_view chat_id;
  std::string_view payload;
  uint64_t id = 0;          // unique within the engine; increases per shard
  uint32_t shard = 0;
  uint32_t attempt = 1;     // 1 on the first run
  Clock::time_point enqueued;  // when Submit accepted it
  // When this run began: the engine's clock, read once between two runs (the
  // end of one run is the start of the next), so a handler can tell its
  // queue wait (started - enqueued) without a clock read of its own.
  Clock::time_point started;
};

// The handler's verdict on one run of a message.
enum class Outcome : uint8_t {
  kDone,   // finished
  kRetry,  // run again after the backoff, up to max_attempts; keeps its place
  kFail,   // finished unsuccessfully: counted and passed to the failure hook
};

// A message that finally failed: by kFail, by an exception, or by running out
// of attempts.
struct FailedMessage {
  std::string_view chat_id;
  std::string_view payload;
  uint64_t id = 0;
  uint32_t shard = 0;
  uint32_t attempts = 0;
  std::string_view reason;  // the exception's what(), or a fixed reason
};

// A message Shutdown hands back unprocessed: owns its bytes.
struct UnprocessedMessage {
  std::string chat_id;
  std::string payload;
  uint32_t shard = 0;
  uint32_t attempts = 0;  // runs it already had (retries waiting count here)
  Clock::time_point enqueued;
};

}  // namespace chatshard

#endif  // CHATSHARD_MESSAGE_H_
