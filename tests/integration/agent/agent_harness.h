// An in-process agent (AgentCore + the gRPC Agent service on 127.0.0.1:0
// with mTLS from a throwaway CA) in front of a real atbridge-sim on ptys.
#ifndef ATBRIDGE_TESTS_INTEGRATION_AGENT_AGENT_HARNESS_H_
#define ATBRIDGE_TESTS_INTEGRATION_AGENT_AGENT_HARNESS_H_

#include <grpcpp/grpcpp.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "agent/config/agent_options.h"
#include "agent/service/agent_core.h"
#include "agent/service/agent_service.h"
#include "atbridge/v1/agent.grpc.pb.h"
#include "atbridge/v1/uplink.grpc.pb.h"
#include "common/random.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace atbridge::testing {

// atbridge-sim as a child process with its links in `dir`.
class SimProcess {
 public:
  // Starts `atbridge-sim --count N --link-dir <dir>/sim <extra...>` and waits
  // for its readiness line.
  absl::Status Start(const TempDir& dir, int count, const std::vector<std::string>& extra = {});
  std::string Link(int k) const { return link_dir_ + "/modem" + std::to_string(k); }
  Subprocess& process() { return proc_; }

 private:
  std::string link_dir_;
  Subprocess proc_;
};

class AgentHarness {
 public:
  // Ports as given; TLS files are made here.
  AgentHarness(const TestPki& pki, std::vector<agent::PortOptions> ports,
               const std::string& name = "lab1");
  ~AgentHarness();

  // Starts the core, waits for the first identification, serves.
  absl::Status Start();
  int port() const { return port_; }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }
  agent::AgentCore& core() { return *core_; }
  agent::AgentOptions& options() { return options_; }

  // A stub authenticated as `principal` with `role`.
  std::unique_ptr<v1::Agent::Stub> Stub(const std::string& principal, const std::string& role);

  // Blocks until `pred(port_info)` holds for port `name` (notified by the
  // core on every change), or the timeout passes; returns whether it held.
  bool WaitForPort(const std::string& name, const std::function<bool(const v1::PortInfo&)>& pred,
                   absl::Duration timeout = absl::Seconds(20));

 private:
  const TestPki& pki_;
  agent::AgentOptions options_;
  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread io_thread_;
  std::unique_ptr<Random> random_;
  std::unique_ptr<agent::AgentCore> core_;
  std::unique_ptr<agent::AgentService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, v1::PortInfo> ports_;
};

// A stand-in for atbridge-server's AgentUplink on 127.0.0.1:0 (sync API):
// records every envelope agents send, in order, and sends envelopes down
// the current stream for the test.
class FakeUplinkServer final : public v1::AgentUplink::Service {
 public:
  ~FakeUplinkServer() override;

  // Serves with `material` (its certificate decides the role agents see).
  // A non-OK `refuse` answers every Connect at once with it (trailers only).
  absl::Status Start(const tls::TlsMaterial& material, grpc::Status refuse = grpc::Status::OK);
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }

  using Messages = std::vector<v1::AgentEnvelope>;
  // Blocks until `pred(received)` holds or the timeout passes.
  bool WaitFor(const std::function<bool(const Messages&)>& pred,
               absl::Duration timeout = absl::Seconds(20));
  // Blocks until `n` streams have ended.
  bool WaitForEnded(int n, absl::Duration timeout = absl::Seconds(20));
  Messages Received();
  std::vector<absl::Time> ConnectTimes();
  // Writes to the current stream; false if there is none or it broke.
  bool Send(const v1::ServerEnvelope& env);

  grpc::Status Connect(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::ServerEnvelope, v1::AgentEnvelope>* stream) override;

 private:
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  grpc::Status refuse_;
  std::mutex mu_;
  std::condition_variable cv_;
  Messages received_;
  std::vector<absl::Time> connects_;
  int ended_ = 0;
  std::mutex write_mu_;
  grpc::ServerReaderWriter<v1::ServerEnvelope, v1::AgentEnvelope>* stream_ = nullptr;
};

// A port on a sim link with fast timeouts for tests.
agent::PortOptions SimPort(const std::string& name, const std::string& device);

// Deadline helper for client contexts.
void SetDeadline(grpc::ClientContext* ctx, absl::Duration d = absl::Seconds(30));

}  // namespace atbridge::testing

#endif  // ATBRIDGE_TESTS_INTEGRATION_AGENT_AGENT_HARNESS_H_
