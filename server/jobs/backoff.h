// Jittered exponential backoff for job retries ("full jitter"): the delay
// before retry n is uniform in [0, min(max, initial * multiplier^(n-1))].
// Pure functions; randomness comes from the injected Random.
#ifndef ATBRIDGE_SERVER_JOBS_BACKOFF_H_
#define ATBRIDGE_SERVER_JOBS_BACKOFF_H_

#include <cstdint>

#include "absl/time/time.h"
#include "common/random.h"

namespace atbridge::server::jobs {

struct BackoffPolicy {
  absl::Duration initial = absl::Seconds(1);
  absl::Duration max = absl::Seconds(60);
  double multiplier = 2.0;  // >= 1.
};

// The upper bound of the delay after `failed_attempts` (>= 1) failures.
absl::Duration BackoffCap(const BackoffPolicy& policy, uint32_t failed_attempts);

// A delay uniform in [0, BackoffCap(policy, failed_attempts)].
absl::Duration JitteredBackoff(const BackoffPolicy& policy, uint32_t failed_attempts,
                               Random& random);

}  // namespace atbridge::server::jobs

#endif  // ATBRIDGE_SERVER_JOBS_BACKOFF_H_
