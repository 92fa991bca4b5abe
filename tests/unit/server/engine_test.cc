// Job engine with a fake clock, fake random, a scripted agent client and a
// real SQLite store in a temp dir: retries by status code, backoff, rollout
// limits, abort, cancel, timeouts, dry run, idempotency, rotation rollback,
// keygen-and-sign, AT scripts, secrets, and resuming after a restart.
#include "server/jobs/engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/pki/pki.h"
#include "common/status_details.h"
#include "server/jobs/backoff.h"
#include "server/jobs/csr_signer.h"
#include "server/jobs/report.h"
#include "server/store/sqlite_store.h"
#include "server/util/proto_time.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/fake_random.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"
#include "tests/unit/server/fake_agent_client.h"
#include "tests/unit/server/flaky_job_store.h"

namespace atbridge::server::jobs {
namespace {

using ::atbridge::server::testing::FakeAgentClient;
using ::atbridge::server::testing::FlakyJobStore;
using ::atbridge::server::testing::WriteOk;
using ::atbridge::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

constexpr char kSha[] = "AB12AB12AB12AB12AB12AB12AB12AB12AB12AB12AB12AB12AB12AB12AB12AB12";

class RecordingObserver : public JobObserver {
 public:
  void OnJobEvent(const v1::JobEvent& event) override { events.push_back(event); }
  std::vector<v1::JobEvent> events;
};

class RecordingAuditor : public ExecutionAuditor {
 public:
  struct Record {
    v1::Actor creator;
    std::string job_id;
    std::string action;
    v1::Execution execution;
    std::string reason;
  };
  void ExecutionFinished(const v1::Actor& creator, const std::string& job_id,
                         const std::string& action, const v1::Execution& execution,
                         const std::string& reason) override {
    records.push_back({creator, job_id, action, execution, reason});
  }
  std::vector<Record> records;
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = store::OpenSqliteStore(dir_.File("jobs.db"));
    ASSERT_OK(store);
    store_ = *std::move(store);
    flaky_ = std::make_unique<FlakyJobStore>(store_.get());
    validator_ = NewContentValidator();
    actor_.set_principal("alice");
    actor_.set_role(v1::ROLE_OPERATOR);
    MakeEngine();
  }

  void MakeEngine(CsrSigner* signer = nullptr) {
    engine_.reset();
    engine_ = std::make_unique<JobEngine>(options_, flaky_.get(), &agents_, &clock_, &random_,
                                          validator_.get(), signer, &auditor_);
    engine_->SetWakeListener([this](absl::Time t) {
      wake_ = t;
      ++wake_calls_;
    });
    ASSERT_OK(engine_->Start());
  }

  std::vector<std::string> AddDevices(int n) {
    std::vector<std::string> imeis;
    for (int i = 0; i < n; ++i) {
      std::string imei = absl::StrCat("3500000000", 10000 + i);
      agents_.Place(imei, absl::StrCat("agent-", i % 3), absl::StrCat("modem", i));
      imeis.push_back(imei);
    }
    return imeis;
  }

  static v1::JobSpec WriteSpec() {
    v1::JobSpec spec;
    spec.set_name("push identity");
    auto* w = spec.mutable_write();
    w->set_sec_tag(42);
    w->set_type(v1::PSK_IDENTITY);
    w->set_content("device-identity-1");
    *spec.mutable_retry()->mutable_initial_backoff() = ToProtoDuration(absl::Seconds(1));
    *spec.mutable_retry()->mutable_max_backoff() = ToProtoDuration(absl::Seconds(8));
    return spec;
  }

  v1::Job Create(const v1::JobSpec& spec, const std::vector<std::string>& imeis) {
    auto r = engine_->CreateJob(spec, imeis, actor_);
    EXPECT_OK(r);
    return r.ok() ? r->job : v1::Job();
  }

  v1::Job Get(const std::string& id) {
    auto j = engine_->GetJob(id, /*include_executions=*/true);
    EXPECT_OK(j);
    return j.ok() ? *j : v1::Job();
  }

  // Moves the clock to the engine's wake time and ticks.
  void RunToWake() {
    absl::Time t = engine_->NextWakeTime();
    ASSERT_NE(t, absl::InfiniteFuture()) << "engine has nothing scheduled";
    if (t > clock_.Now()) clock_.Set(t);
    engine_->Tick();
  }

  static void Reply(FakeAgentClient::Sent& s, absl::StatusOr<v1::AgentResponse> r) {
    s.done(std::move(r));
  }

  atbridge::testing::TempDir dir_;
  atbridge::testing::FakeClock clock_;
  atbridge::testing::FakeRandom random_{0.5};
  FakeAgentClient agents_;
  EngineOptions options_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<FlakyJobStore> flaky_;  // Over store_; the engine's store.
  RecordingAuditor auditor_;
  std::unique_ptr<ContentValidator> validator_;
  std::unique_ptr<JobEngine> engine_;
  v1::Actor actor_;
  absl::Time wake_ = absl::InfiniteFuture();
  int wake_calls_ = 0;
};

// ---- backoff ----

TEST(BackoffTest, CapGrowsExponentiallyUpToMax) {
  BackoffPolicy p{.initial = absl::Seconds(1), .max = absl::Seconds(10), .multiplier = 2};
  EXPECT_EQ(BackoffCap(p, 1), absl::Seconds(1));
  EXPECT_EQ(BackoffCap(p, 2), absl::Seconds(2));
  EXPECT_EQ(BackoffCap(p, 3), absl::Seconds(4));
  EXPECT_EQ(BackoffCap(p, 4), absl::Seconds(8));
  EXPECT_EQ(BackoffCap(p, 5), absl::Seconds(10));
  EXPECT_EQ(BackoffCap(p, 1000), absl::Seconds(10));  // No overflow.
}

TEST(BackoffTest, JitterStaysWithinZeroAndCap) {
  BackoffPolicy p{.initial = absl::Milliseconds(100), .max = absl::Seconds(5), .multiplier = 3};
  atbridge::testing::FakeRandom r;
  r.set_value(0.0);
  EXPECT_EQ(JitteredBackoff(p, 3, r), absl::ZeroDuration());
  r.set_value(0.25);
  EXPECT_EQ(JitteredBackoff(p, 3, r), absl::Milliseconds(225));
  r.set_value(0.999999);
  EXPECT_LE(JitteredBackoff(p, 3, r), absl::Milliseconds(900));
  EXPECT_GT(JitteredBackoff(p, 3, r), absl::Milliseconds(899));
  auto seeded = NewSeededRandom(7);
  for (uint32_t n = 1; n < 12; ++n) {
    for (int i = 0; i < 50; ++i) {
      absl::Duration d = JitteredBackoff(p, n, *seeded);
      EXPECT_GE(d, absl::ZeroDuration());
      EXPECT_LE(d, BackoffCap(p, n));
    }
  }
}

TEST(BackoffTest, MultiplierBelowOneIsTreatedAsOne) {
  BackoffPolicy p{.initial = absl::Seconds(2), .max = absl::Seconds(60), .multiplier = 0.5};
  EXPECT_EQ(BackoffCap(p, 4), absl::Seconds(2));
}

// ---- retry table ----

struct RetryCase {
  absl::StatusCode code;
  bool retryable;
};

class RetryTableTest : public EngineTest, public ::testing::WithParamInterface<RetryCase> {};

TEST_P(RetryTableTest, OnlyRetryableCodesAreRetried) {
  const RetryCase c = GetParam();
  auto imeis = AddDevices(1);
  agents_.SetResponder([&](const FakeAgentClient::Sent&) -> absl::StatusOr<v1::AgentResponse> {
    return absl::Status(c.code, "scripted failure");
  });
  v1::JobSpec spec = WriteSpec();
  spec.mutable_retry()->set_max_attempts(3);
  v1::Job job = Create(spec, imeis);
  for (int i = 0; i < 5 && engine_->NextWakeTime() != absl::InfiniteFuture(); ++i) RunToWake();
  v1::Job done = Get(job.id());
  ASSERT_THAT(done.executions(), SizeIs(1));
  const v1::Execution& x = done.executions(0);
  EXPECT_EQ(x.attempts(), c.retryable ? 3u : 1u);
  EXPECT_EQ(agents_.SentCount(), c.retryable ? 3u : 1u);
  EXPECT_EQ(x.state(), c.code == absl::StatusCode::kDeadlineExceeded ? v1::TIMED_OUT : v1::FAILED);
  EXPECT_EQ(x.last_status_code(), static_cast<int>(c.code));
  EXPECT_EQ(done.state(), v1::JOB_COMPLETED);
}

INSTANTIATE_TEST_SUITE_P(Codes, RetryTableTest,
                         ::testing::Values(RetryCase{absl::StatusCode::kUnavailable, true},
                                           RetryCase{absl::StatusCode::kDeadlineExceeded, true},
                                           RetryCase{absl::StatusCode::kDataLoss, true},
                                           RetryCase{absl::StatusCode::kAborted, true},
                                           RetryCase{absl::StatusCode::kInvalidArgument, false},
                                           RetryCase{absl::StatusCode::kFailedPrecondition, false},
                                           RetryCase{absl::StatusCode::kPermissionDenied, false},
                                           RetryCase{absl::StatusCode::kNotFound, false},
                                           RetryCase{absl::StatusCode::kResourceExhausted, false},
                                           RetryCase{absl::StatusCode::kInternal, false}),
                         [](const ::testing::TestParamInfo<RetryCase>& param_info) {
                           std::string name = absl::StatusCodeToString(param_info.param.code);
                           name.erase(std::remove(name.begin(), name.end(), '_'), name.end());
                           return name;
                         });

// ---- basic runs ----

TEST_F(EngineTest, WritesEveryDeviceAndReportsTransitions) {
  auto imeis = AddDevices(5);
  agents_.SetResponder([](const FakeAgentClient::Sent& s) -> absl::StatusOr<v1::AgentResponse> {
    EXPECT_EQ(s.actor.principal(), "alice");
    EXPECT_EQ(s.request.write_credential().content(), "device-identity-1");
    EXPECT_FALSE(s.request.write_credential().port().empty());
    EXPECT_GT(s.timeout, absl::ZeroDuration());
    return WriteOk(kSha);
  });
  v1::Job job = Create(WriteSpec(), imeis);
  EXPECT_FALSE(job.id().empty());
  v1::Job done = Get(job.id());
  EXPECT_EQ(done.state(), v1::JOB_COMPLETED);
  EXPECT_EQ(done.counts().succeeded(), 5u);
  EXPECT_EQ(done.counts().total(), 5u);
  for (const auto& x : done.executions()) {
    EXPECT_EQ(x.state(), v1::SUCCEEDED);
    EXPECT_EQ(x.attempts(), 1u);
    EXPECT_EQ(x.sha256(), kSha);
    ASSERT_THAT(x.history(), SizeIs(3));
    EXPECT_EQ(x.history(0).to(), v1::QUEUED);
    EXPECT_EQ(x.history(1).to(), v1::IN_PROGRESS);
    EXPECT_EQ(x.history(1).attempt(), 1u);
    EXPECT_EQ(x.history(2).to(), v1::SUCCEEDED);
    EXPECT_FALSE(x.agent().empty());
  }
  EXPECT_EQ(engine_->ActiveJobCount(), 0u);
  EXPECT_EQ(engine_->NextWakeTime(), absl::InfiniteFuture());
}

TEST_F(EngineTest, SkippedWhenContentAlreadyPresent) {
  auto imeis = AddDevices(3);
  agents_.SetResponder([](const FakeAgentClient::Sent&) -> absl::StatusOr<v1::AgentResponse> {
    return WriteOk(kSha, /*skipped=*/true);
  });
  v1::Job done = Get(Create(WriteSpec(), imeis).id());
  EXPECT_EQ(done.counts().skipped(), 3u);
  EXPECT_THAT(done.executions(0).history(2).reason(), HasSubstr("already present"));
}

TEST_F(EngineTest, TransientFailureRetriesWithBackoffThenSucceeds) {
  auto imeis = AddDevices(1);
  int calls = 0;
  agents_.SetResponder([&](const FakeAgentClient::Sent&) -> absl::StatusOr<v1::AgentResponse> {
    if (++calls == 1) return absl::DataLossError("hash mismatch after write");
    return WriteOk(kSha);
  });
  const absl::Time t0 = clock_.Now();
  v1::Job job = Create(WriteSpec(), imeis);
  v1::Job mid = Get(job.id());
  ASSERT_EQ(mid.executions(0).state(), v1::QUEUED);
  // FakeRandom gives 0.5: half of the first cap (1 s).
  EXPECT_EQ(FromProtoTime(mid.executions(0).next_attempt_at()), t0 + absl::Milliseconds(500));
  EXPECT_EQ(wake_, t0 + absl::Milliseconds(500)) << "the wake listener arms one timer";
  EXPECT_THAT(mid.executions(0).history(2).reason(),
              AllOf(HasSubstr("DATA_LOSS"), HasSubstr("retry in 0.500s")));
  // Nothing happens before the backoff expires.
  clock_.Advance(absl::Milliseconds(499));
  engine_->Tick();
  EXPECT_EQ(calls, 1);
  clock_.Advance(absl::Milliseconds(1));
  engine_->Tick();
  v1::Job done = Get(job.id());
  EXPECT_EQ(done.executions(0).state(), v1::SUCCEEDED);
  EXPECT_EQ(done.executions(0).attempts(), 2u);
}

TEST_F(EngineTest, AFailedWriteKeepsTheAgentsStepReport) {
  auto imeis = AddDevices(1);
  agents_.SetResponder([](const FakeAgentClient::Sent&) -> absl::StatusOr<v1::AgentResponse> {
    // What the agent attaches to a DATA_LOSS write (common/status_details.h).
    absl::Status lost = absl::DataLossError("hash mismatch after write");
    v1::WriteReport report;
    auto* write = report.add_steps();
    write->set_name("write");
    write->set_status(v1::STEP_OK);
    auto* verify = report.add_steps();
    verify->set_name("verify");
    verify->set_status(v1::STEP_FAILED);
    verify->set_detail("the modem stores 0BAD..., expected AD6F...");
    SetStatusDetail(&lost, report);
    return lost;
  });
  v1::JobSpec spec = WriteSpec();
  spec.mutable_retry()->set_max_attempts(1);
  v1::Job done = Get(Create(spec, imeis).id());
  ASSERT_EQ(done.executions(0).state(), v1::FAILED);
  std::vector<std::string> steps;
  for (const auto& st : done.executions(0).steps()) {
    steps.push_back(absl::StrCat(st.name(), ":", v1::StepStatus_Name(st.status())));
  }
  EXPECT_THAT(steps, ::testing::IsSupersetOf({"write:STEP_OK", "verify:STEP_FAILED"}));
  EXPECT_THAT(done.executions(0).steps(), ::testing::Contains(::testing::Property(
                                              &v1::Step::detail, HasSubstr("expected AD6F"))));
}

TEST_F(EngineTest, BackoffGrowsBetweenAttempts) {
  auto imeis = AddDevices(1);
  agents_.SetResponder([](const FakeAgentClient::Sent&) -> absl::StatusOr<v1::AgentResponse> {
    return absl::UnavailableError("port gone");
  });
  random_.set_value(1.0);  // Jitter at the top of the range: the cap itself.
  v1::JobSpec spec = WriteSpec();
  spec.mutable_retry()->set_max_attempts(5);
  v1::Job job = Create(spec, imeis);
  std::vector<absl::Duration> gaps;
  for (int i = 0; i < 4; ++i) {
    absl::Time before = clock_.Now();
    RunToWake();
    gaps.push_back(clock_.Now() - before);
  }
  EXPECT_EQ(gaps, (std::vector<absl::Duration>{absl::Seconds(1), absl::Seconds(2), absl::Seconds(4),
                                               absl::Seconds(8)}));
  v1::Job done = Get(job.id());
  EXPECT_EQ(done.executions(0).state(), v1::FAILED);
  EXPECT_EQ(done.executions(0).attempts(), 5u);
  EXPECT_THAT(done.executions(0).last_status_message(), HasSubstr("port gone"));
}

// ---- rollout ----

TEST_F(EngineTest, ConcurrencyCapLimitsInProgress) {
  auto imeis = AddDevices(10);
  v1::JobSpec spec = WriteSpec();
  spec.mutable_rollout()->set_max_concurrency(3);
  v1::Job job = Create(spec, imeis);
  EXPECT_EQ(agents_.PendingCount(), 3u);
  EXPECT_EQ(Get(job.id()).counts().in_progress(), 3u);
  auto pending = agents_.TakePending();
  Reply(pending[0], WriteOk(kSha));
  EXPECT_EQ(agents_.PendingCount(), 1u) << "one finished, one more starts";
  for (size_t i = 1; i < pending.size(); ++i) Reply(pending[i], WriteOk(kSha));
  while (agents_.PendingCount() > 0) {
    EXPECT_LE(Get(job.id()).counts().in_progress(), 3u);
    for (auto& s : agents_.TakePending()) Reply(s, WriteOk(kSha));
  }
  EXPECT_EQ(Get(job.id()).counts().succeeded(), 10u);
}

TEST_F(EngineTest, DefaultConcurrencyIsTen) {
  auto imeis = AddDevices(15);
  Create(WriteSpec(), imeis);
  EXPECT_EQ(agents_.PendingCount(), 10u);
}

TEST_F(EngineTest, RateLimitStartsAtMostPerMinute) {
  auto imeis = AddDevices(5);
  v1::JobSpec spec = WriteSpec();
  spec.mutable_rollout()->set_per_minute(2);
  const absl::Time t0 = clock_.Now();
  v1::Job job = Create(spec, imeis);
  EXPECT_EQ(agents_.PendingCount(), 2u);
  for (auto& s : agents_.TakePending()) Reply(s, WriteOk(kSha));
  EXPECT_EQ(agents_.PendingCount(), 0u) << "the rate window is full";
  EXPECT_EQ(engine_->NextWakeTime(), t0 + absl::Minutes(1));
  clock_.Advance(absl::Seconds(59));
  engine_->Tick();
  EXPECT_EQ(agents_.PendingCount(), 0u);
  clock_.Advance(absl::Seconds(1));
  engine_->Tick();
  EXPECT_EQ(agents_.PendingCount(), 2u);
  for (auto& s : agents_.TakePending()) Reply(s, WriteOk(kSha));
  RunToWake();
  EXPECT_EQ(agents_.PendingCount(), 1u);
  for (auto& s : agents_.TakePending()) Reply(s, WriteOk(kSha));
  EXPECT_EQ(Get(job.id()).state(), v1::JOB_COMPLETED);
  EXPECT_EQ(clock_.Now(), t0 + absl::Minutes(2));
}

// ---- abort and cancel ----

TEST_F(EngineTest, AbortsAtFailureThresholdAndCancelsTheRest) {
  auto imeis = AddDevices(10);
  agents_.SetResponder([](const FakeAgentClient::Sent&) -> absl::StatusOr<v1::AgentResponse> {
    return absl::InvalidArgumentError("+CME ERROR: 527 content rejected");
  });
  v1::JobSpec spec = WriteSpec();
  spec.mutable_rollout()->set_max_concurrency(1);
  spec.mutable_abort()->set_failure_percent(50);
  spec.mutable_abort()->set_min_executed(3);
  v1::Job done = Get(Create(spec, imeis).id());
  EXPECT_EQ(done.state(), v1::JOB_ABORTED);
  EXPECT_THAT(done.reason(), HasSubstr("3 of 3"));
  EXPECT_EQ(done.counts().failed(), 3u);
  EXPECT_EQ(done.counts().canceled(), 7u);
  EXPECT_EQ(agents_.SentCount(), 3u);
  for (const auto& x : done.executions()) {
    if (x.state() == v1::FAILED) {
      EXPECT_EQ(x.attempts(), 1u) << "non-retryable: no retries";
    }
  }
  EXPECT_NE(done.finished_at().seconds(), 0);
}

TEST_F(EngineTest, NoAbortBelowMinExecutedOrBelowThePercentage) {
  auto imeis = AddDevices(4);
  int n = 0;
  agents_.SetResponder([&](const FakeAgentClient::Sent&) -> absl::StatusOr<v1::AgentResponse> {
    if (n++ == 0) return absl::InvalidArgumentError("bad");
    return WriteOk(kSha);
  });
  v1::JobSpec spec = WriteSpec();
  spec.mutable_rollout()->set_max_concurrency(1);
  // 1 of 1 failed (100%) is below min_executed; then 1 of 2 (50%) < 60%.
  spec.mutable_abort()->set_failure_percent(60);
  spec.mutable_abort()->set_min_executed(2);
  v1::Job done = Get(Create(spec, imeis).id());
  EXPECT_EQ(done.state(), v1::JOB_COMPLETED);
  EXPECT_EQ(done.counts().failed(), 1u);
  EXPECT_EQ(done.counts().succeeded(), 3u);
}

TEST_F(EngineTest, CancelCancelsQueuedAndLetsRunningFinish) {
  auto imeis = AddDevices(5);
  v1::JobSpec spec = WriteSpec();
  spec.mutable_rollout()->set_max_concurrency(2);
  v1::Job job = Create(spec, imeis);
  auto running = agents_.TakePending();
  ASSERT_THAT(running, SizeIs(2));
  ASSERT_OK_AND_ASSIGN(v1::Job canceled, engine_->CancelJob(job.id(), "operator changed mind"));
  EXPECT_EQ(canceled.state(), v1::JOB_CANCELED);
  EXPECT_EQ(canceled.counts().canceled(), 3u);
  EXPECT_EQ(canceled.counts().in_progress(), 2u);
  EXPECT_EQ(engine_->ActiveJobCount(), 1u);
  Reply(running[0], WriteOk(kSha));
  // A retryable failure after the cancel is not retried.
  Reply(running[1], absl::UnavailableError("agent gone"));
  EXPECT_EQ(agents_.PendingCount(), 0u);
  v1::Job done = Get(job.id());
  EXPECT_EQ(done.state(), v1::JOB_CANCELED);
  EXPECT_EQ(done.counts().succeeded(), 1u);
  EXPECT_EQ(done.counts().canceled(), 4u);
  EXPECT_THAT(done.reason(), HasSubstr("operator changed mind"));
  EXPECT_NE(done.finished_at().seconds(), 0);
  EXPECT_EQ(engine_->ActiveJobCount(), 0u);
  // Cancelling a finished job returns it unchanged.
  ASSERT_OK_AND_ASSIGN(v1::Job again, engine_->CancelJob(job.id(), "again"));
  EXPECT_EQ(again.state(), v1::JOB_CANCELED);
  EXPECT_THAT(engine_->CancelJob("nope", ""), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(EngineTest, CancelDuringBackoffCancelsTheWaitingExecution) {
  auto imeis = AddDevices(1);
  agents_.SetResponder([](const FakeAgentClient::Sent&) -> absl::StatusOr<v1::AgentResponse> {
    return absl::UnavailableError("port gone");
  });
  v1::Job job = Create(WriteSpec(), imeis);
  ASSERT_EQ(Get(job.id()).executions(0).state(), v1::QUEUED);
  ASSERT_OK(engine_->CancelJob(job.id(), ""));
  v1::Job done = Get(job.id());
  EXPECT_EQ(done.executions(0).state(), v1::CANCELED);
  EXPECT_EQ(done.state(), v1::JOB_CANCELED);
  EXPECT_EQ(engine_->NextWakeTime(), absl::InfiniteFuture());
}

// ---- timeouts ----

TEST_F(EngineTest, AttemptTimeoutRetriesThenTimesOut) {
  auto imeis = AddDevices(1);
  v1::JobSpec spec = WriteSpec();
  spec.mutable_retry()->set_max_attempts(2);
  *spec.mutable_execution_timeout() = ToProtoDuration(absl::Seconds(10));
  const absl::Time t0 = clock_.Now();
  v1::Job job = Create(spec, imeis);
  auto first = agents_.TakePending();
  ASSERT_THAT(first, SizeIs(1));
  EXPECT_EQ(first[0].timeout, absl::Seconds(10)) << "the request carries the attempt's deadline";
  EXPECT_EQ(engine_->NextWakeTime(), t0 + absl::Seconds(10));
  RunToWake();  // Attempt 1 times out.
  v1::Job mid = Get(job.id());
  EXPECT_EQ(mid.executions(0).state(), v1::QUEUED);
  EXPECT_EQ(mid.executions(0).last_status_code(),
            static_cast<int>(absl::StatusCode::kDeadlineExceeded));
  // A late answer for attempt 1 is ignored.
  Reply(first[0], WriteOk(kSha));
  EXPECT_EQ(Get(job.id()).executions(0).state(), v1::QUEUED);
  RunToWake();  // Backoff over: attempt 2 starts.
  EXPECT_EQ(agents_.PendingCount(), 1u);
  RunToWake();  // Attempt 2 times out: retries exhausted.
  v1::Job done = Get(job.id());
  EXPECT_EQ(done.executions(0).state(), v1::TIMED_OUT);
  EXPECT_EQ(done.executions(0).attempts(), 2u);
  EXPECT_THAT(done.executions(0).last_status_message(), HasSubstr("did not finish within 10s"));
  EXPECT_EQ(done.state(), v1::JOB_COMPLETED);
}

// ---- dry run, idempotency, validation, secrets ----

TEST_F(EngineTest, DryRunTouchesNoDevice) {
  auto imeis = AddDevices(4);
  v1::JobSpec spec = WriteSpec();
  spec.set_dry_run(true);
  v1::Job job = Create(spec, imeis);
  EXPECT_EQ(job.state(), v1::JOB_COMPLETED);
  EXPECT_EQ(agents_.SentCount(), 0u);
  v1::Job done = Get(job.id());
  EXPECT_EQ(done.counts().skipped(), 4u);
  for (const auto& x : done.executions()) {
    EXPECT_EQ(x.state(), v1::SKIPPED);
    EXPECT_EQ(x.attempts(), 0u);
    EXPECT_THAT(
        x.history(0).reason(),
        AllOf(HasSubstr("dry run: would write PSK identity at sec_tag 42"), HasSubstr("sha256")));
  }
}

TEST_F(EngineTest, DryRunStillValidatesContent) {
  auto imeis = AddDevices(1);
  v1::JobSpec spec = WriteSpec();
  spec.set_dry_run(true);
  spec.mutable_write()->set_type(v1::CLIENT_CERT);
  spec.mutable_write()->set_content(
      "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----");
  EXPECT_THAT(engine_->CreateJob(spec, imeis, actor_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("write.content")));
}

TEST_F(EngineTest, IdempotencyKeyReturnsTheExistingJob) {
  auto imeis = AddDevices(2);
  v1::JobSpec spec = WriteSpec();
  spec.set_idempotency_key("rollout-2024-07");
  ASSERT_OK_AND_ASSIGN(auto first, engine_->CreateJob(spec, imeis, actor_));
  EXPECT_FALSE(first.existing);
  ASSERT_OK_AND_ASSIGN(auto second, engine_->CreateJob(spec, imeis, actor_));
  EXPECT_TRUE(second.existing);
  EXPECT_EQ(second.job.id(), first.job.id());
  EXPECT_EQ(agents_.SentCount(), 2u) << "no second rollout";
  ASSERT_OK_AND_ASSIGN(auto jobs, engine_->ListJobs(v1::JOB_STATE_UNSPECIFIED, 0));
  EXPECT_THAT(jobs, SizeIs(1));
}

TEST_F(EngineTest, RejectsInvalidSpecsAndEmptyTargets) {
  auto imeis = AddDevices(1);
  v1::JobSpec none;
  EXPECT_THAT(engine_->CreateJob(none, imeis, actor_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("action")));
  v1::JobSpec bad_tag = WriteSpec();
  bad_tag.mutable_write()->set_sec_tag(4000000000u);
  EXPECT_THAT(engine_->CreateJob(bad_tag, imeis, actor_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("sec_tag")));
  v1::JobSpec script;
  script.mutable_at_script()->add_commands("AT+CFUN=4\r\nAT");
  EXPECT_THAT(engine_->CreateJob(script, imeis, actor_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("commands[0]")));
  v1::JobSpec keygen;
  keygen.mutable_keygen_and_sign()->set_sec_tag(1);
  EXPECT_THAT(engine_->CreateJob(keygen, imeis, actor_),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("CA")));
  v1::JobSpec attempts = WriteSpec();
  attempts.mutable_retry()->set_max_attempts(1000);
  EXPECT_THAT(engine_->CreateJob(attempts, imeis, actor_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_attempts")));
  EXPECT_THAT(engine_->CreateJob(WriteSpec(), {}, actor_),
              StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(EngineTest, SecretContentIsRedactedAndScrubbedWhenTheJobEnds) {
  auto imeis = AddDevices(2);
  v1::JobSpec spec = WriteSpec();
  spec.mutable_write()->set_type(v1::PSK);
  spec.mutable_write()->set_content("00112233445566778899aabbccddeeff");
  v1::Job job = Create(spec, imeis);
  EXPECT_EQ(job.spec().write().content(), "<redacted 32 bytes>");
  // The agent gets the real secret while the job runs.
  auto pending = agents_.TakePending();
  ASSERT_THAT(pending, SizeIs(2));
  EXPECT_EQ(pending[0].request.write_credential().content(), "00112233445566778899aabbccddeeff");
  ASSERT_OK_AND_ASSIGN(auto stored, store_->GetJob(job.id()));
  EXPECT_EQ(stored.spec.write().content(), "00112233445566778899aabbccddeeff");
  for (auto& s : pending) Reply(s, WriteOk(kSha));
  // Once the job is over, the store no longer holds it.
  ASSERT_OK_AND_ASSIGN(stored, store_->GetJob(job.id()));
  EXPECT_EQ(stored.spec.write().content(), "<redacted 32 bytes>");
  EXPECT_EQ(Get(job.id()).spec().write().content(), "<redacted 32 bytes>");
}

TEST_F(EngineTest, OfflineDeviceIsWaitedForThenFailsWithUnavailableAfterRetries) {
  auto imeis = AddDevices(1);
  agents_.SetOffline(imeis[0], true);
  const absl::Time t0 = clock_.Now();
  v1::Job job = Create(WriteSpec(), imeis);
  v1::Job waiting = Get(job.id());
  EXPECT_EQ(waiting.executions(0).state(), v1::QUEUED);
  EXPECT_EQ(waiting.executions(0).attempts(), 0u) << "waiting uses no attempt";
  EXPECT_THAT(waiting.executions(0).history(1).reason(), HasSubstr("waiting up to 2m"));
  EXPECT_EQ(engine_->NextWakeTime(), t0 + absl::Minutes(2));
  RunToWake();  // The wait is over: attempt 1 fails UNAVAILABLE.
  EXPECT_EQ(Get(job.id()).executions(0).attempts(), 1u);
  RunToWake();
  RunToWake();
  v1::Job done = Get(job.id());
  EXPECT_EQ(done.executions(0).state(), v1::FAILED);
  EXPECT_EQ(done.executions(0).attempts(), 3u);
  EXPECT_THAT(done.executions(0).last_status_message(), HasSubstr("offline"));
  EXPECT_EQ(agents_.SentCount(), 0u);
}

TEST_F(EngineTest, DeviceComingBackOnlineStartsAtOnce) {
  auto imeis = AddDevices(2);
  agents_.SetOffline(imeis[0], true);
  agents_.SetResponder([](const FakeAgentClient::Sent&) -> absl::StatusOr<v1::AgentResponse> {
    return WriteOk(kSha);
  });
  v1::Job job = Create(WriteSpec(), imeis);
  EXPECT_EQ(Get(job.id()).counts().succeeded(), 1u);
  agents_.SetOffline(imeis[0], false);
  engine_->DevicesOnline({imeis[0]});
  v1::Job done = Get(job.id());
  EXPECT_EQ(done.state(), v1::JOB_COMPLETED);
  EXPECT_EQ(done.executions(0).state(), v1::SUCCEEDED);
  EXPECT_EQ(done.executions(0).attempts(), 1u);
}

TEST_F(EngineTest, ResumedExecutionWaitsForItsAgentToReconnect) {
  auto imeis = AddDevices(1);
  v1::Job job = Create(WriteSpec(), imeis);
  ASSERT_EQ(agents_.PendingCount(), 1u);
  engine_->Stop();
  agents_.TakePending();
  agents_.SetOffline(imeis[0], true);  // The agent has not dialled back in yet.
  MakeEngine();
  EXPECT_EQ(agents_.PendingCount(), 0u);
  EXPECT_EQ(Get(job.id()).executions(0).state(), v1::QUEUED);
  agents_.SetOffline(imeis[0], false);
  engine_->DevicesOnline({imeis[0]});
  auto resent = agents_.TakePending();
  ASSERT_THAT(resent, SizeIs(1));
  Reply(resent[0], WriteOk(kSha, /*skipped=*/true));
  v1::Job done = Get(job.id());
  EXPECT_EQ(done.executions(0).state(), v1::SKIPPED);
  EXPECT_EQ(done.executions(0).attempts(), 1u) << "the interrupted attempt is re-run";
}

// ---- watch ----

TEST_F(EngineTest, WatchStreamsTransitionsUntilTheJobEnds) {
  auto imeis = AddDevices(2);
  v1::JobSpec spec = WriteSpec();
  v1::Job job = Create(spec, imeis);
  RecordingObserver obs;
  bool running = false;
  ASSERT_OK_AND_ASSIGN(v1::Job snapshot, engine_->Watch(job.id(), &obs, &running));
  EXPECT_TRUE(running);
  EXPECT_EQ(snapshot.counts().in_progress(), 2u);
  EXPECT_THAT(snapshot.executions(), SizeIs(2));
  for (auto& s : agents_.TakePending()) Reply(s, WriteOk(kSha));
  ASSERT_THAT(obs.events, SizeIs(3));
  EXPECT_EQ(obs.events[0].transition().to(), v1::SUCCEEDED);
  EXPECT_EQ(obs.events[1].transition().to(), v1::SUCCEEDED);
  EXPECT_EQ(obs.events[1].job_state(), v1::JOB_IN_PROGRESS);
  EXPECT_FALSE(obs.events[2].has_execution()) << "job-level end event";
  EXPECT_EQ(obs.events[2].job_state(), v1::JOB_COMPLETED);
  EXPECT_EQ(obs.events[2].counts().succeeded(), 2u);
  // Watching a finished job returns it without registering.
  RecordingObserver late;
  ASSERT_OK(engine_->Watch(job.id(), &late, &running));
  EXPECT_FALSE(running);
}

// ---- rotate ----

class RotateTest : public EngineTest {
 protected:
  static v1::JobSpec RotateSpec() {
    v1::JobSpec spec;
    auto* r = spec.mutable_rotate();
    r->set_sec_tag(7);
    r->set_type(v1::PSK_IDENTITY);
    r->set_content("new-identity");
    spec.mutable_retry()->set_max_attempts(2);
    return spec;
  }
  static v1::AgentResponse ReadOk(const std::string& content, const std::string& sha) {
    v1::AgentResponse r;
    r.mutable_read_credential()->set_content(content);
    r.mutable_read_credential()->mutable_entry()->set_sha256(sha);
    return r;
  }
};

TEST_F(RotateTest, FailedWriteRestoresTheOldEntry) {
  auto imeis = AddDevices(1);
  std::vector<std::string> writes;
  agents_.SetResponder([&](const FakeAgentClient::Sent& s) -> absl::StatusOr<v1::AgentResponse> {
    if (s.request.has_read_credential()) return ReadOk("old-identity", "OLDSHA");
    writes.push_back(s.request.write_credential().content());
    if (s.request.write_credential().content() == "new-identity") {
      return absl::InvalidArgumentError("+CME ERROR: 527");
    }
    return WriteOk("OLDSHA");
  });
  v1::Job done = Get(Create(RotateSpec(), imeis).id());
  const v1::Execution& x = done.executions(0);
  EXPECT_EQ(x.state(), v1::ROLLED_BACK);
  EXPECT_EQ(writes, (std::vector<std::string>{"new-identity", "old-identity"}));
  EXPECT_EQ(x.sha256(), "OLDSHA");
  EXPECT_EQ(x.last_status_code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(x.history(x.history_size() - 1).reason(), HasSubstr("restored and verified"));
  EXPECT_EQ(done.counts().rolled_back(), 1u);
}

TEST_F(RotateTest, TransientFailureRetriesBeforeRollingBackAndReadsOnce) {
  auto imeis = AddDevices(1);
  int reads = 0;
  int writes = 0;
  agents_.SetResponder([&](const FakeAgentClient::Sent& s) -> absl::StatusOr<v1::AgentResponse> {
    if (s.request.has_read_credential()) {
      ++reads;
      return ReadOk("old-identity", "OLDSHA");
    }
    if (++writes == 1) return absl::DataLossError("hash mismatch");
    return WriteOk("NEWSHA");
  });
  v1::Job job = Create(RotateSpec(), imeis);
  RunToWake();
  v1::Job done = Get(job.id());
  EXPECT_EQ(done.executions(0).state(), v1::SUCCEEDED);
  EXPECT_EQ(done.executions(0).attempts(), 2u);
  EXPECT_EQ(reads, 1) << "the old entry is kept from the first attempt";
  EXPECT_EQ(writes, 2);
}

TEST_F(RotateTest, EmptySlotIsRolledBackByDeleting) {
  auto imeis = AddDevices(1);
  bool deleted = false;
  agents_.SetResponder([&](const FakeAgentClient::Sent& s) -> absl::StatusOr<v1::AgentResponse> {
    if (s.request.has_read_credential()) return absl::NotFoundError("+CME ERROR: 513");
    if (s.request.has_delete_credential()) {
      deleted = true;
      v1::AgentResponse r;
      r.mutable_delete_credential();
      return r;
    }
    return absl::FailedPreconditionError("+CME ERROR: 518");
  });
  v1::Job done = Get(Create(RotateSpec(), imeis).id());
  EXPECT_EQ(done.executions(0).state(), v1::ROLLED_BACK);
  EXPECT_TRUE(deleted);
}

TEST_F(RotateTest, FailedRollbackIsFailed) {
  auto imeis = AddDevices(1);
  agents_.SetResponder([&](const FakeAgentClient::Sent& s) -> absl::StatusOr<v1::AgentResponse> {
    if (s.request.has_read_credential()) return ReadOk("old-identity", "OLDSHA");
    return absl::InvalidArgumentError("modem says no");
  });
  v1::Job done = Get(Create(RotateSpec(), imeis).id());
  EXPECT_EQ(done.executions(0).state(), v1::FAILED);
  EXPECT_THAT(done.executions(0).history(done.executions(0).history_size() - 1).reason(),
              HasSubstr("rollback failed"));
}

TEST_F(RotateTest, SecretTypesRotateWithoutRollback) {
  auto imeis = AddDevices(1);
  agents_.SetResponder([&](const FakeAgentClient::Sent& s) -> absl::StatusOr<v1::AgentResponse> {
    EXPECT_FALSE(s.request.has_read_credential()) << "secret types are never read";
    return absl::InvalidArgumentError("rejected");
  });
  v1::JobSpec spec = RotateSpec();
  spec.mutable_rotate()->set_type(v1::PSK);
  spec.mutable_rotate()->set_content("0011");
  v1::Job done = Get(Create(spec, imeis).id());
  EXPECT_EQ(done.executions(0).state(), v1::FAILED);
}

// ---- keygen-and-sign ----

std::string MakeCsrDer(const std::string& cn = "modem-1", const std::string& ou = "") {
  std::vector<std::pair<std::string, std::string>> subject = {{"CN", cn}};
  if (!ou.empty()) subject.emplace_back("OU", ou);
  return ::atbridge::testing::MakeTestCsr(subject);
}

TEST_F(EngineTest, KeygenAndSignWritesASignedCertificateAndTheCa) {
  ASSERT_OK_AND_ASSIGN(auto ca, pki::CreateCa({}));
  auto signer = NewPkiCsrSigner(ca, &SystemClock());
  MakeEngine(signer.get());
  auto imeis = AddDevices(1);
  const std::string csr = MakeCsrDer();
  std::vector<v1::AgentRequest> seen;
  agents_.SetResponder([&](const FakeAgentClient::Sent& s) -> absl::StatusOr<v1::AgentResponse> {
    seen.push_back(s.request);
    v1::AgentResponse r;
    if (s.request.has_generate_key()) {
      r.mutable_generate_key()->set_csr_der(csr);
      return r;
    }
    return WriteOk(pki::Sha256Hex(s.request.write_credential().content()));
  });
  v1::JobSpec spec;
  spec.mutable_keygen_and_sign()->set_sec_tag(16842753);
  spec.mutable_keygen_and_sign()->set_attributes("CN={imei}");
  spec.mutable_keygen_and_sign()->set_write_ca(true);
  v1::Job done = Get(Create(spec, imeis).id());
  EXPECT_EQ(done.executions(0).state(), v1::SUCCEEDED);
  ASSERT_THAT(seen, SizeIs(3));
  EXPECT_EQ(seen[0].generate_key().attributes(), "CN=" + imeis[0]);
  EXPECT_EQ(seen[1].write_credential().type(), v1::CLIENT_CERT);
  EXPECT_OK(pki::VerifyCertificate(ca.cert_pem, seen[1].write_credential().content(), absl::Now()));
  EXPECT_EQ(seen[2].write_credential().type(), v1::ROOT_CA_CERT);
  EXPECT_EQ(seen[2].write_credential().content(), ca.cert_pem);
}

TEST_F(EngineTest, KeygenWithBadCsrFailsWithoutRetry) {
  ASSERT_OK_AND_ASSIGN(auto ca, pki::CreateCa({}));
  auto signer = NewPkiCsrSigner(ca, &SystemClock());
  MakeEngine(signer.get());
  auto imeis = AddDevices(1);
  agents_.SetResponder([&](const FakeAgentClient::Sent&) -> absl::StatusOr<v1::AgentResponse> {
    v1::AgentResponse r;
    r.mutable_generate_key()->set_csr_der("garbage");
    return r;
  });
  v1::JobSpec spec;
  spec.mutable_keygen_and_sign()->set_sec_tag(5);
  v1::Job done = Get(Create(spec, imeis).id());
  EXPECT_EQ(done.executions(0).state(), v1::FAILED);
  EXPECT_EQ(done.executions(0).attempts(), 1u);
}

// ---- AT scripts ----

TEST_F(EngineTest, AtScriptRunsCommandsInOrderAndStopsAtAnError) {
  auto imeis = AddDevices(1);
  std::vector<std::string> commands;
  agents_.SetResponder([&](const FakeAgentClient::Sent& s) -> absl::StatusOr<v1::AgentResponse> {
    commands.push_back(s.request.execute().command());
    v1::AgentResponse r;
    auto* at = r.mutable_execute();
    if (s.request.execute().command() == "AT%XBAD") {
      at->set_final(v1::FINAL_RESULT_CME_ERROR);
      at->set_code(50);
      at->set_final_line("+CME ERROR: 50");
    } else {
      at->set_final(v1::FINAL_RESULT_OK);
      at->set_final_line("OK");
    }
    return r;
  });
  v1::JobSpec spec;
  spec.mutable_at_script()->add_commands("AT+CFUN=4");
  spec.mutable_at_script()->add_commands("AT%XBAD");
  spec.mutable_at_script()->add_commands("AT+CFUN=1");
  v1::Job done = Get(Create(spec, imeis).id());
  EXPECT_EQ(done.executions(0).state(), v1::FAILED);
  EXPECT_EQ(commands, (std::vector<std::string>{"AT+CFUN=4", "AT%XBAD"}));
  EXPECT_THAT(done.executions(0).last_status_message(), HasSubstr("+CME ERROR: 50"));

  commands.clear();
  spec.mutable_at_script()->set_continue_on_error(true);
  done = Get(Create(spec, imeis).id());
  EXPECT_EQ(done.executions(0).state(), v1::SUCCEEDED);
  EXPECT_THAT(commands, SizeIs(3));
  EXPECT_THAT(done.executions(0).steps(), SizeIs(3));
}

// ---- restart ----

TEST_F(EngineTest, RestartResumesInProgressAndQueuedExecutions) {
  auto imeis = AddDevices(4);
  v1::JobSpec spec = WriteSpec();
  spec.mutable_rollout()->set_max_concurrency(2);
  v1::Job job = Create(spec, imeis);
  auto lost = agents_.TakePending();
  ASSERT_THAT(lost, SizeIs(2));
  Reply(lost[0], WriteOk(kSha));  // One finishes, a third starts.
  auto lost2 = agents_.TakePending();
  ASSERT_THAT(lost2, SizeIs(1));
  // The server goes away with two attempts in flight.
  engine_->Stop();
  Reply(lost[1], WriteOk(kSha));  // Ignored: the engine is stopped.
  MakeEngine();
  auto resumed = agents_.TakePending();
  ASSERT_THAT(resumed, SizeIs(2)) << "both in-progress executions re-run their attempt";
  for (auto& s : resumed) Reply(s, WriteOk(kSha, /*skipped=*/true));
  while (agents_.PendingCount() > 0) {
    for (auto& s : agents_.TakePending()) Reply(s, WriteOk(kSha));
  }
  v1::Job done = Get(job.id());
  EXPECT_EQ(done.state(), v1::JOB_COMPLETED);
  EXPECT_EQ(done.counts().succeeded() + done.counts().skipped(), 4u);
  int resumed_transitions = 0;
  for (const auto& x : done.executions()) {
    EXPECT_EQ(x.attempts(), 1u) << "a resumed attempt keeps its number";
    for (const auto& t : x.history()) {
      if (absl::StrContains(t.reason(), "resumed after server restart")) ++resumed_transitions;
    }
  }
  EXPECT_EQ(resumed_transitions, 2);
}

TEST_F(EngineTest, RestartKeepsBackoffSchedule) {
  auto imeis = AddDevices(1);
  agents_.SetResponder([](const FakeAgentClient::Sent&) -> absl::StatusOr<v1::AgentResponse> {
    return absl::UnavailableError("gone");
  });
  const absl::Time t0 = clock_.Now();
  v1::Job job = Create(WriteSpec(), imeis);
  engine_->Stop();
  agents_.SetResponder([](const FakeAgentClient::Sent&) -> absl::StatusOr<v1::AgentResponse> {
    return WriteOk(kSha);
  });
  MakeEngine();
  EXPECT_EQ(engine_->NextWakeTime(), t0 + absl::Milliseconds(500));
  EXPECT_EQ(agents_.SentCount(), 1u);
  RunToWake();
  EXPECT_EQ(Get(job.id()).executions(0).state(), v1::SUCCEEDED);
}

TEST_F(EngineTest, ListJobsNewestFirstWithStateFilter) {
  auto imeis = AddDevices(1);
  agents_.SetResponder([](const FakeAgentClient::Sent&) -> absl::StatusOr<v1::AgentResponse> {
    return WriteOk(kSha);
  });
  v1::Job a = Create(WriteSpec(), imeis);
  clock_.Advance(absl::Seconds(1));
  agents_.SetResponder(nullptr);
  v1::Job b = Create(WriteSpec(), imeis);
  ASSERT_OK_AND_ASSIGN(auto all, engine_->ListJobs(v1::JOB_STATE_UNSPECIFIED, 0));
  ASSERT_THAT(all, SizeIs(2));
  EXPECT_EQ(all[0].id(), b.id());
  EXPECT_EQ(all[1].id(), a.id());
  ASSERT_OK_AND_ASSIGN(auto running, engine_->ListJobs(v1::JOB_IN_PROGRESS, 0));
  ASSERT_THAT(running, SizeIs(1));
  EXPECT_EQ(running[0].id(), b.id());
  EXPECT_EQ(running[0].counts().in_progress(), 1u);
}

// ---- start-up order ----

TEST_F(EngineTest, NothingIsAcceptedBeforeStartAndStartRunsOnce) {
  auto imeis = AddDevices(1);
  // A second engine on the same store, not started yet (as the server's is
  // until it has reloaded the store).
  JobEngine early(options_, flaky_.get(), &agents_, &clock_, &random_, validator_.get(), nullptr);
  EXPECT_THAT(early.CreateJob(WriteSpec(), imeis, actor_),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("not started")));
  RecordingObserver obs;
  bool running = true;
  v1::Job job = Create(WriteSpec(), imeis);  // On the started engine.
  EXPECT_THAT(early.Watch(job.id(), &obs, &running), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(early.CancelJob(job.id(), ""), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(agents_.SentCount(), 1u) << "nothing was sent by the engine that is not started";
  EXPECT_THAT(engine_->Start(), StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(agents_.SentCount(), 1u) << "a second Start() must not resume anything again";
  early.Stop();
}

// ---- store trouble ----

TEST_F(EngineTest, FailedCommitAtAnAttemptDeadlineIsRetriedWithoutStallingOrPilingUpSteps) {
  auto imeis = AddDevices(1);
  v1::JobSpec spec = WriteSpec();
  *spec.mutable_execution_timeout() = ToProtoDuration(absl::Seconds(10));
  v1::Job job = Create(spec, imeis);
  ASSERT_EQ(agents_.PendingCount(), 1u);
  const absl::Time deadline = engine_->NextWakeTime();
  flaky_->FailNextCommits(2);
  RunToWake();  // The deadline passes; the requeue cannot be committed.
  EXPECT_EQ(flaky_->failed_commits(), 1);
  const absl::Time retry = clock_.Now() + options_.store_retry_delay;
  EXPECT_EQ(engine_->NextWakeTime(), retry) << "the store retry, not the past deadline";
  EXPECT_EQ(wake_, retry) << "the timer is re-armed";
  EXPECT_EQ(Get(job.id()).executions(0).state(), v1::IN_PROGRESS);
  RunToWake();  // Fails again: the next retry is scheduled again.
  EXPECT_EQ(flaky_->failed_commits(), 2);
  EXPECT_EQ(engine_->NextWakeTime(), clock_.Now() + options_.store_retry_delay);
  EXPECT_EQ(wake_, engine_->NextWakeTime());
  RunToWake();  // The store is back: the requeue is committed.
  v1::Job mid = Get(job.id());
  ASSERT_EQ(mid.executions(0).state(), v1::QUEUED);
  int timeouts = 0;
  for (const auto& step : mid.executions(0).steps()) {
    if (absl::StrContains(step.detail(), "did not finish")) ++timeouts;
  }
  EXPECT_EQ(timeouts, 1) << "one step for one timeout";
  EXPECT_GT(clock_.Now(), deadline);
  RunToWake();  // Backoff over: attempt 2.
  auto pending = agents_.TakePending();
  ASSERT_THAT(pending, SizeIs(2));   // The timed-out request and attempt 2.
  Reply(pending[0], WriteOk(kSha));  // Stale: dropped.
  EXPECT_EQ(Get(job.id()).executions(0).state(), v1::IN_PROGRESS);
  Reply(pending[1], WriteOk(kSha));
  v1::Job done = Get(job.id());
  EXPECT_EQ(done.executions(0).state(), v1::SUCCEEDED);
  EXPECT_EQ(done.executions(0).attempts(), 2u);
}

TEST_F(EngineTest, FailedCommitOfAnOutcomeIsRetriedWithoutResending) {
  auto imeis = AddDevices(1);
  v1::Job job = Create(WriteSpec(), imeis);
  auto pending = agents_.TakePending();
  ASSERT_THAT(pending, SizeIs(1));
  flaky_->FailNextCommits(1);
  Reply(pending[0], WriteOk(kSha));
  EXPECT_EQ(Get(job.id()).executions(0).state(), v1::IN_PROGRESS);
  EXPECT_EQ(engine_->NextWakeTime(), clock_.Now() + options_.store_retry_delay);
  RunToWake();
  v1::Job done = Get(job.id());
  EXPECT_EQ(done.executions(0).state(), v1::SUCCEEDED);
  EXPECT_EQ(done.executions(0).sha256(), kSha);
  EXPECT_EQ(done.state(), v1::JOB_COMPLETED);
  EXPECT_EQ(agents_.SentCount(), 1u) << "the device is not asked again";
  EXPECT_EQ(engine_->NextWakeTime(), absl::InfiniteFuture());
}

TEST_F(EngineTest, FailedCommitOfAResumedAttemptIsRetried) {
  auto imeis = AddDevices(1);
  v1::Job job = Create(WriteSpec(), imeis);
  ASSERT_EQ(agents_.PendingCount(), 1u);
  engine_->Stop();
  agents_.TakePending();
  flaky_->FailNextCommits(1);
  MakeEngine();
  EXPECT_EQ(agents_.PendingCount(), 0u);
  EXPECT_EQ(engine_->NextWakeTime(), clock_.Now() + options_.store_retry_delay);
  RunToWake();
  auto resent = agents_.TakePending();
  ASSERT_THAT(resent, SizeIs(1));
  Reply(resent[0], WriteOk(kSha, /*skipped=*/true));
  EXPECT_EQ(Get(job.id()).executions(0).state(), v1::SKIPPED);
}

// ---- durable progress: rollback, keygen, rate window, offline wait ----

TEST_F(RotateTest, RollbackDecidedBeforeARestartIsResumedNotTheWrite) {
  auto imeis = AddDevices(1);
  v1::Job job = Create(RotateSpec(), imeis);
  auto read = agents_.TakePending();
  ASSERT_THAT(read, SizeIs(1));
  ASSERT_TRUE(read[0].request.has_read_credential());
  Reply(read[0], ReadOk("old-identity", "OLDSHA"));
  auto write = agents_.TakePending();
  ASSERT_THAT(write, SizeIs(1));
  ASSERT_EQ(write[0].request.write_credential().content(), "new-identity");
  Reply(write[0], absl::InvalidArgumentError("+CME ERROR: 527"));
  auto restore = agents_.TakePending();
  ASSERT_THAT(restore, SizeIs(1));
  ASSERT_EQ(restore[0].request.write_credential().content(), "old-identity");
  // The decision is in the store before the restore went out.
  ASSERT_OK_AND_ASSIGN(auto stored, store_->ListExecutions(job.id(), true));
  ASSERT_THAT(stored, SizeIs(1));
  EXPECT_NE(stored[0].stage, 0u);
  EXPECT_EQ(stored[0].cause_code, static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(stored[0].execution.history(stored[0].execution.history_size() - 1).reason(),
              HasSubstr("restoring the old entry"));
  // The server dies before the restore's answer.
  engine_->Stop();
  MakeEngine();
  auto resumed = agents_.TakePending();
  ASSERT_THAT(resumed, SizeIs(1));
  ASSERT_TRUE(resumed[0].request.has_write_credential());
  EXPECT_EQ(resumed[0].request.write_credential().content(), "old-identity")
      << "the resumed attempt restores; it does not write the new content again";
  Reply(resumed[0], WriteOk("OLDSHA"));
  v1::Job done = Get(job.id());
  EXPECT_EQ(done.executions(0).state(), v1::ROLLED_BACK);
  EXPECT_EQ(done.executions(0).last_status_code(),
            static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(done.executions(0).history(done.executions(0).history_size() - 1).reason(),
              AllOf(HasSubstr("527"), HasSubstr("restored and verified")));
}

TEST_F(RotateTest, RollbackCommitFailureDefersTheRestore) {
  auto imeis = AddDevices(1);
  agents_.SetResponder([&](const FakeAgentClient::Sent& s) -> absl::StatusOr<v1::AgentResponse> {
    if (s.request.has_read_credential()) return ReadOk("old-identity", "OLDSHA");
    if (s.request.write_credential().content() == "new-identity") {
      flaky_->FailNextCommits(1);  // The rollback decision cannot be committed.
      return absl::InvalidArgumentError("+CME ERROR: 527");
    }
    return WriteOk("OLDSHA");
  });
  v1::Job job = Create(RotateSpec(), imeis);
  EXPECT_EQ(agents_.SentCount(), 2u) << "no restore is sent before the decision is stored";
  RunToWake();
  EXPECT_EQ(agents_.SentCount(), 3u);
  EXPECT_EQ(Get(job.id()).executions(0).state(), v1::ROLLED_BACK);
}

TEST_F(EngineTest, KeygenResumesFromTheStoredCertificateInsteadOfANewKey) {
  ASSERT_OK_AND_ASSIGN(auto ca, pki::CreateCa({}));
  auto signer = NewPkiCsrSigner(ca, &SystemClock());
  MakeEngine(signer.get());
  auto imeis = AddDevices(1);
  v1::JobSpec spec;
  spec.mutable_keygen_and_sign()->set_sec_tag(16842753);
  spec.mutable_keygen_and_sign()->set_attributes("CN={imei}");
  spec.mutable_retry()->set_max_attempts(3);
  v1::Job job = Create(spec, imeis);
  auto keygen = agents_.TakePending();
  ASSERT_THAT(keygen, SizeIs(1));
  ASSERT_TRUE(keygen[0].request.has_generate_key());
  v1::AgentResponse csr;
  csr.mutable_generate_key()->set_csr_der(MakeCsrDer());
  Reply(keygen[0], csr);
  auto write = agents_.TakePending();
  ASSERT_THAT(write, SizeIs(1));
  const std::string cert = write[0].request.write_credential().content();
  ASSERT_OK_AND_ASSIGN(auto stored, store_->ListExecutions(job.id(), false));
  EXPECT_EQ(stored[0].signed_cert, cert) << "stored before it is written";
  // Restart: the resumed attempt writes the same certificate, no new key.
  engine_->Stop();
  MakeEngine(signer.get());
  auto resumed = agents_.TakePending();
  ASSERT_THAT(resumed, SizeIs(1));
  ASSERT_TRUE(resumed[0].request.has_write_credential());
  EXPECT_EQ(resumed[0].request.write_credential().type(), v1::CLIENT_CERT);
  EXPECT_EQ(resumed[0].request.write_credential().content(), cert);
  // A retryable failure of that write: the retry writes it again, no keygen.
  Reply(resumed[0], absl::DataLossError("hash mismatch after write"));
  RunToWake();
  auto retry = agents_.TakePending();
  ASSERT_THAT(retry, SizeIs(1));
  EXPECT_EQ(retry[0].request.write_credential().content(), cert);
  Reply(retry[0], WriteOk(pki::Sha256Hex(cert)));
  v1::Job done = Get(job.id());
  EXPECT_EQ(done.executions(0).state(), v1::SUCCEEDED);
  int keygens = 0;
  for (const auto& r : agents_.Log()) keygens += r.has_generate_key() ? 1 : 0;
  EXPECT_EQ(keygens, 1);
  ASSERT_OK_AND_ASSIGN(stored, store_->ListExecutions(job.id(), false));
  EXPECT_TRUE(stored[0].signed_cert.empty()) << "dropped once the execution is final";
}

TEST_F(EngineTest, SignedCertificateHasTheServersSubjectNotTheCsrs) {
  ASSERT_OK_AND_ASSIGN(auto ca, pki::CreateCa({}));
  auto signer = NewPkiCsrSigner(ca, &SystemClock());
  MakeEngine(signer.get());
  auto imeis = AddDevices(1);
  std::string cert;
  agents_.SetResponder([&](const FakeAgentClient::Sent& s) -> absl::StatusOr<v1::AgentResponse> {
    v1::AgentResponse r;
    if (s.request.has_generate_key()) {
      // A rogue agent answers with its own CSR asking for an admin identity.
      r.mutable_generate_key()->set_csr_der(MakeCsrDer("eve", "admin"));
      return r;
    }
    cert = s.request.write_credential().content();
    return WriteOk(pki::Sha256Hex(cert));
  });
  v1::JobSpec spec;
  spec.mutable_keygen_and_sign()->set_sec_tag(5);
  v1::Job done = Get(Create(spec, imeis).id());
  EXPECT_EQ(done.executions(0).state(), v1::SUCCEEDED);
  ASSERT_OK_AND_ASSIGN(pki::CertificateInfo info, pki::ParseCertificate(cert));
  EXPECT_EQ(info.subject, "CN=" + imeis[0]);
  EXPECT_TRUE(info.organizational_units.empty());
  EXPECT_TRUE(info.uris.empty());
  EXPECT_FALSE(info.is_ca);
}

TEST_F(EngineTest, KeygenAttributesMayNotAskForARole) {
  ASSERT_OK_AND_ASSIGN(auto ca, pki::CreateCa({}));
  auto signer = NewPkiCsrSigner(ca, &SystemClock());
  MakeEngine(signer.get());
  auto imeis = AddDevices(1);
  for (const char* attrs : {"CN={imei},OU=admin", "ou = operator", "CN=x,2.5.4.11=admin",
                            "CN=urn:atbridge:role:admin"}) {
    v1::JobSpec spec;
    spec.mutable_keygen_and_sign()->set_sec_tag(5);
    spec.mutable_keygen_and_sign()->set_attributes(attrs);
    EXPECT_THAT(engine_->CreateJob(spec, imeis, actor_),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("attributes")))
        << attrs;
  }
  EXPECT_EQ(agents_.SentCount(), 0u);
}

TEST_F(EngineTest, RateWindowSurvivesARestart) {
  auto imeis = AddDevices(5);
  v1::JobSpec spec = WriteSpec();
  spec.mutable_rollout()->set_per_minute(2);
  const absl::Time t0 = clock_.Now();
  v1::Job job = Create(spec, imeis);
  for (auto& s : agents_.TakePending()) Reply(s, WriteOk(kSha));
  clock_.Advance(absl::Seconds(10));
  engine_->Stop();
  MakeEngine();
  EXPECT_EQ(agents_.PendingCount(), 0u) << "the two starts of the last minute still count";
  EXPECT_EQ(engine_->NextWakeTime(), t0 + absl::Minutes(1));
  RunToWake();
  EXPECT_EQ(agents_.PendingCount(), 2u);
  for (auto& s : agents_.TakePending()) Reply(s, WriteOk(kSha));
  RunToWake();
  for (auto& s : agents_.TakePending()) Reply(s, WriteOk(kSha));
  EXPECT_EQ(Get(job.id()).counts().succeeded(), 5u);
}

TEST_F(EngineTest, OfflineWaitSurvivesARestartWithItsOriginalEnd) {
  auto imeis = AddDevices(1);
  agents_.SetOffline(imeis[0], true);
  const absl::Time t0 = clock_.Now();
  v1::Job job = Create(WriteSpec(), imeis);
  ASSERT_EQ(engine_->NextWakeTime(), t0 + absl::Minutes(2));
  clock_.Advance(absl::Minutes(1));
  engine_->Stop();
  MakeEngine();
  EXPECT_EQ(engine_->NextWakeTime(), t0 + absl::Minutes(2)) << "no fresh two minutes";
  v1::Job waiting = Get(job.id());
  EXPECT_EQ(waiting.executions(0).attempts(), 0u);
  EXPECT_THAT(waiting.executions(0).history(), SizeIs(2)) << "no second wait";
  RunToWake();
  EXPECT_EQ(Get(job.id()).executions(0).attempts(), 1u) << "after the wait, offline is an attempt";
  // A device coming back during the (restored) wait still starts at once.
}

// A device that went offline once, came back, and is mid-attempt when the
// server restarts gets a wait again: the restart is not the device's fault.
TEST_F(EngineTest, AnAttemptInterruptedByARestartWaitsEvenAfterAnEarlierWait) {
  auto imeis = AddDevices(1);
  agents_.SetOffline(imeis[0], true);
  v1::Job job = Create(WriteSpec(), imeis);
  clock_.Advance(absl::Minutes(1));
  agents_.SetOffline(imeis[0], false);
  engine_->DevicesOnline({imeis[0]});
  ASSERT_EQ(agents_.PendingCount(), 1u);
  engine_->Stop();
  agents_.TakePending();
  agents_.SetOffline(imeis[0], true);  // Its agent has not dialled back in yet.
  MakeEngine();
  v1::Job waiting = Get(job.id());
  EXPECT_EQ(waiting.executions(0).state(), v1::QUEUED) << waiting.DebugString();
  EXPECT_EQ(waiting.executions(0).attempts(), 0u) << "the interrupted attempt is not used up";
  EXPECT_EQ(engine_->NextWakeTime(), clock_.Now() + absl::Minutes(2));
  agents_.SetOffline(imeis[0], false);
  engine_->DevicesOnline({imeis[0]});
  auto resent = agents_.TakePending();
  ASSERT_THAT(resent, SizeIs(1));
  Reply(resent[0], WriteOk(kSha));
  EXPECT_EQ(Get(job.id()).executions(0).state(), v1::SUCCEEDED);
}

// Cancel lets attempts in flight finish; one that a restart interrupts is not
// started again, and the job ends.
TEST_F(EngineTest, AnAttemptOfACanceledJobInterruptedByARestartEndsTheJob) {
  auto imeis = AddDevices(1);
  v1::Job job = Create(WriteSpec(), imeis);
  ASSERT_EQ(agents_.PendingCount(), 1u);
  ASSERT_OK(engine_->CancelJob(job.id(), "wrong identity"));
  EXPECT_EQ(Get(job.id()).counts().in_progress(), 1u) << "in flight: allowed to finish";
  engine_->Stop();
  agents_.TakePending();
  MakeEngine();
  EXPECT_EQ(agents_.PendingCount(), 0u) << "nothing new for a canceled job";
  v1::Job done = Get(job.id());
  EXPECT_EQ(done.state(), v1::JOB_CANCELED);
  EXPECT_EQ(done.executions(0).state(), v1::CANCELED);
  EXPECT_EQ(done.executions(0).last_status_code(), static_cast<int>(absl::StatusCode::kCancelled));
  EXPECT_THAT(done.executions(0).last_status_message(),
              HasSubstr("interrupted by a server restart"));
  EXPECT_TRUE(IsSet(done.finished_at()));
  EXPECT_EQ(engine_->NextWakeTime(), absl::InfiniteFuture());
}

// A committed rollback waiting (after a restart) for its device's agent is
// not thrown away by a cancel: the old entry is still restored.
TEST_F(RotateTest, ACancelDoesNotStrandARollbackWaitingForItsDevice) {
  auto imeis = AddDevices(1);
  v1::Job job = Create(RotateSpec(), imeis);
  auto read = agents_.TakePending();
  ASSERT_THAT(read, SizeIs(1));
  Reply(read[0], ReadOk("old-identity", "OLDSHA"));
  auto write = agents_.TakePending();
  ASSERT_THAT(write, SizeIs(1));
  Reply(write[0], absl::InvalidArgumentError("+CME ERROR: 527"));
  ASSERT_EQ(agents_.PendingCount(), 1u) << "the restore went out";
  engine_->Stop();
  agents_.TakePending();
  agents_.SetOffline(imeis[0], true);
  MakeEngine();
  EXPECT_EQ(Get(job.id()).executions(0).state(), v1::QUEUED);
  ASSERT_OK_AND_ASSIGN(v1::Job canceled, engine_->CancelJob(job.id(), "stop the rotation"));
  EXPECT_EQ(canceled.state(), v1::JOB_CANCELED);
  EXPECT_EQ(canceled.counts().queued(), 1u) << "the rollback still waits for its device";
  agents_.SetOffline(imeis[0], false);
  engine_->DevicesOnline({imeis[0]});
  auto restore = agents_.TakePending();
  ASSERT_THAT(restore, SizeIs(1));
  EXPECT_EQ(restore[0].request.write_credential().content(), "old-identity");
  Reply(restore[0], WriteOk("OLDSHA"));
  v1::Job done = Get(job.id());
  EXPECT_EQ(done.executions(0).state(), v1::ROLLED_BACK);
  EXPECT_EQ(done.state(), v1::JOB_CANCELED);
  EXPECT_TRUE(IsSet(done.finished_at()));
}

// ---- secrets in AT scripts, audit ----

TEST_F(EngineTest, AtScriptSecretsNeverLeaveTheEngine) {
  constexpr char kPsk[] = "00112233445566778899aabbccddeeff";
  auto imeis = AddDevices(2);
  v1::JobSpec spec;
  spec.set_name("psk by script");
  spec.mutable_at_script()->add_commands("AT+CFUN=4");
  spec.mutable_at_script()->add_commands(absl::StrCat("AT%CMNG=0,5,3,\"", kPsk, "\""));
  spec.mutable_at_script()->add_commands("AT+CFUN=1");
  spec.mutable_rollout()->set_max_concurrency(1);
  // Dry run first: the reason names the command.
  v1::JobSpec dry = spec;
  dry.set_dry_run(true);
  v1::Job dry_job = Create(dry, imeis);
  EXPECT_THAT(Get(dry_job.id()).DebugString(), Not(HasSubstr(kPsk)));
  v1::Job job = Create(spec, imeis);
  RecordingObserver obs;
  bool running = false;
  ASSERT_OK_AND_ASSIGN(v1::Job snapshot, engine_->Watch(job.id(), &obs, &running));
  EXPECT_THAT(snapshot.DebugString(), Not(HasSubstr(kPsk)));
  EXPECT_THAT(Get(job.id()).spec().DebugString(), Not(HasSubstr(kPsk))) << "while running";
  ASSERT_OK_AND_ASSIGN(auto running_store, store_->GetJob(job.id()));
  EXPECT_THAT(running_store.spec.DebugString(), HasSubstr(kPsk)) << "kept to run the job";
  // The second device refuses the PSK write: its failure message quotes the
  // command.
  while (agents_.PendingCount() > 0) {
    for (auto& p : agents_.TakePending()) {
      v1::AgentResponse r;
      const bool refuse =
          p.imei == imeis[1] && absl::StrContains(p.request.execute().command(), kPsk);
      r.mutable_execute()->set_final(refuse ? v1::FINAL_RESULT_CME_ERROR : v1::FINAL_RESULT_OK);
      r.mutable_execute()->set_final_line(refuse ? "+CME ERROR: 527" : "OK");
      Reply(p, r);
    }
  }
  v1::Job done = Get(job.id());
  ASSERT_EQ(done.state(), v1::JOB_COMPLETED);
  EXPECT_EQ(done.executions(0).state(), v1::SUCCEEDED);
  EXPECT_EQ(done.executions(1).state(), v1::FAILED);
  EXPECT_THAT(done.executions(1).last_status_message(), HasSubstr("<redacted 32 bytes>"));
  EXPECT_THAT(done.executions(0).steps(1).detail(),
              HasSubstr("AT%CMNG=0,5,3,\"<redacted 32 bytes>\""));
  EXPECT_THAT(done.DebugString(), Not(HasSubstr(kPsk)));
  ASSERT_OK_AND_ASSIGN(auto listed, engine_->ListJobs(v1::JOB_STATE_UNSPECIFIED, 0));
  for (const auto& j : listed) EXPECT_THAT(j.DebugString(), Not(HasSubstr(kPsk)));
  EXPECT_THAT(RenderJobReportJson(done), Not(HasSubstr(kPsk)));
  EXPECT_THAT(RenderJobReportCsv(done), Not(HasSubstr(kPsk)));
  ASSERT_FALSE(obs.events.empty());
  for (const auto& ev : obs.events) EXPECT_THAT(ev.DebugString(), Not(HasSubstr(kPsk)));
  ASSERT_THAT(auditor_.records, SizeIs(2));
  for (const auto& r : auditor_.records) {
    EXPECT_THAT(r.execution.DebugString(), Not(HasSubstr(kPsk)));
    EXPECT_THAT(r.reason, Not(HasSubstr(kPsk)));
  }
  // Scrubbed from the store once the job is over.
  ASSERT_OK_AND_ASSIGN(auto stored, store_->GetJob(job.id()));
  EXPECT_THAT(stored.spec.DebugString(), Not(HasSubstr(kPsk)));
  EXPECT_EQ(stored.spec.at_script().commands(1), "AT%CMNG=0,5,3,\"<redacted 32 bytes>\"");
  EXPECT_EQ(Get(job.id()).spec().at_script().commands(1), stored.spec.at_script().commands(1))
      << "redaction is idempotent";
}

TEST_F(EngineTest, EveryExecutionOutcomeIsAudited) {
  auto imeis = AddDevices(3);
  int n = 0;
  agents_.SetResponder([&](const FakeAgentClient::Sent&) -> absl::StatusOr<v1::AgentResponse> {
    if (n++ == 1) return absl::InvalidArgumentError("+CME ERROR: 527 content rejected");
    return WriteOk(kSha);
  });
  v1::JobSpec spec = WriteSpec();
  spec.mutable_rollout()->set_max_concurrency(1);
  v1::Job job = Create(spec, imeis);
  ASSERT_THAT(auditor_.records, SizeIs(3));
  std::set<std::string> seen;
  for (const auto& r : auditor_.records) {
    EXPECT_EQ(r.creator.principal(), "alice");
    EXPECT_EQ(r.job_id, job.id());
    EXPECT_EQ(r.action, "write");
    seen.insert(r.execution.imei());
  }
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_EQ(auditor_.records[1].execution.state(), v1::FAILED);
  EXPECT_EQ(auditor_.records[1].execution.last_status_code(),
            static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(auditor_.records[0].reason, HasSubstr("written and verified"));
  // Executions that never reached their device (cancelled while queued) are
  // not device outcomes.
  agents_.SetResponder(nullptr);
  v1::Job second = Create(spec, imeis);
  ASSERT_OK(engine_->CancelJob(second.id(), "changed my mind"));
  for (auto& s : agents_.TakePending()) Reply(s, WriteOk(kSha));
  EXPECT_THAT(auditor_.records, SizeIs(4));
}

}  // namespace
}  // namespace atbridge::server::jobs
