// Real gRPC over loopback with mutual TLS made from a throwaway CA: who gets
// in, and what identity the server reads from the peer certificate.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <memory>

#include "atbridge/v1/agent.grpc.pb.h"
#include "common/grpc_status.h"
#include "common/tls/credentials.h"
#include "common/tls/identity.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace atbridge {
namespace {

using ::atbridge::testing::StatusIs;

// Answers ListPorts with the caller's identity: agent = principal, version = role.
class WhoAmIService final : public v1::Agent::CallbackService {
  grpc::ServerUnaryReactor* ListPorts(grpc::CallbackServerContext* ctx, const v1::ListPortsRequest*,
                                      v1::ListPortsResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    auto id = tls::IdentityFromAuthContext(*ctx->auth_context());
    if (!id.ok()) {
      reactor->Finish(ToGrpcStatus(id.status()));
      return reactor;
    }
    resp->set_agent(id->principal);
    resp->set_version(tls::RoleName(id->role));
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

class MtlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", tls::ServerCredentials(pki_.Server()), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
  }
  void TearDown() override { server_->Shutdown(std::chrono::system_clock::now()); }

  absl::StatusOr<v1::ListPortsResponse> Call(
      const std::shared_ptr<grpc::ChannelCredentials>& creds) {
    auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string(port_), creds);
    auto stub = v1::Agent::NewStub(channel);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    v1::ListPortsResponse resp;
    grpc::Status s = stub->ListPorts(&ctx, v1::ListPortsRequest(), &resp);
    if (!s.ok()) return FromGrpcStatus(s);
    return resp;
  }

  testing::TestPki pki_;
  WhoAmIService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

TEST_F(MtlsTest, ClientFromRightCaIsAcceptedAndIdentified) {
  ASSERT_OK_AND_ASSIGN(auto resp, Call(tls::ChannelCredentials(pki_.Client("alice", "operator"))));
  EXPECT_EQ(resp.agent(), "alice");
  EXPECT_EQ(resp.version(), "operator");
}

TEST_F(MtlsTest, CreateChannelHelperWorksWithNameOverride) {
  tls::TlsMaterial m = pki_.Client("robot", "automation");
  auto channel = tls::CreateChannel("127.0.0.1:" + std::to_string(port_), m,
                                    {.server_name_override = "atbridge.test"});
  auto stub = v1::Agent::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ListPortsResponse resp;
  ASSERT_TRUE(stub->ListPorts(&ctx, {}, &resp).ok());
  EXPECT_EQ(resp.agent(), "robot");
  EXPECT_EQ(resp.version(), "automation");
}

TEST_F(MtlsTest, FilesLoadedFromDiskWork) {
  testing::TempDir dir;
  tls::TlsFiles files =
      testing::TestPki::WriteFiles(pki_.Client("carol", "viewer"), dir.path(), "carol");
  ASSERT_OK_AND_ASSIGN(tls::TlsMaterial m, tls::LoadTlsMaterial(files));
  ASSERT_OK_AND_ASSIGN(auto resp, Call(tls::ChannelCredentials(m)));
  EXPECT_EQ(resp.agent(), "carol");
}

TEST_F(MtlsTest, LoadNamesTheMissingFile) {
  testing::TempDir dir;
  tls::TlsFiles files{.ca_file = dir.File("nope.pem"), .cert_file = "", .key_file = ""};
  EXPECT_THAT(tls::LoadTlsMaterial(files),
              StatusIs(absl::StatusCode::kNotFound, ::testing::HasSubstr("nope.pem")));
}

TEST_F(MtlsTest, NoClientCertificateIsRejected) {
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = pki_.ca().cert_pem;  // Trusts the server, presents nothing.
  EXPECT_THAT(Call(grpc::SslCredentials(o)), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(MtlsTest, CertificateFromForeignCaIsRejected) {
  testing::TestPki foreign;
  tls::TlsMaterial m = foreign.Client("mallory", "admin");
  m.ca_pem = pki_.ca().cert_pem;  // Mallory trusts our server; we must not trust her.
  EXPECT_THAT(Call(tls::ChannelCredentials(m)), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(MtlsTest, ExpiredCertificateIsRejected) {
  pki::IssueOptions o{.common_name = "old-alice", .role = "operator"};
  o.not_before = absl::Now() - absl::Hours(48);
  o.not_after = absl::Now() - absl::Hours(1);
  EXPECT_THAT(Call(tls::ChannelCredentials(pki_.Issue(o))),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(MtlsTest, ServerFromForeignCaIsRejectedByClient) {
  testing::TestPki foreign;
  tls::TlsMaterial m = pki_.Client("alice", "operator");
  m.ca_pem = foreign.ca().cert_pem;  // Client trusts only another CA.
  EXPECT_THAT(Call(tls::ChannelCredentials(m)), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(MtlsTest, ValidCertificateWithoutRoleGetsPermissionDenied) {
  EXPECT_THAT(Call(tls::ChannelCredentials(pki_.Client("nobody", ""))),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

}  // namespace
}  // namespace atbridge
