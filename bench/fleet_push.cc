// Fleet push through one atbridge-server: N agents x M simulated modems.
// Measures, in one run:
//   push    — a job writing a 1.2 KB root CA to every modem (each execution:
//             CFUN check, compare, write, verify through the agent);
//   verify  — the same job again: every modem compares its stored SHA-256
//             and is SKIPPED (the verification pass of a fleet);
// against the sequential estimate of doing the same with a local tool on each
// board in turn (one direct-pty transaction, measured here, times N).
//
//   atbridge-bench-fleet [--agents 10] [--modems 100] [--concurrency 200]
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "atbridge/v1/provisioning.grpc.pb.h"
#include "bench/bench_util.h"
#include "common/grpc_status.h"
#include "common/pki/pki.h"
#include "common/proto_time.h"
#include "common/status/errors.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace atbridge::bench {
namespace {

using testing::Subprocess;

std::string Amazon() {
  std::string pem = testing::ReadFileOrDie(testing::TestDataPath("pem/AmazonRootCA1.pem"));
  while (!pem.empty() && pem.back() == '\n') pem.pop_back();
  return pem;
}

struct JobRun {
  absl::Duration elapsed;
  v1::Job job;
};

absl::StatusOr<JobRun> RunJob(v1::Provisioning::Stub& stub, const v1::JobSpec& spec) {
  absl::Time t0 = absl::Now();
  grpc::ClientContext cctx;
  cctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  v1::CreateJobRequest creq;
  *creq.mutable_spec() = spec;
  v1::Job job;
  grpc::Status s = stub.CreateJob(&cctx, creq, &job);
  if (!s.ok()) return Annotate(FromGrpcStatus(s), "CreateJob");
  grpc::ClientContext wctx;
  wctx.set_deadline(std::chrono::system_clock::now() + std::chrono::minutes(10));
  v1::WatchJobRequest wreq;
  wreq.set_job_id(job.id());
  auto reader = stub.WatchJob(&wctx, wreq);
  v1::JobEvent ev;
  while (reader->Read(&ev)) {
  }
  s = reader->Finish();
  JobRun run;
  run.elapsed = absl::Now() - t0;
  if (!s.ok()) return Annotate(FromGrpcStatus(s), "WatchJob");
  grpc::ClientContext gctx;
  gctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  v1::GetJobRequest greq;
  greq.set_job_id(job.id());
  greq.set_include_executions(true);
  s = stub.GetJob(&gctx, greq, &run.job);
  if (!s.ok()) return Annotate(FromGrpcStatus(s), "GetJob");
  return run;
}

int Run(int agents, int modems, int concurrency, int baud, const std::string& bin_dir) {
  testing::TempDir dir;
  auto pki = MakeBenchPki();
  auto server_tls = pki->Issue(dir.path(), "atbridge-server", "server", true);
  auto client_tls = pki->Issue(dir.path(), "bench-operator", "operator", false);
  if (!server_tls.ok() || !client_tls.ok()) return 1;
  Subprocess server;
  if (!server
           .Start({bin_dir + "/atbridge-server", "--listen", "127.0.0.1:0", "--tls-cert",
                   server_tls->cert_file, "--tls-key", server_tls->key_file, "--tls-ca",
                   server_tls->ca_file, "--state-dir", dir.File("state")})
           .ok()) {
    return 1;
  }
  auto ready = server.WaitForLine("atbridge-server ready on ");
  if (!ready.ok()) {
    std::fprintf(stderr, "%s\n", ready.status().ToString().c_str());
    return 1;
  }
  const std::string target = ready->substr(std::string("atbridge-server ready on ").size());

  absl::Time setup0 = absl::Now();
  std::vector<std::unique_ptr<Subprocess>> procs;
  for (int k = 0; k < agents; ++k) {
    std::string name = absl::StrCat("lab", k);
    std::string links = dir.File(absl::StrCat("sim", k));
    auto agent_tls = pki->Issue(dir.path(), name, "agent", true);
    // One spare modem on the first simulator for the direct baseline.
    int count = modems + (k == 0 ? 1 : 0);
    auto sim = std::make_unique<Subprocess>();
    if (!sim->Start({bin_dir + "/atbridge-sim", "--count", std::to_string(count), "--link-dir",
                     links, "--baud", std::to_string(baud), "--log-level", "warning"})
             .ok() ||
        !sim->WaitForLine("atbridge-sim ready").ok()) {
      std::fprintf(stderr, "sim %d did not start\n", k);
      return 1;
    }
    std::vector<std::string> argv = {bin_dir + "/atbridge-agent",
                                     "--name",
                                     name,
                                     "--listen",
                                     "127.0.0.1:0",
                                     "--ca",
                                     agent_tls->ca_file,
                                     "--cert",
                                     agent_tls->cert_file,
                                     "--key",
                                     agent_tls->key_file,
                                     "--server",
                                     target,
                                     "--log-level",
                                     "warning"};
    for (int m = 0; m < modems; ++m) {
      argv.push_back("--port");
      argv.push_back(absl::StrCat("m", m, "=", links, "/modem", m,
                                  ",flow=rtscts,baud=", baud > 0 ? baud : 115200));
    }
    auto agent = std::make_unique<Subprocess>();
    if (!agent->Start(argv).ok() || !agent->WaitForLine("atbridge-agent ready on ").ok()) {
      std::fprintf(stderr, "agent %d did not start: %s\n", k, agent->Output().c_str());
      return 1;
    }
    procs.push_back(std::move(sim));
    procs.push_back(std::move(agent));
  }
  for (int k = 0; k < agents; ++k) {
    std::string needle = absl::StrCat("agent lab", k, " connected");
    if (!server
             .WaitForLineMatching(
                 [&](const std::string& l) { return absl::StrContains(l, needle); },
                 absl::Seconds(120))
             .ok()) {
      std::fprintf(stderr, "lab%d never connected\n", k);
      return 1;
    }
  }
  absl::Duration setup = absl::Now() - setup0;
  const int total = agents * modems;
  const std::string content = Amazon();
  const std::string sha = pki::Sha256Hex(content);

  // Direct baseline on the spare modem: the same transaction by a local tool.
  absl::Duration direct;
  {
    auto c = RawAtClient::OpenPty(dir.File("sim0") + absl::StrCat("/modem", modems));
    if (!c.ok()) return 1;
    std::vector<absl::Duration> samples;
    for (int i = 0; i < 20; ++i) {
      absl::Time t0 = absl::Now();
      for (const std::string& cmd :
           {std::string("AT+CFUN?"), std::string("AT%CMNG=1,20,0"),
            absl::StrCat("AT%CMNG=0,20,0,\"", content, "\""), std::string("AT%CMNG=1,20,0")}) {
        if (!c->RoundTrip(cmd).ok()) return 1;
      }
      samples.push_back(absl::Now() - t0);
    }
    direct = Summarize(samples).p50;
  }

  auto material = tls::LoadTlsMaterial(*client_tls);
  auto stub = v1::Provisioning::NewStub(tls::CreateChannel(target, *material));
  v1::JobSpec spec;
  spec.set_name("fleet bench");
  spec.mutable_write()->set_sec_tag(20);
  spec.mutable_write()->set_type(v1::ROOT_CA_CERT);
  spec.mutable_write()->set_content(content);
  spec.mutable_selector()->set_all(true);
  spec.mutable_rollout()->set_max_concurrency(static_cast<uint32_t>(concurrency));
  *spec.mutable_execution_timeout() = ToProtoDuration(absl::Seconds(60));

  std::printf(
      "fleet: %d agents x %d simulated modems = %d devices at %d baud, concurrency %d "
      "(setup %.1f s)\n",
      agents, modems, total, baud, concurrency, absl::ToDoubleSeconds(setup));
  std::printf("%-34s %10s %12s %14s %12s\n", "pass", "seconds", "devices/s", "ok/total",
              "vs serial");
  const double serial_s = absl::ToDoubleSeconds(direct) * total;
  for (const char* pass : {"push (write + verify)", "verify again (all SKIPPED)"}) {
    auto run = RunJob(*stub, spec);
    if (!run.ok()) {
      std::fprintf(stderr, "%s: %s\n", pass, run.status().ToString().c_str());
      return 1;
    }
    int ok = 0;
    for (const auto& e : run->job.executions()) {
      bool verified = e.sha256() == sha || e.state() == v1::SKIPPED;
      if ((e.state() == v1::SUCCEEDED || e.state() == v1::SKIPPED) && verified) ++ok;
    }
    double secs = absl::ToDoubleSeconds(run->elapsed);
    std::printf("%-34s %10.2f %12.1f %9d/%-4d %11.1fx\n", pass, secs, total / secs, ok, total,
                serial_s / secs);
    if (ok != total) {
      std::fprintf(stderr, "%d of %d executions did not verify\n", total - ok, total);
      return 1;
    }
  }
  std::printf("serial estimate: one direct-pty transaction %.3f ms x %d devices = %.2f s\n",
              absl::ToDoubleMilliseconds(direct), total, serial_s);
  return 0;
}

}  // namespace
}  // namespace atbridge::bench

namespace {

int RealMain(int argc, char** argv) {
  CLI::App app{"Fleet push and verification through one atbridge-server"};
  int agents = 10;
  int modems = 100;
  int concurrency = 200;
  int baud = 115200;
  std::string bin_dir = ATBRIDGE_BIN_DIR;
  app.add_option("--agents", agents, "agents (each with its own simulator)")->capture_default_str();
  app.add_option("--modems", modems, "simulated modems per agent")->capture_default_str();
  app.add_option("--concurrency", concurrency, "job max_concurrency")->capture_default_str();
  app.add_option("--baud", baud, "simulated UART speed (0: unpaced)")->capture_default_str();
  app.add_option("--bin-dir", bin_dir, "where the atbridge binaries are")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return atbridge::bench::Run(agents, modems, concurrency, baud, bin_dir);
}

}  // namespace

int main(int argc, char** argv) {
  // The last resort for anything a library throws (CLI11, yaml-cpp).
  try {
    return RealMain(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
