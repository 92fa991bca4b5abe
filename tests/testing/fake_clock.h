// A Clock whose time only moves when the test says so.
#ifndef ATBRIDGE_TESTS_TESTING_FAKE_CLOCK_H_
#define ATBRIDGE_TESTS_TESTING_FAKE_CLOCK_H_

#include <mutex>

#include "absl/time/time.h"
#include "common/clock.h"

namespace atbridge::testing {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1'800'000'000)) : now_(start) {}

  absl::Time Now() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ += d;
  }
  void Set(absl::Time t) {
    std::lock_guard<std::mutex> lock(mu_);
    now_ = t;
  }

 private:
  mutable std::mutex mu_;
  absl::Time now_;
};

}  // namespace atbridge::testing

#endif  // ATBRIDGE_TESTS_TESTING_FAKE_CLOCK_H_
