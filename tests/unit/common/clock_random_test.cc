#include <gtest/gtest.h>

#include <set>

#include "absl/time/clock.h"
#include "common/clock.h"
#include "common/random.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/fake_random.h"

namespace atbridge {
namespace {

TEST(ClockTest, SystemClockIsNearAbslNow) {
  absl::Time t = SystemClock().Now();
  EXPECT_LT(absl::AbsDuration(t - absl::Now()), absl::Seconds(5));
}

TEST(ClockTest, FakeClockMovesOnlyWhenTold) {
  testing::FakeClock clock;
  absl::Time t0 = clock.Now();
  EXPECT_EQ(clock.Now(), t0);
  clock.Advance(absl::Seconds(90));
  EXPECT_EQ(clock.Now() - t0, absl::Seconds(90));
}

TEST(RandomTest, SeededRandomIsDeterministic) {
  auto a = NewSeededRandom(7);
  auto b = NewSeededRandom(7);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a->Next64(), b->Next64());
}

TEST(RandomTest, UniformStaysInRangeAndCoversIt) {
  auto r = NewSeededRandom(1);
  std::set<uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    uint64_t v = r->Uniform(6);
    ASSERT_LT(v, 6u);
    seen.insert(v);
  }
  EXPECT_EQ(seen.size(), 6u);
  EXPECT_EQ(r->Uniform(0), 0u);
  for (int i = 0; i < 1000; ++i) {
    double d = r->UniformDouble();
    ASSERT_GE(d, 0.0);
    ASSERT_LT(d, 1.0);
  }
}

TEST(RandomTest, HexIdHasRequestedLengthAndVaries) {
  auto r = NewSystemRandom();
  std::string a = r->HexId(16);
  std::string b = r->HexId(16);
  EXPECT_EQ(a.size(), 32u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, b);
}

TEST(RandomTest, FakeRandomReturnsFixedValue) {
  testing::FakeRandom r(0.25);
  EXPECT_EQ(r.UniformDouble(), 0.25);
  r.set_value(0.75);
  EXPECT_EQ(r.UniformDouble(), 0.75);
}

}  // namespace
}  // namespace atbridge
