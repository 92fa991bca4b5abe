// The cost of a credential write at a real UART speed, side by side:
//   direct          — a local process runs the transaction on the pty itself
//                     (AT+CFUN?, %CMNG=1 compare, %CMNG=0 write, %CMNG=1 verify),
//                     the way nrfcredstore does on a USB cable;
//   agent (RTS/CTS) — WriteCredential through atbridge-agent, one write;
//   agent (paced)   — the same on a UART without flow control, paced writes.
// The simulator paces both directions at --baud (10 bits per byte), so the
// physical line time of the bytes exchanged is the floor. Reports each path
// against that floor: the target is <= 1.2 x line time (+ modem time, zero
// in the simulator).
//
//   atbridge-bench-credential-write [--baud 115200] [--iterations 10]
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
#include "common/pki/pki.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace atbridge::bench {
namespace {

using testing::Subprocess;

std::string AmazonPem() {
  std::string pem = testing::ReadFileOrDie(testing::TestDataPath("pem/AmazonRootCA1.pem"));
  while (!pem.empty() && pem.back() == '\n') pem.pop_back();
  return pem;
}

struct Result {
  std::string path;
  Stats stats;
  size_t line_bytes = 0;  // Bytes exchanged on the UART per transaction.
};

int Run(int baud, int iterations, const std::string& bin_dir, bool chain) {
  testing::TempDir dir;
  auto pki = MakeBenchPki();
  auto agent_tls = pki->Issue(dir.path(), "bench-agent", "agent", true);
  auto client_tls = pki->Issue(dir.path(), "bench-client", "operator", false);
  if (!agent_tls.ok() || !client_tls.ok()) return 1;
  std::string content = AmazonPem();
  if (chain) content = absl::StrCat(content, "\n", content, "\n", content);

  Subprocess sim_fc, sim_nofc;
  std::string fc = dir.File("fc"), nofc = dir.File("nofc");
  std::string b = std::to_string(baud);
  if (!sim_fc
           .Start({bin_dir + "/atbridge-sim", "--count", "2", "--link-dir", fc, "--baud", b,
                   "--log-level", "warning"})
           .ok() ||
      !sim_fc.WaitForLine("atbridge-sim ready").ok() ||
      !sim_nofc
           .Start({bin_dir + "/atbridge-sim", "--count", "1", "--link-dir", nofc, "--baud", b,
                   "--no-flow-control", "--fifo", "128", "--log-level", "warning"})
           .ok() ||
      !sim_nofc.WaitForLine("atbridge-sim ready").ok()) {
    std::fprintf(stderr, "atbridge-sim did not start\n");
    return 1;
  }
  Subprocess agent;
  if (!agent
           .Start({bin_dir + "/atbridge-agent", "--name", "bench-agent", "--listen", "127.0.0.1:0",
                   "--ca", agent_tls->ca_file, "--cert", agent_tls->cert_file, "--key",
                   agent_tls->key_file, "--port",
                   absl::StrCat("cts=", fc, "/modem1,flow=rtscts,baud=", b), "--port",
                   absl::StrCat("paced=", nofc, "/modem0,flow=none,baud=", b), "--log-level",
                   "warning"})
           .ok()) {
    return 1;
  }
  auto ready = agent.WaitForLine("atbridge-agent ready on ");
  if (!ready.ok()) {
    std::fprintf(stderr, "%s\n", ready.status().ToString().c_str());
    return 1;
  }
  int agent_port = 0;
  (void)absl::SimpleAtoi(ready->substr(ready->rfind(':') + 1), &agent_port);

  std::vector<Result> results;
  const std::string sha = pki::Sha256Hex(content);
  // Direct: the same four commands a careful local tool sends.
  {
    auto c = RawAtClient::OpenPty(fc + "/modem0");
    if (!c.ok()) return 1;
    Result r{.path = "direct pty (local tool)"};
    std::vector<absl::Duration> samples;
    for (int i = 0; i < iterations; ++i) {
      absl::Time t0 = absl::Now();
      size_t bytes = 0;
      for (const std::string& cmd :
           {std::string("AT+CFUN?"), std::string("AT%CMNG=1,42,0"),
            absl::StrCat("AT%CMNG=0,42,0,\"", content, "\""), std::string("AT%CMNG=1,42,0")}) {
        auto answer = c->RoundTrip(cmd, absl::Seconds(30));
        if (!answer.ok()) {
          std::fprintf(stderr, "direct: %s\n", answer.status().ToString().c_str());
          return 1;
        }
        bytes += cmd.size() + 2 + answer->size();
      }
      samples.push_back(absl::Now() - t0);
      r.line_bytes = bytes;
    }
    r.stats = Summarize(samples);
    results.push_back(r);
  }
  auto material = tls::LoadTlsMaterial(*client_tls);
  auto stub =
      v1::Agent::NewStub(tls::CreateChannel(absl::StrCat("127.0.0.1:", agent_port), *material));
  for (const char* port : {"cts", "paced"}) {
    Result r{.path = std::string("atbridge-agent (") +
                     (std::string(port) == "cts" ? "RTS/CTS)" : "no flow control, paced)")};
    std::vector<absl::Duration> samples;
    for (int i = 0; i < iterations; ++i) {
      v1::WriteCredentialRequest req;
      req.set_port(port);
      req.set_sec_tag(42);
      req.set_type(v1::ROOT_CA_CERT);
      req.set_content(content);
      req.mutable_options()->set_force(true);  // Measure a real write every time.
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
      v1::WriteReport rep;
      absl::Time t0 = absl::Now();
      grpc::Status s = stub->WriteCredential(&ctx, req, &rep);
      samples.push_back(absl::Now() - t0);
      if (!s.ok() || rep.entry().sha256() != sha) {
        std::fprintf(stderr, "agent %s: %s\n", port, s.error_message().c_str());
        return 1;
      }
    }
    // Same four commands as the direct path (CFUN was 4: no mode change).
    r.line_bytes = results.front().line_bytes;
    r.stats = Summarize(samples);
    results.push_back(r);
  }

  const double line_ms =
      1000.0 * 10.0 * static_cast<double>(results.front().line_bytes) / static_cast<double>(baud);
  std::printf(
      "credential write of %zu content bytes at %d baud, %d iterations; %zu bytes cross "
      "the UART per transaction = %.1f ms line time\n",
      content.size(), baud, iterations, results.front().line_bytes, line_ms);
  std::printf("%-36s %9s %9s %9s  %12s %12s\n", "path", "min ms", "p50 ms", "max ms", "p50/line",
              "p50/direct");
  for (const Result& r : results) {
    std::printf("%-36s %9s %9s %9s  %12.3f %12.3f\n", r.path.c_str(), FormatMs(r.stats.min).c_str(),
                FormatMs(r.stats.p50).c_str(), FormatMs(r.stats.max).c_str(),
                absl::ToDoubleMilliseconds(r.stats.p50) / line_ms,
                absl::ToDoubleMilliseconds(r.stats.p50) /
                    absl::ToDoubleMilliseconds(results.front().stats.p50));
  }
  std::printf("target: agent p50 <= 1.2 x line time: RTS/CTS %s, paced %s\n",
              absl::ToDoubleMilliseconds(results[1].stats.p50) <= 1.2 * line_ms ? "met" : "MISSED",
              absl::ToDoubleMilliseconds(results[2].stats.p50) <= 1.2 * line_ms ? "met" : "MISSED");
  return 0;
}

}  // namespace
}  // namespace atbridge::bench

namespace {

int RealMain(int argc, char** argv) {
  CLI::App app{"Credential write time vs UART line time: direct pty vs atbridge-agent"};
  int baud = 115200;
  int iterations = 10;
  bool chain = false;
  std::string bin_dir = ATBRIDGE_BIN_DIR;
  app.add_option("--baud", baud, "simulated UART speed")->capture_default_str();
  app.add_option("--iterations", iterations, "writes per path")->capture_default_str();
  app.add_flag("--chain", chain, "write a 3.5 KB three-certificate chain instead of one 1.2 KB CA");
  app.add_option("--bin-dir", bin_dir, "where atbridge-sim and atbridge-agent are")
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  return atbridge::bench::Run(baud, iterations, bin_dir, chain);
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
