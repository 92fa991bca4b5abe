// Authorization for the Provisioning service, in one place: which role may
// call which RPC. The identity comes from the verified peer certificate
// (common/tls/identity.h).
//
//   permission  viewer automation operator admin   RPCs
//   kRead         x       x         x       x      ListAgents, ListDevices, GetDevice,
//                                                  ListCredentials, ListLeases, GetJob,
//                                                  ListJobs, GetJobReport, QueryAudit
//   kJobs                 x         x       x      CreateJob, WatchJob, CancelJob
//   kConsole      r                 x       x      Console (viewer: read-only watcher)
//   kDevice                         x       x      Execute, Read/Write/DeleteCredential,
//                                                  GenerateKey, Acquire/Renew/ReleaseLease,
//                                                  UpdateDevice
//   kAdmin                                  x      ReleaseLease with force
//
// Agents and servers may call none of them (agents only have the uplink).
#ifndef ATBRIDGE_SERVER_SERVICE_AUTHZ_H_
#define ATBRIDGE_SERVER_SERVICE_AUTHZ_H_

#include <string>

#include "absl/status/statusor.h"
#include "atbridge/v1/common.pb.h"
#include "common/tls/identity.h"

namespace atbridge::server::service {

enum class Permission { kRead, kJobs, kConsole, kDevice, kAdmin };

// Whether `role` has `permission`.
bool RoleAllows(v1::Role role, Permission permission);

// The permission an RPC of Provisioning needs ("ListAgents", ...); kAdmin
// for unknown names (fail closed).
Permission PermissionForMethod(const std::string& method);

// PERMISSION_DENIED naming the principal, role and method when `who` may not
// call `method`.
absl::Status CheckAllowed(const tls::Identity& who, const std::string& method);

}  // namespace atbridge::server::service

#endif  // ATBRIDGE_SERVER_SERVICE_AUTHZ_H_
