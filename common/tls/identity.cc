#include "common/tls/identity.h"

#include <grpc/grpc_security_constants.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/pki/pki.h"
#include "common/status/status_macros.h"

namespace atbridge::tls {

namespace {

constexpr absl::string_view kRoleUriPrefix = "urn:atbridge:role:";

struct RoleNameEntry {
  v1::Role role;
  const char* name;
};

constexpr RoleNameEntry kRoles[] = {
    {v1::ROLE_ADMIN, "admin"},           {v1::ROLE_OPERATOR, "operator"},
    {v1::ROLE_AUTOMATION, "automation"}, {v1::ROLE_VIEWER, "viewer"},
    {v1::ROLE_AGENT, "agent"},           {v1::ROLE_SERVER, "server"},
};

}  // namespace

std::string Identity::ToString() const {
  return absl::StrCat(principal, " (", RoleName(role), ")");
}

v1::Role RoleFromName(absl::string_view name) {
  for (const auto& r : kRoles) {
    if (name == r.name) return r.role;
  }
  return v1::ROLE_UNSPECIFIED;
}

const char* RoleName(v1::Role role) {
  for (const auto& r : kRoles) {
    if (role == r.role) return r.name;
  }
  return "none";
}

absl::StatusOr<Identity> IdentityFromCertificate(absl::string_view cert_pem) {
  auto info = pki::ParseCertificate(cert_pem);
  if (!info.ok()) {
    return absl::UnauthenticatedError(
        absl::StrCat("peer certificate unreadable: ", info.status().message()));
  }
  Identity id;
  id.principal = info->common_name;
  id.subject = info->subject;
  if (id.principal.empty()) {
    return absl::UnauthenticatedError(
        absl::StrCat("peer certificate has no CN (subject: ", info->subject, ")"));
  }
  std::vector<std::string> names;
  for (const auto& uri : info->uris) {
    if (absl::StartsWith(uri, kRoleUriPrefix)) names.push_back(uri.substr(kRoleUriPrefix.size()));
  }
  if (names.empty()) names = info->organizational_units;
  v1::Role role = v1::ROLE_UNSPECIFIED;
  for (const auto& n : names) {
    v1::Role r = RoleFromName(n);
    if (r == v1::ROLE_UNSPECIFIED) continue;
    if (role != v1::ROLE_UNSPECIFIED && role != r) {
      return absl::PermissionDeniedError(
          absl::StrCat("certificate of ", id.principal, " names two roles"));
    }
    role = r;
  }
  if (role == v1::ROLE_UNSPECIFIED) {
    return absl::PermissionDeniedError(
        absl::StrCat("certificate of ", id.principal,
                     " carries no atbridge role (OU or SAN URI urn:atbridge:role:<role>)"));
  }
  id.role = role;
  return id;
}

absl::StatusOr<Identity> IdentityFromAuthContext(const grpc::AuthContext& auth) {
  if (!auth.IsPeerAuthenticated()) {
    return absl::UnauthenticatedError("peer is not authenticated (no client certificate)");
  }
  auto pems = auth.FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pems.empty()) {
    return absl::UnauthenticatedError("peer presented no certificate");
  }
  // Parsing a certificate costs more than a whole loopback RPC (~140 us), and
  // the identity depends only on the certificate's bytes: remember it. The
  // handshake has already verified the chain and validity of these bytes.
  static absl::Mutex mu(absl::kConstInit);
  static auto* cache = new absl::flat_hash_map<std::string, absl::StatusOr<Identity>>();
  std::string pem(pems.front().data(), pems.front().size());
  {
    absl::MutexLock lock(&mu);
    auto it = cache->find(pem);
    if (it != cache->end()) return it->second;
  }
  absl::StatusOr<Identity> id = IdentityFromCertificate(pem);
  absl::MutexLock lock(&mu);
  if (cache->size() >= 4096) cache->clear();  // Bounded; peers are few.
  cache->emplace(std::move(pem), id);
  return id;
}

}  // namespace atbridge::tls
