// A fleet of real processes for end-to-end tests: atbridge-server, agents
// (each with its own atbridge-sim), all over loopback mTLS with a throwaway
// CA. Waits only on readiness lines, never on sleeps.
#ifndef ATBRIDGE_TESTS_E2E_SERVER_FLEET_H_
#define ATBRIDGE_TESTS_E2E_SERVER_FLEET_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "atbridge/v1/provisioning.grpc.pb.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace atbridge::testing {

class Fleet {
 public:
  Fleet();
  ~Fleet();

  // Starts (or restarts, on the same port and state) the server.
  absl::Status StartServer();
  // kill -9 of the server.
  void KillServer();

  // Starts agent `k` ("lab<k>") in front of its own simulator of `modems`
  // modems (created on first start with `sim_args`); waits until the server
  // has seen its hello.
  absl::Status StartAgent(int k, int modems, const std::vector<std::string>& sim_args = {},
                          const std::string& port_options = "flow=rtscts,timeout=3s");
  void KillAgent(int k);

  v1::Provisioning::Stub& Operator();
  int server_port() const { return server_port_; }
  TempDir& dir() { return dir_; }
  Subprocess& server() { return *server_; }

  // Job helpers.
  absl::StatusOr<v1::Job> CreateJob(const v1::JobSpec& spec);
  // Streams events until the job ends (or the stream breaks); returns the
  // events seen and the final stream status.
  struct Watched {
    std::vector<v1::JobEvent> events;
    grpc::Status status;
  };
  Watched Watch(const std::string& job_id, absl::Duration timeout = absl::Seconds(120));
  absl::StatusOr<v1::Job> GetJob(const std::string& job_id);
  absl::StatusOr<std::string> Report(const std::string& job_id, v1::ReportFormat format);
  absl::StatusOr<v1::ListCredentialsResponse> LiveCredentials(const std::string& imei);

 private:
  struct AgentProc {
    std::unique_ptr<Subprocess> sim;
    std::unique_ptr<Subprocess> agent;
    int modems = 0;
    std::string port_options;
  };
  absl::Status WaitForHello(const std::string& agent, size_t seen_before);

  TempDir dir_;
  TestPki pki_;
  std::unique_ptr<Subprocess> server_;
  int server_port_ = 0;
  std::vector<AgentProc> agents_;
  std::unique_ptr<v1::Provisioning::Stub> operator_;
};

std::string AmazonRootCa1();  // Fixture without its trailing newline.
inline constexpr char kAmazonSha256[] =
    "AD6FB002E6B34C0559FA8F93A3794FF12C4E3F119BD77290C52525123FB9EA74";

}  // namespace atbridge::testing

#endif  // ATBRIDGE_TESTS_E2E_SERVER_FLEET_H_
