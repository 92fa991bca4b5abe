// AT round-trip latency, side by side in one run:
//   direct   — a process writing "AT\r\n" to the simulator's pty itself;
//   ser2net  — the same through ser2net 4 (raw TCP, no TLS) if installed;
//   agent    — Agent.Execute("AT") through atbridge-agent over loopback mTLS,
//              and the same RPC path without the modem (ListLeases) as its floor.
// Reports min/p50/p90/p99/max and what each path adds over direct.
//
//   atbridge-bench-at-latency [--iterations 2000] [--warmup 200]
#include <grpcpp/grpcpp.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "atbridge/v1/agent.grpc.pb.h"
#include "bench/bench_util.h"
#include "common/grpc_status.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace atbridge::bench {
namespace {

using testing::Subprocess;

struct Row {
  std::string path;
  Stats stats;
};

template <typename Fn>
absl::StatusOr<Stats> Measure(int warmup, int iterations, Fn&& once) {
  for (int i = 0; i < warmup; ++i) {
    if (absl::Status s = once(); !s.ok()) return s;
  }
  std::vector<absl::Duration> samples;
  samples.reserve(static_cast<size_t>(iterations));
  for (int i = 0; i < iterations; ++i) {
    absl::Time t0 = absl::Now();
    if (absl::Status s = once(); !s.ok()) return s;
    samples.push_back(absl::Now() - t0);
  }
  return Summarize(std::move(samples));
}

std::string Ser2netPath() {
  for (const char* p : {"/usr/sbin/ser2net", "/usr/bin/ser2net"}) {
    if (access(p, X_OK) == 0) return p;
  }
  return "";
}

int Run(int iterations, int warmup, const std::string& bin_dir) {
  testing::TempDir dir;
  auto pki = MakeBenchPki();
  if (!pki.ok()) {
    std::fprintf(stderr, "pki: %s\n", pki.status().ToString().c_str());
    return 1;
  }
  auto agent_tls = pki->Issue(dir.path(), "bench-agent", "agent", true);
  auto client_tls = pki->Issue(dir.path(), "bench-client", "operator", false);
  if (!agent_tls.ok() || !client_tls.ok()) {
    std::fprintf(stderr, "certificates failed\n");
    return 1;
  }

  Subprocess sim;
  std::string links = dir.File("sim");
  if (auto s = sim.Start({bin_dir + "/atbridge-sim", "--count", "3", "--link-dir", links,
                          "--log-level", "warning"});
      !s.ok() || !sim.WaitForLine("atbridge-sim ready").ok()) {
    std::fprintf(stderr, "atbridge-sim did not start: %s\n", sim.Output().c_str());
    return 1;
  }
  Subprocess agent;
  if (auto s = agent.Start({bin_dir + "/atbridge-agent", "--name", "bench-agent", "--listen",
                            "127.0.0.1:0", "--ca", agent_tls->ca_file, "--cert",
                            agent_tls->cert_file, "--key", agent_tls->key_file, "--port",
                            "m2=" + links + "/modem2,flow=rtscts", "--log-level", "warning"});
      !s.ok()) {
    std::fprintf(stderr, "atbridge-agent: %s\n", s.ToString().c_str());
    return 1;
  }
  auto ready = agent.WaitForLine("atbridge-agent ready on ");
  if (!ready.ok()) {
    std::fprintf(stderr, "%s\n", ready.status().ToString().c_str());
    return 1;
  }
  int agent_port = 0;
  (void)absl::SimpleAtoi(ready->substr(ready->rfind(':') + 1), &agent_port);

  std::vector<Row> rows;
  // direct pty
  {
    auto c = RawAtClient::OpenPty(links + "/modem0");
    if (!c.ok()) {
      std::fprintf(stderr, "%s\n", c.status().ToString().c_str());
      return 1;
    }
    auto st = Measure(warmup, iterations, [&] { return c->RoundTrip("AT").status(); });
    if (!st.ok()) {
      std::fprintf(stderr, "direct: %s\n", st.status().ToString().c_str());
      return 1;
    }
    rows.push_back({"direct pty", *st});
  }
  // ser2net
  Subprocess ser2net;
  absl::StatusOr<int> s2n_port = PickFreeLoopbackPort();
  if (std::string s2n = Ser2netPath(); !s2n.empty() && s2n_port.ok()) {
    const int port = *s2n_port;
    std::string cfg = dir.WriteFile(
        "ser2net.yaml", absl::StrCat("%YAML 1.1\n---\nconnection: &m1\n  accepter: tcp,127.0.0.1,",
                                     port, "\n  connector: serialdev,", links,
                                     "/modem1,115200n81,local\n  options:\n    chardelay: false\n"
                                     "    kickolduser: true\n"));
    if (ser2net.Start({s2n, "-n", "-d", "-c", cfg, "-P", dir.File("ser2net.pid")}).ok()) {
      auto c = RawAtClient::ConnectTcp(port, absl::Seconds(5));
      if (c.ok()) {
        auto st = Measure(warmup, iterations, [&] { return c->RoundTrip("AT").status(); });
        if (st.ok()) {
          rows.push_back({"ser2net (tcp, no TLS)", *st});
        } else {
          std::fprintf(stderr, "ser2net: %s\n", st.status().ToString().c_str());
        }
      } else {
        std::fprintf(stderr, "ser2net: %s\n", c.status().ToString().c_str());
      }
    }
  } else if (!s2n_port.ok()) {
    std::fprintf(stderr, "ser2net: %s\n", s2n_port.status().ToString().c_str());
  } else {
    std::fprintf(stderr, "ser2net not installed: skipping that column\n");
  }
  // agent
  {
    auto material = tls::LoadTlsMaterial(*client_tls);
    auto stub =
        v1::Agent::NewStub(tls::CreateChannel(absl::StrCat("127.0.0.1:", agent_port), *material));
    v1::ExecuteRequest req;
    req.set_port("m2");
    req.set_command("AT");
    auto st = Measure(warmup, iterations, [&]() -> absl::Status {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      v1::AtResult res;
      grpc::Status s = stub->Execute(&ctx, req, &res);
      if (!s.ok()) return FromGrpcStatus(s);
      if (res.final() != v1::FINAL_RESULT_OK) return absl::InternalError("AT did not answer OK");
      return absl::OkStatus();
    });
    if (!st.ok()) {
      std::fprintf(stderr, "agent: %s\n", st.status().ToString().c_str());
      return 1;
    }
    rows.push_back({"atbridge-agent (gRPC, mTLS)", *st});
    // The floor under it: the same RPC path without touching the modem.
    auto floor = Measure(warmup, iterations, [&]() -> absl::Status {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      v1::ListLeasesResponse res;
      grpc::Status s = stub->ListLeases(&ctx, v1::ListLeasesRequest(), &res);
      return FromGrpcStatus(s);
    });
    if (floor.ok()) rows.push_back({"  of which RPC floor (no AT)", *floor});
  }

  const Stats& base = rows.front().stats;
  std::printf("AT round trip, %d iterations after %d warm-up (ms)\n", iterations, warmup);
  std::printf("%-28s %8s %8s %8s %8s %8s  %14s %14s\n", "path", "min", "p50", "p90", "p99", "max",
              "added p50", "added p99");
  for (const Row& r : rows) {
    std::printf("%-28s %8s %8s %8s %8s %8s  %14s %14s\n", r.path.c_str(),
                FormatMs(r.stats.min).c_str(), FormatMs(r.stats.p50).c_str(),
                FormatMs(r.stats.p90).c_str(), FormatMs(r.stats.p99).c_str(),
                FormatMs(r.stats.max).c_str(), FormatMs(r.stats.p50 - base.p50).c_str(),
                FormatMs(r.stats.p99 - base.p99).c_str());
  }
  const Stats& a = rows[rows.size() - 2].stats;
  std::printf(
      "agent/direct p50 ratio: %.2f; targets: added p50 < 0.300 ms (%s), added p99 < 1.000 ms "
      "(%s)\n",
      absl::ToDoubleMilliseconds(a.p50) / absl::ToDoubleMilliseconds(base.p50),
      a.p50 - base.p50 < absl::Microseconds(300) ? "met" : "MISSED",
      a.p99 - base.p99 < absl::Milliseconds(1) ? "met" : "MISSED");
  return 0;
}

}  // namespace
}  // namespace atbridge::bench

namespace {

int RealMain(int argc, char** argv) {
  CLI::App app{"AT round-trip latency: direct pty vs ser2net vs atbridge-agent (mTLS)"};
  int iterations = 2000;
  int warmup = 200;
  std::string bin_dir = ATBRIDGE_BIN_DIR;
  app.add_option("--iterations", iterations, "measured round trips per path")
      ->capture_default_str();
  app.add_option("--warmup", warmup, "unmeasured round trips first")->capture_default_str();
  app.add_option("--bin-dir", bin_dir, "where atbridge-sim and atbridge-agent are")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return atbridge::bench::Run(iterations, warmup, bin_dir);
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
