// ServerOptions from YAML and validation; the authorization table; audit
// redaction of AT commands.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/config/server_options.h"
#include "server/service/audit_log.h"
#include "server/service/authz.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace atbridge::server {
namespace {

using ::atbridge::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kExample[] = R"yaml(
listen: 0.0.0.0:7443
tls:
  cert: /etc/atbridge/server.pem
  key: /etc/atbridge/server.key
  ca: /etc/atbridge/ca.pem
state_dir: /var/lib/atbridge
signing_ca:
  cert: /etc/atbridge/modem-ca.pem
  key: /etc/atbridge/modem-ca.key
log_level: debug
workers: 4
relay_timeout: 90s
jobs:
  max_concurrency: 25
  max_attempts: 5
  initial_backoff: 500ms
  max_backoff: 2m
  multiplier: 1.5
  execution_timeout: 3m
expiry_audit:
  interval: 24h
  within_days: 45
metrics_listen: 127.0.0.1:9464
)yaml";

TEST(ServerConfigTest, MetricsOnlyOnLoopbackAndSaneExpiryAudit) {
  ServerOptions o;
  ASSERT_OK(ParseServerConfig(kExample, "server.yaml", &o));
  ASSERT_OK(ValidateServerOptions(&o));
  o.metrics_listen = "0.0.0.0:9464";
  EXPECT_THAT(ValidateServerOptions(&o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("loopback")));
  o.metrics_listen = "10.0.0.1:9464";
  EXPECT_THAT(ValidateServerOptions(&o), StatusIs(absl::StatusCode::kInvalidArgument));
  o.metrics_listen = "[::1]:0";
  EXPECT_OK(ValidateServerOptions(&o));
  o.expiry_audit_interval = absl::Seconds(5);
  EXPECT_THAT(ValidateServerOptions(&o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expiry_audit.interval")));
  o.expiry_audit_interval = absl::ZeroDuration();
  o.expiry_within_days = 0;
  EXPECT_THAT(ValidateServerOptions(&o), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ServerConfigTest, ParsesEveryKey) {
  ServerOptions o;
  ASSERT_OK(ParseServerConfig(kExample, "server.yaml", &o));
  EXPECT_EQ(o.listen, "0.0.0.0:7443");
  EXPECT_EQ(o.tls.cert_file, "/etc/atbridge/server.pem");
  EXPECT_EQ(o.tls.key_file, "/etc/atbridge/server.key");
  EXPECT_EQ(o.tls.ca_file, "/etc/atbridge/ca.pem");
  EXPECT_EQ(o.state_dir, "/var/lib/atbridge");
  EXPECT_EQ(o.signing_ca_cert_file, "/etc/atbridge/modem-ca.pem");
  EXPECT_EQ(o.log_level, "debug");
  EXPECT_EQ(o.workers, 4);
  EXPECT_EQ(o.relay_timeout, absl::Seconds(90));
  EXPECT_EQ(o.job_defaults.max_concurrency, 25u);
  EXPECT_EQ(o.job_defaults.max_attempts, 5u);
  EXPECT_EQ(o.job_defaults.initial_backoff, absl::Milliseconds(500));
  EXPECT_EQ(o.job_defaults.max_backoff, absl::Minutes(2));
  EXPECT_EQ(o.job_defaults.multiplier, 1.5);
  EXPECT_EQ(o.job_defaults.execution_timeout, absl::Minutes(3));
  EXPECT_EQ(o.expiry_audit_interval, absl::Hours(24));
  EXPECT_EQ(o.expiry_within_days, 45);
  EXPECT_EQ(o.metrics_listen, "127.0.0.1:9464");
  ASSERT_OK(ValidateServerOptions(&o));
  EXPECT_EQ(o.store_url, "sqlite:/var/lib/atbridge/atbridge.db");
}

TEST(ServerConfigTest, ErrorsNameTheKey) {
  ServerOptions o;
  EXPECT_THAT(
      ParseServerConfig("lisen: x\n", "a.yaml", &o),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("a.yaml: lisen: unknown key")));
  EXPECT_THAT(ParseServerConfig("jobs:\n  max_backoff: soon\n", "b.yaml", &o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("jobs.max_backoff")));
  EXPECT_THAT(ParseServerConfig("tls:\n  certificate: x\n", "c.yaml", &o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tls.certificate")));
  EXPECT_THAT(ParseServerConfig("workers: many\n", "d.yaml", &o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("workers")));
  EXPECT_THAT(ParseServerConfig("listen: [\n", "e.yaml", &o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not valid YAML")));
  EXPECT_OK(ParseServerConfig("", "empty.yaml", &o));
  EXPECT_THAT(LoadServerConfig("/nonexistent/server.yaml", &o),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/server.yaml")));
}

TEST(ServerConfigTest, Validation) {
  ServerOptions o;
  o.tls = {.ca_file = "ca", .cert_file = "c", .key_file = "k"};
  o.state_dir = "/tmp/x";
  EXPECT_OK(ValidateServerOptions(&o));
  ServerOptions bad = o;
  bad.listen = "7443";
  EXPECT_THAT(ValidateServerOptions(&bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("listen")));
  bad = o;
  bad.tls.key_file.clear();
  EXPECT_THAT(ValidateServerOptions(&bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("mTLS")));
  bad = o;
  bad.state_dir.clear();
  EXPECT_THAT(ValidateServerOptions(&bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("state_dir")));
  bad = o;
  bad.signing_ca_cert_file = "ca.pem";
  EXPECT_THAT(ValidateServerOptions(&bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("signing_ca")));
  bad = o;
  bad.log_level = "loud";
  EXPECT_THAT(ValidateServerOptions(&bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("log_level")));
  bad = o;
  bad.job_defaults.max_attempts = 0;
  EXPECT_THAT(ValidateServerOptions(&bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_attempts")));
  bad = o;
  bad.store_url = "sqlite:/elsewhere.db";
  ASSERT_OK(ValidateServerOptions(&bad));
  EXPECT_EQ(bad.store_url, "sqlite:/elsewhere.db");
}

struct AuthzCase {
  const char* method;
  bool viewer, automation, operator_, admin;
};

TEST(AuthzTest, Table) {
  using service::CheckAllowed;
  const AuthzCase cases[] = {
      {"ListAgents", true, true, true, true},
      {"ListDevices", true, true, true, true},
      {"GetDevice", true, true, true, true},
      {"ListCredentials", true, true, true, true},
      {"GetJob", true, true, true, true},
      {"QueryAudit", true, true, true, true},
      {"CreateJob", false, true, true, true},
      {"WatchJob", false, true, true, true},
      {"CancelJob", false, true, true, true},
      {"Console", true, false, true, true},
      {"Execute", false, false, true, true},
      {"WriteCredential", false, false, true, true},
      {"ReadCredential", false, false, true, true},
      {"GenerateKey", false, false, true, true},
      {"AcquireLease", false, false, true, true},
      {"UpdateDevice", false, false, true, true},
      {"ReleaseLease.force", false, false, false, true},
      {"SomethingNew", false, false, false, true},
  };
  for (const auto& c : cases) {
    auto check = [&](v1::Role role, bool want) {
      tls::Identity who{.principal = "p", .role = role};
      EXPECT_EQ(CheckAllowed(who, c.method).ok(), want)
          << c.method << " as " << tls::RoleName(role);
    };
    check(v1::ROLE_VIEWER, c.viewer);
    check(v1::ROLE_AUTOMATION, c.automation);
    check(v1::ROLE_OPERATOR, c.operator_);
    check(v1::ROLE_ADMIN, c.admin);
    check(v1::ROLE_AGENT, false);
    check(v1::ROLE_SERVER, false);
    check(v1::ROLE_UNSPECIFIED, false);
  }
  tls::Identity bob{.principal = "bob", .role = v1::ROLE_VIEWER};
  EXPECT_THAT(CheckAllowed(bob, "Execute"),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       HasSubstr("bob (role viewer) may not call Execute")));
}

TEST(AuditRedactionTest, CmngContentIsRedacted) {
  using service::RedactCommandForAudit;
  EXPECT_EQ(RedactCommandForAudit("AT+CFUN=4"), "AT+CFUN=4");
  EXPECT_EQ(RedactCommandForAudit("AT+CGDCONT=1,\"IP\",\"apn\""), "AT+CGDCONT=1,\"IP\",\"apn\"");
  EXPECT_EQ(RedactCommandForAudit("AT%CMNG=0,42,3,\"00112233\""),
            "AT%CMNG=0,42,3,\"<redacted 10 bytes>\"");
  EXPECT_EQ(RedactCommandForAudit("at%cmng=1"), "at%cmng=1");
}

}  // namespace
}  // namespace atbridge::server
