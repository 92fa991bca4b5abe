// AgentCore: the one request handler of the agent. The direct gRPC Agent
// service and the AgentUplink stream both turn their messages into
// v1::AgentRequest and call Handle(), so the two paths cannot drift apart.
//
// It owns the ModemChannels, the leases, authorization (checked here, once,
// for both paths) and the operations: Execute, the credential transaction
// (design.md §4), delete, list, read, keygen, and console sessions.
//
// Threading: all state lives on one io_context thread (passed in). Handle()
// and OpenConsole() are thread-safe: they post to that thread. Callbacks run
// on it and must not block.
#ifndef ATBRIDGE_AGENT_SERVICE_AGENT_CORE_H_
#define ATBRIDGE_AGENT_SERVICE_AGENT_CORE_H_

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "agent/config/agent_options.h"
#include "agent/modem/modem_channel.h"
#include "agent/serial/serial_port.h"
#include "agent/service/lease_manager.h"
#include "atbridge/v1/agent.pb.h"
#include "atbridge/v1/uplink.pb.h"
#include "common/clock.h"
#include "common/random.h"

namespace atbridge::agent {

// Who a request is for.
struct Caller {
  std::string principal;
  v1::Role role = v1::ROLE_UNSPECIFIED;
  // True when the central server relays the request for `principal`; the
  // server has authorized it, the agent records leases with the principal.
  bool via_server = false;

  std::string ToString() const;
};

// Set to true to abandon a request that has not started on the modem yet.
using CancelFlag = std::shared_ptr<std::atomic<bool>>;

// Receives a console session's output. Called on the io thread; must not
// block (queue and return).
class ConsoleSink {
 public:
  virtual ~ConsoleSink() = default;
  virtual void OnConsoleOut(v1::ConsoleOut out) = 0;
  // The session ended (port removed, agent stopping, error).
  virtual void OnConsoleClosed(absl::Status status) = 0;
};

// A console session; thread-safe handle.
class ConsoleSession {
 public:
  virtual ~ConsoleSession() = default;
  // Writes raw bytes (writers only). `done` runs on the io thread when they
  // have been written to the port, or with an error (PERMISSION_DENIED for a
  // watcher, FAILED_PRECONDITION when the lease was lost, UNAVAILABLE).
  virtual void Write(std::string bytes, absl::AnyInvocable<void(absl::Status)> done) = 0;
  // Ends the session (idempotent); releases a lease the session took.
  virtual void Close() = 0;
};

class AgentCore {
 public:
  AgentCore(AgentOptions options, boost::asio::io_context& io, SerialPortOpener opener,
            Clock& clock, Random& random);
  ~AgentCore();
  AgentCore(const AgentCore&) = delete;
  AgentCore& operator=(const AgentCore&) = delete;

  // Opens every port. `started` runs (on the io thread) when every port has
  // finished its first open+identify attempt, or after the startup timeout.
  void Start(absl::AnyInvocable<void()> started);
  // Stops every port; pending requests fail CANCELLED. Thread-safe.
  void Stop();

  using ResponseCallback = absl::AnyInvocable<void(absl::StatusOr<v1::AgentResponse>)>;

  // Authorizes and runs one request. A request that has not reached the
  // modem by `deadline` (or whose `cancelled` flag is set by then) fails
  // DEADLINE_EXCEEDED / CANCELLED without touching the modem; once started it
  // runs to completion so the modem is left consistent (CFUN restored).
  void Handle(Caller caller, v1::AgentRequest request, absl::Time deadline, CancelFlag cancelled,
              ResponseCallback done);

  // Opens a console session (see agent.proto ConsoleOpen). The returned
  // handle is usable at once; the sink first receives an OPENED event (or
  // OnConsoleClosed with the reason it could not open).
  std::shared_ptr<ConsoleSession> OpenConsole(Caller caller, v1::ConsoleOpen open,
                                              std::shared_ptr<ConsoleSink> sink);

  // Called on the io thread with a port's new state whenever it changes
  // (state, identity, lease). For the uplink.
  void SetPortListener(std::function<void(const v1::PortInfo&)> listener);

  // Snapshot of all ports; io thread only.
  v1::ListPortsResponse ListPortsNow();

  const std::string& name() const { return options_.name; }
  boost::asio::io_context& io() { return io_; }

 private:
  class ConsoleSessionImpl;
  struct Port {
    std::shared_ptr<ModemChannel> channel;
  };

  absl::Status Authorize(const Caller& caller, const v1::AgentRequest& request) const;
  absl::StatusOr<Port*> FindPort(const std::string& name);
  v1::PortInfo PortInfoFor(const std::string& name, Port& port);
  void PortChanged(const std::string& name);
  void ArmLeaseTimer();
  void Run(const Caller& caller, v1::AgentRequest request, absl::Time deadline,
           const CancelFlag& cancelled, ResponseCallback done);

  AgentOptions options_;
  boost::asio::io_context& io_;
  Clock& clock_;
  Random& random_;
  LeaseManager leases_;
  std::map<std::string, Port> ports_;
  std::function<void(const v1::PortInfo&)> port_listener_;
  boost::asio::steady_timer lease_timer_;
  boost::asio::steady_timer startup_timer_;
  std::shared_ptr<std::atomic<bool>> alive_;
};

}  // namespace atbridge::agent

#endif  // ATBRIDGE_AGENT_SERVICE_AGENT_CORE_H_
