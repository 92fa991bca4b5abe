#include "common/grpc_status.h"

#include <gtest/gtest.h>

#include "tests/testing/status_matchers.h"

namespace atbridge {
namespace {

using ::atbridge::testing::StatusIs;

TEST(GrpcStatusTest, EveryCodeRoundTrips) {
  for (int c = 1; c <= 16; ++c) {
    absl::Status s(static_cast<absl::StatusCode>(c), "msg");
    grpc::Status g = ToGrpcStatus(s);
    EXPECT_EQ(static_cast<int>(g.error_code()), c);
    EXPECT_EQ(g.error_message(), "msg");
    EXPECT_EQ(FromGrpcStatus(g), s);
    EXPECT_EQ(FromRpcStatus(ToRpcStatus(s)), s);
  }
}

TEST(GrpcStatusTest, OkIsOk) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
  EXPECT_OK(FromGrpcStatus(grpc::Status::OK));
  EXPECT_OK(FromRpcStatus(ToRpcStatus(absl::OkStatus())));
}

TEST(GrpcStatusTest, OutOfRangeCodeBecomesUnknown) {
  v1::RpcStatus r;
  r.set_code(99);
  r.set_message("weird");
  EXPECT_THAT(FromRpcStatus(r), StatusIs(absl::StatusCode::kUnknown, "weird"));
}

}  // namespace
}  // namespace atbridge
