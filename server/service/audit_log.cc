#include "server/service/audit_log.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "server/util/proto_time.h"

namespace atbridge::server::service {

void AuditLog::Record(const tls::Identity& who, const std::string& action,
                      const std::string& target, const std::string& imei,
                      const absl::Status& result, const std::string& detail) {
  store::AuditEntry e;
  *e.record.mutable_at() = ToProtoTime(clock_->Now());
  e.record.set_principal(who.principal);
  e.record.set_role(who.role);
  e.record.set_action(action);
  e.record.set_target(target);
  e.record.set_result(absl::StatusCodeToString(result.code()));
  if (result.ok()) {
    e.record.set_detail(detail);
  } else if (detail.empty()) {
    e.record.set_detail(std::string(result.message()));
  } else {
    e.record.set_detail(absl::StrCat(detail, ": ", result.message()));
  }
  e.imei = imei;
  ATB_LOG(DEBUG) << "audit: " << who.principal << " " << action << " " << target << " -> "
                 << e.record.result();
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(e));
  if (draining_) return;  // The running drain picks it up.
  draining_ = true;
  pool_->Post([this] { Drain(); });
}

void AuditLog::Drain() {
  for (;;) {
    std::vector<store::AuditEntry> batch;
    {
      absl::MutexLock lock(&mu_);
      if (queue_.empty()) {
        draining_ = false;
        return;
      }
      batch.swap(queue_);
    }
    absl::Status s = store_->AppendAudits(batch);
    if (!s.ok()) {
      ATB_LOG(ERROR) << "audit: cannot append " << batch.size() << " record(s): " << s;
    }
  }
}

void JobAuditor::ExecutionFinished(const v1::Actor& creator, const std::string& job_id,
                                   const std::string& action, const v1::Execution& execution,
                                   const std::string& reason) {
  tls::Identity who;
  who.principal = creator.principal();
  who.role = creator.role();
  const std::string safe_reason = jobs::RedactCommand(reason);
  const absl::Status result(static_cast<absl::StatusCode>(execution.last_status_code()),
                            safe_reason);
  std::string detail =
      absl::StrCat("job ", job_id, " ", action, ": ", v1::ExecutionState_Name(execution.state()),
                   ", attempt ", execution.attempts());
  if (result.ok()) absl::StrAppend(&detail, ": ", safe_reason);
  log_->Record(who, "JobExecution",
               absl::StrCat(execution.imei(), " (", execution.agent(), "/", execution.port(), ")"),
               execution.imei(), result, detail);
}

std::string RedactCommandForAudit(const std::string& command) {
  if (!absl::StrContains(absl::AsciiStrToUpper(command), "%CMNG")) return command;
  const size_t quote = command.find('"');
  if (quote == std::string::npos) return command;
  return absl::StrCat(command.substr(0, quote), "\"<redacted ", command.size() - quote,
                      " bytes>\"");
}

}  // namespace atbridge::server::service
