// When a console session renews its lease, on the local monotonic clock.
//
// The lease says the duration (TTL) it was granted last, on the granting
// side's clock, which no clock skew can distort (older agents send no TTL:
// then it is expires_at - acquired_at, right for a lease just taken). The lease was granted after
// we asked for the session, so it lasts at least TTL from the moment we asked; each renewal asks
// for the same TTL and so lasts at least TTL from the moment it was sent. Renewals go out at half
// that time; a failed one is retried with exponential backoff while the lease would still hold.
//
// The local wall clock is only ever used to renew sooner: a lease that was
// taken before the session (the caller's own `lease acquire`) may have less
// left than its TTL.
//
// Pure (times are passed in); thread-compatible.
#ifndef ATBRIDGE_CLIENT_CONSOLE_LEASE_RENEWAL_H_
#define ATBRIDGE_CLIENT_CONSOLE_LEASE_RENEWAL_H_

#include <chrono>

#include "absl/time/time.h"
#include "atbridge/v1/common.pb.h"

namespace atbridge::client {

class LeaseRenewal {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  // First retry after a failed renewal; doubles up to kMaxRetry.
  static constexpr absl::Duration kFirstRetry = absl::Milliseconds(200);
  static constexpr absl::Duration kMaxRetry = absl::Seconds(5);
  // No retry is started with less than this left before the lease expires.
  static constexpr absl::Duration kMinLeft = absl::Milliseconds(50);

  // Starts from the lease granted with the session, asked for at
  // `asked_at`. Returns false when the lease needs no renewal (no expiry, or
  // no positive duration). A lease without acquired_at is taken to last from
  // `wall_now`.
  bool Start(const v1::Lease& lease, TimePoint asked_at, absl::Time wall_now);

  // The TTL to ask for when renewing.
  absl::Duration ttl() const { return ttl_; }
  // When to send the next renewal (or retry).
  TimePoint next() const { return next_; }
  // The earliest moment the lease may lapse unless renewed.
  TimePoint expires() const { return expires_; }

  // A renewal sent at `sent_at` succeeded.
  void Renewed(TimePoint sent_at);
  // A renewal failed at `now`. Returns false when the lease will have
  // expired before another try could help: the session must end.
  bool Failed(TimePoint now);

 private:
  absl::Duration ttl_ = absl::ZeroDuration();
  absl::Duration backoff_ = absl::ZeroDuration();
  TimePoint next_{};
  TimePoint expires_{};
};

}  // namespace atbridge::client

#endif  // ATBRIDGE_CLIENT_CONSOLE_LEASE_RENEWAL_H_
