// Dialling the server or an agent with mutual TLS (common/tls/credentials.h),
// and per-call deadlines.
#ifndef ATBRIDGE_CLIENT_RPC_CONNECTION_H_
#define ATBRIDGE_CLIENT_RPC_CONNECTION_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/core/config.h"

namespace atbridge::client {

// Keepalive of the channel (long streams: console, attach, job watch).
inline constexpr absl::Duration kKeepaliveTime = absl::Seconds(30);

// A channel to the configured endpoint. Usage errors (exit 2) when no
// endpoint or no mTLS files are configured, or a file cannot be read.
absl::StatusOr<std::shared_ptr<grpc::Channel>> Dial(const ResolvedConfig& config);

// "alice (viewer)" from a certificate file; "" when it cannot be read.
std::string IdentityText(const std::string& cert_file);

// Sets the deadline of a call `timeout` from now.
void SetDeadline(grpc::ClientContext* ctx, absl::Duration timeout);

}  // namespace atbridge::client

#endif  // ATBRIDGE_CLIENT_RPC_CONNECTION_H_
