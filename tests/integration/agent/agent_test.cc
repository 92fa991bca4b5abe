// atbridge-agent against atbridge-sim on real ptys, over loopback mTLS.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/pki/pki.h"
#include "tests/integration/agent/agent_harness.h"
#include "tests/testing/status_matchers.h"

namespace atbridge {
namespace {

using ::atbridge::testing::AgentHarness;
using ::atbridge::testing::SetDeadline;
using ::atbridge::testing::SimPort;
using ::atbridge::testing::SimProcess;
using ::testing::HasSubstr;

constexpr char kAmazonSha[] = "AD6FB002E6B34C0559FA8F93A3794FF12C4E3F119BD77290C52525123FB9EA74";

std::string Fixture(const std::string& name) {
  return testing::ReadFileOrDie(testing::TestDataPath("pem/" + name));
}

std::string AmazonNoNewline() {
  std::string pem = Fixture("AmazonRootCA1.pem");
  while (!pem.empty() && pem.back() == '\n') pem.pop_back();
  return pem;
}

v1::WriteCredentialRequest WriteReq(const std::string& port, uint32_t tag,
                                    const std::string& content) {
  v1::WriteCredentialRequest r;
  r.set_port(port);
  r.set_sec_tag(tag);
  r.set_type(v1::ROOT_CA_CERT);
  r.set_content(content);
  return r;
}

const v1::Step* FindStep(const v1::WriteReport& rep, const std::string& name) {
  for (const auto& s : rep.steps()) {
    if (s.name() == name) return &s;
  }
  return nullptr;
}

class AgentTest : public ::testing::Test {
 protected:
  // Starts a sim with `sim_args` and an agent with one port on modem0.
  void StartWith(const std::vector<std::string>& sim_args,
                 const std::function<void(agent::PortOptions&)>& tweak = nullptr, int count = 1) {
    ASSERT_OK(sim_.Start(dir_, count, sim_args));
    std::vector<agent::PortOptions> ports;
    for (int k = 0; k < count; ++k) {
      ports.push_back(SimPort("modem" + std::to_string(k), sim_.Link(k)));
      if (tweak) tweak(ports.back());
    }
    agent_ = std::make_unique<AgentHarness>(pki_, std::move(ports));
    ASSERT_OK(agent_->Start());
    ASSERT_TRUE(agent_->WaitForPort(
        "modem0", [](const v1::PortInfo& p) { return p.state() == v1::PORT_STATE_READY; }));
    op_ = agent_->Stub("alice", "operator");
  }

  absl::StatusOr<v1::WriteReport> Write(const v1::WriteCredentialRequest& req,
                                        v1::Agent::Stub* stub = nullptr) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, absl::Seconds(60));
    v1::WriteReport rep;
    grpc::Status s = (stub ? stub : op_.get())->WriteCredential(&ctx, req, &rep);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    }
    return rep;
  }

  absl::StatusOr<v1::AtResult> Exec(const std::string& cmd, v1::Agent::Stub* stub = nullptr) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::ExecuteRequest req;
    req.set_port("modem0");
    req.set_command(cmd);
    v1::AtResult res;
    grpc::Status s = (stub ? stub : op_.get())->Execute(&ctx, req, &res);
    if (!s.ok()) {
      return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
    }
    return res;
  }

  testing::TempDir dir_;
  testing::TestPki pki_;
  SimProcess sim_;
  std::unique_ptr<AgentHarness> agent_;
  std::unique_ptr<v1::Agent::Stub> op_;
};

TEST_F(AgentTest, ListPortsShowsIdentifiedModem) {
  StartWith({});
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::ListPortsResponse resp;
  ASSERT_TRUE(agent_->Stub("vera", "viewer")->ListPorts(&ctx, {}, &resp).ok());
  ASSERT_EQ(resp.ports_size(), 1);
  const v1::PortInfo& p = resp.ports(0);
  EXPECT_EQ(resp.agent(), "lab1");
  EXPECT_EQ(p.state(), v1::PORT_STATE_READY);
  EXPECT_EQ(p.modem().imei().size(), 15u);
  EXPECT_EQ(p.modem().model(), "nRF9151-LACA");
  EXPECT_EQ(p.modem().firmware(), "mfw_nrf91x1_2.0.2");
  EXPECT_EQ(p.modem().cfun(), 4);
}

TEST_F(AgentTest, ExecuteReturnsLinesAndTypedErrors) {
  StartWith({});
  ASSERT_OK_AND_ASSIGN(v1::AtResult r, Exec("AT+CFUN?"));
  EXPECT_EQ(r.final(), v1::FINAL_RESULT_OK);
  ASSERT_EQ(r.lines_size(), 1);
  EXPECT_EQ(r.lines(0), "+CFUN: 4");
  ASSERT_OK_AND_ASSIGN(r, Exec("AT%CMNG=2,999,0"));
  EXPECT_EQ(r.final(), v1::FINAL_RESULT_CME_ERROR);
  EXPECT_EQ(r.code(), 513);
  EXPECT_THAT(r.explanation(), HasSubstr("not found"));
  // One call is one command: no way to smuggle a second one.
  EXPECT_THAT(Exec("AT\r\nAT+CFUN=1"), testing::StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(AgentTest, WriteVerifiesThenSkipsTheSameContent) {
  StartWith({});
  ASSERT_OK_AND_ASSIGN(v1::WriteReport first,
                       Write(WriteReq("modem0", 20, Fixture("AmazonRootCA1.pem"))));
  EXPECT_FALSE(first.skipped());
  EXPECT_EQ(first.sha256(), kAmazonSha);
  EXPECT_EQ(first.entry().sha256(), kAmazonSha);
  EXPECT_THAT(first.entry().subject(), HasSubstr("Amazon Root CA 1"));
  ASSERT_NE(FindStep(first, "verify"), nullptr);
  EXPECT_EQ(FindStep(first, "verify")->status(), v1::STEP_OK);
  EXPECT_EQ(FindStep(first, "write")->status(), v1::STEP_OK);

  ASSERT_OK_AND_ASSIGN(v1::WriteReport again, Write(WriteReq("modem0", 20, AmazonNoNewline())));
  EXPECT_TRUE(again.skipped());
  EXPECT_EQ(FindStep(again, "compare")->status(), v1::STEP_SKIPPED);
  EXPECT_EQ(FindStep(again, "write"), nullptr);

  // The modem lists exactly what we verified.
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::ListCredentialsRequest lr;
  lr.set_port("modem0");
  v1::ListCredentialsResponse list;
  ASSERT_TRUE(op_->ListCredentials(&ctx, lr, &list).ok());
  ASSERT_EQ(list.entries_size(), 1);
  EXPECT_EQ(list.entries(0).sec_tag(), 20u);
  EXPECT_EQ(list.entries(0).sha256(), kAmazonSha);

  // And reads it back byte-exact.
  grpc::ClientContext rctx;
  SetDeadline(&rctx);
  v1::ReadCredentialRequest rr;
  rr.set_port("modem0");
  rr.set_sec_tag(20);
  v1::ReadCredentialResponse read;
  ASSERT_TRUE(op_->ReadCredential(&rctx, rr, &read).ok());
  EXPECT_EQ(read.content(), AmazonNoNewline());
}

TEST_F(AgentTest, BrokenSeedPemsAreRepairedWrittenAndVerified) {
  StartWith({});
  for (const char* seed : {"seed-spaces-instead-of-newlines.txt", "seed-literal-backslash-n.txt"}) {
    SCOPED_TRACE(seed);
    // A fresh tag each time so nothing is skipped.
    static uint32_t tag = 30;
    ASSERT_OK_AND_ASSIGN(v1::WriteReport rep, Write(WriteReq("modem0", ++tag, Fixture(seed))));
    EXPECT_FALSE(rep.skipped());
    EXPECT_EQ(rep.sha256(), kAmazonSha);
    EXPECT_EQ(rep.entry().sha256(), kAmazonSha);
    EXPECT_FALSE(rep.repairs().empty());
  }
}

TEST_F(AgentTest, StrictModeRefusesContentThatNeedsRepair) {
  StartWith({});
  auto req = WriteReq("modem0", 40, Fixture("seed-spaces-instead-of-newlines.txt"));
  req.mutable_options()->set_strict(true);
  EXPECT_THAT(Write(req),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("strict")));
  // Nothing reached the modem's store.
  ASSERT_OK_AND_ASSIGN(v1::AtResult r, Exec("AT%CMNG=1,40"));
  EXPECT_EQ(r.lines_size(), 0);
}

TEST_F(AgentTest, ActiveModemIsWrittenOfflineAndLeftActive) {
  StartWith({"--cfun", "1"});
  ASSERT_OK_AND_ASSIGN(v1::WriteReport rep, Write(WriteReq("modem0", 21, AmazonNoNewline())));
  EXPECT_EQ(rep.cfun_before(), 1);
  EXPECT_EQ(FindStep(rep, "cfun_offline")->status(), v1::STEP_OK);
  EXPECT_EQ(FindStep(rep, "restore_cfun")->status(), v1::STEP_OK);
  ASSERT_OK_AND_ASSIGN(v1::AtResult r, Exec("AT+CFUN?"));
  ASSERT_EQ(r.lines_size(), 1);
  EXPECT_EQ(r.lines(0), "+CFUN: 1");
}

TEST_F(AgentTest, CommandTooLargeForTheModemBufferIsRefusedBeforeSending) {
  StartWith({}, [](agent::PortOptions& p) { p.max_command_bytes = 1024; });
  EXPECT_THAT(Write(WriteReq("modem0", 22, AmazonNoNewline())),
              testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                ::testing::AllOf(HasSubstr("1024"), HasSubstr("1187"))));
  ASSERT_OK_AND_ASSIGN(v1::AtResult r, Exec("AT%CMNG=1"));
  EXPECT_EQ(r.lines_size(), 0);
}

TEST_F(AgentTest, UnplugMidCommandIsUnavailableAndThePortComesBack) {
  // Identification sends 7 commands; the 8th (ours) unplugs the modem.
  StartWith({"--unplug-after", "8", "--replug-after", "300"});
  auto r = Exec("AT+CGMR");
  EXPECT_THAT(r, testing::StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_TRUE(agent_->WaitForPort(
      "modem0", [](const v1::PortInfo& p) { return p.state() == v1::PORT_STATE_DOWN; }));
  ASSERT_TRUE(agent_->WaitForPort(
      "modem0", [](const v1::PortInfo& p) { return p.state() == v1::PORT_STATE_READY; }));
  ASSERT_OK_AND_ASSIGN(v1::AtResult after, Exec("AT+CGMR"));
  EXPECT_EQ(after.final(), v1::FINAL_RESULT_OK);
}

// A 3.5 KB chain: Amazon Root CA 1 three times in one type-0 entry.
std::string Chain() {
  std::string one = AmazonNoNewline();
  return absl::StrCat(one, "\n", one, "\n", one);
}

// The sim takes a byte's arrival time from when it reads it; on a loaded
// machine two paced chunks can land in one read, so the FIFO holds four.
TEST_F(AgentTest, PacingMakesALongWriteSurviveAUartWithoutFlowControl) {
  StartWith({"--baud", "115200", "--no-flow-control", "--fifo", "128"}, [](agent::PortOptions& p) {
    p.serial.rtscts = false;
    p.pacing_auto = true;  // 32-byte chunks at 1.1x line time.
  });
  ASSERT_OK_AND_ASSIGN(v1::WriteReport rep, Write(WriteReq("modem0", 23, Chain())));
  EXPECT_GT(rep.content_bytes(), 3500u);
  EXPECT_EQ(rep.entry().sha256(), pki::Sha256Hex(Chain()));
}

TEST_F(AgentTest, WithoutPacingTheLossIsDetectedAsDataLoss) {
  StartWith({"--baud", "115200", "--no-flow-control", "--fifo", "128"}, [](agent::PortOptions& p) {
    p.serial.rtscts = false;
    p.pacing_auto = false;
    p.pacing = {};
    p.command_timeout = absl::Seconds(2);
  });
  EXPECT_THAT(Write(WriteReq("modem0", 24, Chain())),
              testing::StatusIs(absl::StatusCode::kDataLoss, HasSubstr("flow control")));
  // The link was resynchronized: the port still works.
  ASSERT_OK_AND_ASSIGN(v1::AtResult r, Exec("AT+CFUN?"));
  EXPECT_EQ(r.final(), v1::FINAL_RESULT_OK);
}

TEST_F(AgentTest, LeaseHolderExcludesOtherWritersWhileWatchersSeeOutput) {
  StartWith({});
  // Alice leases the port.
  grpc::ClientContext lctx;
  SetDeadline(&lctx);
  v1::AcquireLeaseRequest lreq;
  lreq.set_port("modem0");
  lreq.set_reason("rotating certs");
  v1::Lease lease;
  ASSERT_TRUE(op_->AcquireLease(&lctx, lreq, &lease).ok());
  EXPECT_EQ(lease.owner(), "alice");

  // Carol watches the console.
  auto carol = agent_->Stub("carol", "viewer");
  grpc::ClientContext cctx;
  SetDeadline(&cctx, absl::Seconds(30));
  auto stream = carol->Console(&cctx);
  v1::ConsoleIn open;
  open.mutable_open()->set_port("modem0");
  ASSERT_TRUE(stream->Write(open));
  v1::ConsoleOut out;
  ASSERT_TRUE(stream->Read(&out));
  ASSERT_TRUE(out.has_event());
  EXPECT_EQ(out.event().kind(), v1::ConsoleEvent::OPENED);
  EXPECT_FALSE(out.event().writable());

  // Bob may not write.
  auto bob = agent_->Stub("bob", "operator");
  EXPECT_THAT(Write(WriteReq("modem0", 25, AmazonNoNewline()), bob.get()),
              testing::StatusIs(absl::StatusCode::kFailedPrecondition,
                                ::testing::AllOf(HasSubstr("alice"), HasSubstr("rotating certs"))));
  EXPECT_THAT(Exec("AT", bob.get()), testing::StatusIs(absl::StatusCode::kFailedPrecondition));

  // Alice can, and Carol sees the modem's answer.
  ASSERT_OK_AND_ASSIGN(v1::AtResult r, Exec("AT+CGMM"));
  EXPECT_EQ(r.final(), v1::FINAL_RESULT_OK);
  std::string seen;
  while (!absl::StrContains(seen, "nRF9151-LACA\r\nOK\r\n")) {
    ASSERT_TRUE(stream->Read(&out)) << "console ended; saw: " << seen;
    if (out.has_data()) seen += out.data();
  }
  cctx.TryCancel();
}

TEST_F(AgentTest, FiftyConcurrentExecutesAreSerialized) {
  StartWith({}, [this](agent::PortOptions& p) { p.transcript_file = dir_.File("agent.log"); });
  // Each command has a distinctive answer; a mixed-up answer would show.
  const std::vector<std::pair<std::string, std::string>> cmds = {
      {"AT+CGMM", "nRF9151-LACA"},
      {"AT+CGMR", "mfw_nrf91x1_2.0.2"},
      {"AT+CFUN?", "+CFUN: 4"},
      {"AT+CGMI", "Nordic Semiconductor ASA"}};
  std::vector<std::thread> threads;
  threads.reserve(50);
  std::atomic<int> ok{0};
  std::mutex mu;
  std::vector<std::string> failures;
  for (int i = 0; i < 50; ++i) {
    threads.emplace_back([&, i] {
      const auto& [cmd, expected] = cmds[i % cmds.size()];
      auto r = Exec(cmd);
      std::lock_guard<std::mutex> lock(mu);
      if (!r.ok()) {
        failures.push_back(absl::StrCat(cmd, ": ", r.status().ToString()));
      } else if (r->lines_size() != 1 || r->lines(0) != expected) {
        failures.push_back(absl::StrCat(cmd, ": got ", r->DebugString()));
      } else {
        ++ok;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_TRUE(failures.empty()) << absl::StrJoin(failures, "\n");
  EXPECT_EQ(ok.load(), 50);
  // On the wire, every command was answered before the next was sent.
  std::ifstream in(dir_.File("agent.log"));
  std::string line;
  int outstanding = 0;
  int commands = 0;
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, absl::MaxSplits(' ', 3));
    if (f.size() < 4) continue;
    if (f[2] == ">") {
      ++commands;
      EXPECT_EQ(outstanding, 0) << "command sent before the previous answer: " << line;
      outstanding = 1;
    } else if (f[2] == "<" &&
               (absl::StrContains(f[3], "OK\\r\\n") || absl::StrContains(f[3], "ERROR"))) {
      outstanding = 0;
    }
  }
  EXPECT_GE(commands, 50);
}

TEST_F(AgentTest, RolesAreEnforced) {
  StartWith({});
  auto viewer = agent_->Stub("vera", "viewer");
  EXPECT_THAT(Exec("AT", viewer.get()), testing::StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(Write(WriteReq("modem0", 26, AmazonNoNewline()), viewer.get()),
              testing::StatusIs(absl::StatusCode::kPermissionDenied));
  auto automation = agent_->Stub("ci", "automation");
  EXPECT_THAT(Exec("AT", automation.get()), testing::StatusIs(absl::StatusCode::kPermissionDenied));
  auto agent_role = agent_->Stub("lab2", "agent");
  EXPECT_THAT(Exec("AT", agent_role.get()), testing::StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST_F(AgentTest, NoClientCertificateIsRefused) {
  StartWith({});
  grpc::SslCredentialsOptions o;
  o.pem_root_certs = pki_.ca().cert_pem;
  grpc::ChannelArguments args;
  auto stub = v1::Agent::NewStub(
      grpc::CreateCustomChannel(agent_->target(), grpc::SslCredentials(o), args));
  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Seconds(10));
  v1::ListPortsResponse resp;
  EXPECT_EQ(stub->ListPorts(&ctx, {}, &resp).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(AgentTest, SecretsAreNeverReadBackNorTranscribed) {
  StartWith({}, [this](agent::PortOptions& p) { p.transcript_file = dir_.File("agent.log"); });
  auto key = pki::IssueCertificate(pki_.ca(), {.common_name = "device"});
  ASSERT_OK(key.status());
  v1::WriteCredentialRequest req = WriteReq("modem0", 27, key->key_pem);
  req.set_type(v1::CLIENT_PRIVATE_KEY);
  ASSERT_OK_AND_ASSIGN(v1::WriteReport rep, Write(req));
  EXPECT_EQ(rep.entry().sha256().size(), 64u);
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::ReadCredentialRequest rr;
  rr.set_port("modem0");
  rr.set_sec_tag(27);
  rr.set_type(v1::CLIENT_PRIVATE_KEY);
  v1::ReadCredentialResponse read;
  EXPECT_EQ(op_->ReadCredential(&ctx, rr, &read).error_code(), grpc::StatusCode::PERMISSION_DENIED);
  std::string transcript = testing::ReadFileOrDie(dir_.File("agent.log"));
  std::string body_line = std::vector<std::string>(absl::StrSplit(key->key_pem, '\n'))[1];
  EXPECT_THAT(transcript, HasSubstr("redacted"));
  EXPECT_THAT(transcript, ::testing::Not(HasSubstr(body_line)));
}

TEST_F(AgentTest, GenerateKeyReturnsAVerifiableCsr) {
  StartWith({});
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::GenerateKeyRequest req;
  req.set_port("modem0");
  req.set_sec_tag(50);
  req.set_attributes("CN=dev-50,O=Lab");
  v1::GenerateKeyResponse resp;
  ASSERT_TRUE(op_->GenerateKey(&ctx, req, &resp).ok());
  ASSERT_OK_AND_ASSIGN(std::string subject, pki::CsrSubject(resp.csr_der()));
  EXPECT_THAT(subject, HasSubstr("CN=dev-50"));
  EXPECT_THAT(resp.csr_pem(), HasSubstr("BEGIN CERTIFICATE REQUEST"));
}

TEST_F(AgentTest, DeleteRemovesAndIgnoreMissingSkips) {
  StartWith({});
  ASSERT_OK(Write(WriteReq("modem0", 28, AmazonNoNewline())).status());
  for (bool expect_skip : {false, true}) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::DeleteCredentialRequest req;
    req.set_port("modem0");
    req.set_sec_tag(28);
    req.set_ignore_missing(true);
    v1::DeleteCredentialResponse resp;
    ASSERT_TRUE(op_->DeleteCredential(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.skipped(), expect_skip);
  }
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::DeleteCredentialRequest req;
  req.set_port("modem0");
  req.set_sec_tag(28);
  v1::DeleteCredentialResponse resp;
  EXPECT_EQ(op_->DeleteCredential(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace atbridge
