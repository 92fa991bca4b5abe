// atbridge-server as an object: builds the store, inventory, job engine,
// uplink and Provisioning services from validated ServerOptions, serves
// them over mTLS, and shuts down in the order gRPC needs (grpc-notes §7).
// main.cc and the integration tests both use it; a test can stop a Server
// and start another on the same state directory to exercise a restart.
//
// Thread-safety: Start/Shutdown from one controlling thread (never from a
// gRPC reaction or a worker); port()/address() are safe after Start.
#ifndef ATBRIDGE_SERVER_SERVER_H_
#define ATBRIDGE_SERVER_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/random.h"
#include "server/config/server_options.h"

namespace atbridge::server {

// Optional replacements for tests; null means the real ones.
struct ServerHooks {
  const Clock* clock = nullptr;
  Random* random = nullptr;
  // Engine option overrides (0 = default).
  absl::Duration offline_wait = absl::ZeroDuration();
};

class Server {
 public:
  // Opens the store (creating the state directory), loads TLS material and
  // the signing CA. Errors name the file or option at fault.
  static absl::StatusOr<std::unique_ptr<Server>> Create(const ServerOptions& options,
                                                        const ServerHooks& hooks = {});
  ~Server();  // Shutdown().
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Resumes unfinished jobs and starts serving. UNAVAILABLE if the address
  // cannot be bound.
  absl::Status Start();
  // The bound port and "host:port" (after Start).
  int port() const;
  // The metrics endpoint's bound port (0 when metrics_listen is empty).
  int metrics_port() const;
  std::string address() const;
  // Ends streams, stops the engine, shuts gRPC down, drains the workers.
  // Idempotent.
  void Shutdown();

  // For tests and tools: the id of an agent's latest uplink connection (0 if
  // never connected), and a wait (on a condition, no polling) until the
  // agent is connected with an id >= min_id. False on timeout.
  uint64_t AgentConnectionId(const std::string& agent) const;
  bool AwaitAgent(const std::string& agent, uint64_t min_id, absl::Duration timeout) const;

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace atbridge::server

#endif  // ATBRIDGE_SERVER_SERVER_H_
