// atbridge-agent against atbridge-sim on real ptys, over loopback mTLS.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "agent/service/uplink_client.h"
#include "common/at/command_parser.h"
#include "common/at/response_parser.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/pki/pki.h"
#include "common/proto_time.h"
#include "common/random.h"
#include "tests/integration/agent/agent_harness.h"
#include "tests/testing/status_matchers.h"

namespace atbridge {
namespace {

using ::atbridge::testing::AgentHarness;
using ::atbridge::testing::FakeUplinkServer;
using ::atbridge::testing::SetDeadline;
using ::atbridge::testing::SimPort;
using ::atbridge::testing::SimProcess;
using ::testing::Contains;
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

// Bytes of one transcript record, either way.
struct WireRecord {
  bool to_modem;
  std::string bytes;
};

// Undoes the transcripts' escaping (\r \n \t \\ \" \xNN).
std::string Unescape(absl::string_view text) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '\\' || i + 1 >= text.size()) {
      out.push_back(text[i]);
      continue;
    }
    char c = text[++i];
    switch (c) {
      case 'r':
        out.push_back('\r');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'x': {
        int v = 0;
        if (i + 2 < text.size() + 1 && absl::SimpleHexAtoi(text.substr(i + 1, 2), &v)) {
          out.push_back(static_cast<char>(v));
          i += 2;
        }
        break;
      }
      default:
        out.push_back(c);  // \\ and \"
    }
  }
  return out;
}

// The agent's transcript: "<time> <port> > <command>" (framed) and
// "<time> <port> < <bytes>" (as read).
std::vector<WireRecord> AgentTranscript(const std::string& path) {
  std::vector<WireRecord> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, absl::MaxSplits(' ', 3));
    if (f.size() < 4 || (f[2] != ">" && f[2] != "<")) continue;
    // Commands are recorded framed, without their terminator.
    out.push_back({f[2] == ">", f[2] == ">" ? Unescape(f[3]) + "\r\n" : Unescape(f[3])});
  }
  return out;
}

// atbridge-sim --transcript: "<time> modem0 rx \"<bytes>\"" (rx: to the modem).
std::vector<WireRecord> SimTranscript(const std::string& path, const std::string& modem) {
  std::vector<WireRecord> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f = absl::StrSplit(line, absl::MaxSplits(' ', 3));
    if (f.size() < 4 || f[1] != modem || (f[2] != "rx" && f[2] != "tx")) continue;
    absl::string_view payload = f[3];
    if (!absl::ConsumePrefix(&payload, "\"") || !absl::ConsumeSuffix(&payload, "\"")) continue;
    out.push_back({f[2] == "rx", Unescape(payload)});
  }
  return out;
}

// Checks that the commands on a wire were strictly one at a time: each
// command line (framed as the modem's AT host frames it, whatever the
// record boundaries) reaches the modem only after the previous one's final
// result, and each is exactly one of `allowed` (no bytes of two commands
// mixed). Returns the problems, and counts commands.
std::vector<std::string> CheckOneAtATime(const std::vector<WireRecord>& records,
                                         const std::set<std::string>& allowed,
                                         std::map<std::string, int>* counts) {
  std::vector<std::string> problems;
  at::CommandFramer framer;
  std::string from_modem;  // Current unterminated line.
  bool outstanding = false;
  for (const WireRecord& r : records) {
    if (r.to_modem) {
      std::vector<at::FramerEvent> events;
      framer.Feed(r.bytes, &events);
      for (const auto& e : events) {
        if (outstanding) problems.push_back("sent before the previous answer: " + e.command);
        if (!allowed.count(e.command)) problems.push_back("unexpected command: " + e.command);
        ++(*counts)[e.command];
        outstanding = true;
      }
      continue;
    }
    for (char c : r.bytes) {
      if (c != '\r' && c != '\n') {
        from_modem.push_back(c);
        continue;
      }
      if (at::ParseFinalResult(from_modem).kind != at::FinalKind::kNone) outstanding = false;
      from_modem.clear();
    }
  }
  return problems;
}

class AgentTest : public ::testing::Test {
 protected:
  void TearDown() override {
    log::SetSinkForTesting(nullptr);
    uplink_.reset();  // Before the core it serves.
  }

  // Captures the log from now on.
  void CaptureLog() {
    log::SetSinkForTesting([this](log::Level, absl::string_view m) {
      std::lock_guard<std::mutex> lock(log_mu_);
      log_.push_back(std::string(m));
    });
  }
  int LogLinesWith(const std::string& text) {
    std::lock_guard<std::mutex> lock(log_mu_);
    return static_cast<int>(std::count_if(log_.begin(), log_.end(), [&](const std::string& l) {
      return absl::StrContains(l, text);
    }));
  }
  std::string Log() {
    std::lock_guard<std::mutex> lock(log_mu_);
    return absl::StrJoin(log_, "\n");
  }

  // The SHA-256 the modem itself lists for `tag` (AT%CMNG=1), "" if none.
  std::string ModemSha(uint32_t tag) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::ListCredentialsRequest req;
    req.set_port("modem0");
    req.set_sec_tag(tag);
    v1::ListCredentialsResponse list;
    grpc::Status s = op_->ListCredentials(&ctx, req, &list);
    EXPECT_TRUE(s.ok()) << s.error_message();
    for (const auto& e : list.entries()) {
      if (e.sec_tag() == tag) return e.sha256();
    }
    return "";
  }

  // An uplink from the agent to `server`, with fast backoff for tests.
  void StartUplink(const FakeUplinkServer& server,
                   absl::Duration backoff_initial = absl::Milliseconds(50),
                   absl::Duration backoff_max = absl::Seconds(2)) {
    agent::UplinkOptions o;
    o.backoff_initial = backoff_initial;
    o.backoff_max = backoff_max;
    o.stop_grace = absl::Seconds(2);
    random_ = NewSeededRandom(7);
    uplink_ = std::make_unique<agent::UplinkClient>(
        agent_->core(), tls::CreateChannel(server.target(), pki_.Client("lab1", "agent")), *random_,
        o);
    uplink_->Start();
  }

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
    if (!s.ok()) return FromGrpcStatus(s);  // With the report as its detail.
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
  std::unique_ptr<Random> random_;
  std::unique_ptr<testing::FakeUplinkServer> fake_;
  std::unique_ptr<agent::UplinkClient> uplink_;
  std::mutex log_mu_;
  std::vector<std::string> log_;
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
  // The timeout is bounded (5 minutes).
  for (int64_t seconds : {301, -1}) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::ExecuteRequest req;
    req.set_port("modem0");
    req.set_command("AT");
    req.mutable_timeout()->set_seconds(seconds);
    v1::AtResult res;
    grpc::Status s = op_->Execute(&ctx, req, &res);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << seconds;
    EXPECT_THAT(s.error_message(), HasSubstr("at most 5m")) << seconds;
  }
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
  // The hash the modem itself computed over what it stored.
  EXPECT_EQ(ModemSha(20), kAmazonSha);
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

// The two classic broken pastes of Amazon Root CA 1 and what each needs.
const std::vector<std::pair<std::string, std::string>>& Seeds() {
  static const auto* seeds = new std::vector<std::pair<std::string, std::string>>{
      {"seed-spaces-instead-of-newlines.txt", "restored newlines that had been replaced by spaces"},
      {"seed-literal-backslash-n.txt", "replaced literal \\n sequences with newlines"}};
  return *seeds;
}

TEST_F(AgentTest, BrokenSeedPemsAreRepairedWrittenAndVerified) {
  StartWith({});
  uint32_t tag = 30;
  for (const auto& [seed, repair] : Seeds()) {
    SCOPED_TRACE(seed);
    // A fresh tag each time so nothing is skipped.
    ++tag;
    ASSERT_OK_AND_ASSIGN(v1::WriteReport rep, Write(WriteReq("modem0", tag, Fixture(seed))));
    EXPECT_FALSE(rep.skipped());
    EXPECT_EQ(rep.sha256(), kAmazonSha);
    EXPECT_EQ(rep.entry().sha256(), kAmazonSha);
    // What was repaired, said in the report and in the validate step.
    EXPECT_THAT(rep.repairs(), Contains(repair)) << absl::StrJoin(rep.repairs(), "; ");
    ASSERT_NE(FindStep(rep, "validate"), nullptr);
    EXPECT_THAT(FindStep(rep, "validate")->detail(), HasSubstr(repair));
    // The modem stored exactly the canonical PEM.
    EXPECT_EQ(ModemSha(tag), kAmazonSha);
  }
}

TEST_F(AgentTest, StrictModeRefusesContentThatNeedsRepair) {
  StartWith({});
  uint32_t tag = 40;
  for (const auto& [seed, repair] : Seeds()) {
    SCOPED_TRACE(seed);
    ++tag;
    auto req = WriteReq("modem0", tag, Fixture(seed));
    req.mutable_options()->set_strict(true);
    auto refused = Write(req);
    EXPECT_THAT(refused,
                testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                  ::testing::AllOf(HasSubstr("strict"), HasSubstr(repair))));
    // The refusal still carries the report: validation failed, nothing sent.
    v1::WriteReport report;
    ASSERT_TRUE(GetStatusDetail(refused.status(), &report));
    ASSERT_EQ(report.steps_size(), 1);
    EXPECT_EQ(report.steps(0).name(), "validate");
    EXPECT_EQ(report.steps(0).status(), v1::STEP_FAILED);
    // Nothing reached the modem's store.
    EXPECT_EQ(ModemSha(tag), "");
  }
}

TEST_F(AgentTest, ActiveModemIsWrittenOfflineAndLeftActive) {
  StartWith({"--cfun", "1"});
  ASSERT_OK_AND_ASSIGN(v1::WriteReport rep, Write(WriteReq("modem0", 21, AmazonNoNewline())));
  EXPECT_EQ(rep.cfun_before(), 1);
  EXPECT_EQ(FindStep(rep, "cfun_offline")->status(), v1::STEP_OK);
  EXPECT_EQ(FindStep(rep, "restore_cfun")->status(), v1::STEP_OK);
  EXPECT_EQ(ModemSha(21), kAmazonSha);
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
  auto info = [this] {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::GetModemInfoRequest req;
    req.set_port("modem0");
    v1::ModemInfo m;
    EXPECT_TRUE(op_->GetModemInfo(&ctx, req, &m).ok());
    return m;
  };
  const v1::ModemInfo before = info();
  // A watcher sees the port go down and come back, in order, as events.
  auto viewer = agent_->Stub("carol", "viewer");
  grpc::ClientContext cctx;
  SetDeadline(&cctx, absl::Seconds(30));
  auto stream = viewer->Console(&cctx);
  v1::ConsoleIn open;
  open.mutable_open()->set_port("modem0");
  ASSERT_TRUE(stream->Write(open));
  v1::ConsoleOut out;
  ASSERT_TRUE(stream->Read(&out));
  ASSERT_EQ(out.event().kind(), v1::ConsoleEvent::OPENED);

  auto r = Exec("AT+CGMR");
  EXPECT_THAT(r, testing::StatusIs(absl::StatusCode::kUnavailable));
  std::vector<v1::ConsoleEvent::Kind> events;
  while (events.empty() || events.back() != v1::ConsoleEvent::PORT_UP) {
    ASSERT_TRUE(stream->Read(&out)) << "console ended after " << events.size() << " events";
    if (out.has_event()) events.push_back(out.event().kind());
  }
  EXPECT_EQ(events, (std::vector<v1::ConsoleEvent::Kind>{v1::ConsoleEvent::PORT_DOWN,
                                                         v1::ConsoleEvent::PORT_UP}));
  cctx.TryCancel();
  // The modem was identified again once it came back.
  const v1::ModemInfo after_info = info();
  EXPECT_EQ(after_info.imei(), before.imei());
  EXPECT_EQ(after_info.model(), "nRF9151-LACA");
  EXPECT_EQ(after_info.firmware(), "mfw_nrf91x1_2.0.2");
  EXPECT_GT(FromProtoTime(after_info.identified_at()), FromProtoTime(before.identified_at()));
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
  EXPECT_EQ(ModemSha(23), pki::Sha256Hex(Chain()));
}

TEST_F(AgentTest, WithoutPacingTheLossIsDetectedAsDataLoss) {
  StartWith({"--baud", "115200", "--no-flow-control", "--fifo", "128"}, [](agent::PortOptions& p) {
    p.serial.rtscts = false;
    p.pacing_auto = false;
    p.pacing = {};
    p.command_timeout = absl::Seconds(2);
  });
  auto lost = Write(WriteReq("modem0", 24, Chain()));
  EXPECT_THAT(lost, testing::StatusIs(absl::StatusCode::kDataLoss, HasSubstr("flow control")));
  // The failure carries the whole report as its error details.
  v1::WriteReport report;
  ASSERT_TRUE(GetStatusDetail(lost.status(), &report)) << lost.status();
  ASSERT_NE(FindStep(report, "write"), nullptr) << report.DebugString();
  EXPECT_EQ(FindStep(report, "write")->status(), v1::STEP_FAILED);
  ASSERT_NE(FindStep(report, "verify"), nullptr) << report.DebugString();
  EXPECT_EQ(FindStep(report, "verify")->status(), v1::STEP_FAILED);
  EXPECT_EQ(report.sha256(), pki::Sha256Hex(Chain()));
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

  // Nor may Bob write through a console: his session is a watcher, and
  // what he types is refused with an event saying why.
  grpc::ClientContext bctx;
  SetDeadline(&bctx, absl::Seconds(30));
  auto bob_console = bob->Console(&bctx);
  v1::ConsoleIn bob_open;
  bob_open.mutable_open()->set_port("modem0");
  bob_open.mutable_open()->set_write(true);
  ASSERT_TRUE(bob_console->Write(bob_open));
  v1::ConsoleOut bob_out;
  ASSERT_TRUE(bob_console->Read(&bob_out));
  ASSERT_EQ(bob_out.event().kind(), v1::ConsoleEvent::OPENED);
  EXPECT_FALSE(bob_out.event().writable());
  EXPECT_THAT(bob_out.event().detail(),
              ::testing::AllOf(HasSubstr("alice"), HasSubstr("rotating")));
  v1::ConsoleIn typed;
  typed.set_data("AT+CFUN=1\r\n");
  ASSERT_TRUE(bob_console->Write(typed));
  do {
    ASSERT_TRUE(bob_console->Read(&bob_out));
  } while (!bob_out.has_event());
  EXPECT_EQ(bob_out.event().kind(), v1::ConsoleEvent::WRITE_REFUSED);
  EXPECT_EQ(bob_out.event().dropped_bytes(), 11u);
  EXPECT_THAT(bob_out.event().detail(), HasSubstr("read-only"));
  EXPECT_EQ(bob_out.event().lease().owner(), "alice");

  // Alice can, and Carol sees the modem's answer.
  ASSERT_OK_AND_ASSIGN(v1::AtResult r, Exec("AT+CGMM"));
  EXPECT_EQ(r.final(), v1::FINAL_RESULT_OK);
  std::string seen;
  while (!absl::StrContains(seen, "nRF9151-LACA\r\nOK\r\n")) {
    ASSERT_TRUE(stream->Read(&out)) << "console ended; saw: " << seen;
    if (out.has_data()) seen += out.data();
  }
  // Bob's bytes never reached the modem: it is still offline.
  ASSERT_OK_AND_ASSIGN(v1::AtResult cfun, Exec("AT+CFUN?"));
  ASSERT_EQ(cfun.lines_size(), 1);
  EXPECT_EQ(cfun.lines(0), "+CFUN: 4");
  cctx.TryCancel();
  bctx.TryCancel();
}

// Console input that waits for the port behind a transaction is checked
// again when it gets the port: the session's lease was force-released
// meanwhile, so the bytes never reach the modem.
TEST_F(AgentTest, QueuedConsoleInputIsRefusedWhenTheLeaseIsReleasedMeanwhile) {
  StartWith({"--latency", "400"});
  grpc::ClientContext cctx;
  SetDeadline(&cctx, absl::Seconds(30));
  auto console = op_->Console(&cctx);
  v1::ConsoleIn open;
  open.mutable_open()->set_port("modem0");
  open.mutable_open()->set_write(true);
  ASSERT_TRUE(console->Write(open));
  v1::ConsoleOut out;
  ASSERT_TRUE(console->Read(&out));
  ASSERT_EQ(out.event().kind(), v1::ConsoleEvent::OPENED);
  ASSERT_TRUE(out.event().writable());

  // Alice's Execute holds the port while the modem takes 400 ms to answer.
  std::thread exec([this] { EXPECT_OK(Exec("AT+CGMM").status()); });
  absl::SleepFor(absl::Milliseconds(100));
  // Her console input waits for the port...
  v1::ConsoleIn typed;
  typed.set_data("AT+CFUN=1\r\n");
  ASSERT_TRUE(console->Write(typed));
  absl::SleepFor(absl::Milliseconds(100));
  // ... while an admin force-releases the session's lease.
  auto admin = agent_->Stub("root", "admin");
  grpc::ClientContext rctx;
  SetDeadline(&rctx);
  v1::ReleaseLeaseRequest release;
  release.set_port("modem0");
  release.set_force(true);
  v1::ReleaseLeaseResponse released;
  grpc::Status rs = admin->ReleaseLease(&rctx, release, &released);
  ASSERT_TRUE(rs.ok()) << rs.error_message();
  exec.join();

  // The bytes never reached the modem: it is still offline.
  ASSERT_OK_AND_ASSIGN(v1::AtResult cfun, Exec("AT+CFUN?"));
  ASSERT_EQ(cfun.lines_size(), 1);
  EXPECT_EQ(cfun.lines(0), "+CFUN: 4");
  // And the session is told why.
  do {
    ASSERT_TRUE(console->Read(&out));
  } while (!out.has_event() || out.event().kind() != v1::ConsoleEvent::LEASE_LOST);
  cctx.TryCancel();
}

TEST_F(AgentTest, FiftyConcurrentExecutesAreSerialized) {
  StartWith({"--transcript", dir_.File("sim.log")},
            [this](agent::PortOptions& p) { p.transcript_file = dir_.File("agent.log"); });
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
  // On the wire, as the agent saw it and as the modem saw it: every command
  // whole (no bytes of two mixed), and answered before the next one came.
  std::set<std::string> allowed = {"AT", "AT+CMEE=1", "AT+CGSN=1"};
  for (const auto& [cmd, expected] : cmds) allowed.insert(cmd);
  for (const auto& [name, records] :
       {std::pair{std::string("agent"), AgentTranscript(dir_.File("agent.log"))},
        std::pair{std::string("sim"), SimTranscript(dir_.File("sim.log"), "modem0")}}) {
    SCOPED_TRACE(name + " transcript");
    std::map<std::string, int> counts;
    std::vector<std::string> problems = CheckOneAtATime(records, allowed, &counts);
    EXPECT_TRUE(problems.empty()) << absl::StrJoin(problems, "\n");
    int ours = 0;
    for (const auto& [cmd, expected] : cmds) ours += counts[cmd];
    // Identification sent each of them once too.
    EXPECT_EQ(ours, 50 + static_cast<int>(cmds.size()));
  }
}

TEST_F(AgentTest, RolesAreEnforced) {
  StartWith({});
  ASSERT_OK(Write(WriteReq("modem0", 26, AmazonNoNewline())).status());
  CaptureLog();
  auto viewer = agent_->Stub("vera", "viewer");
  // A viewer reads: ports, modem, leases, the credential list, certificates.
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::ListPortsResponse ports;
    EXPECT_TRUE(viewer->ListPorts(&ctx, {}, &ports).ok());
  }
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::GetModemInfoRequest req;
    req.set_port("modem0");
    v1::ModemInfo m;
    EXPECT_TRUE(viewer->GetModemInfo(&ctx, req, &m).ok());
    EXPECT_EQ(m.imei().size(), 15u);
  }
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::ListLeasesResponse leases;
    EXPECT_TRUE(viewer->ListLeases(&ctx, {}, &leases).ok());
  }
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::ListCredentialsRequest req;
    req.set_port("modem0");
    v1::ListCredentialsResponse list;
    ASSERT_TRUE(viewer->ListCredentials(&ctx, req, &list).ok());
    EXPECT_EQ(list.entries_size(), 1);
  }
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::ReadCredentialRequest req;
    req.set_port("modem0");
    req.set_sec_tag(26);
    v1::ReadCredentialResponse read;
    ASSERT_TRUE(viewer->ReadCredential(&ctx, req, &read).ok());
    EXPECT_EQ(read.content(), AmazonNoNewline());
  }
  // It does not act: no AT, no write, no re-identification (AT commands).
  EXPECT_THAT(Exec("AT", viewer.get()),
              testing::StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("vera (viewer)")));
  EXPECT_THAT(Write(WriteReq("modem0", 27, AmazonNoNewline()), viewer.get()),
              testing::StatusIs(absl::StatusCode::kPermissionDenied));
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::GetModemInfoRequest req;
    req.set_port("modem0");
    req.set_refresh(true);
    v1::ModemInfo m;
    grpc::Status s = viewer->GetModemInfo(&ctx, req, &m);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_THAT(s.error_message(), HasSubstr("refresh"));
  }
  // Its console is watch-only, and says so when it types.
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    auto stream = viewer->Console(&ctx);
    v1::ConsoleIn open;
    open.mutable_open()->set_port("modem0");
    open.mutable_open()->set_write(true);
    ASSERT_TRUE(stream->Write(open));
    v1::ConsoleOut out;
    ASSERT_TRUE(stream->Read(&out));
    EXPECT_EQ(out.event().kind(), v1::ConsoleEvent::OPENED);
    EXPECT_FALSE(out.event().writable());
    EXPECT_THAT(out.event().detail(), HasSubstr("may only watch"));
    v1::ConsoleIn typed;
    typed.set_data("AT\r\n");
    ASSERT_TRUE(stream->Write(typed));
    ASSERT_TRUE(stream->Read(&out));
    EXPECT_EQ(out.event().kind(), v1::ConsoleEvent::WRITE_REFUSED);
    ctx.TryCancel();
  }
  // Automation works through the server's jobs: nothing on the agent.
  auto automation = agent_->Stub("ci", "automation");
  EXPECT_THAT(Exec("AT", automation.get()), testing::StatusIs(absl::StatusCode::kPermissionDenied));
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::ListPortsResponse ports;
    grpc::Status s = automation->ListPorts(&ctx, {}, &ports);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_THAT(s.error_message(), HasSubstr("jobs"));
  }
  auto agent_role = agent_->Stub("lab2", "agent");
  EXPECT_THAT(Exec("AT", agent_role.get()), testing::StatusIs(absl::StatusCode::kPermissionDenied));
  // A certificate without a role is refused outright.
  auto nobody = agent_->Stub("nobody", "");
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::ListPortsResponse ports;
    grpc::Status s = nobody->ListPorts(&ctx, {}, &ports);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_THAT(s.error_message(), HasSubstr("no atbridge role"));
  }
  // Every denial is logged once, with principal and role.
  EXPECT_EQ(LogLinesWith("denied: vera (viewer) may not call Execute"), 1) << Log();
  EXPECT_EQ(LogLinesWith("denied: vera (viewer) may not call WriteCredential"), 1) << Log();
  EXPECT_EQ(LogLinesWith("denied: vera (viewer) may not call GetModemInfo"), 1) << Log();
  EXPECT_EQ(LogLinesWith("denied: console input from vera (viewer)"), 1) << Log();
  EXPECT_EQ(LogLinesWith("denied: ci (automation) may not call ListPorts"), 1) << Log();
  EXPECT_EQ(LogLinesWith("denied: lab2 (agent) may not call Execute"), 1) << Log();
  EXPECT_EQ(LogLinesWith("certificate of nobody carries no atbridge role"), 1) << Log();
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

// ---- the uplink, against a stand-in server --------------------------------

// The agent's inventory has arrived and lists `port` ready with its modem.
bool InventoryLists(const FakeUplinkServer::Messages& m, const std::string& port) {
  return std::any_of(m.begin(), m.end(), [&](const v1::AgentEnvelope& e) {
    return e.has_inventory() &&
           std::any_of(e.inventory().ports().begin(), e.inventory().ports().end(),
                       [&](const v1::PortInfo& p) {
                         return p.name() == port && p.state() == v1::PORT_STATE_READY &&
                                p.modem().imei().size() == 15;
                       });
  });
}

const v1::AgentEnvelope* FindAnswer(const FakeUplinkServer::Messages& m, uint64_t id) {
  for (const auto& e : m) {
    if (e.request_id() == id && (e.has_response() || e.has_status())) return &e;
  }
  return nullptr;
}

v1::ServerEnvelope RequestFor(uint64_t id, v1::AgentRequest request) {
  v1::ServerEnvelope env;
  env.set_request_id(id);
  env.mutable_actor()->set_principal("alice");
  env.mutable_actor()->set_role(v1::ROLE_OPERATOR);
  env.mutable_timeout()->set_seconds(30);
  *env.mutable_request() = std::move(request);
  return env;
}

TEST_F(AgentTest, UplinkIntroducesTheAgentAndServesLikeTheDirectService) {
  StartWith({});
  fake_ = std::make_unique<FakeUplinkServer>();
  ASSERT_OK(fake_->Start(pki_.Server("atbridge-server", "server")));
  StartUplink(*fake_);
  // Hello first (no ports in it), then every port in one inventory once the
  // agent has verified the server.
  ASSERT_TRUE(fake_->WaitFor(
      [](const FakeUplinkServer::Messages& m) { return InventoryLists(m, "modem0"); }));
  FakeUplinkServer::Messages got = fake_->Received();
  ASSERT_GE(got.size(), 2u);
  ASSERT_TRUE(got[0].has_hello());
  EXPECT_EQ(got[0].hello().agent(), "lab1");
  EXPECT_FALSE(got[0].hello().version().empty());
  EXPECT_EQ(got[0].hello().ports_size(), 0);
  EXPECT_TRUE(got[1].has_inventory());
  EXPECT_EQ(std::count_if(got.begin(), got.end(),
                          [](const v1::AgentEnvelope& e) { return e.has_inventory(); }),
            1);
  EXPECT_TRUE(uplink_->connected());

  // The same request both ways gives the same answer.
  ASSERT_OK_AND_ASSIGN(v1::AtResult direct, Exec("AT+CGMM"));
  v1::AgentRequest exec;
  exec.mutable_execute()->set_port("modem0");
  exec.mutable_execute()->set_command("AT+CGMM");
  ASSERT_TRUE(fake_->Send(RequestFor(1, exec)));
  v1::AgentRequest list;
  list.mutable_list_ports();
  ASSERT_TRUE(fake_->Send(RequestFor(2, list)));
  // A failing write: the uplink's status carries the report too.
  v1::AgentRequest strict;
  *strict.mutable_write_credential() =
      WriteReq("modem0", 60, Fixture("seed-spaces-instead-of-newlines.txt"));
  strict.mutable_write_credential()->mutable_options()->set_strict(true);
  ASSERT_TRUE(fake_->Send(RequestFor(3, strict)));
  ASSERT_TRUE(fake_->WaitFor([](const FakeUplinkServer::Messages& m) {
    return FindAnswer(m, 1) && FindAnswer(m, 2) && FindAnswer(m, 3);
  }));
  got = fake_->Received();
  const v1::AgentEnvelope* a1 = FindAnswer(got, 1);
  ASSERT_TRUE(a1->has_response()) << a1->DebugString();
  EXPECT_THAT(a1->response().execute().lines(), ::testing::ElementsAreArray(direct.lines()));
  EXPECT_EQ(a1->response().execute().final(), direct.final());

  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::ListPortsResponse direct_ports;
  ASSERT_TRUE(op_->ListPorts(&ctx, {}, &direct_ports).ok());
  const v1::AgentEnvelope* a2 = FindAnswer(got, 2);
  ASSERT_TRUE(a2->has_response()) << a2->DebugString();
  ASSERT_EQ(a2->response().list_ports().ports_size(), direct_ports.ports_size());
  EXPECT_EQ(a2->response().list_ports().ports(0).modem().imei(),
            direct_ports.ports(0).modem().imei());

  const v1::AgentEnvelope* a3 = FindAnswer(got, 3);
  ASSERT_TRUE(a3->has_status()) << a3->DebugString();
  absl::Status refused = FromRpcStatus(a3->status());
  EXPECT_THAT(refused, testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("strict")));
  v1::WriteReport report;
  ASSERT_TRUE(GetStatusDetail(refused, &report));
  EXPECT_EQ(report.steps(0).name(), "validate");

  // Stopping closes the agent's side cleanly.
  uplink_->Stop();
  EXPECT_TRUE(fake_->WaitForEnded(1));
}

TEST_F(AgentTest, UplinkRefusesAPeerThatIsNotAServer) {
  StartWith({});
  CaptureLog();
  // Signed by the same CA, but an operator's certificate.
  fake_ = std::make_unique<FakeUplinkServer>();
  ASSERT_OK(fake_->Start(pki_.Server("mallory", "operator")));
  StartUplink(*fake_);
  // It tries again with backoff, and is refused each time.
  ASSERT_TRUE(fake_->WaitForEnded(3));
  // A request it slipped in was never served.
  fake_->Send(RequestFor(1, [] {
    v1::AgentRequest r;
    r.mutable_list_ports();
    return r;
  }()));
  uplink_->Stop();
  for (const auto& e : fake_->Received()) {
    // Nothing but the hello (name and version): no inventory, no answers.
    EXPECT_TRUE(e.has_hello()) << e.DebugString();
    EXPECT_EQ(e.hello().ports_size(), 0);
  }
  EXPECT_FALSE(uplink_->connected());
  // Said once, not on every attempt.
  EXPECT_EQ(LogLinesWith("uplink peer refused: mallory (operator) is not an atbridge server"), 1)
      << Log();
}

TEST_F(AgentTest, UplinkBacksOffFromAServerThatRefusesIt) {
  StartWith({});
  CaptureLog();
  fake_ = std::make_unique<FakeUplinkServer>();
  ASSERT_OK(fake_->Start(pki_.Server("atbridge-server", "server"),
                         grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "not you")));
  StartUplink(*fake_);
  ASSERT_TRUE(fake_->WaitForEnded(5));
  uplink_->Stop();
  std::vector<absl::Time> t = fake_->ConnectTimes();
  ASSERT_GE(t.size(), 5u);
  // 50 ms doubling, each delay at least half its nominal value: a refusal
  // never counts as a connection, so the backoff is never reset.
  absl::Duration nominal = absl::Milliseconds(50);
  for (size_t i = 1; i < 5; ++i) {
    EXPECT_GE(t[i] - t[i - 1], nominal / 2 - absl::Milliseconds(5)) << "attempt " << i;
    nominal *= 2;
  }
  EXPECT_GE(t[4] - t[0], absl::Milliseconds(370));
  EXPECT_EQ(LogLinesWith("PERMISSION_DENIED"), 1) << Log();
}

// Streams that end all the time while ports keep changing: a port update
// must never reach a stream that is gone (run under ASan in CI).
TEST_F(AgentTest, UplinkStreamsEndingWhilePortsChangeAreSafe) {
  StartWith({});
  fake_ = std::make_unique<FakeUplinkServer>();
  ASSERT_OK(fake_->Start(pki_.Server("atbridge-server", "server"),
                         grpc::Status(grpc::StatusCode::ABORTED, "replaced")));
  StartUplink(*fake_, absl::Milliseconds(1), absl::Milliseconds(2));
  // Every lease change is a port update for the uplink.
  for (int i = 0; i < 100; ++i) {
    grpc::ClientContext actx;
    SetDeadline(&actx);
    v1::AcquireLeaseRequest acquire;
    acquire.set_port("modem0");
    v1::Lease lease;
    ASSERT_TRUE(op_->AcquireLease(&actx, acquire, &lease).ok());
    grpc::ClientContext rctx;
    SetDeadline(&rctx);
    v1::ReleaseLeaseRequest release;
    release.set_port("modem0");
    release.set_lease_id(lease.lease_id());
    v1::ReleaseLeaseResponse released;
    ASSERT_TRUE(op_->ReleaseLease(&rctx, release, &released).ok());
  }
  ASSERT_TRUE(fake_->WaitForEnded(10));
  uplink_->Stop();
  uplink_.reset();
  // The agent still serves.
  ASSERT_OK_AND_ASSIGN(v1::AtResult r, Exec("AT+CGMM"));
  EXPECT_EQ(r.final(), v1::FINAL_RESULT_OK);
}

}  // namespace
}  // namespace atbridge
