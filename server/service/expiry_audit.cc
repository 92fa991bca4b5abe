#include "server/service/expiry_audit.h"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "server/jobs/content_validator.h"
#include "server/util/proto_time.h"

namespace atbridge::server::service {

ExpiryAudit::ExpiryAudit(inventory::Inventory* inventory, AuditLog* audit, WorkerPool* pool,
                         const Clock* clock, absl::Duration interval, int within_days)
    : inventory_(inventory),
      audit_(audit),
      clock_(clock),
      interval_(interval),
      within_days_(within_days),
      strand_(boost::asio::make_strand(pool->io())),
      timer_(strand_) {}

void ExpiryAudit::Start() {
  boost::asio::post(strand_, [this] {
    if (stopped_) return;
    RunOnce();
    ArmLocked();
  });
}

void ExpiryAudit::ArmLocked() {
  timer_.expires_after(std::chrono::nanoseconds(absl::ToInt64Nanoseconds(interval_)));
  timer_.async_wait(
      boost::asio::bind_executor(strand_, [this](const boost::system::error_code& ec) {
        if (ec || stopped_) return;
        RunOnce();
        ArmLocked();
      }));
}

void ExpiryAudit::Stop() {
  boost::asio::post(strand_, [this] {
    stopped_ = true;
    timer_.cancel();
  });
}

size_t ExpiryAudit::RunOnce() {
  const absl::Time now = clock_->Now();
  const auto expiring = inventory_->ListExpiring(now + absl::Hours(24) * within_days_);
  tls::Identity server;
  server.principal = "atbridge-server";
  server.role = v1::ROLE_SERVER;
  for (const auto& x : expiring) {
    const absl::Time not_after = FromProtoTime(x.entry.not_after());
    audit_->Record(
        server, "ExpiringCredential", absl::StrCat(x.imei, " (", x.agent, "/", x.port, ")"), x.imei,
        absl::OkStatus(),
        absl::StrCat("sec_tag ", x.entry.sec_tag(), " ", jobs::CredentialTypeLabel(x.entry.type()),
                     " ", x.entry.subject().empty() ? "" : x.entry.subject() + " ",
                     not_after <= now ? "expired " : "expires ", FormatRfc3339(not_after),
                     " (sha256 ", x.entry.sha256(), ")"));
  }
  if (!expiring.empty()) {
    ATB_LOG(WARNING) << "expiry audit: " << expiring.size() << " certificate(s) expire within "
                     << within_days_ << " days (audit action ExpiringCredential)";
  }
  return expiring.size();
}

}  // namespace atbridge::server::service
