#include "server/service/authz.h"

#include <map>

#include "absl/strings/str_cat.h"

namespace atbridge::server::service {

bool RoleAllows(v1::Role role, Permission p) {
  switch (role) {
    case v1::ROLE_ADMIN:
      return true;
    case v1::ROLE_OPERATOR:
      return p != Permission::kAdmin;
    case v1::ROLE_AUTOMATION:
      return p == Permission::kRead || p == Permission::kJobs;
    case v1::ROLE_VIEWER:
      return p == Permission::kRead || p == Permission::kConsole;
    default:
      return false;
  }
}

Permission PermissionForMethod(const std::string& method) {
  static const auto* const table = new std::map<std::string, Permission>{
      {"ListAgents", Permission::kRead},
      {"ListDevices", Permission::kRead},
      {"GetDevice", Permission::kRead},
      {"ListCredentials", Permission::kRead},
      {"ListLeases", Permission::kRead},
      {"GetJob", Permission::kRead},
      {"ListJobs", Permission::kRead},
      {"GetJobReport", Permission::kRead},
      {"QueryAudit", Permission::kRead},
      {"CreateJob", Permission::kJobs},
      {"WatchJob", Permission::kJobs},
      {"CancelJob", Permission::kJobs},
      {"Console", Permission::kConsole},
      {"Execute", Permission::kDevice},
      {"ReadCredential", Permission::kDevice},
      {"WriteCredential", Permission::kDevice},
      {"DeleteCredential", Permission::kDevice},
      {"GenerateKey", Permission::kDevice},
      {"AcquireLease", Permission::kDevice},
      {"RenewLease", Permission::kDevice},
      {"ReleaseLease", Permission::kDevice},
      {"UpdateDevice", Permission::kDevice},
      {"ReleaseLease.force", Permission::kAdmin},
  };
  auto it = table->find(method);
  return it == table->end() ? Permission::kAdmin : it->second;
}

absl::Status CheckAllowed(const tls::Identity& who, const std::string& method) {
  if (RoleAllows(who.role, PermissionForMethod(method))) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat(who.principal, " (role ", tls::RoleName(who.role), ") may not call ", method));
}

}  // namespace atbridge::server::service
