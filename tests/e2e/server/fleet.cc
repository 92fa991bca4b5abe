#include "tests/e2e/server/fleet.h"

#include <signal.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/pki/pki.h"
#include "common/tls/credentials.h"

namespace atbridge::testing {

namespace {

void SetDeadline(grpc::ClientContext* ctx, absl::Duration d = absl::Seconds(30)) {
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(absl::ToInt64Milliseconds(d)));
}

}  // namespace

std::string AmazonRootCa1() {
  std::string pem = ReadFileOrDie(TestDataPath("pem/AmazonRootCA1.pem"));
  while (!pem.empty() && pem.back() == '\n') pem.pop_back();
  return pem;
}

Fleet::Fleet() {
  TestPki::WriteFiles(pki_.Server("atbridge-server", "server"), dir_.path(), "server");
  // Modem certificates come from their own CA, never the mTLS one
  // (docs/security.md).
  auto modem_ca = pki::CreateCa({.common_name = "fleet modem CA"});
  if (modem_ca.ok()) {
    dir_.WriteFile("modem-ca.pem", modem_ca->cert_pem);
    dir_.WriteFile("modem-ca.key", modem_ca->key_pem);
  }
}

Fleet::~Fleet() {
  for (auto& a : agents_) {
    if (a.agent) a.agent->Kill();
  }
  if (server_) server_->Kill();
  for (auto& a : agents_) {
    if (a.sim) a.sim->Kill();
  }
}

absl::Status Fleet::StartServer() {
  server_ = std::make_unique<Subprocess>();
  std::string listen = absl::StrCat("127.0.0.1:", server_port_);
  absl::Status s =
      server_->Start({BinaryPath("atbridge-server"), "--listen", listen, "--tls-cert",
                      dir_.File("server.pem"), "--tls-key", dir_.File("server.key"), "--tls-ca",
                      dir_.File("ca.pem"), "--state-dir", dir_.File("state"), "--signing-ca-cert",
                      dir_.File("modem-ca.pem"), "--signing-ca-key", dir_.File("modem-ca.key")});
  if (!s.ok()) return s;
  auto line = server_->WaitForLine("atbridge-server ready on ");
  if (!line.ok()) return line.status();
  int port = 0;
  if (!absl::SimpleAtoi(line->substr(line->rfind(':') + 1), &port)) {
    return absl::InternalError(*line);
  }
  server_port_ = port;
  // A fresh channel: one still connected to a killed server fails its first
  // call with "Broken pipe" before it notices.
  operator_ = v1::Provisioning::NewStub(tls::CreateChannel(absl::StrCat("127.0.0.1:", server_port_),
                                                           pki_.Client("olga", "operator")));
  return absl::OkStatus();
}

void Fleet::KillServer() {
  if (server_) server_->Kill();
}

absl::Status Fleet::WaitForHello(const std::string& agent, size_t seen_before) {
  const std::string needle = absl::StrCat("agent ", agent, " connected");
  size_t seen = 0;
  return server_
      ->WaitForLineMatching(
          [&](const std::string& line) {
            return absl::StrContains(line, needle) && ++seen > seen_before;
          },
          absl::Seconds(60))
      .status();
}

absl::Status Fleet::StartAgent(int k, int modems, const std::vector<std::string>& sim_args,
                               const std::string& port_options) {
  if (agents_.size() <= static_cast<size_t>(k)) agents_.resize(static_cast<size_t>(k) + 1);
  AgentProc& a = agents_[static_cast<size_t>(k)];
  const std::string name = absl::StrCat("lab", k);
  const std::string links = dir_.File(absl::StrCat("sim", k));
  if (!a.sim) {
    a.sim = std::make_unique<Subprocess>();
    std::vector<std::string> argv = {BinaryPath("atbridge-sim"),
                                     "--count",
                                     std::to_string(modems),
                                     "--link-dir",
                                     links,
                                     "--log-level",
                                     "warning"};
    argv.insert(argv.end(), sim_args.begin(), sim_args.end());
    if (absl::Status s = a.sim->Start(argv); !s.ok()) return s;
    if (auto s = a.sim->WaitForLine("atbridge-sim ready"); !s.ok()) return s.status();
    TestPki::WriteFiles(pki_.Server(name, "agent"), dir_.path(), name);
    a.modems = modems;
    a.port_options = port_options;
  }
  // Hellos the server has already logged for this agent (restarts add one).
  const std::string needle = absl::StrCat("agent ", name, " connected");
  size_t before = 0;
  for (const auto& l : server_->Lines()) {
    if (absl::StrContains(l, needle)) ++before;
  }
  std::vector<std::string> argv = {BinaryPath("atbridge-agent"),
                                   "--name",
                                   name,
                                   "--listen",
                                   "127.0.0.1:0",
                                   "--ca",
                                   dir_.File("ca.pem"),
                                   "--cert",
                                   dir_.File(name + ".pem"),
                                   "--key",
                                   dir_.File(name + ".key"),
                                   "--server",
                                   absl::StrCat("127.0.0.1:", server_port_),
                                   "--log-level",
                                   "warning"};
  for (int m = 0; m < a.modems; ++m) {
    argv.push_back("--port");
    argv.push_back(absl::StrCat("m", m, "=", links, "/modem", m, ",", a.port_options));
  }
  a.agent = std::make_unique<Subprocess>();
  if (absl::Status s = a.agent->Start(argv); !s.ok()) return s;
  if (auto s = a.agent->WaitForLine("atbridge-agent ready on "); !s.ok()) return s.status();
  return WaitForHello(name, before);
}

void Fleet::KillAgent(int k) { agents_[static_cast<size_t>(k)].agent->Kill(); }

v1::Provisioning::Stub& Fleet::Operator() { return *operator_; }

absl::StatusOr<v1::Job> Fleet::CreateJob(const v1::JobSpec& spec) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::CreateJobRequest req;
  *req.mutable_spec() = spec;
  v1::Job job;
  grpc::Status s = operator_->CreateJob(&ctx, req, &job);
  if (!s.ok()) return FromGrpcStatus(s);
  return job;
}

Fleet::Watched Fleet::Watch(const std::string& job_id, absl::Duration timeout) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, timeout);
  v1::WatchJobRequest req;
  req.set_job_id(job_id);
  auto reader = operator_->WatchJob(&ctx, req);
  Watched out;
  v1::JobEvent ev;
  while (reader->Read(&ev)) out.events.push_back(ev);
  out.status = reader->Finish();
  return out;
}

absl::StatusOr<v1::Job> Fleet::GetJob(const std::string& job_id) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::GetJobRequest req;
  req.set_job_id(job_id);
  req.set_include_executions(true);
  v1::Job job;
  grpc::Status s = operator_->GetJob(&ctx, req, &job);
  if (!s.ok()) return FromGrpcStatus(s);
  return job;
}

absl::StatusOr<std::string> Fleet::Report(const std::string& job_id, v1::ReportFormat format) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::GetJobReportRequest req;
  req.set_job_id(job_id);
  req.set_format(format);
  v1::JobReport rep;
  grpc::Status s = operator_->GetJobReport(&ctx, req, &rep);
  if (!s.ok()) return FromGrpcStatus(s);
  return rep.content();
}

absl::StatusOr<v1::ListCredentialsResponse> Fleet::LiveCredentials(const std::string& imei) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx);
  v1::DeviceListCredentialsRequest req;
  req.mutable_device()->set_imei(imei);
  v1::ListCredentialsResponse resp;
  grpc::Status s = operator_->ListCredentials(&ctx, req, &resp);
  if (!s.ok()) return FromGrpcStatus(s);
  return resp;
}

}  // namespace atbridge::testing
