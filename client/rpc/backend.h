// What the commands talk to: the central server (Provisioning) or one agent
// directly (Agent). Both are presented as the server's API, so commands and
// their --json output do not depend on the mode: in direct mode a port
// becomes a v1::Device, DEVICE is resolved to a port name, and server-only
// features fail with a usage error that says a server is needed.
//
// Every unary call has a deadline (the configured --timeout; long
// transactions get at least kLongCallTimeout unless --timeout was given).
//
// Thread-safety: unary methods are meant for the command's thread;
// RenewLeaseAsync and StartConsole may be called from any thread. The backend
// must outlive its console streams and pending async calls.
#ifndef ATBRIDGE_CLIENT_RPC_BACKEND_H_
#define ATBRIDGE_CLIENT_RPC_BACKEND_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "atbridge/v1/agent.grpc.pb.h"
#include "atbridge/v1/provisioning.grpc.pb.h"
#include "client/core/config.h"
#include "client/rpc/console_stream.h"

namespace atbridge::client {

// Deadline of credential writes, deletes and key generation when --timeout
// is not given (a 4 KB paced write at 9600 baud takes seconds).
inline constexpr absl::Duration kLongCallTimeout = absl::Seconds(120);

// How much longer than the modem's own AT deadline an Execute call waits
// (the relay through the server and the agent's queue).
inline constexpr absl::Duration kAtDeadlineMargin = absl::Seconds(5);

// The deadline of an Execute call: `call_timeout` (--timeout), but never less
// than the request's AT timeout plus kAtDeadlineMargin, so an answer the
// modem is allowed to take is not cut off by the RPC.
absl::Duration ExecuteDeadline(absl::Duration call_timeout, const v1::ExecuteRequest& req);

class Backend {
 public:
  virtual ~Backend() = default;

  virtual bool server_mode() const = 0;
  // "server 127.0.0.1:7443" or "agent 127.0.0.1:7444".
  virtual std::string Describe() const = 0;
  // The deadline of ordinary calls.
  virtual absl::Duration timeout() const = 0;

  virtual absl::StatusOr<v1::ListDevicesResponse> ListDevices(
      const v1::ListDevicesRequest& req) = 0;
  virtual absl::StatusOr<v1::Device> GetDevice(const v1::DeviceRef& ref) = 0;
  virtual absl::StatusOr<v1::AtResult> Execute(const v1::DeviceRef& ref,
                                               v1::ExecuteRequest req) = 0;
  virtual absl::StatusOr<v1::ListCredentialsResponse> ListCredentials(
      const v1::DeviceRef& ref, v1::ListCredentialsRequest req) = 0;
  virtual absl::StatusOr<v1::ReadCredentialResponse> ReadCredential(
      const v1::DeviceRef& ref, v1::ReadCredentialRequest req) = 0;
  virtual absl::StatusOr<v1::WriteReport> WriteCredential(const v1::DeviceRef& ref,
                                                          v1::WriteCredentialRequest req) = 0;
  virtual absl::StatusOr<v1::DeleteCredentialResponse> DeleteCredential(
      const v1::DeviceRef& ref, v1::DeleteCredentialRequest req) = 0;
  // `req.device` is ignored; `req.sign` needs the server.
  virtual absl::StatusOr<v1::DeviceGenerateKeyResponse> GenerateKey(
      const v1::DeviceRef& ref, v1::DeviceGenerateKeyRequest req) = 0;

  virtual absl::StatusOr<v1::Lease> AcquireLease(const v1::DeviceRef& ref,
                                                 const std::string& reason, absl::Duration ttl) = 0;
  virtual absl::StatusOr<v1::Lease> RenewLease(const v1::DeviceRef& ref,
                                               const std::string& lease_id, absl::Duration ttl) = 0;
  // The same without blocking, with its own deadline (`timeout`; zero: the
  // configured one); `done` runs on a gRPC thread.
  virtual void RenewLeaseAsync(const v1::DeviceRef& ref, const std::string& lease_id,
                               absl::Duration ttl, absl::Duration timeout,
                               std::function<void(absl::StatusOr<v1::Lease>)> done) = 0;
  virtual absl::StatusOr<v1::ReleaseLeaseResponse> ReleaseLease(const v1::DeviceRef& ref,
                                                                const std::string& lease_id,
                                                                bool force) = 0;
  virtual absl::StatusOr<v1::ListLeasesResponse> ListLeases() = 0;

  // Resolves `ref` and fills the open message's port (direct) or device
  // (server) field; then `stream->Start(open)` may be called.
  virtual absl::Status PrepareConsole(const v1::DeviceRef& ref, v1::ConsoleOpen* open) = 0;
  // A console stream bound to this backend's Console method.
  virtual std::unique_ptr<ConsoleStream> NewConsoleStream(ConsoleStream::Callbacks callbacks) = 0;

  // The Provisioning stub, or a usage error saying that `command` needs the
  // server (direct mode).
  virtual absl::StatusOr<v1::Provisioning::Stub*> Server(absl::string_view command) = 0;
};

// Dials the configured endpoint (see connection.h for the errors).
absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const ResolvedConfig& config);

}  // namespace atbridge::client

#endif  // ATBRIDGE_CLIENT_RPC_BACKEND_H_
