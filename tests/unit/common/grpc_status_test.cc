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

v1::WriteReport SampleReport() {
  v1::WriteReport report;
  report.set_sha256("AD6FB002E6B34C0559FA8F93A3794FF12C4E3F119BD77290C52525123FB9EA74");
  for (const char* name : {"validate", "write", "verify", "restore_cfun"}) {
    v1::Step* step = report.add_steps();
    step->set_name(name);
    step->set_status(v1::STEP_FAILED);
    step->set_detail(std::string("detail of ") + name);
  }
  return report;
}

TEST(GrpcStatusTest, DetailsRoundTripThroughGrpcAndRpcStatus) {
  absl::Status s = absl::DataLossError("verify failed");
  SetStatusDetail(&s, SampleReport());
  EXPECT_TRUE(s.GetPayload("type.googleapis.com/atbridge.v1.WriteReport").has_value());

  grpc::Status g = ToGrpcStatus(s);
  EXPECT_EQ(g.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_EQ(g.error_message(), "verify failed");
  // error_details is a serialized google.rpc.Status (RpcStatus is wire-compatible).
  v1::RpcStatus wire;
  ASSERT_TRUE(wire.ParseFromString(g.error_details()));
  EXPECT_EQ(wire.code(), static_cast<int>(absl::StatusCode::kDataLoss));
  ASSERT_EQ(wire.details_size(), 1);
  EXPECT_EQ(wire.details(0).type_url(), "type.googleapis.com/atbridge.v1.WriteReport");

  for (const absl::Status& back : {FromGrpcStatus(g), FromRpcStatus(ToRpcStatus(s))}) {
    EXPECT_EQ(back, s);
    v1::WriteReport report;
    ASSERT_TRUE(GetStatusDetail(back, &report));
    EXPECT_EQ(report.SerializeAsString(), SampleReport().SerializeAsString());
  }
}

TEST(GrpcStatusTest, NoDetailsMeansNoErrorDetails) {
  EXPECT_TRUE(ToGrpcStatus(absl::UnavailableError("x")).error_details().empty());
  v1::WriteReport report;
  EXPECT_FALSE(GetStatusDetail(absl::UnavailableError("x"), &report));
  // OK carries nothing.
  absl::Status ok;
  SetStatusDetail(&ok, SampleReport());
  EXPECT_TRUE(ok.ok());
  EXPECT_FALSE(GetStatusDetail(ok, &report));
}

TEST(GrpcStatusTest, OversizedDetailsAreDroppedButTheStatusIsKept) {
  absl::Status s = absl::DataLossError("big");
  v1::WriteReport report;
  report.add_repairs(std::string(kMaxGrpcStatusDetailsBytes + 1, 'x'));
  SetStatusDetail(&s, report);
  grpc::Status g = ToGrpcStatus(s);
  EXPECT_EQ(g.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_EQ(g.error_message(), "big");
  EXPECT_TRUE(g.error_details().empty());
}

TEST(GrpcStatusTest, UnparsableErrorDetailsAreIgnored) {
  grpc::Status g(grpc::StatusCode::ABORTED, "m", std::string("\xff\xff\xff", 3));
  EXPECT_THAT(FromGrpcStatus(g), StatusIs(absl::StatusCode::kAborted, "m"));
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
