#include "server/jobs/backoff.h"

#include <algorithm>
#include <cmath>

namespace atbridge::server::jobs {

absl::Duration BackoffCap(const BackoffPolicy& policy, uint32_t failed_attempts) {
  if (failed_attempts == 0) failed_attempts = 1;
  const double multiplier = std::max(1.0, policy.multiplier);
  // Compute in floating seconds and clamp before converting, so large
  // exponents saturate at `max` instead of overflowing.
  const double initial = absl::ToDoubleSeconds(policy.initial);
  const double max = absl::ToDoubleSeconds(policy.max);
  const double exp = std::pow(multiplier, static_cast<double>(failed_attempts - 1));
  double cap = initial * exp;
  if (!std::isfinite(cap) || cap > max) cap = max;
  if (cap < 0) cap = 0;
  return absl::Seconds(cap);
}

absl::Duration JitteredBackoff(const BackoffPolicy& policy, uint32_t failed_attempts,
                               Random& random) {
  const absl::Duration cap = BackoffCap(policy, failed_attempts);
  double u = random.UniformDouble();
  u = std::clamp(u, 0.0, 1.0);
  return cap * u;
}

}  // namespace atbridge::server::jobs
