// A fake atbridge agent for server integration tests: it dials the server's
// AgentUplink over loopback mTLS with an agent certificate, says hello with
// N simulated ports/modems, and answers requests from a simulated modem
// bank (credentials by tag/type with SHA-256, skip-if-equal writes, leases,
// CSRs, console echo), with scripted faults: a status per request, holding
// requests unanswered ("slow"), or disconnecting.
#ifndef ATBRIDGE_TESTS_INTEGRATION_SERVER_FAKE_AGENT_H_
#define ATBRIDGE_TESTS_INTEGRATION_SERVER_FAKE_AGENT_H_

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "atbridge/v1/uplink.grpc.pb.h"
#include "common/tls/credentials.h"

namespace atbridge::server::testing {

// Simulated modems, shared by the FakeAgent instances of one test (so an
// agent that reconnects, or a restarted server, sees the same content).
// Thread-safe.
class ModemBank {
 public:
  struct Credential {
    std::string content;
    std::string sha256;
  };
  // The IMEI of port `index` of `agent`: 15 digits, stable.
  static std::string ImeiFor(int agent_index, int port_index);

  // Applies a request to the modem `imei`; returns the response or a status.
  absl::StatusOr<v1::AgentResponse> Apply(const std::string& imei, const v1::Actor& actor,
                                          const v1::AgentRequest& request);

  // What is stored on a modem.
  std::map<std::pair<uint32_t, int>, Credential> CredentialsOf(const std::string& imei);
  // The lease on a modem's port, if any (port not set).
  std::optional<v1::Lease> LeaseOf(const std::string& imei);
  // Number of write requests that reached `imei`.
  int WritesTo(const std::string& imei);

 private:
  struct Modem {
    std::map<std::pair<uint32_t, int>, Credential> creds;
    std::string lease_owner;
    std::string lease_id;
    std::string lease_reason;
    int writes = 0;
  };
  std::mutex mu_;
  std::map<std::string, Modem> modems_;
  int next_lease_ = 1;
};

class FakeAgent : public grpc::ClientBidiReactor<v1::AgentEnvelope, v1::ServerEnvelope> {
 public:
  struct Options {
    std::string name;                           // Hello name.
    int agent_index = 0;                        // For IMEIs.
    int ports = 10;                             // Ports, each with a modem.
    std::map<std::string, std::string> labels;  // On every port.
    // Fault hook: a status to answer instead of applying the request, or
    // nullopt to apply it normally. Called for every request.
    std::function<std::optional<absl::Status>(const std::string& imei,
                                              const v1::ServerEnvelope& env)>
        fault;
    // Hold write requests unanswered until ReleaseHeld() (or cancel).
    bool hold_writes = false;
    // Like the real agent, the hello carries no ports and an AgentInventory
    // follows; true sends them in the hello instead (the older form).
    bool ports_in_hello = false;
    // Do not send the inventory until SendInventory().
    bool hold_inventory = false;
  };

  // `material` is the agent's mTLS identity (CN may differ from `name` to
  // test refusal). `bank` is shared with other agents of the test.
  FakeAgent(const std::string& target, const tls::TlsMaterial& material,
            std::shared_ptr<ModemBank> bank, Options options);
  ~FakeAgent() override;  // Disconnect().

  // Opens the stream and sends hello (and, unless held, the inventory).
  void Start();
  // Sends the AgentInventory (with hold_inventory).
  void SendInventory();
  // Cancels the stream and waits for it to end.
  void Disconnect();
  // Waits until the stream ends; returns its status (DEADLINE_EXCEEDED
  // from the wait itself after `timeout`).
  grpc::Status WaitDone(absl::Duration timeout = absl::Seconds(20));
  bool done();

  // Port name and IMEI of port `i`.
  std::string PortName(int i) const;
  std::string Imei(int i) const;
  std::vector<std::string> Imeis() const;

  // Held write requests.
  size_t HeldCount();
  bool WaitForHeld(size_t n, absl::Duration timeout = absl::Seconds(20));
  void ReleaseHeld();
  void set_hold_writes(bool hold);

  // Actors seen on requests, in order.
  std::vector<v1::Actor> Actors();
  // Console input received, per console session id.
  std::string ConsoleInput();

  // gRPC reactions.
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;

 private:
  // Every port with its modem, as the agent lists them.
  google::protobuf::RepeatedPtrField<v1::PortInfo> Ports() const;
  void Send(v1::AgentEnvelope env);
  void Answer(const v1::ServerEnvelope& env);
  std::string ImeiOfPort(const std::string& port) const;

  const Options options_;
  std::shared_ptr<ModemBank> bank_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AgentUplink::Stub> stub_;
  grpc::ClientContext ctx_;
  v1::ServerEnvelope in_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool started_ = false;
  bool read_closed_ = false;
  bool done_ = false;
  grpc::Status status_;
  std::deque<v1::AgentEnvelope> out_;
  bool writing_ = false;
  bool hold_writes_ = false;
  std::vector<v1::ServerEnvelope> held_;
  std::vector<v1::Actor> actors_;
  std::string console_input_;
};

}  // namespace atbridge::server::testing

#endif  // ATBRIDGE_TESTS_INTEGRATION_SERVER_FAKE_AGENT_H_
