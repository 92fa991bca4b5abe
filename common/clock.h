// Time and randomness behind small interfaces so logic can be tested with
// fakes (tests/testing/fake_clock.h, fake_random.h).
#ifndef ATBRIDGE_COMMON_CLOCK_H_
#define ATBRIDGE_COMMON_CLOCK_H_

#include "absl/time/time.h"

namespace atbridge {

// A source of the current time. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time now.
  virtual absl::Time Now() const = 0;
};

// The process-wide real clock (absl::Now()). Never null, never destroyed.
Clock& SystemClock();

}  // namespace atbridge

#endif  // ATBRIDGE_COMMON_CLOCK_H_
