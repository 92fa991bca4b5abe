#include "agent/service/lease_manager.h"

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"

namespace atbridge::agent {

std::string DescribeLease(const v1::Lease& lease) {
  std::string out =
      absl::StrCat("port ", lease.port(), " is leased by ", lease.owner(), " until ",
                   absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", FromProtoTime(lease.expires_at()),
                                    absl::UTCTimeZone()));
  if (!lease.reason().empty()) absl::StrAppend(&out, " (", lease.reason(), ")");
  return out;
}

LeaseManager::LeaseManager(Clock& clock, Random& random, absl::Duration default_ttl,
                           absl::Duration max_ttl)
    : clock_(clock), random_(random), default_ttl_(default_ttl), max_ttl_(max_ttl) {}

absl::Duration LeaseManager::ClampTtl(absl::Duration ttl) const {
  return ttl <= absl::ZeroDuration() ? default_ttl_ : ttl;
}

v1::Lease* LeaseManager::Live(const std::string& port) {
  auto it = leases_.find(port);
  if (it == leases_.end() || FromProtoTime(it->second.expires_at()) <= clock_.Now()) {
    return nullptr;
  }
  return &it->second;
}

std::vector<std::string> LeaseManager::Expire() {
  std::vector<std::string> ended;
  absl::Time now = clock_.Now();
  for (auto it = leases_.begin(); it != leases_.end();) {
    if (FromProtoTime(it->second.expires_at()) <= now) {
      ended.push_back(it->first);
      it = leases_.erase(it);
    } else {
      ++it;
    }
  }
  return ended;
}

absl::StatusOr<v1::Lease> LeaseManager::Acquire(const std::string& port, const std::string& owner,
                                                const std::string& reason, absl::Duration ttl) {
  ttl = ClampTtl(ttl);
  if (ttl > max_ttl_) {
    return absl::InvalidArgumentError(absl::StrCat("lease ttl ", absl::FormatDuration(ttl),
                                                   " exceeds the maximum ",
                                                   absl::FormatDuration(max_ttl_)));
  }
  absl::Time now = clock_.Now();
  if (v1::Lease* held = Live(port)) {
    if (held->owner() != owner) return absl::FailedPreconditionError(DescribeLease(*held));
    *held->mutable_expires_at() = ToProtoTime(now + ttl);
    *held->mutable_ttl() = ToProtoDuration(ttl);
    if (!reason.empty()) held->set_reason(reason);
    return *held;
  }
  // Free, or an expired lease not yet announced: the new one replaces it
  // (and the caller announces the port).
  v1::Lease lease;
  lease.set_port(port);
  lease.set_owner(owner);
  lease.set_reason(reason);
  *lease.mutable_acquired_at() = ToProtoTime(now);
  *lease.mutable_expires_at() = ToProtoTime(now + ttl);
  *lease.mutable_ttl() = ToProtoDuration(ttl);
  lease.set_lease_id(random_.HexId(12));
  leases_[port] = lease;
  return lease;
}

absl::StatusOr<v1::Lease> LeaseManager::Renew(const std::string& port, const std::string& owner,
                                              const std::string& lease_id, absl::Duration ttl) {
  ttl = ClampTtl(ttl);
  if (ttl > max_ttl_) {
    return absl::InvalidArgumentError(
        absl::StrCat("lease ttl exceeds the maximum ", absl::FormatDuration(max_ttl_)));
  }
  v1::Lease* held = Live(port);
  if (held == nullptr) {
    return absl::NotFoundError(absl::StrCat("port ", port, " has no lease (it may have expired)"));
  }
  if (held->owner() != owner || held->lease_id() != lease_id) {
    return absl::FailedPreconditionError(DescribeLease(*held));
  }
  *held->mutable_expires_at() = ToProtoTime(clock_.Now() + ttl);
  *held->mutable_ttl() = ToProtoDuration(ttl);
  return *held;
}

absl::StatusOr<v1::Lease> LeaseManager::Release(const std::string& port, const std::string& owner,
                                                const std::string& lease_id, bool force) {
  if (Live(port) == nullptr) {
    return absl::NotFoundError(absl::StrCat("port ", port, " has no lease"));
  }
  auto it = leases_.find(port);
  if (!force &&
      (it->second.owner() != owner || (!lease_id.empty() && it->second.lease_id() != lease_id))) {
    return absl::FailedPreconditionError(absl::StrCat(
        DescribeLease(it->second), "; only the holder (or an admin with force) may release it"));
  }
  v1::Lease released = it->second;
  leases_.erase(it);
  return released;
}

absl::Status LeaseManager::CheckWriter(const std::string& port, const std::string& principal) {
  const v1::Lease* held = Live(port);
  if (held == nullptr || held->owner() == principal) return absl::OkStatus();
  return absl::FailedPreconditionError(DescribeLease(*held));
}

std::optional<v1::Lease> LeaseManager::Get(const std::string& port) {
  const v1::Lease* held = Live(port);
  if (held == nullptr) return std::nullopt;
  return *held;
}

std::vector<v1::Lease> LeaseManager::List() {
  std::vector<v1::Lease> out;
  out.reserve(leases_.size());
  for (const auto& [port, lease] : leases_) {
    if (FromProtoTime(lease.expires_at()) > clock_.Now()) out.push_back(lease);
  }
  return out;
}

absl::Time LeaseManager::NextExpiry() {
  absl::Time next = absl::InfiniteFuture();
  for (const auto& [port, lease] : leases_) {
    next = std::min(next, FromProtoTime(lease.expires_at()));
  }
  return next;
}

}  // namespace atbridge::agent
