#include "common/tls/identity.h"

#include <gtest/gtest.h>

#include "tests/testing/status_matchers.h"
#include "tests/testing/test_pki.h"

namespace atbridge::tls {
namespace {

using ::atbridge::testing::StatusIs;

class IdentityTest : public ::testing::Test {
 protected:
  testing::TestPki pki_;
};

TEST_F(IdentityTest, ReadsPrincipalAndRoleForEveryRole) {
  for (const char* role : {"admin", "operator", "automation", "viewer", "agent", "server"}) {
    TlsMaterial m = pki_.Client(std::string("user-") + role, role);
    ASSERT_OK_AND_ASSIGN(Identity id, IdentityFromCertificate(m.cert_pem));
    EXPECT_EQ(id.principal, std::string("user-") + role);
    EXPECT_EQ(RoleName(id.role), std::string(role));
  }
}

TEST_F(IdentityTest, RoleFromOuAloneIsAccepted) {
  // A certificate made by another CA tool: OU only, no SAN URI.
  pki::IssueOptions o{.common_name = "bob", .role = "viewer", .role_uri = false};
  TlsMaterial m = pki_.Issue(o);
  ASSERT_OK_AND_ASSIGN(Identity id, IdentityFromCertificate(m.cert_pem));
  EXPECT_EQ(id.principal, "bob");
  EXPECT_EQ(id.role, v1::ROLE_VIEWER);
}

TEST_F(IdentityTest, MissingOrUnknownRoleIsDenied) {
  EXPECT_THAT(IdentityFromCertificate(pki_.Client("eve", "").cert_pem),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(IdentityFromCertificate(pki_.Client("eve", "superuser").cert_pem),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST_F(IdentityTest, GarbageIsUnauthenticated) {
  EXPECT_THAT(IdentityFromCertificate("not a cert"), StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST_F(IdentityTest, RoleNamesRoundTrip) {
  EXPECT_EQ(RoleFromName("operator"), v1::ROLE_OPERATOR);
  EXPECT_EQ(RoleFromName("root"), v1::ROLE_UNSPECIFIED);
  EXPECT_STREQ(RoleName(v1::ROLE_VIEWER), "viewer");
  Identity id{.principal = "alice", .role = v1::ROLE_ADMIN, .subject = ""};
  EXPECT_EQ(id.ToString(), "alice (admin)");
}

}  // namespace
}  // namespace atbridge::tls
