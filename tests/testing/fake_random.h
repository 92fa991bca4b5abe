// A Random that returns what the test tells it to.
#ifndef ATBRIDGE_TESTS_TESTING_FAKE_RANDOM_H_
#define ATBRIDGE_TESTS_TESTING_FAKE_RANDOM_H_

#include <cstdint>
#include <mutex>

#include "common/random.h"

namespace atbridge::testing {

// UniformDouble() returns `value` (default 0.5); Next64() counts up.
class FakeRandom final : public Random {
 public:
  explicit FakeRandom(double value = 0.5) : value_(value) {}

  double UniformDouble() override {
    std::lock_guard<std::mutex> lock(mu_);
    return value_;
  }
  uint64_t Next64() override {
    std::lock_guard<std::mutex> lock(mu_);
    return counter_++;
  }
  void set_value(double v) {
    std::lock_guard<std::mutex> lock(mu_);
    value_ = v;
  }

 private:
  std::mutex mu_;
  double value_;
  uint64_t counter_ = 0;
};

}  // namespace atbridge::testing

#endif  // ATBRIDGE_TESTS_TESTING_FAKE_RANDOM_H_
