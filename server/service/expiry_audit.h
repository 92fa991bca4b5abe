// The scheduled expiry audit (design §5 "rotation triggers", first half):
// at start and then every interval, list the inventory's certificates that
// expire within N days, log a warning and record each in the audit log
// (principal "atbridge-server", action "ExpiringCredential", the IMEI
// indexed), so `QueryAudit(action=ExpiringCredential)` is the report.
//
// It does not create rotation jobs yet: a rotation needs the new
// certificate's content, and where that comes from (a CA per cloud, a
// keygen-and-sign job, an uploaded bundle) is not decided. Automation can act
// on the audit records with CreateJob.
//
// Thread-safety: Start/Stop from the controlling thread; runs on the worker
// pool (one strand). RunOnce() is thread-safe.
#ifndef ATBRIDGE_SERVER_SERVICE_EXPIRY_AUDIT_H_
#define ATBRIDGE_SERVER_SERVICE_EXPIRY_AUDIT_H_

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "absl/time/time.h"
#include "common/clock.h"
#include "server/inventory/inventory.h"
#include "server/service/audit_log.h"
#include "server/service/worker_pool.h"

namespace atbridge::server::service {

class ExpiryAudit {
 public:
  // Dependencies are not owned and must outlive the audit.
  ExpiryAudit(inventory::Inventory* inventory, AuditLog* audit, WorkerPool* pool,
              const Clock* clock, absl::Duration interval, int within_days);

  // Runs once now (on a worker) and then every interval.
  void Start();
  // Cancels the timer for good (before the pool stops).
  void Stop();
  // One audit pass; returns how many certificates expire within the window.
  size_t RunOnce();

 private:
  void ArmLocked();  // On strand_.

  inventory::Inventory* const inventory_;
  AuditLog* const audit_;
  const Clock* const clock_;
  const absl::Duration interval_;
  const int within_days_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::steady_timer timer_;  // Owned by strand_.
  bool stopped_ = false;             // Owned by strand_.
};

}  // namespace atbridge::server::service

#endif  // ATBRIDGE_SERVER_SERVICE_EXPIRY_AUDIT_H_
