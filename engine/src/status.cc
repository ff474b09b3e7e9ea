#include "chatshard/status.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace chatshard {
namespace {

std::string_view CodeName(Status::Code code) {
  switch (code) {
    case Status::Code::kOk:
      return "OK";
    case Status::Code::kInvalidArgument:
      return "InvalidArgument";
    case Status::Code::kFailedPrecondition:
      return "FailedPrecondition";
    case Status::Code::kUnavailable:
      return "Unavailable";
    case Status::Code::kInternal:
      return "Internal";
  }
  // Only reachable through a cast of an out-of-range integer to Code.
  return "Unknown";
}

}  // namespace

std::string Status::ToString() const {
  if (ok()) return "OK";
  std::string_view name = CodeName(code());
  std::string out;
  out.reserve(name.size() + 2 + message().size());
  out.append(name);
  out.append(": ");
  out.append(message());
  return out;
}

namespace internal_status {

void DieOnBadResultAccess(const Status& status) {
  std::fprintf(stderr, "chatshard: value() of a Result that holds an error: %s\n",
               status.ToString().c_str());
  std::abort();
}

}  // namespace internal_status
}  // namespace chatshard
