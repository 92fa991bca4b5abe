// Exclusive write leases on ports: who holds which port, why, until when.
// Every query treats an expired lease as gone, but only Expire() removes it,
// so its owner learns of every expiry (and can announce the port's change)
// however the lease was looked at in between.
//
// Thread-compatible: used from the agent's io thread only.
#ifndef ATBRIDGE_AGENT_SERVICE_LEASE_MANAGER_H_
#define ATBRIDGE_AGENT_SERVICE_LEASE_MANAGER_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "atbridge/v1/common.pb.h"
#include "common/clock.h"
#include "common/random.h"

namespace atbridge::agent {

class LeaseManager {
 public:
  LeaseManager(Clock& clock, Random& random, absl::Duration default_ttl, absl::Duration max_ttl);

  // Takes the lease on `port` for `owner`. Re-acquiring one's own lease
  // extends it. FAILED_PRECONDITION naming the holder when someone else has
  // it; INVALID_ARGUMENT for a ttl over the maximum.
  absl::StatusOr<v1::Lease> Acquire(const std::string& port, const std::string& owner,
                                    const std::string& reason, absl::Duration ttl);
  // Extends a lease the caller holds (lease_id must match).
  absl::StatusOr<v1::Lease> Renew(const std::string& port, const std::string& owner,
                                  const std::string& lease_id, absl::Duration ttl);
  // Releases a lease the caller holds, or anyone's with `force` (admin).
  absl::StatusOr<v1::Lease> Release(const std::string& port, const std::string& owner,
                                    const std::string& lease_id, bool force);
  // OK if `principal` may write to `port` now: no lease, or its own.
  absl::Status CheckWriter(const std::string& port, const std::string& principal);
  // The live lease on a port, if any.
  std::optional<v1::Lease> Get(const std::string& port);
  std::vector<v1::Lease> List();
  // Earliest expiry among live leases (InfiniteFuture if none), so the owner
  // can arm one timer to announce expiries.
  absl::Time NextExpiry();
  // Drops expired leases; returns the ports whose lease ended (each exactly
  // once, even if queries already treated it as gone). Earliest expiry in
  // NextExpiry() includes expired leases not yet dropped.
  std::vector<std::string> Expire();

 private:
  absl::Duration ClampTtl(absl::Duration ttl) const;
  // The unexpired lease on `port`, or nullptr.
  v1::Lease* Live(const std::string& port);

  Clock& clock_;
  Random& random_;
  absl::Duration default_ttl_;
  absl::Duration max_ttl_;
  std::map<std::string, v1::Lease> leases_;
};

// "port modem0 is leased by alice until 2026-11-26T12:00:00Z (flashing)".
std::string DescribeLease(const v1::Lease& lease);

}  // namespace atbridge::agent

#endif  // ATBRIDGE_AGENT_SERVICE_LEASE_MANAGER_H_
