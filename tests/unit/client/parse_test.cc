#include "client/core/parse.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "client/core/errors.h"
#include "tests/testing/status_matchers.h"

namespace atbridge::client {
namespace {

using ::testing::HasSubstr;

TEST(CtlDeviceRefTest, FifteenDigitsAreAnImei) {
  ASSERT_OK_AND_ASSIGN(v1::DeviceRef r, ParseDeviceRef("356187266000004"));
  EXPECT_EQ(r.imei(), "356187266000004");
  EXPECT_EQ(DeviceRefText(r), "356187266000004");
}

TEST(CtlDeviceRefTest, ASlashSplitsAgentAndPort) {
  ASSERT_OK_AND_ASSIGN(v1::DeviceRef r, ParseDeviceRef("bench-1.lab/modem0"));
  EXPECT_EQ(r.port().agent(), "bench-1.lab");
  EXPECT_EQ(r.port().port(), "modem0");
  EXPECT_EQ(DeviceRefText(r), "bench-1.lab/modem0");
}

TEST(CtlDeviceRefTest, AnythingElseIsAnAliasOrALabel) {
  ASSERT_OK_AND_ASSIGN(v1::DeviceRef r, ParseDeviceRef("left-board"));
  EXPECT_EQ(r.alias(), "left-board");
  ASSERT_OK_AND_ASSIGN(r, ParseDeviceRef("rack=3"));
  EXPECT_EQ(r.alias(), "rack=3");
  // 14 or 16 digits are not an IMEI.
  ASSERT_OK_AND_ASSIGN(r, ParseDeviceRef("35618726600000"));
  EXPECT_EQ(r.alias(), "35618726600000");
}

TEST(CtlDeviceRefTest, BadDevicesAreUsageErrors) {
  for (const char* bad : {"", "/modem0", "bench1/", "a/b/c", "bench 1", "=x", "x=", "tab\there"}) {
    auto r = ParseDeviceRef(bad);
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(ExitCodeFor(r.status()), kExitUsage) << bad;
  }
  EXPECT_THAT(ParseDeviceRef("a/b/c"),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("agent/port")));
}

TEST(CtlCredentialTypeTest, AcceptsNumbersProtoNamesAndShortNames) {
  EXPECT_EQ(*ParseCredentialType("0"), v1::ROOT_CA_CERT);
  EXPECT_EQ(*ParseCredentialType("11"), v1::NORDIC_BASE_PUBLIC_KEY);
  EXPECT_EQ(*ParseCredentialType("ROOT_CA_CERT"), v1::ROOT_CA_CERT);
  EXPECT_EQ(*ParseCredentialType("root-ca"), v1::ROOT_CA_CERT);
  EXPECT_EQ(*ParseCredentialType("Client-Cert"), v1::CLIENT_CERT);
  EXPECT_EQ(*ParseCredentialType("CLIENT_KEY"), v1::CLIENT_PRIVATE_KEY);
  EXPECT_EQ(*ParseCredentialType("client_private_key"), v1::CLIENT_PRIVATE_KEY);
  EXPECT_EQ(*ParseCredentialType("psk"), v1::PSK);
  EXPECT_EQ(*ParseCredentialType("psk-identity"), v1::PSK_IDENTITY);
  EXPECT_THAT(ParseCredentialType("12"),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("0..11")));
  EXPECT_THAT(ParseCredentialType("cert"),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("root-ca=0")));
  EXPECT_EQ(CredentialTypeShortName(v1::CLIENT_PRIVATE_KEY), "client-key");
  for (int t = 0; t <= 11; ++t) {
    auto type = static_cast<v1::CredentialType>(t);
    EXPECT_EQ(*ParseCredentialType(CredentialTypeShortName(type)), type) << t;
  }
}

TEST(CtlSecTagTest, RangeIsChecked) {
  EXPECT_EQ(*ParseSecTag("0"), 0u);
  EXPECT_EQ(*ParseSecTag("2147483647"), 2147483647u);
  EXPECT_FALSE(ParseSecTag("2147483648").ok());
  EXPECT_FALSE(ParseSecTag("-1").ok());
  EXPECT_FALSE(ParseSecTag("x").ok());
}

TEST(CtlLabelTest, KeyValue) {
  ASSERT_OK_AND_ASSIGN(auto kv, ParseLabel("rack=3=a"));
  EXPECT_EQ(kv.first, "rack");
  EXPECT_EQ(kv.second, "3=a");
  EXPECT_FALSE(ParseLabel("rack").ok());
  EXPECT_FALSE(ParseLabel("=3").ok());
  ASSERT_OK_AND_ASSIGN(auto labels, ParseLabels({"a=1", "b=2", "a=3"}));
  EXPECT_EQ(labels.size(), 2u);
  EXPECT_EQ(labels["a"], "3");
}

TEST(CtlJobStateTest, Names) {
  EXPECT_EQ(*ParseJobState("in-progress"), v1::JOB_IN_PROGRESS);
  EXPECT_EQ(*ParseJobState("COMPLETED"), v1::JOB_COMPLETED);
  EXPECT_EQ(*ParseJobState("job_aborted"), v1::JOB_ABORTED);
  EXPECT_FALSE(ParseJobState("done").ok());
  EXPECT_FALSE(ParseJobState("unspecified").ok());
}

}  // namespace
}  // namespace atbridge::client
