#include "client/console/lease_renewal.h"

#include <algorithm>

#include "common/proto_time.h"

namespace atbridge::client {

namespace {

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      absl::ToChronoNanoseconds(d));
}

absl::Duration FromChrono(std::chrono::steady_clock::duration d) {
  return absl::FromChrono(std::chrono::duration_cast<std::chrono::nanoseconds>(d));
}

}  // namespace

bool LeaseRenewal::Start(const v1::Lease& lease, TimePoint asked_at, absl::Time wall_now) {
  if (!lease.has_expires_at()) return false;
  const absl::Time expires_at = FromProtoTime(lease.expires_at());
  if (lease.has_ttl()) {
    // What the agent granted last; a lease renewed before the session (the
    // caller's own `lease acquire` and `lease renew`) has expires_at well
    // past acquired_at + ttl, and renewing with that span would inflate it.
    ttl_ = FromProtoDuration(lease.ttl());
  } else {
    // Older agents: the span is the TTL of a lease just taken. Without
    // acquired_at, the wall clock is all there is to go by.
    ttl_ = expires_at - (lease.has_acquired_at() ? FromProtoTime(lease.acquired_at()) : wall_now);
  }
  if (ttl_ <= absl::ZeroDuration()) return false;
  backoff_ = absl::ZeroDuration();
  expires_ = asked_at + ToChrono(ttl_);
  absl::Duration wait = ttl_ / 2;
  // Sooner, never later, if the wall clock says less is left.
  const absl::Duration wall_left = std::max(expires_at - wall_now, absl::ZeroDuration());
  wait = std::min(wait, wall_left / 2);
  next_ = asked_at + ToChrono(wait);
  return true;
}

void LeaseRenewal::Renewed(TimePoint sent_at) {
  backoff_ = absl::ZeroDuration();
  expires_ = std::max(expires_, sent_at + ToChrono(ttl_));
  next_ = sent_at + ToChrono(ttl_ / 2);
}

bool LeaseRenewal::Failed(TimePoint now) {
  const absl::Duration left = FromChrono(expires_ - now);
  if (left < kMinLeft) return false;
  backoff_ = backoff_ == absl::ZeroDuration() ? kFirstRetry : std::min(backoff_ * 2, kMaxRetry);
  // Leave room for the retry itself before the lease lapses.
  next_ = now + ToChrono(std::min(backoff_, left / 2));
  return true;
}

}  // namespace atbridge::client
