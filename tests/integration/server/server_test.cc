// The real server over loopback mTLS with fake agents written in the test:
// fleet pushes, retries, abort, authorization per role, WatchJob, reports,
// agent disconnects, server restart, device references, relayed calls,
// leases, console and audit.
#include "server/server.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "atbridge/v1/provisioning.grpc.pb.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/pki/pki.h"
#include "server/util/proto_time.h"
#include "tests/integration/server/fake_agent.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace atbridge::server {
namespace {

using ::atbridge::server::testing::FakeAgent;
using ::atbridge::server::testing::ModemBank;
using ::atbridge::testing::StatusIs;
using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

constexpr absl::Duration kRpcDeadline = absl::Seconds(20);

void SetDeadline(grpc::ClientContext* ctx, absl::Duration d = kRpcDeadline) {
  ctx->set_deadline(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(d));
}

struct WatchResult {
  std::vector<v1::JobEvent> events;
  grpc::Status status;
};

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log::SetLevel(log::Level::kWarning);
    tls_files_ = atbridge::testing::TestPki::WriteFiles(pki_.Server(), dir_.path(), "server");
    auto ca = pki::CreateCa({.common_name = "atbridge modem CA"});
    ASSERT_OK(ca);
    signing_ca_ = *ca;
    options_.listen = "127.0.0.1:0";
    options_.tls = tls_files_;
    options_.state_dir = dir_.File("state");
    options_.signing_ca_cert_file = dir_.WriteFile("signing-ca.pem", signing_ca_.cert_pem);
    options_.signing_ca_key_file = dir_.WriteFile("signing-ca.key", signing_ca_.key_pem);
    auto cert = pki::IssueCertificate(signing_ca_, {.common_name = "fleet client cert"});
    ASSERT_OK(cert);
    client_cert_pem_ = cert->cert_pem;
    StartServer();
  }

  void TearDown() override {
    agents_.clear();
    if (server_) server_->Shutdown();
  }

  void StartServer() {
    auto s = Server::Create(options_, hooks_);
    ASSERT_OK(s);
    server_ = *std::move(s);
    ASSERT_OK(server_->Start());
    target_ = absl::StrCat("127.0.0.1:", server_->port());
  }

  void StopServer() {
    server_->Shutdown();
    server_.reset();
  }

  std::unique_ptr<v1::Provisioning::Stub> Client(const std::string& name, const std::string& role) {
    auto channel = tls::CreateChannel(target_, pki_.Client(name, role),
                                      {.server_name_override = "atbridge.test"});
    return v1::Provisioning::NewStub(channel);
  }

  v1::Provisioning::Stub& Operator() {
    if (!operator_) operator_ = Client("alice", "operator");
    return *operator_;
  }

  // Connects agent-<index> and waits until the server has its hello.
  FakeAgent* AddAgent(int index, FakeAgent::Options o = {}) {
    o.name = absl::StrCat("agent-", index);
    o.agent_index = index;
    if (o.labels.empty()) o.labels = {{"rack", absl::StrCat(index)}, {"board", "nrf9151dk"}};
    const uint64_t before = server_->AgentConnectionId(o.name);
    auto agent =
        std::make_unique<FakeAgent>(target_, pki_.Client(o.name, "agent"), bank_, std::move(o));
    FakeAgent* raw = agent.get();
    raw->Start();
    EXPECT_TRUE(server_->AwaitAgent(absl::StrCat("agent-", index), before + 1, absl::Seconds(20)))
        << "agent-" << index << " did not register";
    agents_.push_back(std::move(agent));
    return raw;
  }

  v1::JobSpec WriteSpec() {
    v1::JobSpec spec;
    spec.set_name("push client cert");
    auto* w = spec.mutable_write();
    w->set_sec_tag(16842753);
    w->set_type(v1::CLIENT_CERT);
    w->set_content(client_cert_pem_);
    spec.mutable_selector()->set_all(true);
    *spec.mutable_retry()->mutable_initial_backoff() = ToProtoDuration(absl::Milliseconds(10));
    *spec.mutable_retry()->mutable_max_backoff() = ToProtoDuration(absl::Milliseconds(50));
    return spec;
  }

  absl::StatusOr<v1::Job> CreateJob(v1::Provisioning::Stub& stub, const v1::JobSpec& spec) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::CreateJobRequest req;
    *req.mutable_spec() = spec;
    v1::Job job;
    grpc::Status s = stub.CreateJob(&ctx, req, &job);
    if (!s.ok()) return FromGrpcStatus(s);
    return job;
  }

  WatchResult Watch(v1::Provisioning::Stub& stub, const std::string& job_id) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, absl::Seconds(60));
    v1::WatchJobRequest req;
    req.set_job_id(job_id);
    auto reader = stub.WatchJob(&ctx, req);
    WatchResult out;
    v1::JobEvent ev;
    while (reader->Read(&ev)) out.events.push_back(ev);
    out.status = reader->Finish();
    return out;
  }

  v1::Job GetJob(const std::string& id) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::GetJobRequest req;
    req.set_job_id(id);
    req.set_include_executions(true);
    v1::Job job;
    EXPECT_TRUE(Operator().GetJob(&ctx, req, &job).ok());
    return job;
  }

  // Creates a job, watches it to the end, returns it with executions.
  v1::Job RunJob(const v1::JobSpec& spec) {
    auto job = CreateJob(Operator(), spec);
    EXPECT_OK(job);
    if (!job.ok()) return v1::Job();
    WatchResult w = Watch(Operator(), job->id());
    EXPECT_TRUE(w.status.ok()) << w.status.error_message();
    return GetJob(job->id());
  }

  std::string Report(const std::string& id, v1::ReportFormat format) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::GetJobReportRequest req;
    req.set_job_id(id);
    req.set_format(format);
    v1::JobReport rep;
    grpc::Status s = Operator().GetJobReport(&ctx, req, &rep);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return rep.content();
  }

  std::vector<v1::AuditRecord> Audit(const std::string& action) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::QueryAuditRequest req;
    req.set_action(action);
    v1::QueryAuditResponse resp;
    EXPECT_TRUE(Operator().QueryAudit(&ctx, req, &resp).ok());
    return {resp.records().begin(), resp.records().end()};
  }

  atbridge::testing::TempDir dir_;
  atbridge::testing::TestPki pki_;
  tls::TlsFiles tls_files_;
  pki::KeyAndCert signing_ca_;
  std::string client_cert_pem_;
  ServerOptions options_;
  ServerHooks hooks_;
  std::unique_ptr<Server> server_;
  std::string target_;
  std::shared_ptr<ModemBank> bank_ = std::make_shared<ModemBank>();
  std::vector<std::unique_ptr<FakeAgent>> agents_;
  std::unique_ptr<v1::Provisioning::Stub> operator_;
};

// ---- fleet pushes ----

TEST_F(ServerTest, PushTo30DevicesBehind3AgentsThenAgainIsSkipped) {
  for (int i = 0; i < 3; ++i) AddAgent(i);
  v1::Job first = RunJob(WriteSpec());
  EXPECT_EQ(first.state(), v1::JOB_COMPLETED);
  EXPECT_EQ(first.counts().total(), 30u);
  EXPECT_EQ(first.counts().succeeded(), 30u);
  for (const auto& x : first.executions()) {
    EXPECT_EQ(x.attempts(), 1u);
    EXPECT_EQ(x.sha256(), pki::Sha256Hex(client_cert_pem_));
  }
  for (int i = 0; i < 3; ++i) {
    for (const auto& imei : agents_[static_cast<size_t>(i)]->Imeis()) {
      EXPECT_EQ(bank_->CredentialsOf(imei).size(), 1u) << imei;
    }
  }
  // Each agent was asked on behalf of the job's creator.
  for (const auto& a : agents_[0]->Actors()) EXPECT_EQ(a.principal(), "alice");

  v1::Job second = RunJob(WriteSpec());
  EXPECT_EQ(second.state(), v1::JOB_COMPLETED);
  EXPECT_EQ(second.counts().skipped(), 30u);

  // The inventory knows what is on each modem, with the certificate's details.
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::GetDeviceRequest req;
  req.mutable_device()->set_imei(agents_[1]->Imei(3));
  v1::Device dev;
  ASSERT_TRUE(Operator().GetDevice(&ctx, req, &dev).ok());
  ASSERT_THAT(dev.credentials(), SizeIs(1));
  EXPECT_EQ(dev.credentials(0).sec_tag(), 16842753u);
  EXPECT_EQ(dev.credentials(0).sha256(), pki::Sha256Hex(client_cert_pem_));
  EXPECT_EQ(dev.credentials(0).subject(), "CN=fleet client cert");
  EXPECT_TRUE(IsSet(dev.credentials(0).not_after()));
  EXPECT_TRUE(dev.online());
  EXPECT_EQ(dev.agent(), "agent-1");
  EXPECT_EQ(dev.labels().at("rack"), "1");
}

TEST_F(ServerTest, TransientFailuresAreRetriedAndReported) {
  std::mutex mu;
  std::set<std::string> failed_once;
  FakeAgent::Options o;
  o.fault = [&](const std::string& imei,
                const v1::ServerEnvelope& env) -> std::optional<absl::Status> {
    if (!env.request().has_write_credential()) return std::nullopt;
    std::lock_guard<std::mutex> lock(mu);
    if (failed_once.insert(imei).second) {
      return absl::DataLossError("hash mismatch after write (bytes dropped?)");
    }
    return std::nullopt;
  };
  for (int i = 0; i < 3; ++i) AddAgent(i, o);
  v1::Job job = RunJob(WriteSpec());
  EXPECT_EQ(job.counts().succeeded(), 30u);
  for (const auto& x : job.executions()) EXPECT_EQ(x.attempts(), 2u) << x.imei();

  nlohmann::json report = nlohmann::json::parse(Report(job.id(), v1::REPORT_FORMAT_JSON));
  ASSERT_EQ(report["executions"].size(), 30u);
  for (const auto& x : report["executions"]) {
    EXPECT_EQ(x["state"], "SUCCEEDED");
    EXPECT_EQ(x["retries"], 1);
    bool saw_data_loss = false;
    for (const auto& t : x["history"]) {
      if (absl::StrContains(t["reason"].get<std::string>(), "DATA_LOSS")) saw_data_loss = true;
    }
    EXPECT_TRUE(saw_data_loss);
  }
  const std::string csv = Report(job.id(), v1::REPORT_FORMAT_CSV);
  std::vector<std::string> lines = absl::StrSplit(csv, "\r\n", absl::SkipEmpty());
  ASSERT_THAT(lines, SizeIs(31));
  EXPECT_TRUE(absl::StartsWith(lines[0], "job_id,imei,agent,port,state,attempts,retries"));
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<std::string> cols = absl::StrSplit(lines[i], ',');
    ASSERT_GE(cols.size(), 7u);
    EXPECT_EQ(cols[4], "SUCCEEDED");
    EXPECT_EQ(cols[5], "2");
    EXPECT_EQ(cols[6], "1");
  }
}

TEST_F(ServerTest, NonRetryableFailureFailsWithoutRetriesAndAbortsTheJob) {
  FakeAgent::Options o;
  o.fault = [](const std::string&, const v1::ServerEnvelope& env) -> std::optional<absl::Status> {
    if (!env.request().has_write_credential()) return std::nullopt;
    return absl::InvalidArgumentError("+CME ERROR: 527 content rejected");
  };
  for (int i = 0; i < 3; ++i) AddAgent(i, o);
  v1::JobSpec spec = WriteSpec();
  spec.mutable_rollout()->set_max_concurrency(2);
  spec.mutable_abort()->set_failure_percent(50);
  spec.mutable_abort()->set_min_executed(4);
  v1::Job job = RunJob(spec);
  EXPECT_EQ(job.state(), v1::JOB_ABORTED);
  EXPECT_THAT(job.reason(), HasSubstr("aborted"));
  EXPECT_GE(job.counts().failed(), 4u);
  EXPECT_LE(job.counts().failed(), 5u);
  EXPECT_EQ(job.counts().failed() + job.counts().canceled(), 30u);
  for (const auto& x : job.executions()) {
    if (x.state() == v1::FAILED) {
      EXPECT_EQ(x.attempts(), 1u);
      EXPECT_EQ(x.last_status_code(), static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
      EXPECT_THAT(x.last_status_message(), HasSubstr("527"));
    } else {
      EXPECT_EQ(x.state(), v1::CANCELED);
    }
  }
}

// ---- authorization ----

TEST_F(ServerTest, AuthorizationPerRole) {
  AddAgent(0);
  v1::JobSpec spec = WriteSpec();
  spec.set_dry_run(true);
  auto viewer = Client("victor", "viewer");
  EXPECT_THAT(CreateJob(*viewer, spec), StatusIs(absl::StatusCode::kPermissionDenied));
  auto automation = Client("ci-bot", "automation");
  ASSERT_OK_AND_ASSIGN(v1::Job dry, CreateJob(*automation, spec));
  EXPECT_EQ(dry.counts().skipped(), 10u);
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::DeviceExecuteRequest req;
    req.mutable_device()->set_imei(agents_[0]->Imei(0));
    req.mutable_request()->set_command("AT+CGSN");
    v1::AtResult res;
    EXPECT_EQ(automation->Execute(&ctx, req, &res).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::ListDevicesResponse resp;
    ASSERT_TRUE(viewer->ListDevices(&ctx, v1::ListDevicesRequest(), &resp).ok());
    EXPECT_THAT(resp.devices(), SizeIs(10));
  }
  {
    auto agent_cert = Client("agent-0", "agent");
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::ListAgentsResponse resp;
    EXPECT_EQ(agent_cert->ListAgents(&ctx, v1::ListAgentsRequest(), &resp).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::DeviceReleaseLeaseRequest req;
    req.mutable_device()->set_imei(agents_[0]->Imei(0));
    req.set_force(true);
    v1::ReleaseLeaseResponse resp;
    EXPECT_EQ(Operator().ReleaseLease(&ctx, req, &resp).error_code(),
              grpc::StatusCode::PERMISSION_DENIED)
        << "force-release is admin only";
  }
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::DeviceExecuteRequest req;
    req.mutable_device()->set_imei(agents_[0]->Imei(0));
    req.mutable_request()->set_command("AT+CGSN");
    v1::AtResult res;
    ASSERT_TRUE(Operator().Execute(&ctx, req, &res).ok());
    ASSERT_THAT(res.lines(), SizeIs(1));
    EXPECT_EQ(res.lines(0), agents_[0]->Imei(0));
  }
  // Denials are audited.
  auto denied = Audit("CreateJob");
  bool found = false;
  for (const auto& r : denied) {
    if (r.principal() == "victor" && r.result() == "PERMISSION_DENIED") found = true;
  }
  EXPECT_TRUE(found);
  bool exec_denied = false;
  for (const auto& r : Audit("Execute")) {
    if (r.principal() == "ci-bot" && r.result() == "PERMISSION_DENIED") exec_denied = true;
  }
  EXPECT_TRUE(exec_denied);
}

TEST_F(ServerTest, UplinkRefusesNameMismatchAndNonAgentCertificates) {
  FakeAgent::Options o;
  o.name = "agent-impostor";
  FakeAgent impostor(target_, pki_.Client("agent-7", "agent"), bank_, o);
  impostor.Start();
  grpc::Status s = impostor.WaitDone();
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_THAT(s.error_message(), HasSubstr("certificate is for \"agent-7\""));

  o.name = "bob";
  FakeAgent user(target_, pki_.Client("bob", "operator"), bank_, o);
  user.Start();
  EXPECT_EQ(user.WaitDone().error_code(), grpc::StatusCode::PERMISSION_DENIED);

  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::ListAgentsResponse agents;
  ASSERT_TRUE(Operator().ListAgents(&ctx, v1::ListAgentsRequest(), &agents).ok());
  EXPECT_THAT(agents.agents(), SizeIs(0));
}

TEST_F(ServerTest, AnAgentIsConnectedWithItsInventoryNotItsHello) {
  // The real agent sends its ports only after verifying the server; whoever
  // waits for the agent to be connected must find its devices there.
  FakeAgent::Options o;
  o.name = "agent-7";
  o.agent_index = 7;
  o.ports = 4;
  o.hold_inventory = true;
  const uint64_t before = server_->AgentConnectionId(o.name);
  auto agent = std::make_unique<FakeAgent>(target_, pki_.Client(o.name, "agent"), bank_, o);
  agent->Start();
  EXPECT_FALSE(server_->AwaitAgent("agent-7", before + 1, absl::Milliseconds(300)))
      << "announced before its ports were known";
  agent->SendInventory();
  ASSERT_TRUE(server_->AwaitAgent("agent-7", before + 1, absl::Seconds(20)));
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::ListDevicesRequest req;
  req.mutable_selector()->add_agents("agent-7");
  req.set_connected_only(true);
  v1::ListDevicesResponse devices;
  ASSERT_TRUE(Operator().ListDevices(&ctx, req, &devices).ok());
  EXPECT_THAT(devices.devices(), SizeIs(4));
  agents_.push_back(std::move(agent));
}

TEST_F(ServerTest, AnAgentThatListsItsPortsInTheHelloIsConnectedAtOnce) {
  FakeAgent::Options o;
  o.ports = 2;
  o.ports_in_hello = true;
  FakeAgent* agent = AddAgent(8, o);
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::DeviceExecuteRequest req;
  req.mutable_device()->set_imei(agent->Imei(1));
  req.mutable_request()->set_command("AT");
  v1::AtResult res;
  EXPECT_TRUE(Operator().Execute(&ctx, req, &res).ok());
}

TEST_F(ServerTest, SecondConnectionReplacesTheFirst) {
  FakeAgent* first = AddAgent(0);
  FakeAgent* second = AddAgent(0);
  grpc::Status s = first->WaitDone();
  EXPECT_NE(s.error_code(), grpc::StatusCode::OK);
  EXPECT_FALSE(second->done());
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::DeviceExecuteRequest req;
  req.mutable_device()->set_imei(second->Imei(0));
  req.mutable_request()->set_command("AT");
  v1::AtResult res;
  EXPECT_TRUE(Operator().Execute(&ctx, req, &res).ok());
  grpc::ClientContext ctx2;
  SetDeadline(&ctx2);
  v1::ListAgentsResponse agents;
  ASSERT_TRUE(Operator().ListAgents(&ctx2, v1::ListAgentsRequest(), &agents).ok());
  ASSERT_THAT(agents.agents(), SizeIs(1));
  EXPECT_TRUE(agents.agents(0).connected());
  EXPECT_EQ(agents.agents(0).port_count(), 10u);
}

// ---- watch ----

TEST_F(ServerTest, WatchJobStreamsTransitionsUntilTheJobEnds) {
  FakeAgent::Options o;
  o.ports = 3;
  o.hold_writes = true;
  FakeAgent* agent = AddAgent(0, o);
  auto job = CreateJob(Operator(), WriteSpec());
  ASSERT_OK(job);
  ASSERT_TRUE(agent->WaitForHeld(3));
  grpc::ClientContext ctx;
  SetDeadline(&ctx, absl::Seconds(60));
  v1::WatchJobRequest req;
  req.set_job_id(job->id());
  auto reader = Operator().WatchJob(&ctx, req);
  std::vector<v1::JobEvent> events;
  v1::JobEvent ev;
  // Snapshot: the job, then its 3 executions, all IN_PROGRESS.
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(reader->Read(&ev));
    events.push_back(ev);
  }
  EXPECT_FALSE(events[0].has_execution());
  EXPECT_EQ(events[0].counts().in_progress(), 3u);
  for (int i = 1; i < 4; ++i) EXPECT_EQ(events[i].execution().state(), v1::IN_PROGRESS);
  agent->ReleaseHeld();
  while (reader->Read(&ev)) events.push_back(ev);
  ASSERT_TRUE(reader->Finish().ok());
  ASSERT_THAT(events, SizeIs(8));
  for (int i = 4; i < 7; ++i) {
    EXPECT_EQ(events[i].transition().from(), v1::IN_PROGRESS);
    EXPECT_EQ(events[i].transition().to(), v1::SUCCEEDED);
    EXPECT_EQ(events[i].transition().attempt(), 1u);
  }
  EXPECT_EQ(events[7].job_state(), v1::JOB_COMPLETED);
  EXPECT_EQ(events[7].counts().succeeded(), 3u);

  // Watching a finished job gives its snapshot and ends.
  WatchResult again = Watch(Operator(), job->id());
  EXPECT_TRUE(again.status.ok());
  ASSERT_THAT(again.events, SizeIs(4));
  EXPECT_EQ(again.events[0].job_state(), v1::JOB_COMPLETED);

  grpc::ClientContext missing_ctx;
  SetDeadline(&missing_ctx);
  v1::WatchJobRequest missing;
  missing.set_job_id("no-such-job");
  auto r2 = Operator().WatchJob(&missing_ctx, missing);
  while (r2->Read(&ev)) {
  }
  EXPECT_EQ(r2->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
}

// A watcher that leaves at once (Ctrl-C right after push --wait started) used
// to race the subscription: the server wrote the snapshot after Finish and
// died. Many quick leavers, then the server must still answer.
TEST_F(ServerTest, WatchersThatLeaveAtOnceLeaveTheServerServing) {
  FakeAgent::Options o;
  o.ports = 2;
  o.hold_writes = true;
  FakeAgent* agent = AddAgent(0, o);
  auto job = CreateJob(Operator(), WriteSpec());
  ASSERT_OK(job);
  ASSERT_TRUE(agent->WaitForHeld(2));
  v1::WatchJobRequest req;
  req.set_job_id(job->id());
  for (int i = 0; i < 300; ++i) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    auto reader = Operator().WatchJob(&ctx, req);
    v1::JobEvent ev;
    if (i % 3 == 1) reader->Read(&ev);
    ctx.TryCancel();
    while (reader->Read(&ev)) {
    }
    grpc::Status s = reader->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::CANCELLED) << i << ": " << s.error_message();
  }
  agent->ReleaseHeld();
  WatchResult w = Watch(Operator(), job->id());
  EXPECT_TRUE(w.status.ok()) << w.status.error_message();
  EXPECT_EQ(GetJob(job->id()).counts().succeeded(), 2u);
}

TEST_F(ServerTest, CancelJobCancelsQueuedExecutions) {
  FakeAgent::Options o;
  o.hold_writes = true;
  FakeAgent* agent = AddAgent(0, o);
  v1::JobSpec spec = WriteSpec();
  spec.mutable_rollout()->set_max_concurrency(2);
  auto job = CreateJob(Operator(), spec);
  ASSERT_OK(job);
  ASSERT_TRUE(agent->WaitForHeld(2));
  auto automation = Client("ci-bot", "automation");
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::CancelJobRequest req;
  req.set_job_id(job->id());
  req.set_reason("wrong certificate");
  v1::Job canceled;
  ASSERT_TRUE(automation->CancelJob(&ctx, req, &canceled).ok());
  EXPECT_EQ(canceled.state(), v1::JOB_CANCELED);
  EXPECT_EQ(canceled.counts().canceled(), 8u);
  agent->ReleaseHeld();
  WatchResult w = Watch(Operator(), job->id());
  EXPECT_TRUE(w.status.ok());
  v1::Job done = GetJob(job->id());
  EXPECT_EQ(done.counts().succeeded(), 2u);
  EXPECT_EQ(done.counts().canceled(), 8u);
  EXPECT_THAT(done.reason(), HasSubstr("wrong certificate"));
}

// ---- disconnects and restarts ----

TEST_F(ServerTest, AgentDisconnectFailsInFlightRequestsWhichRetryAfterReconnect) {
  FakeAgent::Options hold;
  hold.hold_writes = true;
  FakeAgent* flaky = AddAgent(0, hold);
  AddAgent(1);
  v1::JobSpec spec = WriteSpec();
  spec.mutable_selector()->set_all(false);
  spec.mutable_selector()->add_agents("agent-0");
  spec.mutable_selector()->add_agents("agent-1");
  spec.mutable_rollout()->set_max_concurrency(20);
  spec.mutable_retry()->set_max_attempts(5);
  auto job = CreateJob(Operator(), spec);
  ASSERT_OK(job);
  ASSERT_TRUE(flaky->WaitForHeld(10));
  flaky->Disconnect();
  // The server fails the 10 in-flight writes UNAVAILABLE; they wait for the
  // device and go out again once the agent is back.
  AddAgent(0);
  WatchResult w = Watch(Operator(), job->id());
  EXPECT_TRUE(w.status.ok());
  v1::Job done = GetJob(job->id());
  EXPECT_EQ(done.state(), v1::JOB_COMPLETED);
  EXPECT_EQ(done.counts().succeeded(), 20u);
  int retried = 0;
  for (const auto& x : done.executions()) {
    if (x.agent() != "agent-0") {
      EXPECT_EQ(x.attempts(), 1u);
      continue;
    }
    EXPECT_GE(x.attempts(), 2u);
    bool saw = false;
    for (const auto& t : x.history()) {
      if (absl::StrContains(t.reason(), "UNAVAILABLE") &&
          (absl::StrContains(t.reason(), "disconnected") ||
           absl::StrContains(t.reason(), "not connected"))) {
        saw = true;
      }
    }
    EXPECT_TRUE(saw) << x.imei();
    ++retried;
  }
  EXPECT_EQ(retried, 10);
}

// A second server on the same state directory would resume the first one's
// running jobs as interrupted: it is refused before it touches the store.
TEST_F(ServerTest, ASecondServerOnTheSameStateDirIsRefused) {
  auto second = Server::Create(options_, hooks_);
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(second.status().message(), HasSubstr("another atbridge-server"));
  StopServer();
  operator_.reset();
  StartServer();  // The lock goes with its server.
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::ListAgentsResponse agents;
  EXPECT_TRUE(Operator().ListAgents(&ctx, v1::ListAgentsRequest(), &agents).ok());
}

TEST_F(ServerTest, ServerRestartMidJobCompletesTheJob) {
  FakeAgent::Options hold;
  hold.hold_writes = true;
  for (int i = 0; i < 3; ++i) AddAgent(i, hold);
  auto job = CreateJob(Operator(), WriteSpec());
  ASSERT_OK(job);
  // The default concurrency (10) takes agent-0's ten devices first.
  ASSERT_TRUE(agents_[0]->WaitForHeld(10));
  StopServer();
  for (auto& a : agents_) {
    EXPECT_NE(a->WaitDone().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  }
  agents_.clear();
  operator_.reset();

  StartServer();
  for (int i = 0; i < 3; ++i) AddAgent(i);
  WatchResult w = Watch(Operator(), job->id());
  EXPECT_TRUE(w.status.ok()) << w.status.error_message();
  v1::Job done = GetJob(job->id());
  EXPECT_EQ(done.state(), v1::JOB_COMPLETED);
  EXPECT_EQ(done.counts().succeeded(), 30u);
  int interrupted = 0;
  for (const auto& x : done.executions()) {
    EXPECT_EQ(x.attempts(), 1u) << "an interrupted attempt is re-run, not counted twice";
    for (const auto& t : x.history()) {
      // The restarted server found the ten in-flight executions with their
      // agents not yet back, and waited for them.
      if (t.from() == v1::IN_PROGRESS && t.to() == v1::QUEUED &&
          absl::StrContains(t.reason(), "waiting up to")) {
        ++interrupted;
      }
    }
  }
  EXPECT_EQ(interrupted, 10);
}

// ---- devices and relayed calls ----

TEST_F(ServerTest, DeviceReferencesUpdatesAndRelayedCredentialCalls) {
  AddAgent(0);
  AddAgent(1);
  const std::string imei = agents_[0]->Imei(2);
  auto get = [&](const v1::DeviceRef& ref) -> absl::StatusOr<v1::Device> {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::GetDeviceRequest req;
    *req.mutable_device() = ref;
    v1::Device d;
    grpc::Status s = Operator().GetDevice(&ctx, req, &d);
    if (!s.ok()) return FromGrpcStatus(s);
    return d;
  };
  v1::DeviceRef by_port;
  by_port.mutable_port()->set_agent("agent-0");
  by_port.mutable_port()->set_port("modem2");
  ASSERT_OK_AND_ASSIGN(v1::Device d, get(by_port));
  EXPECT_EQ(d.imei(), imei);
  EXPECT_EQ(d.model(), "nRF9151");
  v1::DeviceRef by_label;
  by_label.set_alias("slot=2");
  EXPECT_THAT(get(by_label),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("ambiguous")));
  v1::DeviceRef missing;
  missing.set_alias("nope");
  EXPECT_THAT(get(missing), StatusIs(absl::StatusCode::kNotFound));
  v1::DeviceRef bad;
  bad.set_imei("12");
  EXPECT_THAT(get(bad), StatusIs(absl::StatusCode::kInvalidArgument));

  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::UpdateDeviceRequest req;
    req.mutable_device()->set_imei(imei);
    (*req.mutable_set_labels())["owner"] = "qa";
    (*req.mutable_set_labels())["rack"] = "99";
    req.set_has_alias(true);
    req.set_alias("bench-a");
    v1::Device updated;
    ASSERT_TRUE(Operator().UpdateDevice(&ctx, req, &updated).ok());
    EXPECT_EQ(updated.labels().at("rack"), "99") << "server labels win";
    EXPECT_EQ(updated.alias(), "bench-a");
  }
  v1::DeviceRef by_alias;
  by_alias.set_alias("bench-a");
  ASSERT_OK_AND_ASSIGN(d, get(by_alias));
  EXPECT_EQ(d.imei(), imei);
  v1::DeviceRef by_unique_label;
  by_unique_label.set_alias("owner=qa");
  ASSERT_OK_AND_ASSIGN(d, get(by_unique_label));
  EXPECT_EQ(d.imei(), imei);

  // A single write by alias; the PSK never shows up in the audit log.
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::DeviceWriteCredentialRequest req;
    req.mutable_device()->set_alias("bench-a");
    req.mutable_request()->set_sec_tag(7);
    req.mutable_request()->set_type(v1::PSK);
    req.mutable_request()->set_content("0123456789abcdef0123456789abcdef");
    v1::WriteReport rep;
    ASSERT_TRUE(Operator().WriteCredential(&ctx, req, &rep).ok());
    EXPECT_FALSE(rep.skipped());
  }
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::DeviceReadCredentialRequest req;
    req.mutable_device()->set_imei(imei);
    req.mutable_request()->set_sec_tag(7);
    req.mutable_request()->set_type(v1::PSK);
    v1::ReadCredentialResponse resp;
    EXPECT_EQ(Operator().ReadCredential(&ctx, req, &resp).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::DeviceListCredentialsRequest req;
    req.mutable_device()->set_imei(imei);
    v1::ListCredentialsResponse resp;
    ASSERT_TRUE(Operator().ListCredentials(&ctx, req, &resp).ok());
    ASSERT_THAT(resp.entries(), SizeIs(1));
    EXPECT_EQ(resp.entries(0).type(), v1::PSK);
  }
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::DeviceDeleteCredentialRequest req;
    req.mutable_device()->set_imei(imei);
    req.mutable_request()->set_sec_tag(7);
    req.mutable_request()->set_type(v1::PSK);
    v1::DeleteCredentialResponse resp;
    ASSERT_TRUE(Operator().DeleteCredential(&ctx, req, &resp).ok());
  }
  ASSERT_OK_AND_ASSIGN(d, get(by_alias));
  EXPECT_THAT(d.credentials(), SizeIs(0));
  for (const char* action :
       {"WriteCredential", "ReadCredential", "DeleteCredential", "UpdateDevice"}) {
    auto records = Audit(action);
    EXPECT_THAT(records, Not(SizeIs(0))) << action;
    for (const auto& r : records) {
      EXPECT_THAT(r.detail(), Not(HasSubstr("0123456789abcdef"))) << action;
      EXPECT_EQ(r.principal(), "alice");
    }
  }

  // Offline devices are refused, not queued.
  agents_[1]->Disconnect();
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::DeviceExecuteRequest req;
  req.mutable_device()->set_imei(agents_[1]->Imei(0));
  req.mutable_request()->set_command("AT");
  v1::AtResult res;
  grpc::Status s = Operator().Execute(&ctx, req, &res);
  // Depending on whether the server has processed the disconnect yet, the
  // device is offline or its agent's stream is gone: UNAVAILABLE either way.
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(s.error_message(),
              AnyOf(HasSubstr("offline"), HasSubstr("disconnected"), HasSubstr("not connected")));
}

TEST_F(ServerTest, GenerateKeyWithSignWritesACertificateFromTheServerCa) {
  AddAgent(0);
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::DeviceGenerateKeyRequest req;
  req.mutable_device()->set_imei(agents_[0]->Imei(1));
  req.mutable_request()->set_sec_tag(16842753);
  req.set_sign(true);
  req.set_validity_days(30);
  v1::DeviceGenerateKeyResponse resp;
  grpc::Status s = Operator().GenerateKey(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_FALSE(resp.csr().csr_der().empty());
  EXPECT_OK(pki::VerifyCertificate(signing_ca_.cert_pem, resp.certificate_pem(), absl::Now()));
  EXPECT_EQ(resp.write().sha256(), pki::Sha256Hex(resp.certificate_pem()));
  auto creds = bank_->CredentialsOf(agents_[0]->Imei(1));
  ASSERT_EQ(creds.count(std::make_pair(16842753u, 1)), 1u);
  EXPECT_EQ(creds[std::make_pair(16842753u, 1)].content, resp.certificate_pem());
  // The server names the subject (no CN asked for: the IMEI), nothing else.
  ASSERT_OK_AND_ASSIGN(pki::CertificateInfo info, pki::ParseCertificate(resp.certificate_pem()));
  EXPECT_EQ(info.subject, "CN=" + agents_[0]->Imei(1));
  EXPECT_TRUE(info.organizational_units.empty());

  // Attributes that ask for a role are refused before the modem is touched.
  grpc::ClientContext ctx2;
  SetDeadline(&ctx2);
  req.mutable_request()->set_attributes("CN=eve,OU=admin");
  s = Operator().GenerateKey(&ctx2, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << s.error_message();
  EXPECT_THAT(s.error_message(), HasSubstr("OU"));
}

TEST_F(ServerTest, KeygenAndSignJobAcrossDevices) {
  FakeAgent::Options o;
  o.ports = 4;
  AddAgent(0, o);
  v1::JobSpec spec;
  spec.set_name("keygen");
  spec.mutable_keygen_and_sign()->set_sec_tag(42);
  spec.mutable_keygen_and_sign()->set_attributes("CN={imei}");
  spec.mutable_keygen_and_sign()->set_write_ca(true);
  spec.mutable_selector()->set_all(true);
  v1::Job job = RunJob(spec);
  EXPECT_EQ(job.counts().succeeded(), 4u);
  for (const auto& imei : agents_[0]->Imeis()) {
    auto creds = bank_->CredentialsOf(imei);
    ASSERT_EQ(creds.count(std::make_pair(42u, 0)), 1u);
    EXPECT_EQ(creds[std::make_pair(42u, 0)].content, signing_ca_.cert_pem);
    ASSERT_EQ(creds.count(std::make_pair(42u, 1)), 1u);
    EXPECT_OK(pki::VerifyCertificate(signing_ca_.cert_pem, creds[std::make_pair(42u, 1)].content,
                                     absl::Now()));
  }
}

TEST_F(ServerTest, LeasesByDeviceRefAndAggregatedListing) {
  AddAgent(0);
  AddAgent(1);
  auto acquire = [&](const std::string& imei) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::DeviceAcquireLeaseRequest req;
    req.mutable_device()->set_imei(imei);
    req.set_reason("debugging");
    v1::Lease lease;
    grpc::Status s = Operator().AcquireLease(&ctx, req, &lease);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return lease;
  };
  v1::Lease a = acquire(agents_[0]->Imei(4));
  EXPECT_EQ(a.owner(), "alice");
  EXPECT_EQ(a.agent(), "agent-0");
  EXPECT_EQ(a.imei(), agents_[0]->Imei(4));
  acquire(agents_[1]->Imei(0));
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::ListLeasesResponse resp;
    ASSERT_TRUE(Operator().ListLeases(&ctx, v1::ListLeasesRequest(), &resp).ok());
    ASSERT_THAT(resp.leases(), SizeIs(2));
    std::set<std::string> imeis;
    for (const auto& l : resp.leases()) imeis.insert(l.imei());
    EXPECT_EQ(imeis, (std::set<std::string>{agents_[0]->Imei(4), agents_[1]->Imei(0)}));
  }
  // Someone else is refused by the agent, naming the holder.
  auto bob = Client("bob", "operator");
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::DeviceExecuteRequest req;
  req.mutable_device()->set_imei(agents_[0]->Imei(4));
  req.mutable_request()->set_command("AT+CFUN=4");
  v1::AtResult res;
  grpc::Status s = bob->Execute(&ctx, req, &res);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(s.error_message(), HasSubstr("alice"));
  // The admin may force it free.
  auto admin = Client("root", "admin");
  grpc::ClientContext ctx2;
  SetDeadline(&ctx2);
  v1::DeviceReleaseLeaseRequest rel;
  rel.mutable_device()->set_imei(agents_[0]->Imei(4));
  rel.set_force(true);
  v1::ReleaseLeaseResponse released;
  ASSERT_TRUE(admin->ReleaseLease(&ctx2, rel, &released).ok());
  EXPECT_EQ(released.lease().owner(), "alice");
}

TEST_F(ServerTest, ConsoleIsRelayedToTheDevicesAgent) {
  AddAgent(0);
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  auto stream = Operator().Console(&ctx);
  v1::ConsoleIn open;
  open.mutable_open()->mutable_device()->set_imei(agents_[0]->Imei(5));
  open.mutable_open()->set_write(true);
  ASSERT_TRUE(stream->Write(open));
  v1::ConsoleOut out;
  ASSERT_TRUE(stream->Read(&out));
  ASSERT_TRUE(out.has_event());
  EXPECT_EQ(out.event().kind(), v1::ConsoleEvent::OPENED);
  EXPECT_TRUE(out.event().writable());
  EXPECT_EQ(out.event().detail(), "port modem5");
  v1::ConsoleIn data;
  data.set_data("AT+CFUN?\r");
  ASSERT_TRUE(stream->Write(data));
  ASSERT_TRUE(stream->Read(&out));
  EXPECT_EQ(out.data(), "echo:AT+CFUN?\r");
  stream->WritesDone();
  while (stream->Read(&out)) {
  }
  EXPECT_TRUE(stream->Finish().ok());
  EXPECT_EQ(agents_[0]->ConsoleInput(), "AT+CFUN?\r");

  // Automation gets no console.
  auto automation = Client("ci-bot", "automation");
  grpc::ClientContext ctx2;
  SetDeadline(&ctx2);
  auto denied = automation->Console(&ctx2);
  denied->Write(open);
  while (denied->Read(&out)) {
  }
  EXPECT_EQ(denied->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

TEST_F(ServerTest, JobSelectorsAndValidation) {
  AddAgent(0);
  AddAgent(1);
  v1::JobSpec spec = WriteSpec();
  spec.mutable_selector()->set_all(false);
  EXPECT_THAT(CreateJob(Operator(), spec),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("selector is empty")));
  (*spec.mutable_selector()->mutable_labels())["rack"] = "1";
  spec.set_dry_run(true);
  ASSERT_OK_AND_ASSIGN(v1::Job job, CreateJob(Operator(), spec));
  EXPECT_EQ(job.counts().total(), 10u);
  spec.mutable_selector()->add_imeis("359999999999999");
  EXPECT_THAT(CreateJob(Operator(), spec), StatusIs(absl::StatusCode::kNotFound));
  spec.mutable_selector()->set_imeis(0, agents_[0]->Imei(0));  // On rack 0, not rack 1.
  EXPECT_THAT(CreateJob(Operator(), spec),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("matches no device")));
  v1::JobSpec bad = WriteSpec();
  bad.mutable_write()->set_content(
      "-----BEGIN CERTIFICATE-----\nnot a cert\n-----END CERTIFICATE-----");
  EXPECT_THAT(CreateJob(Operator(), bad), StatusIs(absl::StatusCode::kInvalidArgument));
  // Idempotency key: the same job comes back.
  v1::JobSpec keyed = WriteSpec();
  keyed.set_dry_run(true);
  keyed.set_idempotency_key("release-42");
  ASSERT_OK_AND_ASSIGN(v1::Job a, CreateJob(Operator(), keyed));
  ASSERT_OK_AND_ASSIGN(v1::Job b, CreateJob(Operator(), keyed));
  EXPECT_EQ(a.id(), b.id());
  // A secret never comes back in the spec.
  v1::JobSpec secret;
  secret.mutable_write()->set_type(v1::PSK);
  secret.mutable_write()->set_sec_tag(3);
  secret.mutable_write()->set_content("00112233445566778899");
  secret.mutable_selector()->set_all(true);
  secret.set_dry_run(true);
  ASSERT_OK_AND_ASSIGN(v1::Job s, CreateJob(Operator(), secret));
  EXPECT_EQ(s.spec().write().content(), "<redacted 20 bytes>");
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::ListJobsRequest list;
  v1::ListJobsResponse jobs;
  ASSERT_TRUE(Operator().ListJobs(&ctx, list, &jobs).ok());
  ASSERT_THAT(jobs.jobs(), SizeIs(3));
  EXPECT_EQ(jobs.jobs(0).id(), s.id());
  for (const auto& j : jobs.jobs()) {
    EXPECT_THAT(j.spec().write().content(), Not(HasSubstr("00112233445566778899")));
  }
}

TEST_F(ServerTest, AtScriptSecretsStayHiddenAndJobPushesAreAuditedPerBoard) {
  constexpr char kPsk[] = "00112233445566778899aabbccddeeff";
  FakeAgent::Options o;
  o.ports = 2;
  AddAgent(0, o);
  v1::JobSpec spec;
  spec.set_name("psk by script");
  spec.mutable_at_script()->add_commands("AT+CFUN=4");
  spec.mutable_at_script()->add_commands(absl::StrCat("AT%CMNG=0,7,3,\"", kPsk, "\""));
  spec.mutable_selector()->set_all(true);
  ASSERT_OK_AND_ASSIGN(v1::Job created, CreateJob(Operator(), spec));
  EXPECT_THAT(created.DebugString(), Not(HasSubstr(kPsk)));
  WatchResult w = Watch(Operator(), created.id());
  ASSERT_TRUE(w.status.ok()) << w.status.error_message();
  ASSERT_FALSE(w.events.empty());
  for (const auto& ev : w.events) EXPECT_THAT(ev.DebugString(), Not(HasSubstr(kPsk)));
  v1::Job job = GetJob(created.id());
  EXPECT_EQ(job.counts().succeeded(), 2u);
  EXPECT_THAT(job.DebugString(), Not(HasSubstr(kPsk)));
  EXPECT_THAT(job.spec().at_script().commands(1), HasSubstr("<redacted 32 bytes>"));
  EXPECT_THAT(Report(job.id(), v1::REPORT_FORMAT_JSON), Not(HasSubstr(kPsk)));
  EXPECT_THAT(Report(job.id(), v1::REPORT_FORMAT_CSV), Not(HasSubstr(kPsk)));
  {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::ListJobsResponse jobs;
    ASSERT_TRUE(Operator().ListJobs(&ctx, v1::ListJobsRequest(), &jobs).ok());
    EXPECT_THAT(jobs.DebugString(), Not(HasSubstr(kPsk)));
  }
  // One audit record per board for the job's outcome, found by IMEI.
  for (const std::string& imei : agents_[0]->Imeis()) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx);
    v1::QueryAuditRequest req;
    req.set_imei(imei);
    req.set_action("JobExecution");
    v1::QueryAuditResponse resp;
    ASSERT_TRUE(Operator().QueryAudit(&ctx, req, &resp).ok());
    ASSERT_THAT(resp.records(), SizeIs(1)) << imei;
    const v1::AuditRecord& r = resp.records(0);
    EXPECT_EQ(r.principal(), "alice");
    EXPECT_EQ(r.role(), v1::ROLE_OPERATOR);
    EXPECT_EQ(r.result(), "OK");
    EXPECT_THAT(r.target(), HasSubstr(imei));
    EXPECT_THAT(r.detail(),
                AllOf(HasSubstr(job.id()), HasSubstr("at-script"), HasSubstr("SUCCEEDED")));
  }
  for (const auto& r : Audit("")) EXPECT_THAT(r.DebugString(), Not(HasSubstr(kPsk)));
}

// GET on a plain loopback socket; returns the whole HTTP response.
std::string HttpGet(int port, const std::string& path) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  boost::system::error_code ec;
  socket.connect({boost::asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(port)}, ec);
  if (ec) return "connect: " + ec.message();
  const std::string request = absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: x\r\n\r\n");
  boost::asio::write(socket, boost::asio::buffer(request), ec);
  std::string out;
  char buf[4096];
  for (;;) {
    size_t n = socket.read_some(boost::asio::buffer(buf), ec);
    out.append(buf, n);
    if (ec) break;  // The server closes after the response.
  }
  return out;
}

TEST_F(ServerTest, PrometheusEndpointCountsJobsExecutionsAndAgents) {
  StopServer();
  options_.metrics_listen = "127.0.0.1:0";
  StartServer();
  ASSERT_GT(server_->metrics_port(), 0);
  FakeAgent::Options o;
  o.ports = 3;
  o.hold_writes = true;
  FakeAgent* agent = AddAgent(0, o);
  ASSERT_OK_AND_ASSIGN(v1::Job job, CreateJob(Operator(), WriteSpec()));
  // The three writes are held by the agent: in progress. (Released before
  // they arrived, a later one would be held for ever.)
  ASSERT_TRUE(agent->WaitForHeld(3));
  std::string page = HttpGet(server_->metrics_port(), "/metrics");
  EXPECT_THAT(page, HasSubstr("HTTP/1.1 200 OK"));
  EXPECT_THAT(page, HasSubstr("Content-Type: text/plain; version=0.0.4"));
  EXPECT_THAT(page, HasSubstr("\natbridge_jobs_active 1\n"));
  EXPECT_THAT(page, HasSubstr("\natbridge_executions{state=\"in_progress\"} 3\n"));
  EXPECT_THAT(page, HasSubstr("\natbridge_agents_connected 1\n"));
  EXPECT_THAT(page, HasSubstr("\natbridge_agents 1\n"));
  agent->ReleaseHeld();
  WatchResult w = Watch(Operator(), job.id());
  ASSERT_TRUE(w.status.ok()) << w.status.error_message();
  page = HttpGet(server_->metrics_port(), "/metrics");
  EXPECT_THAT(page, HasSubstr("\natbridge_jobs_active 0\n"));
  EXPECT_THAT(HttpGet(server_->metrics_port(), "/nope"), HasSubstr("404 Not Found"));
}

}  // namespace
}  // namespace atbridge::server
