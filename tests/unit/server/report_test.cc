// Job reports (JSON, CSV) and spec helpers (defaults, redaction, names).
#include "server/jobs/report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_split.h"
#include "server/jobs/job_spec.h"
#include "server/util/proto_time.h"

namespace atbridge::server::jobs {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

v1::Job SampleJob() {
  v1::Job job;
  job.set_id("job-1");
  job.set_state(v1::JOB_COMPLETED);
  job.set_created_by("alice");
  job.mutable_spec()->set_name("push, \"quoted\"");
  job.mutable_spec()->mutable_write()->set_type(v1::CLIENT_PRIVATE_KEY);
  job.mutable_spec()->mutable_write()->set_content("<redacted 200 bytes>");
  *job.mutable_created_at() = ToProtoTime(absl::FromUnixSeconds(1'800'000'000));
  AddToCounts(job.mutable_counts(), v1::SUCCEEDED, 1);
  AddToCounts(job.mutable_counts(), v1::FAILED, 1);
  v1::Execution* a = job.add_executions();
  a->set_imei("351234567890123");
  a->set_agent("agent-1");
  a->set_port("modem0");
  a->set_state(v1::SUCCEEDED);
  a->set_attempts(3);
  a->set_sha256("ABCD");
  auto* t = a->add_history();
  t->set_from(v1::IN_PROGRESS);
  t->set_to(v1::SUCCEEDED);
  t->set_attempt(3);
  t->set_reason("written and verified");
  a->add_steps()->set_name("write");
  v1::Execution* b = job.add_executions();
  b->set_imei("351234567890124");
  b->set_state(v1::FAILED);
  b->set_attempts(1);
  b->set_last_status_code(3);
  b->set_last_status_message("+CME ERROR: 527, \"content\"\nrejected");
  return job;
}

TEST(ReportTest, JsonParsesAndCarriesExecutions) {
  const std::string text = RenderJobReportJson(SampleJob());
  nlohmann::json j = nlohmann::json::parse(text);
  EXPECT_EQ(j["job"]["id"], "job-1");
  EXPECT_EQ(j["job"]["state"], "JOB_COMPLETED");
  EXPECT_EQ(j["job"]["action"], "write");
  EXPECT_EQ(j["job"]["counts"]["succeeded"], 1);
  EXPECT_EQ(j["job"]["created_at"], "2027-01-15T08:00:00.000Z");
  ASSERT_EQ(j["executions"].size(), 2u);
  EXPECT_EQ(j["executions"][0]["state"], "SUCCEEDED");
  EXPECT_EQ(j["executions"][0]["retries"], 2);
  EXPECT_EQ(j["executions"][0]["history"][0]["to"], "SUCCEEDED");
  EXPECT_EQ(j["executions"][1]["last_status"], "INVALID_ARGUMENT");
  EXPECT_EQ(j["executions"][1]["finished_at"], "");
}

TEST(ReportTest, CsvHasHeaderAndEscapedRows) {
  const std::string csv = RenderJobReportCsv(SampleJob());
  std::vector<std::string> lines = absl::StrSplit(csv, "\r\n");
  ASSERT_GE(lines.size(), 3u);
  EXPECT_EQ(lines[0],
            "job_id,imei,agent,port,state,attempts,retries,last_status,last_status_message,"
            "sha256,queued_at,started_at,finished_at,reason");
  EXPECT_EQ(lines[1].substr(0, 58), "job-1,351234567890123,agent-1,modem0,SUCCEEDED,3,2,OK,,ABC");
  EXPECT_THAT(csv, HasSubstr("\"+CME ERROR: 527, \"\"content\"\"\nrejected\""));
  EXPECT_EQ(CsvField("plain"), "plain");
  EXPECT_EQ(CsvField("a,b"), "\"a,b\"");
}

TEST(JobSpecTest, DefaultsFillZeroFields) {
  v1::JobSpec spec;
  spec.mutable_retry()->set_max_attempts(5);
  v1::JobSpec d = WithDefaults(spec, JobDefaults{});
  EXPECT_EQ(d.rollout().max_concurrency(), 10u);
  EXPECT_EQ(d.retry().max_attempts(), 5u);
  EXPECT_EQ(FromProtoDuration(d.retry().initial_backoff()), absl::Seconds(1));
  EXPECT_EQ(FromProtoDuration(d.retry().max_backoff()), absl::Seconds(60));
  EXPECT_EQ(d.retry().multiplier(), 2.0);
  EXPECT_EQ(FromProtoDuration(d.execution_timeout()), absl::Seconds(120));
}

TEST(JobSpecTest, RedactsOnlySecretTypes) {
  v1::JobSpec key;
  key.mutable_write()->set_type(v1::CLIENT_PRIVATE_KEY);
  key.mutable_write()->set_content(
      "-----BEGIN PRIVATE KEY-----\nMIG...\n-----END PRIVATE KEY-----");
  EXPECT_TRUE(SpecHasSecret(key));
  v1::JobSpec r = RedactSpec(key);
  EXPECT_THAT(r.write().content(), Not(HasSubstr("MIG")));
  EXPECT_THAT(r.write().content(), HasSubstr("<redacted"));
  EXPECT_EQ(RedactSpec(r).write().content(), r.write().content()) << "idempotent";
  v1::JobSpec psk;
  psk.mutable_rotate()->set_type(v1::PSK);
  psk.mutable_rotate()->set_content("0011");
  EXPECT_EQ(RedactSpec(psk).rotate().content(), "<redacted 4 bytes>");
  v1::JobSpec cert;
  cert.mutable_write()->set_type(v1::ROOT_CA_CERT);
  cert.mutable_write()->set_content("public");
  EXPECT_FALSE(SpecHasSecret(cert));
  EXPECT_EQ(RedactSpec(cert).write().content(), "public");
}

TEST(JobSpecTest, DescribeNeverShowsSecrets) {
  auto validator = NewContentValidator();
  v1::JobSpec psk;
  psk.mutable_write()->set_type(v1::PSK);
  psk.mutable_write()->set_sec_tag(3);
  psk.mutable_write()->set_content("00112233");
  const std::string d = DescribeAction(psk, *validator);
  EXPECT_EQ(d, "write PSK at sec_tag 3 (8 bytes)");
  EXPECT_EQ(ActionName(psk), "write");
  EXPECT_EQ(StatusCodeName(14), "UNAVAILABLE");
  EXPECT_EQ(StatusCodeName(0), "OK");
}

TEST(JobSpecTest, CountsTrackStates) {
  v1::JobCounts c;
  AddToCounts(&c, v1::QUEUED, 1);
  AddToCounts(&c, v1::QUEUED, 1);
  AddToCounts(&c, v1::QUEUED, -1);
  AddToCounts(&c, v1::IN_PROGRESS, 1);
  EXPECT_EQ(c.queued(), 1u);
  EXPECT_EQ(c.in_progress(), 1u);
  EXPECT_EQ(c.total(), 2u);
}

}  // namespace
}  // namespace atbridge::server::jobs
