// The generated gMock stubs (protoc generate_mock_code=true) compile and
// stand in for the real stubs behind StubInterface, for code written
// against the sync API. (Callback-API clients cannot be mocked through them:
// StubInterface::async() is not mocked; test those against a real server on
// 127.0.0.1:0, as the integration tests do.)
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "atbridge/v1/agent_mock.grpc.pb.h"
#include "atbridge/v1/provisioning_mock.grpc.pb.h"
#include "common/grpc_status.h"
#include "tests/testing/status_matchers.h"

namespace atbridge {
namespace {

using ::testing::_;
using ::testing::DoAll;
using ::testing::Return;
using ::testing::SetArgPointee;
using ::testing::StrictMock;

// Code under test takes the interface, as production code would.
absl::StatusOr<int> CountPorts(v1::Agent::StubInterface& stub) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::ListPortsResponse resp;
  grpc::Status s = stub.ListPorts(&ctx, v1::ListPortsRequest(), &resp);
  if (!s.ok()) return FromGrpcStatus(s);
  return resp.ports_size();
}

TEST(ProtoMockTest, AgentStubMockAnswersThroughTheInterface) {
  StrictMock<v1::MockAgentStub> stub;
  v1::ListPortsResponse two;
  two.add_ports()->set_name("modem0");
  two.add_ports()->set_name("modem1");
  EXPECT_CALL(stub, ListPorts(_, _, _))
      .WillOnce(DoAll(SetArgPointee<2>(two), Return(grpc::Status::OK)))
      .WillOnce(Return(grpc::Status(grpc::StatusCode::UNAVAILABLE, "port gone")));
  EXPECT_THAT(CountPorts(stub), testing::IsOkAndHolds(2));
  EXPECT_THAT(CountPorts(stub), testing::StatusIs(absl::StatusCode::kUnavailable));
}

TEST(ProtoMockTest, ProvisioningStubMockExists) {
  StrictMock<v1::MockProvisioningStub> stub;
  EXPECT_CALL(stub, GetJob(_, _, _))
      .WillOnce(Return(grpc::Status(grpc::StatusCode::NOT_FOUND, "no job j1")));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::GetJobRequest req;
  req.set_job_id("j1");
  v1::Job job;
  v1::Provisioning::StubInterface& iface = stub;
  EXPECT_EQ(iface.GetJob(&ctx, req, &job).error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace atbridge
