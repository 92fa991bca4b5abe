// A lab for the atbridgectl end-to-end tests: a dev PKI made by
// `atbridgectl pki init/issue`, atbridge-sim with N modems on ptys,
// atbridge-server, and one atbridge-agent (uplinked to the server and
// serving directly), all on 127.0.0.1:0 in a temp dir. Every start waits on
// readiness lines, never on sleeps.
#ifndef ATBRIDGE_TESTS_E2E_CLIENT_LAB_H_
#define ATBRIDGE_TESTS_E2E_CLIENT_LAB_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace atbridge::client::e2e {

// What a finished atbridgectl run printed, stdout and stderr apart.
struct CtlResult {
  int code = -1;
  std::string out;
  std::string err;
  std::string Both() const { return "stdout:\n" + out + "\nstderr:\n" + err; }
};

// Runs argv with `env` added to a cleaned environment (no inherited
// ATBRIDGE_* or XDG_CONFIG_HOME), feeding `stdin_data`; fails the test on a
// timeout.
CtlResult RunCapture(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                     const std::string& stdin_data = "",
                     absl::Duration timeout = absl::Seconds(30));

class Lab {
 public:
  struct Options {
    int modems = 3;
    bool server = true;  // Start atbridge-server and uplink the agent to it.
    // The agent's default lease duration ("" = its default, 10m).
    std::string agent_lease_ttl;
    // Extra atbridge-sim flags (e.g. {"--latency", "400"}).
    std::vector<std::string> sim_args;
  };

  explicit Lab(Options options) : options_(options) {}
  Lab() : Lab(Options()) {}

  // Makes the PKI and starts everything; waits until the server lists the
  // agent's modems.
  absl::Status Start();

  // atbridgectl as alice (admin, from ctl.yaml written by `pki init`), with
  // ATBRIDGE_SERVER set to the server (when there is one).
  CtlResult Ctl(std::vector<std::string> args, const std::string& stdin_data = "");
  // The same as another principal made by Start(): "olga" (operator),
  // "vera" (viewer), "otto" (automation).
  CtlResult CtlAs(const std::string& who, std::vector<std::string> args,
                  const std::string& stdin_data = "");

  // Flags for explicit connections (long-running subprocesses).
  std::vector<std::string> ServerFlags(const std::string& who = "alice") const;
  std::vector<std::string> AgentFlags(const std::string& who = "alice") const;
  // "--agent ADDR" (direct mode; beats ATBRIDGE_SERVER).
  std::vector<std::string> Direct() const { return {"--agent", agent_addr_}; }

  const std::string& dir() const { return dir_.path(); }
  std::string File(const std::string& name) const { return dir_.File(name); }
  std::string WriteFile(const std::string& name, const std::string& data) const {
    return dir_.WriteFile(name, data);
  }
  const std::string& pki_dir() const { return pki_dir_; }
  const std::string& server_addr() const { return server_addr_; }
  const std::string& agent_addr() const { return agent_addr_; }
  // IMEI of the modem on port "modemN".
  const std::string& imei(int n) const { return imeis_.at(n); }
  std::vector<std::string> Env() const;

  testing::Subprocess& server() { return *server_; }
  testing::Subprocess& agent() { return *agent_; }

 private:
  Options options_;
  testing::TempDir dir_;
  std::string pki_dir_;
  std::string server_addr_;
  std::string agent_addr_;
  std::vector<std::string> imeis_;
  std::unique_ptr<testing::Subprocess> sim_;
  std::unique_ptr<testing::Subprocess> server_;
  std::unique_ptr<testing::Subprocess> agent_;
};

}  // namespace atbridge::client::e2e

#endif  // ATBRIDGE_TESTS_E2E_CLIENT_LAB_H_
