// Issue 6 end to end: real atbridge-server, atbridge-agent and atbridge-sim
// processes. Pushes to 30 modems behind 3 agents, flaky modems, a
// certificate the modems refuse, and kill -9 of the server and of an agent in
// the middle of a job.
#include "tests/e2e/server/fleet.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/pki/pki.h"
#include "common/proto_time.h"
#include "tests/testing/status_matchers.h"

namespace atbridge {
namespace {

using testing::AmazonRootCa1;
using testing::Fleet;
using testing::kAmazonSha256;

v1::JobSpec PushSpec(const std::string& content, uint32_t tag = 20) {
  v1::JobSpec spec;
  spec.set_name("push Amazon Root CA 1");
  spec.mutable_write()->set_sec_tag(tag);
  spec.mutable_write()->set_type(v1::ROOT_CA_CERT);
  spec.mutable_write()->set_content(content);
  spec.mutable_selector()->set_all(true);
  spec.mutable_rollout()->set_max_concurrency(30);
  spec.mutable_retry()->set_max_attempts(8);
  *spec.mutable_retry()->mutable_initial_backoff() = ToProtoDuration(absl::Milliseconds(100));
  *spec.mutable_retry()->mutable_max_backoff() = ToProtoDuration(absl::Seconds(2));
  *spec.mutable_execution_timeout() = ToProtoDuration(absl::Seconds(30));
  return spec;
}

std::map<v1::ExecutionState, int> CountStates(const v1::Job& job) {
  std::map<v1::ExecutionState, int> out;
  for (const auto& e : job.executions()) ++out[e.state()];
  return out;
}

// Runs a job to its end and returns it with executions.
v1::Job RunToEnd(Fleet& fleet, const v1::JobSpec& spec) {
  auto job = fleet.CreateJob(spec);
  EXPECT_OK(job.status());
  if (!job.ok()) return {};
  Fleet::Watched w = fleet.Watch(job->id());
  EXPECT_TRUE(w.status.ok()) << w.status.error_message();
  auto done = fleet.GetJob(job->id());
  EXPECT_OK(done.status());
  return done.ok() ? *done : v1::Job();
}

// Every modem of the job holds `sha` at `tag`, asked live through the server.
void ExpectAllHold(Fleet& fleet, const v1::Job& job, uint32_t tag, const std::string& sha) {
  for (const auto& e : job.executions()) {
    ASSERT_OK_AND_ASSIGN(v1::ListCredentialsResponse creds, fleet.LiveCredentials(e.imei()));
    bool found = false;
    for (const auto& c : creds.entries()) {
      if (c.sec_tag() == tag && c.type() == v1::ROOT_CA_CERT) found = c.sha256() == sha;
    }
    EXPECT_TRUE(found) << e.imei() << " does not hold " << sha << " at tag " << tag;
  }
}

TEST(FleetTest, PushToThirtyModemsBehindThreeAgentsThenAgainSkips) {
  Fleet fleet;
  ASSERT_OK(fleet.StartServer());
  for (int k = 0; k < 3; ++k) ASSERT_OK(fleet.StartAgent(k, 10));

  v1::Job first = RunToEnd(fleet, PushSpec(AmazonRootCa1()));
  EXPECT_EQ(first.state(), v1::JOB_COMPLETED);
  ASSERT_EQ(first.executions_size(), 30);
  std::set<std::string> agents;
  for (const auto& e : first.executions()) {
    EXPECT_EQ(e.state(), v1::SUCCEEDED) << e.imei() << ": " << e.last_status_message();
    EXPECT_EQ(e.sha256(), kAmazonSha256);
    agents.insert(e.agent());
  }
  EXPECT_EQ(agents.size(), 3u);
  ExpectAllHold(fleet, first, 20, kAmazonSha256);

  v1::Job second = RunToEnd(fleet, PushSpec(AmazonRootCa1()));
  ASSERT_EQ(second.executions_size(), 30);
  EXPECT_EQ(second.counts().skipped(), 30u) << second.DebugString();
}

TEST(FleetTest, FlakyModemsAllSucceedAndTheReportShowsRetries) {
  Fleet fleet;
  ASSERT_OK(fleet.StartServer());
  for (int k = 0; k < 3; ++k) {
    ASSERT_OK(fleet.StartAgent(k, 10, {"--flaky", "0.2", "--seed", std::to_string(7 + k)},
                               "flow=rtscts,timeout=1s"));
  }
  v1::Job job = RunToEnd(fleet, PushSpec(AmazonRootCa1()));
  ASSERT_EQ(job.executions_size(), 30);
  int retried = 0;
  for (const auto& e : job.executions()) {
    EXPECT_EQ(e.state(), v1::SUCCEEDED) << e.imei() << ": " << e.last_status_message();
    if (e.attempts() > 1) ++retried;
  }
  EXPECT_GT(retried, 0) << "with 20% faults some executions must have needed a retry";
  ExpectAllHold(fleet, job, 20, kAmazonSha256);

  // The JSON report carries the attempts and the failed attempts' statuses.
  ASSERT_OK_AND_ASSIGN(std::string json, fleet.Report(job.id(), v1::REPORT_FORMAT_JSON));
  nlohmann::json report = nlohmann::json::parse(json);
  ASSERT_TRUE(report.contains("executions")) << json.substr(0, 400);
  int retried_in_report = 0;
  for (const auto& e : report["executions"]) {
    if (e.value("attempts", 0) > 1) ++retried_in_report;
  }
  EXPECT_EQ(retried_in_report, retried);
  ASSERT_OK_AND_ASSIGN(std::string csv, fleet.Report(job.id(), v1::REPORT_FORMAT_CSV));
  std::vector<std::string> rows = absl::StrSplit(csv, '\n', absl::SkipEmpty());
  EXPECT_EQ(rows.size(), 31u);  // Header + one row per execution.
}

TEST(FleetTest, ACertificateTheModemsRefuseFailsWithoutRetriesAndAbortsTheJob) {
  Fleet fleet;
  ASSERT_OK(fleet.StartServer());
  ASSERT_OK(fleet.StartAgent(0, 10));
  // Valid PEM that OpenSSL parses, but an Ed25519 key no nRF91 can use: the
  // modem answers 527 and nothing can repair that.
  auto ca = pki::CreateCa({});
  ASSERT_OK(ca.status());
  pki::IssueOptions o{.common_name = "unsupported"};
  o.key_type = pki::KeyType::kEd25519;
  ASSERT_OK_AND_ASSIGN(pki::KeyAndCert ed, pki::IssueCertificate(*ca, o));
  v1::JobSpec spec = PushSpec(ed.cert_pem, 21);
  spec.mutable_rollout()->set_max_concurrency(1);
  spec.mutable_abort()->set_failure_percent(50);
  spec.mutable_abort()->set_min_executed(3);
  v1::Job job = RunToEnd(fleet, spec);
  EXPECT_EQ(job.state(), v1::JOB_ABORTED) << job.reason();
  auto counts = CountStates(job);
  EXPECT_EQ(counts[v1::FAILED], 3);
  EXPECT_EQ(counts[v1::CANCELED], 7);
  for (const auto& e : job.executions()) {
    if (e.state() != v1::FAILED) continue;
    EXPECT_EQ(e.attempts(), 1u) << "INVALID_ARGUMENT must not be retried";
    EXPECT_EQ(e.last_status_code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
    EXPECT_THAT(e.last_status_message(), ::testing::HasSubstr("527"));
  }
}

// A job slow enough to interrupt: 115200 baud and two at a time.
v1::JobSpec SlowPush() {
  v1::JobSpec spec = PushSpec(AmazonRootCa1());
  spec.mutable_rollout()->set_max_concurrency(2);
  return spec;
}

// What the watch stream says about each execution.
struct Seen {
  v1::ExecutionState state = v1::EXECUTION_STATE_UNSPECIFIED;
  std::string agent;
};

// Streams the job's events (snapshot first) into `seen` and calls `on_event`
// after each, until it returns true (then the stream is cancelled) or the
// stream ends. Returns whether `on_event` returned true.
bool WatchUntil(Fleet& fleet, const std::string& job_id, std::map<std::string, Seen>& seen,
                const std::function<bool(const v1::JobEvent&)>& on_event) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  v1::WatchJobRequest req;
  req.set_job_id(job_id);
  auto reader = fleet.Operator().WatchJob(&ctx, req);
  v1::JobEvent ev;
  while (reader->Read(&ev)) {
    if (ev.has_execution()) {
      Seen& s = seen[ev.execution().imei()];
      s.state = ev.execution().state();
      if (!ev.execution().agent().empty()) s.agent = ev.execution().agent();
    }
    if (on_event(ev)) {
      ctx.TryCancel();
      (void)reader->Finish();
      return true;
    }
  }
  (void)reader->Finish();
  return false;
}

int CountIn(const std::map<std::string, Seen>& seen, std::initializer_list<v1::ExecutionState> in) {
  int n = 0;
  for (const auto& [imei, s] : seen) {
    for (v1::ExecutionState st : in) n += s.state == st ? 1 : 0;
  }
  return n;
}

const v1::Execution* FindExecution(const v1::Job& job, const std::string& imei) {
  for (const auto& e : job.executions()) {
    if (e.imei() == imei) return &e;
  }
  return nullptr;
}

bool HistoryMentions(const v1::Execution& e, absl::string_view text) {
  for (const auto& t : e.history()) {
    if (absl::StrContains(t.reason(), text)) return true;
  }
  return false;
}

// When the execution reached its final state (InfiniteFuture if it did not).
absl::Time FinishedAt(const v1::Execution& e) {
  for (const auto& t : e.history()) {
    if (t.to() == v1::SUCCEEDED || t.to() == v1::SKIPPED) return FromProtoTime(t.at());
  }
  return absl::InfiniteFuture();
}

void ExpectAllSucceeded(const v1::Job& done) {
  EXPECT_EQ(done.state(), v1::JOB_COMPLETED);
  ASSERT_EQ(done.executions_size(), 30);
  for (const auto& e : done.executions()) {
    // A write that landed just before the interruption is found in place on
    // the next attempt (SKIPPED: the modem already holds that SHA-256).
    EXPECT_TRUE(e.state() == v1::SUCCEEDED || e.state() == v1::SKIPPED)
        << e.imei() << " on " << e.agent() << ": " << v1::ExecutionState_Name(e.state()) << " "
        << e.last_status_message();
  }
}

// An execution that was IN_PROGRESS (per the stream) when the process was
// killed either was interrupted (`interrupted` says how its history shows
// it), or its answer was already on the wire: then it finished within moments
// of the kill. The execution whose start triggered the kill (its transaction
// takes >120 ms at 115200 baud) must have been interrupted.
void ExpectInterrupted(const v1::Job& done, const std::string& trigger,
                       const std::set<std::string>& in_progress, absl::Time killed_at,
                       const std::function<bool(const v1::Execution&)>& interrupted) {
  ASSERT_TRUE(in_progress.count(trigger));
  for (const std::string& imei : in_progress) {
    const v1::Execution* e = FindExecution(done, imei);
    ASSERT_NE(e, nullptr) << imei;
    if (imei == trigger) {
      EXPECT_TRUE(interrupted(*e)) << imei << " was in progress at the kill:\n" << e->DebugString();
    } else {
      EXPECT_TRUE(interrupted(*e) || FinishedAt(*e) < killed_at + absl::Milliseconds(500))
          << imei << " was in progress at the kill:\n"
          << e->DebugString();
    }
  }
}

TEST(FleetTest, ServerKilledMidJobResumesAfterRestartAndEveryModemIsVerified) {
  Fleet fleet;
  ASSERT_OK(fleet.StartServer());
  for (int k = 0; k < 3; ++k) ASSERT_OK(fleet.StartAgent(k, 10, {"--baud", "115200"}));
  ASSERT_OK_AND_ASSIGN(v1::Job job, fleet.CreateJob(SlowPush()));

  // Once a few executions are done, kill -9 the server the moment an attempt
  // starts: that one (and whatever else the stream shows in progress) is
  // mid-transaction.
  std::map<std::string, Seen> seen;
  std::string trigger;
  std::set<std::string> in_progress;
  absl::Time killed_at;
  ASSERT_TRUE(WatchUntil(fleet, job.id(), seen, [&](const v1::JobEvent& ev) {
    if (CountIn(seen, {v1::SUCCEEDED, v1::SKIPPED}) < 4 || !ev.has_transition() ||
        ev.transition().to() != v1::IN_PROGRESS) {
      return false;
    }
    trigger = ev.execution().imei();
    for (const auto& [imei, s] : seen) {
      if (s.state == v1::IN_PROGRESS) in_progress.insert(imei);
    }
    killed_at = absl::Now();
    fleet.KillServer();
    return true;
  })) << "the job ended before anything could be interrupted";

  ASSERT_OK(fleet.StartServer());
  Fleet::Watched w = fleet.Watch(job.id());
  ASSERT_TRUE(w.status.ok()) << w.status.error_message();
  ASSERT_OK_AND_ASSIGN(v1::Job done, fleet.GetJob(job.id()));
  ExpectAllSucceeded(done);
  // The interrupted attempts resumed after the restart (waiting for their
  // agents to dial back in) and completed under the same attempt number.
  ExpectInterrupted(done, trigger, in_progress, killed_at, [](const v1::Execution& e) {
    return HistoryMentions(e, "server restart") && e.attempts() == 1;
  });
  // Every hash is read back from the modems themselves.
  ExpectAllHold(fleet, done, 20, kAmazonSha256);
}

TEST(FleetTest, AgentKilledMidJobRetriesItsExecutionsAfterItsRestart) {
  Fleet fleet;
  ASSERT_OK(fleet.StartServer());
  for (int k = 0; k < 3; ++k) ASSERT_OK(fleet.StartAgent(k, 10, {"--baud", "115200"}));
  v1::JobSpec spec = SlowPush();
  spec.mutable_rollout()->set_max_concurrency(6);
  ASSERT_OK_AND_ASSIGN(v1::Job job, fleet.CreateJob(spec));

  // Kill the agent of the device whose attempt has just started (IMEIs are
  // spread over the agents in hash order, so which agent is busy is only
  // known from the events).
  std::map<std::string, Seen> seen;
  std::string trigger;
  std::string victim;
  std::set<std::string> in_progress;
  absl::Time killed_at;
  ASSERT_TRUE(WatchUntil(fleet, job.id(), seen, [&](const v1::JobEvent& ev) {
    if (CountIn(seen, {v1::SUCCEEDED, v1::SKIPPED}) < 6 || !ev.has_transition() ||
        ev.transition().to() != v1::IN_PROGRESS || ev.execution().agent().empty()) {
      return false;
    }
    trigger = ev.execution().imei();
    victim = ev.execution().agent();
    for (const auto& [imei, s] : seen) {
      if (s.state == v1::IN_PROGRESS && s.agent == victim) in_progress.insert(imei);
    }
    int k = -1;
    if (!absl::SimpleAtoi(absl::StripPrefix(victim, "lab"), &k)) return false;
    killed_at = absl::Now();
    fleet.KillAgent(k);
    return true;
  })) << "the job ended before an agent could be killed mid-transaction";
  int k = -1;
  ASSERT_TRUE(absl::SimpleAtoi(absl::StripPrefix(victim, "lab"), &k)) << victim;
  ASSERT_OK(fleet.StartAgent(k, 10));

  Fleet::Watched w = fleet.Watch(job.id());
  ASSERT_TRUE(w.status.ok()) << w.status.error_message();
  ASSERT_OK_AND_ASSIGN(v1::Job done, fleet.GetJob(job.id()));
  ExpectAllSucceeded(done);
  // The killed agent's attempts failed UNAVAILABLE and were retried once it
  // was back.
  ExpectInterrupted(done, trigger, in_progress, killed_at, [](const v1::Execution& e) {
    return e.attempts() > 1 && HistoryMentions(e, "UNAVAILABLE");
  });
  ExpectAllHold(fleet, done, 20, kAmazonSha256);
}

}  // namespace
}  // namespace atbridge
