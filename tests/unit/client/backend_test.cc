#include "client/rpc/backend.h"

#include <gtest/gtest.h>

#include "common/proto_time.h"

namespace atbridge::client {
namespace {

TEST(CtlExecuteDeadlineTest, NeverCutsOffAnAnswerTheModemMayTake) {
  v1::ExecuteRequest req;
  EXPECT_EQ(ExecuteDeadline(absl::Seconds(30), req), absl::Seconds(30));
  *req.mutable_timeout() = ToProtoDuration(absl::Seconds(60));
  EXPECT_EQ(ExecuteDeadline(absl::Seconds(30), req), absl::Seconds(60) + kAtDeadlineMargin);
  *req.mutable_timeout() = ToProtoDuration(absl::Seconds(2));
  EXPECT_EQ(ExecuteDeadline(absl::Seconds(30), req), absl::Seconds(30));
  EXPECT_EQ(ExecuteDeadline(absl::Milliseconds(200), req), absl::Seconds(2) + kAtDeadlineMargin);
}

}  // namespace
}  // namespace atbridge::client
