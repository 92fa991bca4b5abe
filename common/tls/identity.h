// Who is calling: principal and role from the peer's certificate.
#ifndef ATBRIDGE_COMMON_TLS_IDENTITY_H_
#define ATBRIDGE_COMMON_TLS_IDENTITY_H_

#include <grpcpp/security/auth_context.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "atbridge/v1/common.pb.h"

namespace atbridge::tls {

// A verified caller.
struct Identity {
  std::string principal;  // Certificate CN.
  v1::Role role = v1::ROLE_UNSPECIFIED;
  std::string subject;  // RFC 2253, for logs.

  std::string ToString() const;  // "alice (operator)".
};

// "admin", "operator", ... <-> Role. Unknown names give ROLE_UNSPECIFIED.
v1::Role RoleFromName(absl::string_view name);
const char* RoleName(v1::Role role);

// Reads the identity from a PEM certificate. The role comes from a SAN URI
// "urn:atbridge:role:<role>" if present, else from the subject OU. Fails with
// UNAUTHENTICATED when there is no CN, and PERMISSION_DENIED when the role is
// missing, unknown, or ambiguous (two different roles).
absl::StatusOr<Identity> IdentityFromCertificate(absl::string_view cert_pem);

// Same, for the peer of a gRPC call (mTLS guarantees the chain was verified).
absl::StatusOr<Identity> IdentityFromAuthContext(const grpc::AuthContext& auth);

}  // namespace atbridge::tls

#endif  // ATBRIDGE_COMMON_TLS_IDENTITY_H_
