// The audit log: who (principal, role) did what (RPC or job action) to which
// target (IMEI, agent/port, job id), with which result (status code name),
// when, and details. Never secrets: callers pass details that contain no
// credential content (see RedactCommandForAudit).
//
// Thread-safety: thread-safe. Record() never blocks: the record is queued and
// the store write posted to the worker pool, so it may be called from gRPC
// reactions and under the job engine's lock. Records queued while a write is
// under way go to the store together in the next transaction (group commit:
// one log sync for a burst of job outcomes, none delayed when idle).
#ifndef ATBRIDGE_SERVER_SERVICE_AUDIT_LOG_H_
#define ATBRIDGE_SERVER_SERVICE_AUDIT_LOG_H_

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "common/tls/identity.h"
#include "server/jobs/engine.h"
#include "server/service/worker_pool.h"
#include "server/store/store.h"

namespace atbridge::server::service {

class AuditLog {
 public:
  // Dependencies are not owned and must outlive the log.
  AuditLog(store::AuditStore* store, WorkerPool* pool, const Clock* clock)
      : store_(store), pool_(pool), clock_(clock) {}
  AuditLog(const AuditLog&) = delete;
  AuditLog& operator=(const AuditLog&) = delete;

  // Appends a record. `imei` (may be empty) is indexed for queries.
  void Record(const tls::Identity& who, const std::string& action, const std::string& target,
              const std::string& imei, const absl::Status& result, const std::string& detail);

 private:
  // On a worker: writes what is queued, then what was queued meanwhile.
  void Drain();

  store::AuditStore* const store_;
  WorkerPool* const pool_;
  const Clock* const clock_;
  absl::Mutex mu_;
  std::vector<store::AuditEntry> queue_ ABSL_GUARDED_BY(mu_);
  bool draining_ ABSL_GUARDED_BY(mu_) = false;  // A Drain() is posted or running.
};

// The job engine's execution outcomes as audit records, one per execution
// that made an attempt on its device: who (the job's creator), action
// "JobExecution", target "<imei> (<agent>/<port>)" (the IMEI indexed, so
// QueryAudit(imei) shows job pushes to a board), result (the outcome's
// status code name) and a detail "job <id> <action>: <STATE>, attempt N:
// <reason>" without secrets. Never blocks (AuditLog::Record posts).
class JobAuditor final : public jobs::ExecutionAuditor {
 public:
  explicit JobAuditor(AuditLog* log) : log_(log) {}
  void ExecutionFinished(const v1::Actor& creator, const std::string& job_id,
                         const std::string& action, const v1::Execution& execution,
                         const std::string& reason) override;

 private:
  AuditLog* const log_;
};

// An AT command made safe for the audit log and logs: the quoted arguments of
// %CMNG (credential content, passwords) become "<redacted N bytes>".
std::string RedactCommandForAudit(const std::string& command);

}  // namespace atbridge::server::service

#endif  // ATBRIDGE_SERVER_SERVICE_AUDIT_LOG_H_
