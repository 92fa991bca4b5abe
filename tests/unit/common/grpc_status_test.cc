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

#include "common/proto_time.h"

namespace atbridge {
namespace {

TEST(ProtoTimeTest, UnsetMeansInfinitePast) {
  EXPECT_FALSE(IsSet(ToProtoTime(absl::InfinitePast())));
  EXPECT_FALSE(IsSet(ToProtoTime(absl::InfiniteFuture())));
  EXPECT_EQ(FromProtoTime(google::protobuf::Timestamp()), absl::InfinitePast());
}

TEST(ProtoTimeTest, TimesRoundTripIncludingBeforeEpoch) {
  for (absl::Time t : {absl::FromUnixMillis(1'800'000'000'123), absl::FromUnixNanos(-1)}) {
    google::protobuf::Timestamp ts = ToProtoTime(t);
    EXPECT_GE(ts.nanos(), 0);
    EXPECT_LT(ts.nanos(), 1000000000);
    EXPECT_EQ(FromProtoTime(ts), t);
  }
}

TEST(ProtoTimeTest, DurationsRoundTrip) {
  for (absl::Duration d : {absl::Milliseconds(1500), absl::ZeroDuration(), -absl::Seconds(2)}) {
    EXPECT_EQ(FromProtoDuration(ToProtoDuration(d)), d);
  }
}

}  // namespace
}  // namespace atbridge
