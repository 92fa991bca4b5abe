#include "agent/service/lease_manager.h"

#include <gtest/gtest.h>

#include "tests/testing/fake_clock.h"
#include "tests/testing/fake_random.h"
#include "tests/testing/status_matchers.h"

namespace atbridge::agent {
namespace {

using ::atbridge::testing::StatusIs;
using ::testing::HasSubstr;

class LeaseManagerTest : public ::testing::Test {
 protected:
  testing::FakeClock clock_;
  testing::FakeRandom random_;
  LeaseManager leases_{clock_, random_, absl::Minutes(10), absl::Hours(1)};
};

TEST_F(LeaseManagerTest, HolderWritesOthersAreToldWho) {
  ASSERT_OK_AND_ASSIGN(v1::Lease l,
                       leases_.Acquire("modem0", "alice", "flashing", absl::ZeroDuration()));
  EXPECT_EQ(l.owner(), "alice");
  EXPECT_FALSE(l.lease_id().empty());
  EXPECT_OK(leases_.CheckWriter("modem0", "alice"));
  EXPECT_THAT(leases_.CheckWriter("modem0", "bob"),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       ::testing::AllOf(HasSubstr("alice"), HasSubstr("flashing"))));
  EXPECT_OK(leases_.CheckWriter("modem1", "bob"));
  EXPECT_THAT(leases_.Acquire("modem0", "bob", "", absl::ZeroDuration()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("alice")));
}

TEST_F(LeaseManagerTest, LeasesExpire) {
  ASSERT_OK(leases_.Acquire("modem0", "alice", "", absl::Minutes(5)).status());
  EXPECT_EQ(leases_.NextExpiry(), clock_.Now() + absl::Minutes(5));
  clock_.Advance(absl::Minutes(5));
  EXPECT_OK(leases_.CheckWriter("modem0", "bob"));
  EXPECT_TRUE(leases_.List().empty());
}

TEST_F(LeaseManagerTest, RenewAndReleaseNeedTheHolder) {
  ASSERT_OK_AND_ASSIGN(v1::Lease l, leases_.Acquire("modem0", "alice", "", absl::ZeroDuration()));
  clock_.Advance(absl::Minutes(9));
  ASSERT_OK(leases_.Renew("modem0", "alice", l.lease_id(), absl::Minutes(10)).status());
  clock_.Advance(absl::Minutes(9));
  EXPECT_THAT(leases_.CheckWriter("modem0", "bob"),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(leases_.Renew("modem0", "bob", l.lease_id(), absl::ZeroDuration()),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(leases_.Release("modem0", "bob", "", false),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("admin")));
  ASSERT_OK(leases_.Release("modem0", "bob", "", true).status());  // Forced (admin).
  EXPECT_THAT(leases_.Release("modem0", "alice", l.lease_id(), false),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(LeaseManagerTest, AnExpiryIsReportedOnceEvenAfterQueriesSawIt) {
  ASSERT_OK(leases_.Acquire("modem0", "alice", "", absl::Minutes(5)).status());
  clock_.Advance(absl::Minutes(5));
  // Queries before the owner's expiry timer runs already see no lease...
  EXPECT_FALSE(leases_.Get("modem0").has_value());
  EXPECT_TRUE(leases_.List().empty());
  EXPECT_OK(leases_.CheckWriter("modem0", "bob"));
  EXPECT_THAT(leases_.Release("modem0", "alice", "", false), StatusIs(absl::StatusCode::kNotFound));
  // ...and the timer still learns that it ended, so the change is announced.
  EXPECT_LE(leases_.NextExpiry(), clock_.Now());
  EXPECT_EQ(leases_.Expire(), std::vector<std::string>{"modem0"});
  EXPECT_TRUE(leases_.Expire().empty());
  EXPECT_EQ(leases_.NextExpiry(), absl::InfiniteFuture());
}

TEST_F(LeaseManagerTest, AnExpiredLeaseIsReplacedByANewOne) {
  ASSERT_OK_AND_ASSIGN(v1::Lease old, leases_.Acquire("modem0", "alice", "", absl::Minutes(1)));
  clock_.Advance(absl::Minutes(2));
  ASSERT_OK_AND_ASSIGN(v1::Lease bob, leases_.Acquire("modem0", "bob", "", absl::Minutes(1)));
  EXPECT_NE(bob.lease_id(), old.lease_id());
  EXPECT_EQ(leases_.Get("modem0")->owner(), "bob");
  EXPECT_TRUE(leases_.Expire().empty());
}

TEST_F(LeaseManagerTest, TtlIsBounded) {
  EXPECT_THAT(leases_.Acquire("modem0", "alice", "", absl::Hours(2)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("maximum")));
}

}  // namespace
}  // namespace atbridge::agent
