#include "common/status/status_macros.h"

#include <gtest/gtest.h>

#include <memory>

#include "common/status/retry.h"
#include "tests/testing/status_matchers.h"

namespace atbridge {
namespace {

using ::atbridge::testing::StatusIs;

absl::Status FailIf(bool fail) {
  return fail ? absl::UnavailableError("port gone") : absl::OkStatus();
}

absl::Status Chain(bool fail, int* reached) {
  RETURN_IF_ERROR(FailIf(fail));
  *reached = 1;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<int>> MakeInt(bool fail) {
  if (fail) return absl::DataLossError("hash mismatch");
  return std::make_unique<int>(42);
}

absl::StatusOr<int> UseInt(bool fail) {
  ASSIGN_OR_RETURN(std::unique_ptr<int> p, MakeInt(fail));  // Move-only value.
  ASSIGN_OR_RETURN(auto q, MakeInt(fail));                  // Declaration with auto.
  return *p + *q;
}

TEST(StatusMacrosTest, ReturnIfErrorPassesOkThrough) {
  int reached = 0;
  EXPECT_OK(Chain(false, &reached));
  EXPECT_EQ(reached, 1);
}

TEST(StatusMacrosTest, ReturnIfErrorReturnsTheError) {
  int reached = 0;
  EXPECT_THAT(Chain(true, &reached), StatusIs(absl::StatusCode::kUnavailable, "port gone"));
  EXPECT_EQ(reached, 0);
}

TEST(StatusMacrosTest, AssignOrReturnAssignsMoveOnlyValues) {
  ASSERT_OK_AND_ASSIGN(int v, UseInt(false));
  EXPECT_EQ(v, 84);
}

TEST(StatusMacrosTest, AssignOrReturnPropagatesError) {
  EXPECT_THAT(UseInt(true), StatusIs(absl::StatusCode::kDataLoss));
}

TEST(RetryContractTest, RetryableCodesAreExactlyTheTransientOnes) {
  EXPECT_TRUE(IsRetryable(absl::StatusCode::kUnavailable));
  EXPECT_TRUE(IsRetryable(absl::StatusCode::kDeadlineExceeded));
  EXPECT_TRUE(IsRetryable(absl::StatusCode::kDataLoss));
  EXPECT_TRUE(IsRetryable(absl::StatusCode::kAborted));
  EXPECT_FALSE(IsRetryable(absl::StatusCode::kOk));
  EXPECT_FALSE(IsRetryable(absl::StatusCode::kInvalidArgument));
  EXPECT_FALSE(IsRetryable(absl::StatusCode::kFailedPrecondition));
  EXPECT_FALSE(IsRetryable(absl::StatusCode::kPermissionDenied));
  EXPECT_FALSE(IsRetryable(absl::StatusCode::kNotFound));
  EXPECT_FALSE(IsRetryable(absl::StatusCode::kResourceExhausted));
}

}  // namespace
}  // namespace atbridge
