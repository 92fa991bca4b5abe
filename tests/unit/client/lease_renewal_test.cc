#include "client/console/lease_renewal.h"

#include <gtest/gtest.h>

#include "common/proto_time.h"

namespace atbridge::client {
namespace {

using TimePoint = LeaseRenewal::TimePoint;
using std::chrono::milliseconds;

// A lease granted at `granted` (the granting side's clock) for `ttl`.
v1::Lease LeaseOf(absl::Time granted, absl::Duration ttl) {
  v1::Lease l;
  l.set_lease_id("l1");
  *l.mutable_acquired_at() = ToProtoTime(granted);
  *l.mutable_expires_at() = ToProtoTime(granted + ttl);
  return l;
}

const absl::Time kServerNow = absl::FromUnixSeconds(1'800'000'000);
const TimePoint kT0 = TimePoint() + std::chrono::hours(100);

// `lease acquire --ttl 30m` at t0, `lease renew --ttl 30m` at t0+25m, a
// console at t0+30m: the renewals ask for the 30 minutes granted last, not
// the 55-minute span since the lease was first acquired.
TEST(CtlLeaseRenewalTest, ALeaseRenewedBeforeTheSessionIsRenewedWithItsGrantedTtl) {
  v1::Lease l = LeaseOf(kServerNow - absl::Minutes(30), absl::Minutes(55));
  *l.mutable_ttl() = ToProtoDuration(absl::Minutes(30));
  LeaseRenewal r;
  ASSERT_TRUE(r.Start(l, kT0, kServerNow));
  EXPECT_EQ(r.ttl(), absl::Minutes(30));
  EXPECT_LE(r.next(), kT0 + std::chrono::minutes(15));
}

TEST(CtlLeaseRenewalTest, RenewsAtHalfTheTtlOnTheMonotonicClock) {
  LeaseRenewal r;
  ASSERT_TRUE(r.Start(LeaseOf(kServerNow, absl::Seconds(10)), kT0, kServerNow));
  EXPECT_EQ(r.ttl(), absl::Seconds(10));
  EXPECT_EQ(r.next(), kT0 + milliseconds(5000));
  EXPECT_EQ(r.expires(), kT0 + milliseconds(10000));
  r.Renewed(kT0 + milliseconds(5010));
  EXPECT_EQ(r.next(), kT0 + milliseconds(10010));
  EXPECT_EQ(r.expires(), kT0 + milliseconds(15010));
}

TEST(CtlLeaseRenewalTest, ClockSkewNeverDelaysARenewal) {
  // Our wall clock an hour behind the server's: its expiry looks far away;
  // the TTL still decides.
  LeaseRenewal behind;
  ASSERT_TRUE(
      behind.Start(LeaseOf(kServerNow, absl::Seconds(10)), kT0, kServerNow - absl::Hours(1)));
  EXPECT_EQ(behind.next(), kT0 + milliseconds(5000));
  // An hour ahead: the lease looks expired already. Renew at once (not
  // never), then by the TTL.
  LeaseRenewal ahead;
  ASSERT_TRUE(
      ahead.Start(LeaseOf(kServerNow, absl::Seconds(10)), kT0, kServerNow + absl::Hours(1)));
  EXPECT_EQ(ahead.next(), kT0);
  EXPECT_EQ(ahead.expires(), kT0 + milliseconds(10000));
  ahead.Renewed(kT0 + milliseconds(20));
  EXPECT_EQ(ahead.next(), kT0 + milliseconds(5020));
}

TEST(CtlLeaseRenewalTest, AnOlderLeaseWithLessLeftIsRenewedSooner) {
  // Taken 25 s ago for 30 s: 5 s left by the (agreeing) wall clock.
  LeaseRenewal r;
  ASSERT_TRUE(r.Start(LeaseOf(kServerNow - absl::Seconds(25), absl::Seconds(30)), kT0, kServerNow));
  EXPECT_EQ(r.next(), kT0 + milliseconds(2500));
}

TEST(CtlLeaseRenewalTest, FailuresBackOffUntilTheLeaseWouldExpire) {
  LeaseRenewal r;
  ASSERT_TRUE(r.Start(LeaseOf(kServerNow, absl::Seconds(10)), kT0, kServerNow));
  TimePoint now = kT0 + milliseconds(5000);
  std::vector<int64_t> waits;
  while (r.Failed(now)) {
    ASSERT_GT(r.next(), now);
    ASSERT_LT(r.next(), r.expires()) << "a retry after the lease lapsed is no use";
    waits.push_back(std::chrono::duration_cast<milliseconds>(r.next() - now).count());
    now = r.next();
    ASSERT_LT(waits.size(), 100u);
  }
  ASSERT_GE(waits.size(), 4u);
  EXPECT_EQ(waits[0], 200);
  EXPECT_EQ(waits[1], 400);
  EXPECT_EQ(waits[2], 800);
  EXPECT_EQ(waits[3], 1600);
  EXPECT_GE(std::chrono::duration_cast<milliseconds>(r.expires() - now).count(), 0);
  EXPECT_LT(r.expires() - now, milliseconds(100));
  // A success resets the backoff.
  r.Renewed(now);
  ASSERT_TRUE(r.Failed(now + milliseconds(1)));
  EXPECT_EQ(r.next(), now + milliseconds(201));
}

TEST(CtlLeaseRenewalTest, LeasesWithoutExpiryOrDurationNeedNoRenewal) {
  LeaseRenewal r;
  v1::Lease no_expiry;
  no_expiry.set_lease_id("x");
  EXPECT_FALSE(r.Start(no_expiry, kT0, kServerNow));
  EXPECT_FALSE(r.Start(LeaseOf(kServerNow, absl::ZeroDuration()), kT0, kServerNow));
}

}  // namespace
}  // namespace atbridge::client
