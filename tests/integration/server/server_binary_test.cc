// The atbridge-server binary: --help, a config file overridden by flags,
// the readiness line with the bound port, a real call, and a clean exit on
// SIGTERM.
#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <signal.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "atbridge/v1/provisioning.grpc.pb.h"
#include "common/tls/credentials.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace atbridge::server {
namespace {

using ::atbridge::testing::BinaryPath;
using ::atbridge::testing::RunCommand;
using ::atbridge::testing::Subprocess;
using ::testing::HasSubstr;

TEST(ServerBinaryTest, HelpExitsZero) {
  ASSERT_OK_AND_ASSIGN(auto r, RunCommand({BinaryPath("atbridge-server"), "--help"}));
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("--state-dir"));
}

TEST(ServerBinaryTest, BadConfigIsRefusedWithTheKey) {
  atbridge::testing::TempDir dir;
  const std::string cfg = dir.WriteFile("server.yaml", "listen: 127.0.0.1:0\nstate_dri: /tmp\n");
  ASSERT_OK_AND_ASSIGN(auto r, RunCommand({BinaryPath("atbridge-server"), "--config", cfg}));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("state_dri: unknown key"));
}

TEST(ServerBinaryTest, ServesFromConfigAndStopsOnSigterm) {
  atbridge::testing::TempDir dir;
  atbridge::testing::TestPki pki;
  tls::TlsFiles files = atbridge::testing::TestPki::WriteFiles(pki.Server(), dir.path(), "server");
  const std::string cfg = dir.WriteFile(
      "server.yaml", absl::StrCat("listen: 127.0.0.1:7443\n"
                                  "tls:\n  cert: ",
                                  files.cert_file, "\n  key: ", files.key_file, "\n  ca: ",
                                  files.ca_file, "\n", "state_dir: ", dir.File("state"), "\n",
                                  "log_level: warning\n"
                                  "jobs:\n  max_attempts: 4\n  initial_backoff: 200ms\n"));
  Subprocess server;
  // The flag overrides the file's port with "pick one".
  ASSERT_OK(
      server.Start({BinaryPath("atbridge-server"), "--config", cfg, "--listen", "127.0.0.1:0"}));
  ASSERT_OK_AND_ASSIGN(std::string line, server.WaitForLine("atbridge-server ready on "));
  const std::string addr = line.substr(std::string("atbridge-server ready on ").size());
  int port = 0;
  ASSERT_TRUE(absl::SimpleAtoi(addr.substr(addr.rfind(':') + 1), &port)) << line;
  EXPECT_GT(port, 0);
  EXPECT_NE(port, 7443);

  auto channel = tls::CreateChannel(addr, pki.Client("alice", "viewer"),
                                    {.server_name_override = "atbridge.test"});
  auto stub = v1::Provisioning::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ListAgentsResponse resp;
  grpc::Status s = stub->ListAgents(&ctx, v1::ListAgentsRequest(), &resp);
  EXPECT_TRUE(s.ok()) << s.error_message();

  server.Signal(SIGTERM);
  ASSERT_OK_AND_ASSIGN(int code, server.Wait(absl::Seconds(20)));
  EXPECT_EQ(code, 0) << server.Output();
}

}  // namespace
}  // namespace atbridge::server
