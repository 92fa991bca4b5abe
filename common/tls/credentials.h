// The one mTLS builder for all atbridge binaries: servers require and verify
// a client certificate; channels present one and verify the server.
#ifndef ATBRIDGE_COMMON_TLS_CREDENTIALS_H_
#define ATBRIDGE_COMMON_TLS_CREDENTIALS_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace atbridge::tls {

// Paths of the PEM files an endpoint uses.
struct TlsFiles {
  std::string ca_file;    // CA that signs peers' certificates.
  std::string cert_file;  // Our certificate (chain).
  std::string key_file;   // Our private key. Secret.
};

// The PEM contents of TlsFiles.
struct TlsMaterial {
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;  // Secret: never log.
};

// Reads and sanity-checks the three files (each must exist, be non-empty and
// hold PEM). Errors name the file.
absl::StatusOr<TlsMaterial> LoadTlsMaterial(const TlsFiles& files);

// Server credentials that require a client certificate signed by the CA
// (GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY).
std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const TlsMaterial& material);

// Options for channels.
struct ChannelOptions {
  // Name to verify in the server certificate instead of the target host.
  std::string server_name_override;
  // Keepalive for long-lived streams (uplink, console); 0 disables.
  absl::Duration keepalive_time = absl::ZeroDuration();
  absl::Duration keepalive_timeout = absl::Seconds(10);
  // Cap on the reconnect backoff (gRPC's default is 120 s).
  absl::Duration max_reconnect_backoff = absl::Seconds(30);
};

// Channel credentials presenting our certificate and trusting only the CA.
std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const TlsMaterial& material);

// A channel to `target` ("host:port") with mTLS and the options above.
std::shared_ptr<grpc::Channel> CreateChannel(const std::string& target, const TlsMaterial& material,
                                             const ChannelOptions& options = {});

// Server-side keepalive settings for builders that serve long streams:
// accept client pings every `min_ping_interval`, ping idle clients.
void ApplyServerKeepalive(grpc::ServerBuilder& builder,
                          absl::Duration min_ping_interval = absl::Seconds(5),
                          absl::Duration keepalive_time = absl::Seconds(60),
                          absl::Duration keepalive_timeout = absl::Seconds(20));

}  // namespace atbridge::tls

#endif  // ATBRIDGE_COMMON_TLS_CREDENTIALS_H_
