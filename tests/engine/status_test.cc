#include "chatshard/status.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>

namespace chatshard {
namespace {

TEST(StatusTest, DefaultIsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kOk);
  EXPECT_EQ(s.message(), "");
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_TRUE(Status::Ok().ok());
  EXPECT_EQ(Status::Ok().ToString(), "OK");
}

TEST(StatusTest, ToStringNamesEachCode) {
  EXPECT_EQ(Status::InvalidArgument("partitions = 0").ToString(),
            "InvalidArgument: partitions = 0");
  EXPECT_EQ(Status::FailedPrecondition("not started").ToString(),
            "FailedPrecondition: not started");
  EXPECT_EQ(Status::Unavailable("redis down").ToString(), "Unavailable: redis down");
  EXPECT_EQ(Status::Internal("bug").ToString(), "Internal: bug");
}

TEST(StatusTest, ErrorKeepsCodeAndMessage) {
  Status s = Status::Unavailable("connection refused");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), Status::Code::kUnavailable);
  EXPECT_EQ(s.message(), "connection refused");
}

TEST(StatusTest, EmptyMessageStillNamesTheCode) {
  Status s = Status::Internal("");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.ToString(), "Internal: ");
}

TEST(StatusTest, MultiLineMessageIsKeptVerbatim) {
  Status s = Status::InvalidArgument("a = 0: must be in 1..2\nb = 9: must be in 1..2");
  EXPECT_EQ(s.ToString(), "InvalidArgument: a = 0: must be in 1..2\nb = 9: must be in 1..2");
}

TEST(StatusTest, CopiesShareTheSameValue) {
  Status a = Status::InvalidArgument("x");
  Status b = a;
  EXPECT_EQ(b.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(b.message(), "x");
  Status c = std::move(a);
  EXPECT_EQ(c.ToString(), "InvalidArgument: x");
}

TEST(ResultTest, HoldsValueOrStatus) {
  Result<int> good(42);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(good.value(), 42);
  EXPECT_EQ(*good, 42);

  Result<int> bad(Status::Unavailable("no"));
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), Status::Code::kUnavailable);

  Result<std::unique_ptr<int>> owned(std::make_unique<int>(7));
  ASSERT_TRUE(owned.ok());
  std::unique_ptr<int> taken = std::move(owned).value();
  ASSERT_NE(taken, nullptr);
  EXPECT_EQ(*taken, 7);
}

TEST(ResultDeathTest, ValueOfAnErrorAbortsWithTheStatus) {
  Result<int> bad(Status::InvalidArgument("partitions = 0"));
  EXPECT_DEATH((void)bad.value(), "holds an error: InvalidArgument: partitions = 0");
}

TEST(ResultTest, OkStatusWithoutValueBecomesInternalError) {
  Result<int> odd(Status::Ok());
  EXPECT_FALSE(odd.ok());
  EXPECT_EQ(odd.status().code(), Status::Code::kInternal);
}

}  // namespace
}  // namespace chatshard
