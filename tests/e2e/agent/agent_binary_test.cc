// The atbridge-agent binary end to end: YAML config, readiness line, serving
// over mTLS, clean exit on SIGTERM.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "atbridge/v1/agent.grpc.pb.h"
#include "common/tls/credentials.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace atbridge {
namespace {

using testing::BinaryPath;
using testing::Subprocess;

int PortFromReadyLine(const std::string& line) {
  int port = 0;
  EXPECT_TRUE(absl::SimpleAtoi(line.substr(line.rfind(':') + 1), &port)) << line;
  return port;
}

TEST(AgentBinaryTest, ServesFromAYamlConfigAndStopsOnSigterm) {
  testing::TempDir dir;
  testing::TestPki pki;
  testing::TestPki::WriteFiles(pki.Server("bench1", "agent"), dir.path(), "agent");
  Subprocess sim;
  ASSERT_OK(sim.Start({BinaryPath("atbridge-sim"), "--count", "2", "--link-dir", dir.File("sim")}));
  ASSERT_OK(sim.WaitForLine("atbridge-sim ready: 2 modems").status());
  std::string config = absl::StrCat(R"(name: bench1
listen: 127.0.0.1:0
tls: {ca: )",
                                    dir.File("ca.pem"), ", cert: ", dir.File("agent.pem"),
                                    ", key: ", dir.File("agent.key"), R"(}
ports:
  - name: left
    device: )",
                                    dir.File("sim/modem0"), R"(
    flow_control: rtscts
    labels: {slot: left}
  - name: right
    device: )",
                                    dir.File("sim/modem1"), R"(
    flow_control: rtscts
)");
  std::string path = dir.WriteFile("agent.yaml", config);
  Subprocess agent;
  ASSERT_OK(agent.Start({BinaryPath("atbridge-agent"), "--config", path}));
  ASSERT_OK_AND_ASSIGN(std::string ready, agent.WaitForLine("atbridge-agent ready on 127.0.0.1:"));
  int port = PortFromReadyLine(ready);
  ASSERT_GT(port, 0);

  auto stub = v1::Agent::NewStub(
      tls::CreateChannel(absl::StrCat("127.0.0.1:", port), pki.Client("olga", "operator")));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ListPortsResponse resp;
  ASSERT_TRUE(stub->ListPorts(&ctx, {}, &resp).ok());
  EXPECT_EQ(resp.agent(), "bench1");
  ASSERT_EQ(resp.ports_size(), 2);
  // The readiness line comes after the first identification of every port.
  for (const auto& p : resp.ports()) {
    EXPECT_EQ(p.state(), v1::PORT_STATE_READY) << p.name() << ": " << p.last_error();
    EXPECT_EQ(p.modem().imei().size(), 15u);
  }
  EXPECT_EQ(resp.ports(0).labels().at("slot"), "left");
  EXPECT_NE(resp.ports(0).modem().imei(), resp.ports(1).modem().imei());

  // A console open at SIGTERM (a long stream) is ended by the agent with
  // UNAVAILABLE before the server shuts down.
  grpc::ClientContext cctx;
  cctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  auto console = stub->Console(&cctx);
  v1::ConsoleIn open;
  open.mutable_open()->set_port("left");
  ASSERT_TRUE(console->Write(open));
  v1::ConsoleOut out;
  ASSERT_TRUE(console->Read(&out));
  ASSERT_EQ(out.event().kind(), v1::ConsoleEvent::OPENED);

  agent.Signal(SIGTERM);
  while (console->Read(&out)) {
  }
  grpc::Status ended = console->Finish();
  EXPECT_EQ(ended.error_code(), grpc::StatusCode::UNAVAILABLE) << ended.error_message();
  EXPECT_NE(ended.error_message().find("bench1 is stopping"), std::string::npos)
      << ended.error_message();
  ASSERT_OK_AND_ASSIGN(int code, agent.Wait(absl::Seconds(10)));
  EXPECT_EQ(code, 0) << agent.Output();
}

// A pty nobody answers on: a modem that never speaks keeps the agent in
// its start-up identification.
class SilentPty {
 public:
  SilentPty() {
    master_ = posix_openpt(O_RDWR | O_NOCTTY);
    if (master_ >= 0 && grantpt(master_) == 0 && unlockpt(master_) == 0) {
      slave_ = ptsname(master_);
    }
  }
  ~SilentPty() {
    if (master_ >= 0) close(master_);
  }
  const std::string& slave() const { return slave_; }

 private:
  int master_ = -1;
  std::string slave_;
};

TEST(AgentBinaryTest, SigtermDuringStartUpIdentificationExitsCleanly) {
  testing::TempDir dir;
  testing::TestPki pki;
  testing::TestPki::WriteFiles(pki.Server("bench1", "agent"), dir.path(), "agent");
  SilentPty pty;
  ASSERT_FALSE(pty.slave().empty());
  std::string config =
      absl::StrCat("name: bench1\nlisten: 127.0.0.1:0\ntls: {ca: ", dir.File("ca.pem"),
                   ", cert: ", dir.File("agent.pem"), ", key: ", dir.File("agent.key"),
                   "}\nstartup_identify_timeout: 60s\nports:\n  - name: mute\n"
                   "    device: ",
                   pty.slave(), "\n    flow_control: rtscts\n");
  std::string path = dir.WriteFile("agent.yaml", config);
  Subprocess agent;
  ASSERT_OK(agent.Start({BinaryPath("atbridge-agent"), "--config", path}));
  // The agent says when identification starts; it is waiting on the modem.
  ASSERT_OK(agent
                .WaitForLineMatching(
                    [](const std::string& l) {
                      return l.find("identifying the modems") != std::string::npos;
                    },
                    absl::Seconds(30))
                .status());
  agent.Signal(SIGTERM);
  ASSERT_OK_AND_ASSIGN(int code, agent.Wait(absl::Seconds(10)));
  EXPECT_EQ(code, 0) << agent.Output();
  EXPECT_EQ(agent.Output().find("ready on"), std::string::npos) << agent.Output();
  EXPECT_NE(agent.Output().find("stopped during start-up"), std::string::npos) << agent.Output();
}

TEST(AgentBinaryTest, RefusesACertificateThatDoesNotMatchItsName) {
  testing::TempDir dir;
  testing::TestPki pki;
  testing::TestPki::WriteFiles(pki.Server("someone-else", "agent"), dir.path(), "agent");
  ASSERT_OK_AND_ASSIGN(
      testing::RunResult r,
      testing::RunCommand({BinaryPath("atbridge-agent"), "--name", "bench1", "--listen",
                           "127.0.0.1:0", "--ca", dir.File("ca.pem"), "--cert",
                           dir.File("agent.pem"), "--key", dir.File("agent.key")}));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("someone-else"), std::string::npos) << r.output;
}

TEST(AgentBinaryTest, ConfigErrorsAreOneLineAndExitTwo) {
  testing::TempDir dir;
  std::string path = dir.WriteFile("agent.yaml", "name: x\nportz: []\n");
  ASSERT_OK_AND_ASSIGN(testing::RunResult r,
                       testing::RunCommand({BinaryPath("atbridge-agent"), "--config", path}));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("unknown key 'portz'"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace atbridge
