// The audit log: who (principal, role) did what (RPC or job action) to which
// target (IMEI, agent/port, job id), with which result (status code name),
// when, and details. Never secrets: callers pass details that contain no
// credential content (see RedactCommandForAudit).
//
// Thread-safety: thread-safe. Record() never blocks: the store write is
// posted to the worker pool, so it may be called from gRPC reactions.
#ifndef ATBRIDGE_SERVER_SERVICE_AUDIT_LOG_H_
#define ATBRIDGE_SERVER_SERVICE_AUDIT_LOG_H_

#include <string>

#include "absl/status/status.h"
#include "common/clock.h"
#include "common/tls/identity.h"
#include "server/service/worker_pool.h"
#include "server/store/store.h"

namespace atbridge::server::service {

class AuditLog {
 public:
  // Dependencies are not owned and must outlive the log.
  AuditLog(store::AuditStore* store, WorkerPool* pool, const Clock* clock)
      : store_(store), pool_(pool), clock_(clock) {}

  // Appends a record. `imei` (may be empty) is indexed for queries.
  void Record(const tls::Identity& who, const std::string& action, const std::string& target,
              const std::string& imei, const absl::Status& result, const std::string& detail);

 private:
  store::AuditStore* const store_;
  WorkerPool* const pool_;
  const Clock* const clock_;
};

// An AT command made safe for the audit log and logs: the quoted arguments of
// %CMNG (credential content, passwords) become "<redacted N bytes>".
std::string RedactCommandForAudit(const std::string& command);

}  // namespace atbridge::server::service

#endif  // ATBRIDGE_SERVER_SERVICE_AUDIT_LOG_H_
