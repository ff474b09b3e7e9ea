// Status: the result of an operation that can fail, as a value.
//
// Thread safety: a Status is an immutable value; distinct threads may read
// the same Status concurrently. The OK status holds no heap memory, so
// returning Status::Ok() on a success path allocates nothing.
#ifndef CHATSHARD_STATUS_H_
#define CHATSHARD_STATUS_H_

#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace chatshard {

class Status;
namespace internal_status {
[[noreturn]] void DieOnBadResultAccess(const Status& status);
}  // namespace internal_status

class [[nodiscard]] Status {
 public:
  enum class Code { kOk = 0, kInvalidArgument, kFailedPrecondition, kUnavailable, kInternal };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidArgument(std::string_view msg) { return Status(Code::kInvalidArgument, msg); }
  static Status FailedPrecondition(std::string_view msg) {
    return Status(Code::kFailedPrecondition, msg);
  }
  static Status Unavailable(std::string_view msg) { return Status(Code::kUnavailable, msg); }
  static Status Internal(std::string_view msg) { return Status(Code::kInternal, msg); }

  bool ok() const { return state_ == nullptr; }
  Code code() const { return state_ ? state_->code : Code::kOk; }
  // The human-readable message; empty for OK.
  std::string_view message() const { return state_ ? std::string_view(state_->msg) : ""; }
  // "OK" or "<code name>: <message>".
  std::string ToString() const;

 private:
  struct State {
    Code code;
    std::string msg;
  };
  Status(Code code, std::string_view msg)
      : state_(std::make_shared<const State>(State{code, std::string(msg)})) {}

  std::shared_ptr<const State> state_;  // null means OK
};

// A value or the Status explaining why there is none. Reading the value of
// a Result that is not ok() is a contract violation: it aborts the process
// with the status message rather than hand back a default-built value.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  // `status` must not be OK (an OK status without a value becomes Internal).
  Result(Status status)  // NOLINT: implicit by design
      : status_(status.ok() ? Status::Internal("Result built from an OK status without a value")
                            : std::move(status)) {}

  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return CheckedValue(); }
  const T& value() const& { return CheckedValue(); }
  T&& value() && { return std::move(CheckedValue()); }
  T* operator->() { return &CheckedValue(); }
  const T* operator->() const { return &CheckedValue(); }
  T& operator*() & { return CheckedValue(); }
  const T& operator*() const& { return CheckedValue(); }

 private:
  T& CheckedValue() const {
    if (!status_.ok()) internal_status::DieOnBadResultAccess(status_);
    return const_cast<T&>(value_);
  }

  T value_{};
  Status status_;
};

}  // namespace chatshard

#endif  // CHATSHARD_STATUS_H_
