#include "server/jobs/engine.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "common/log.h"
#include "common/status/retry.h"
#include "common/status_details.h"
#include "server/jobs/backoff.h"
#include "server/util/proto_time.h"

namespace atbridge::server::jobs {

namespace {

// Where an attempt is in its action. The numbers are stored
// (ExecutionRecord::stage) for the stages a resumed attempt must continue
// from (kRollback); the others restart the action, which is safe because
// writes are idempotent and keygen resumes from the stored certificate.
enum class Stage : uint32_t {
  kIdle = 0,
  kReadOld = 1,    // rotate: read the entry to keep for rollback
  kWrite = 2,      // write / rotate: the credential transaction
  kDelete = 3,     // delete
  kKeygen = 4,     // keygen-and-sign: %KEYGEN -> CSR
  kWriteCert = 5,  // keygen-and-sign: write the signed certificate
  kWriteCa = 6,    // keygen-and-sign: write the CA certificate
  kScript = 7,     // at-script: command script_index
  kRollback = 8,   // rotate: restore the old entry
};

// A rotation's rollback was decided and committed: whatever happens to the
// job (cancel, abort, a restart), the old entry is still to be restored.
bool RollbackPending(const store::ExecutionRecord& r) {
  return static_cast<Stage>(r.stage) == Stage::kRollback;
}

const char* StageName(Stage s) {
  switch (s) {
    case Stage::kIdle:
      return "start";
    case Stage::kReadOld:
      return "read_old";
    case Stage::kWrite:
      return "write";
    case Stage::kDelete:
      return "delete";
    case Stage::kKeygen:
      return "keygen";
    case Stage::kWriteCert:
      return "write_cert";
    case Stage::kWriteCa:
      return "write_ca";
    case Stage::kScript:
      return "command";
    case Stage::kRollback:
      return "rollback";
  }
  return "?";
}

std::string StatusText(const absl::Status& s) {
  return absl::StrCat(absl::StatusCodeToString(s.code()), ": ", s.message());
}

std::string FormatDelay(absl::Duration d) {
  return absl::StrCat(absl::ToDoubleSeconds(d) < 10
                          ? absl::StrFormat("%.3fs", absl::ToDoubleSeconds(d))
                          : absl::FormatDuration(absl::Trunc(d, absl::Milliseconds(1))));
}

v1::Step MakeStep(const std::string& name, v1::StepStatus status, const std::string& detail) {
  v1::Step s;
  s.set_name(name);
  s.set_status(status);
  s.set_detail(detail);
  return s;
}

void SetRequestPort(v1::AgentRequest& r, const std::string& port) {
  switch (r.request_case()) {
    case v1::AgentRequest::kExecute:
      r.mutable_execute()->set_port(port);
      break;
    case v1::AgentRequest::kReadCredential:
      r.mutable_read_credential()->set_port(port);
      break;
    case v1::AgentRequest::kWriteCredential:
      r.mutable_write_credential()->set_port(port);
      break;
    case v1::AgentRequest::kDeleteCredential:
      r.mutable_delete_credential()->set_port(port);
      break;
    case v1::AgentRequest::kGenerateKey:
      r.mutable_generate_key()->set_port(port);
      break;
    case v1::AgentRequest::kListCredentials:
      r.mutable_list_credentials()->set_port(port);
      break;
    default:
      break;
  }
}

// The response must answer the request's case.
absl::Status ExpectCase(const v1::AgentResponse& r, v1::AgentResponse::ResponseCase want) {
  if (r.response_case() == want) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("agent answered with response case ", r.response_case(), ", expected ", want));
}

}  // namespace

struct JobEngine::Deferred {
  enum class Kind {
    kFail,      // FailAttemptLocked(status) again (requeue or rollback decision).
    kComplete,  // CompleteLocked(state, status, reason) again.
    kResume,    // StartAttemptLocked(resumed) again (a reloaded attempt).
  };
  Kind kind = Kind::kFail;
  absl::Status status;
  v1::ExecutionState state = v1::EXECUTION_STATE_UNSPECIFIED;
  std::string reason;
};

struct JobEngine::Exec {
  store::ExecutionRecord rec;
  // Set (from the engine-wide counter) at every attempt start and end;
  // replies carry it and stale ones are dropped.
  uint64_t gen = 0;
  absl::Time deadline = absl::InfiniteFuture();
  // Waiting for an offline device until then (InfinitePast: not waiting).
  absl::Time wait_until = absl::InfinitePast();
  bool offline_wait_used = false;
  Stage stage = Stage::kIdle;
  DeviceLocation loc;
  absl::Status cause;  // Rotate: the failure being rolled back.
  int script_index = 0;
  int script_failures = 0;
  // An outcome of this IN_PROGRESS execution whose commit failed.
  std::optional<Deferred> deferred;
};

struct JobEngine::Job {
  store::JobRecord rec;  // rec.spec has defaults applied.
  std::map<std::string, Exec> execs;
  std::vector<Exec*> order;       // Start order (IMEI order); points into execs.
  std::deque<absl::Time> starts;  // Attempt starts within the rate window.
  v1::JobCounts counts;
  std::vector<JobObserver*> observers;
};

JobEngine::JobEngine(EngineOptions options, store::JobStore* store, AgentClient* agents,
                     const Clock* clock, Random* random, const ContentValidator* validator,
                     CsrSigner* signer, ExecutionAuditor* auditor)
    : options_(options),
      store_(store),
      agents_(agents),
      clock_(clock),
      random_(random),
      validator_(validator),
      signer_(signer),
      auditor_(auditor) {}

JobEngine::~JobEngine() { Stop(); }

absl::Status JobEngine::Start() {
  Effects fx;
  {
    absl::MutexLock lock(&mu_);
    if (started_) return absl::FailedPreconditionError("job engine already started");
    if (stopped_) return absl::FailedPreconditionError("job engine is stopped");
    auto jobs = store_->ListUnfinishedJobs();
    if (!jobs.ok()) return jobs.status();
    const absl::Time now = clock_->Now();
    std::map<std::string, std::unique_ptr<Job>> loaded;
    for (store::JobRecord& rec : *jobs) {
      // The rate window is rebuilt from the stored attempt starts
      // (QUEUED -> IN_PROGRESS transitions), so a restart allows no new burst.
      const bool rated = rec.spec.rollout().per_minute() > 0;
      auto execs = store_->ListExecutions(rec.id, /*with_history=*/rated);
      if (!execs.ok()) return execs.status();
      auto job = std::make_unique<Job>();
      job->rec = std::move(rec);
      std::vector<absl::Time> starts;
      for (store::ExecutionRecord& r : *execs) {
        for (const v1::ExecutionTransition& t : r.execution.history()) {
          const absl::Time at = FromProtoTime(t.at());
          if (t.from() == v1::QUEUED && t.to() == v1::IN_PROGRESS &&
              at > now - options_.rate_window) {
            starts.push_back(at);
          }
        }
        r.execution.clear_history();
        const std::string imei = r.execution.imei();
        AddToCounts(&job->counts, r.execution.state(), 1);
        Exec& e = job->execs[imei];
        e.rec = std::move(r);
        // An offline wait survives the restart with its original end.
        e.offline_wait_used = e.rec.offline_wait_until != absl::InfinitePast();
        if (e.rec.execution.state() == v1::QUEUED && e.rec.offline_wait_until > now) {
          e.wait_until = e.rec.offline_wait_until;
        }
        job->order.push_back(&e);
      }
      std::sort(starts.begin(), starts.end());
      job->starts.assign(starts.begin(), starts.end());
      const std::string id = job->rec.id;
      loaded[id] = std::move(job);
    }
    active_ = std::move(loaded);
    started_ = true;
    size_t resumed = 0;
    for (auto& [id, job] : active_) {
      for (Exec* ep : job->order) {
        Exec& e = *ep;
        if (e.rec.execution.state() != v1::IN_PROGRESS) continue;
        if (StartAttemptLocked(*job, e, /*resumed=*/true, fx)) ++resumed;
      }
    }
    if (!active_.empty()) {
      ATB_LOG(INFO) << "job engine resumed " << active_.size() << " job(s), " << resumed
                    << " execution(s) in progress";
    }
    AfterChangeLocked(fx);
  }
  for (auto& f : fx) f();
  return absl::OkStatus();
}

void JobEngine::Stop() {
  absl::MutexLock lock(&mu_);
  if (stopped_) return;
  stopped_ = true;
  for (auto& [id, job] : active_) job->observers.clear();
  wake_listener_ = nullptr;
}

std::string JobEngine::NewJobIdLocked() {
  return absl::StrCat("job-", absl::FormatTime("%Y%m%d-%H%M%S", clock_->Now(), absl::UTCTimeZone()),
                      "-", random_->HexId(4));
}

absl::StatusOr<JobEngine::CreateResult> JobEngine::CreateJob(const v1::JobSpec& spec_in,
                                                             const std::vector<std::string>& imeis,
                                                             const v1::Actor& creator) {
  absl::Status valid = ValidateJobSpec(spec_in, *validator_, signer_ != nullptr);
  if (!valid.ok()) return valid;
  std::vector<std::string> targets = imeis;
  std::sort(targets.begin(), targets.end());
  targets.erase(std::unique(targets.begin(), targets.end()), targets.end());
  if (targets.empty()) {
    return absl::FailedPreconditionError("job selector matches no device");
  }
  const v1::JobSpec spec = WithDefaults(spec_in, options_.defaults);

  Effects fx;
  CreateResult result;
  {
    absl::MutexLock lock(&mu_);
    if (!started_) return absl::UnavailableError("job engine is not started yet");
    if (stopped_) return absl::UnavailableError("job engine is stopped");
    if (!spec.idempotency_key().empty()) {
      auto existing = store_->FindJobByIdempotencyKey(spec.idempotency_key());
      if (!existing.ok()) return existing.status();
      if (existing->has_value()) {
        auto job = LoadJob((*existing)->id, false);
        if (!job.ok()) return job.status();
        result.job = *std::move(job);
        result.existing = true;
        return result;
      }
    }
    const absl::Time now = clock_->Now();
    auto job = std::make_unique<Job>();
    job->rec.spec = spec;
    job->rec.creator = creator;
    job->rec.created_at = now;
    job->rec.state = v1::JOB_IN_PROGRESS;

    const std::string dry_reason =
        spec.dry_run() ? absl::StrCat("dry run: would ", DescribeAction(spec, *validator_)) : "";
    store::JobUpdate initial;
    for (const std::string& imei : targets) {
      store::ExecutionRecord r;
      v1::Execution& x = r.execution;
      x.set_imei(imei);
      x.set_state(spec.dry_run() ? v1::SKIPPED : v1::QUEUED);
      *x.mutable_queued_at() = ToProtoTime(now);
      v1::ExecutionTransition t;
      t.set_from(v1::EXECUTION_STATE_UNSPECIFIED);
      t.set_to(x.state());
      *t.mutable_at() = ToProtoTime(now);
      t.set_reason(spec.dry_run() ? dry_reason : "queued");
      if (spec.dry_run()) {
        *x.mutable_finished_at() = ToProtoTime(now);
        x.set_last_status_message(dry_reason);
      }
      initial.transitions.emplace_back(imei, t);
      initial.executions.push_back(r);
      AddToCounts(&job->counts, x.state(), 1);
      Exec& e = job->execs[imei];
      e.rec = std::move(r);
      job->order.push_back(&e);
    }
    if (spec.dry_run()) {
      job->rec.state = v1::JOB_COMPLETED;
      job->rec.finished_at = now;
      job->rec.reason = "dry run";
      // A dry run never executes: nothing secret needs to be kept.
      job->rec.spec = RedactSpec(job->rec.spec);
    }
    absl::Status created;
    for (int i = 0; i < 3; ++i) {
      job->rec.id = NewJobIdLocked();
      created = store_->CreateJob(job->rec, initial);
      if (created.code() != absl::StatusCode::kAlreadyExists) break;
      if (!spec.idempotency_key().empty()) {
        auto existing = store_->FindJobByIdempotencyKey(spec.idempotency_key());
        if (existing.ok() && existing->has_value()) {
          auto view = LoadJob((*existing)->id, false);
          if (!view.ok()) return view.status();
          result.job = *std::move(view);
          result.existing = true;
          return result;
        }
      }
    }
    if (!created.ok()) return created;
    ATB_LOG(INFO) << "job " << job->rec.id << " created by " << creator.principal() << ": "
                  << ActionName(spec) << " on " << targets.size() << " device(s)"
                  << (spec.dry_run() ? " (dry run)" : "");
    std::vector<store::ExecutionRecord> views;
    views.reserve(job->order.size());
    for (const Exec* e : job->order) views.push_back(e->rec);
    result.job = BuildJob(job->rec, views, /*include_executions=*/false);
    if (!spec.dry_run()) {
      const std::string id = job->rec.id;
      active_[id] = std::move(job);
      AfterChangeLocked(fx);
    }
  }
  for (auto& f : fx) f();
  return result;
}

absl::StatusOr<v1::Job> JobEngine::CancelJob(const std::string& job_id, const std::string& reason) {
  Effects fx;
  absl::StatusOr<v1::Job> out;
  {
    absl::MutexLock lock(&mu_);
    if (!started_) return absl::UnavailableError("job engine is not started yet");
    auto it = active_.find(job_id);
    if (it != active_.end() && it->second->rec.state == v1::JOB_IN_PROGRESS) {
      const std::string why = reason.empty() ? "canceled" : absl::StrCat("canceled: ", reason);
      if (!StopJobLocked(*it->second, v1::JOB_CANCELED, why)) {
        return absl::UnavailableError(absl::StrCat("cancel job ", job_id, ": store commit failed"));
      }
      ATB_LOG(INFO) << "job " << job_id << " " << why;
      AfterChangeLocked(fx);
    }
    out = LoadJob(job_id, false);
  }
  for (auto& f : fx) f();
  return out;
}

absl::StatusOr<v1::Job> JobEngine::LoadJob(const std::string& job_id,
                                           bool include_executions) const {
  auto rec = store_->GetJob(job_id);
  if (!rec.ok()) return rec.status();
  auto execs = store_->ListExecutions(job_id, include_executions);
  if (!execs.ok()) return execs.status();
  return BuildJob(*rec, *execs, include_executions);
}

absl::StatusOr<v1::Job> JobEngine::GetJob(const std::string& job_id, bool include_executions) {
  return LoadJob(job_id, include_executions);
}

absl::StatusOr<std::vector<v1::Job>> JobEngine::ListJobs(v1::JobState state, uint32_t limit) {
  auto recs = store_->ListJobs(state, limit == 0 ? 50 : static_cast<int>(std::min(limit, 1000u)));
  if (!recs.ok()) return recs.status();
  std::vector<v1::Job> out;
  for (const auto& rec : *recs) {
    auto execs = store_->ListExecutions(rec.id, false);
    if (!execs.ok()) return execs.status();
    out.push_back(BuildJob(rec, *execs, false));
  }
  return out;
}

absl::StatusOr<v1::Job> JobEngine::Watch(const std::string& job_id, JobObserver* observer,
                                         bool* running) {
  absl::MutexLock lock(&mu_);
  // Before Start() a running job is not in active_ yet and would look
  // finished to the watcher.
  if (!started_) return absl::UnavailableError("job engine is not started yet");
  auto job = LoadJob(job_id, /*include_executions=*/true);
  if (!job.ok()) return job.status();
  auto it = active_.find(job_id);
  *running = it != active_.end() && !stopped_;
  if (*running) it->second->observers.push_back(observer);
  return job;
}

void JobEngine::Unwatch(const std::string& job_id, JobObserver* observer) {
  absl::MutexLock lock(&mu_);
  auto it = active_.find(job_id);
  if (it == active_.end()) return;
  auto& obs = it->second->observers;
  obs.erase(std::remove(obs.begin(), obs.end(), observer), obs.end());
}

void JobEngine::Tick() {
  Effects fx;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    const absl::Time now = clock_->Now();
    if (store_retry_at_ <= now) store_retry_at_ = absl::InfiniteFuture();
    // The timer that called us has fired: whatever the next wake time is,
    // the listener must hear it again (even if it equals the last one).
    last_wake_ = absl::InfinitePast();
    for (auto& [id, job] : active_) {
      // A commit that failed earlier is retried now (once per Tick; a new
      // failure schedules the next retry).
      for (Exec* ep : job->order) {
        Exec& e = *ep;
        if (e.deferred.has_value() && e.rec.execution.state() == v1::IN_PROGRESS) {
          RetryDeferredLocked(*job, e, fx);
        }
      }
      CheckAbortLocked(*job);
      for (Exec* ep : job->order) {
        Exec& e = *ep;
        if (e.rec.execution.state() != v1::IN_PROGRESS || e.deadline > now) continue;
        if (e.deferred.has_value()) continue;
        e.gen = NewGenLocked();  // Whatever arrives for the timed-out attempt is dropped.
        const absl::Duration timeout = FromProtoDuration(job->rec.spec.execution_timeout());
        absl::Status status = absl::DeadlineExceededError(
            e.stage == Stage::kRollback
                ? absl::StrCat("rollback did not finish within ", absl::FormatDuration(timeout))
                : absl::StrCat("attempt ", e.rec.execution.attempts(), " did not finish within ",
                               absl::FormatDuration(timeout)));
        e.rec.execution.add_steps()->CopyFrom(
            MakeStep(StageName(e.stage), v1::STEP_FAILED, std::string(status.message())));
        FailAttemptLocked(*job, e, status, fx);
      }
    }
    AfterChangeLocked(fx);
  }
  for (auto& f : fx) f();
}

absl::Time JobEngine::NextWakeTime() const {
  absl::MutexLock lock(&mu_);
  return ComputeWakeLocked(clock_->Now());
}

void JobEngine::SetWakeListener(std::function<void(absl::Time)> listener) {
  absl::MutexLock lock(&mu_);
  wake_listener_ = std::move(listener);
  last_wake_ = ComputeWakeLocked(clock_->Now());
  if (wake_listener_) wake_listener_(last_wake_);
}

size_t JobEngine::ActiveJobCount() const {
  absl::MutexLock lock(&mu_);
  return active_.size();
}

v1::JobCounts JobEngine::ActiveExecutionCounts() const {
  absl::MutexLock lock(&mu_);
  v1::JobCounts total;
  for (const auto& [id, job] : active_) {
    const v1::JobCounts& c = job->counts;
    total.set_total(total.total() + c.total());
    total.set_queued(total.queued() + c.queued());
    total.set_in_progress(total.in_progress() + c.in_progress());
    total.set_succeeded(total.succeeded() + c.succeeded());
    total.set_skipped(total.skipped() + c.skipped());
    total.set_failed(total.failed() + c.failed());
    total.set_timed_out(total.timed_out() + c.timed_out());
    total.set_canceled(total.canceled() + c.canceled());
    total.set_rolled_back(total.rolled_back() + c.rolled_back());
  }
  return total;
}

void JobEngine::OnResponse(const std::string& job_id, const std::string& imei, uint64_t gen,
                           uint32_t attempt, absl::StatusOr<v1::AgentResponse> result) {
  Effects fx;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    auto jit = active_.find(job_id);
    if (jit == active_.end()) return;
    Job& job = *jit->second;
    auto eit = job.execs.find(imei);
    if (eit == job.execs.end()) return;
    Exec& e = eit->second;
    if (e.gen != gen || e.rec.execution.attempts() != attempt ||
        e.rec.execution.state() != v1::IN_PROGRESS || e.deferred.has_value()) {
      return;  // A reply for an attempt (or a stage) that is over.
    }
    AdvanceLocked(job, e, std::move(result), fx);
    AfterChangeLocked(fx);
  }
  for (auto& f : fx) f();
}

bool JobEngine::WaitForDeviceLocked(Job& job, Exec& e, const absl::Status& why, bool resumed) {
  const absl::Time now = clock_->Now();
  store::ExecutionRecord next = e.rec;
  next.execution.set_state(v1::QUEUED);
  // An attempt interrupted by a restart is re-run under its own number once
  // the device is back.
  if (resumed && next.execution.attempts() > 0) {
    next.execution.set_attempts(next.execution.attempts() - 1);
  }
  next.execution.set_last_status_code(static_cast<int>(why.code()));
  next.execution.set_last_status_message(std::string(why.message()));
  // Stored, so a restart neither forgets the wait nor grants a fresh one.
  next.offline_wait_until = now + options_.offline_wait;
  std::string reason =
      absl::StrCat(why.message(), "; waiting up to ", absl::FormatDuration(options_.offline_wait),
                   " for it to come online");
  if (resumed) {
    reason = absl::StrCat("attempt ", e.rec.execution.attempts(),
                          " interrupted by a server restart: ", reason);
  }
  if (!CommitExecLocked(job, e, std::move(next), reason)) return false;
  e.gen = NewGenLocked();
  e.deadline = absl::InfiniteFuture();
  e.stage = Stage::kIdle;
  e.offline_wait_used = true;
  e.wait_until = e.rec.offline_wait_until;
  return true;
}

void JobEngine::DevicesOnline(const std::vector<std::string>& imeis) {
  Effects fx;
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    bool any = false;
    for (auto& [id, job] : active_) {
      for (const std::string& imei : imeis) {
        auto it = job->execs.find(imei);
        if (it == job->execs.end() || it->second.wait_until == absl::InfinitePast()) continue;
        it->second.wait_until = absl::InfinitePast();
        any = true;
      }
    }
    if (!any) return;
    AfterChangeLocked(fx);
  }
  for (auto& f : fx) f();
}

bool JobEngine::StartAttemptLocked(Job& job, Exec& e, bool resumed, Effects& fx) {
  const absl::Time now = clock_->Now();
  // A rollback that was decided (and committed) before an interruption is
  // what this attempt continues with, never the write it is undoing.
  const bool rolling_back = RollbackPending(e.rec);
  if (job.rec.state != v1::JOB_IN_PROGRESS && !rolling_back) {
    // The job was canceled or aborted while this attempt ran, and a restart
    // interrupted it: nothing new starts for a stopped job.
    const std::string why = absl::StrCat(
        "job ", job.rec.state == v1::JOB_ABORTED ? "aborted" : "canceled", "; attempt ",
        e.rec.execution.attempts(), " was interrupted by a server restart and is not resumed");
    CompleteLocked(job, e, v1::CANCELED, absl::CancelledError(why), why);
    return true;
  }
  auto loc = agents_->Locate(e.rec.execution.imei());
  e.wait_until = absl::InfinitePast();
  // An attempt interrupted by a restart always gets a wait of its own: the
  // restart, not the device, is why no agent is connected yet.
  if (!loc.ok() && loc.status().code() == absl::StatusCode::kUnavailable &&
      (!e.offline_wait_used || resumed) && options_.offline_wait > absl::ZeroDuration()) {
    // Not an attempt yet: wait for the device (e.g. agents reconnecting
    // after a server restart) without using up the retry budget.
    if (WaitForDeviceLocked(job, e, loc.status(), resumed)) return true;
    if (resumed) DeferLocked(e, Deferred{.kind = Deferred::Kind::kResume});
    return false;
  }
  store::ExecutionRecord next = e.rec;
  v1::Execution& x = next.execution;
  if (!resumed) x.set_attempts(x.attempts() + 1);
  x.set_state(v1::IN_PROGRESS);
  if (!IsSet(x.started_at())) *x.mutable_started_at() = ToProtoTime(now);
  x.clear_next_attempt_at();
  if (!rolling_back) x.clear_steps();
  if (loc.ok()) {
    x.set_agent(loc->agent);
    x.set_port(loc->port);
  }
  std::string reason = resumed
                           ? absl::StrCat("attempt ", x.attempts(), " resumed after server restart")
                           : absl::StrCat("attempt ", x.attempts(), " started");
  if (loc.ok()) absl::StrAppend(&reason, " on ", loc->agent, "/", loc->port);
  if (rolling_back) absl::StrAppend(&reason, " (restoring the old entry)");
  if (!CommitExecLocked(job, e, std::move(next), reason)) {
    if (resumed) DeferLocked(e, Deferred{.kind = Deferred::Kind::kResume});
    return false;
  }
  e.gen = NewGenLocked();
  e.deadline = now + FromProtoDuration(job.rec.spec.execution_timeout());
  e.stage = rolling_back ? Stage::kRollback : Stage::kIdle;
  e.cause = rolling_back
                ? absl::Status(static_cast<absl::StatusCode>(e.rec.cause_code), e.rec.cause_message)
                : absl::OkStatus();
  e.script_index = 0;
  e.script_failures = 0;
  if (!resumed) job.starts.push_back(now);
  if (!loc.ok()) {
    e.rec.execution.add_steps()->CopyFrom(
        MakeStep("locate", v1::STEP_FAILED, std::string(loc.status().message())));
    FailAttemptLocked(job, e, loc.status(), fx);
    return true;
  }
  e.loc = *loc;
  if (rolling_back) {
    SendRollbackLocked(job, e, fx);
    return true;
  }
  BeginActionLocked(job, e, fx);
  return true;
}

void JobEngine::BeginActionLocked(Job& job, Exec& e, Effects& fx) {
  const v1::JobSpec& spec = job.rec.spec;
  v1::AgentRequest req;
  switch (spec.action_case()) {
    case v1::JobSpec::kWrite: {
      e.stage = Stage::kWrite;
      auto* w = req.mutable_write_credential();
      w->set_sec_tag(spec.write().sec_tag());
      w->set_type(spec.write().type());
      w->set_content(spec.write().content());
      *w->mutable_options() = spec.write().options();
      break;
    }
    case v1::JobSpec::kDelete: {
      e.stage = Stage::kDelete;
      auto* d = req.mutable_delete_credential();
      d->set_sec_tag(spec.delete_().sec_tag());
      d->set_type(spec.delete_().type());
      d->set_ignore_missing(true);
      break;
    }
    case v1::JobSpec::kRotate: {
      const auto& a = spec.rotate();
      if (!e.rec.has_rollback && IsReadableCredentialType(a.type())) {
        e.stage = Stage::kReadOld;
        auto* r = req.mutable_read_credential();
        r->set_sec_tag(a.sec_tag());
        r->set_type(a.type());
      } else {
        e.stage = Stage::kWrite;
        auto* w = req.mutable_write_credential();
        w->set_sec_tag(a.sec_tag());
        w->set_type(a.type());
        w->set_content(a.content());
        *w->mutable_options() = a.options();
      }
      break;
    }
    case v1::JobSpec::kKeygenAndSign: {
      if (!e.rec.signed_cert.empty()) {
        // An earlier attempt generated the key and had its CSR signed: a new
        // %KEYGEN would leave that certificate without its key. Write it.
        e.rec.execution.add_steps()->CopyFrom(
            MakeStep("keygen", v1::STEP_SKIPPED,
                     "the key was generated and its certificate signed by an earlier attempt"));
        SendCertificateLocked(job, e, fx);
        return;
      }
      e.stage = Stage::kKeygen;
      auto* g = req.mutable_generate_key();
      g->set_sec_tag(spec.keygen_and_sign().sec_tag());
      g->set_attributes(absl::StrReplaceAll(spec.keygen_and_sign().attributes(),
                                            {{"{imei}", e.rec.execution.imei()}}));
      break;
    }
    case v1::JobSpec::kAtScript: {
      e.stage = Stage::kScript;
      req.mutable_execute()->set_command(spec.at_script().commands(e.script_index));
      break;
    }
    case v1::JobSpec::ACTION_NOT_SET:
      FailAttemptLocked(job, e, absl::InvalidArgumentError("job has no action"), fx);
      return;
  }
  SendLocked(job, e, std::move(req), fx);
}

void JobEngine::SendLocked(Job& job, Exec& e, v1::AgentRequest request, Effects& fx) {
  SetRequestPort(request, e.loc.port);
  const absl::Duration timeout = std::max(e.deadline - clock_->Now(), absl::Milliseconds(1));
  fx.push_back([this, agent = e.loc.agent, actor = job.rec.creator, req = std::move(request),
                timeout, job_id = job.rec.id, imei = e.rec.execution.imei(), gen = e.gen,
                attempt = e.rec.execution.attempts()]() {
    agents_->Send(agent, actor, req, timeout,
                  [this, job_id, imei, gen, attempt](absl::StatusOr<v1::AgentResponse> r) {
                    OnResponse(job_id, imei, gen, attempt, std::move(r));
                  });
  });
}

void JobEngine::AdvanceLocked(Job& job, Exec& e, absl::StatusOr<v1::AgentResponse> result,
                              Effects& fx) {
  const v1::JobSpec& spec = job.rec.spec;
  v1::Execution& x = e.rec.execution;
  const Stage stage = e.stage;
  // Rotate: a missing old entry is not a failure, the slot was empty.
  if (stage == Stage::kReadOld && !result.ok() &&
      result.status().code() == absl::StatusCode::kNotFound) {
    store::ExecutionRecord next = e.rec;
    next.has_rollback = true;
    next.rollback_content.clear();
    next.rollback_sha256.clear();
    next.execution.add_steps()->CopyFrom(
        MakeStep("read_old", v1::STEP_SKIPPED, "no entry to keep"));
    if (absl::Status s = PersistExecLocked(job, next); !s.ok()) {
      FailAttemptLocked(job, e, s, fx);
      return;
    }
    e.rec = std::move(next);
    BeginActionLocked(job, e, fx);
    return;
  }
  if (!result.ok()) {
    // A failed write brings the agent's own report: which steps ran and how
    // far it got (e.g. written, then a verify that found another hash).
    v1::WriteReport report;
    if (GetStatusDetail(result.status(), &report)) {
      for (const auto& step : report.steps()) *x.add_steps() = step;
    }
    x.add_steps()->CopyFrom(MakeStep(
        stage == Stage::kScript ? absl::StrCat("command ", e.script_index + 1) : StageName(stage),
        v1::STEP_FAILED, StatusText(result.status())));
    if (stage == Stage::kRollback) {
      CompleteLocked(job, e, v1::FAILED, e.cause,
                     absl::StrCat("rotation failed (", StatusText(e.cause),
                                  ") and the rollback failed (", StatusText(result.status()), ")"));
      return;
    }
    FailAttemptLocked(job, e, result.status(), fx);
    return;
  }
  const v1::AgentResponse& resp = *result;
  auto expect = [&](v1::AgentResponse::ResponseCase c) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::Status s = ExpectCase(resp, c);
    if (!s.ok()) FailAttemptLocked(job, e, s, fx);
    return s.ok();
  };
  switch (stage) {
    case Stage::kReadOld: {
      if (!expect(v1::AgentResponse::kReadCredential)) return;
      store::ExecutionRecord next = e.rec;
      next.has_rollback = true;
      next.rollback_content = resp.read_credential().content();
      next.rollback_sha256 = resp.read_credential().entry().sha256();
      next.execution.add_steps()->CopyFrom(MakeStep(
          "read_old", v1::STEP_OK,
          absl::StrCat("kept the old entry (sha256 ", next.rollback_sha256, ") for rollback")));
      // The old content must be durable before it is overwritten.
      if (absl::Status s = PersistExecLocked(job, next); !s.ok()) {
        FailAttemptLocked(job, e, s, fx);
        return;
      }
      e.rec = std::move(next);
      e.stage = Stage::kWrite;
      v1::AgentRequest req;
      auto* w = req.mutable_write_credential();
      w->set_sec_tag(spec.rotate().sec_tag());
      w->set_type(spec.rotate().type());
      w->set_content(spec.rotate().content());
      *w->mutable_options() = spec.rotate().options();
      SendLocked(job, e, std::move(req), fx);
      return;
    }
    case Stage::kWrite: {
      if (!expect(v1::AgentResponse::kWriteCredential)) return;
      const v1::WriteReport& rep = resp.write_credential();
      for (const auto& s : rep.steps()) *x.add_steps() = s;
      x.set_sha256(rep.sha256().empty() ? rep.entry().sha256() : rep.sha256());
      x.clear_repairs();
      for (const auto& r : rep.repairs()) x.add_repairs(r);
      if (rep.skipped()) {
        CompleteLocked(job, e, v1::SKIPPED, absl::OkStatus(),
                       absl::StrCat("already present (sha256 ", x.sha256(), ")"));
      } else {
        CompleteLocked(job, e, v1::SUCCEEDED, absl::OkStatus(),
                       absl::StrCat("written and verified (sha256 ", x.sha256(), ")"));
      }
      return;
    }
    case Stage::kDelete: {
      if (!expect(v1::AgentResponse::kDeleteCredential)) return;
      for (const auto& s : resp.delete_credential().steps()) *x.add_steps() = s;
      if (resp.delete_credential().skipped()) {
        CompleteLocked(job, e, v1::SKIPPED, absl::OkStatus(), "nothing to delete");
      } else {
        CompleteLocked(job, e, v1::SUCCEEDED, absl::OkStatus(), "deleted");
      }
      return;
    }
    case Stage::kKeygen: {
      if (!expect(v1::AgentResponse::kGenerateKey)) return;
      const v1::GenerateKeyResponse& g = resp.generate_key();
      for (const auto& s : g.steps()) *x.add_steps() = s;
      const std::string csr = g.csr_der().empty() ? g.csr_pem() : g.csr_der();
      // The subject is the server's choice (the CN it asked for, else the
      // IMEI), whatever the CSR says.
      const std::string cn = DeviceCommonName(
          absl::StrReplaceAll(spec.keygen_and_sign().attributes(), {{"{imei}", x.imei()}}),
          x.imei());
      auto cert = signer_ != nullptr
                      ? signer_->Sign(csr, cn, spec.keygen_and_sign().validity_days())
                      : absl::StatusOr<std::string>(
                            absl::FailedPreconditionError("the server has no CA to sign with"));
      if (!cert.ok()) {
        x.add_steps()->CopyFrom(MakeStep("sign", v1::STEP_FAILED, StatusText(cert.status())));
        FailAttemptLocked(job, e, cert.status(), fx);
        return;
      }
      // The certificate (public) is stored before it is written: an attempt
      // resumed or retried from here writes it instead of generating a key
      // that no certificate matches.
      store::ExecutionRecord next = e.rec;
      next.signed_cert = *std::move(cert);
      next.execution.add_steps()->CopyFrom(
          MakeStep("sign", v1::STEP_OK, absl::StrCat("CSR signed by the server CA as CN=", cn)));
      if (absl::Status s = PersistExecLocked(job, next); !s.ok()) {
        FailAttemptLocked(job, e, s, fx);
        return;
      }
      e.rec = std::move(next);
      SendCertificateLocked(job, e, fx);
      return;
    }
    case Stage::kWriteCert:
    case Stage::kWriteCa: {
      if (!expect(v1::AgentResponse::kWriteCredential)) return;
      const v1::WriteReport& rep = resp.write_credential();
      for (const auto& s : rep.steps()) {
        v1::Step* step = x.add_steps();
        *step = s;
        step->set_name(absl::StrCat(StageName(stage), ".", s.name()));
      }
      if (stage == Stage::kWriteCert) {
        x.set_sha256(rep.sha256().empty() ? rep.entry().sha256() : rep.sha256());
      }
      if (stage == Stage::kWriteCert && spec.keygen_and_sign().write_ca() && signer_ != nullptr) {
        e.stage = Stage::kWriteCa;
        v1::AgentRequest req;
        auto* w = req.mutable_write_credential();
        w->set_sec_tag(spec.keygen_and_sign().sec_tag());
        w->set_type(v1::ROOT_CA_CERT);
        w->set_content(signer_->CaCertificatePem());
        SendLocked(job, e, std::move(req), fx);
        return;
      }
      CompleteLocked(job, e, v1::SUCCEEDED, absl::OkStatus(),
                     absl::StrCat("key generated, certificate signed, written and verified "
                                  "(sha256 ",
                                  x.sha256(), ")"));
      return;
    }
    case Stage::kScript: {
      if (!expect(v1::AgentResponse::kExecute)) return;
      const v1::AtResult& at = resp.execute();
      // Shown in steps, reports, events and the failure message: secrets
      // in the command (a %CMNG PSK write, say) are redacted.
      const std::string command = RedactCommand(spec.at_script().commands(e.script_index));
      const std::string name = absl::StrCat("command ", e.script_index + 1);
      const bool ok = at.final() == v1::FINAL_RESULT_OK;
      std::string detail = absl::StrCat(
          command, " -> ", at.final_line().empty() ? (ok ? "OK" : "ERROR") : at.final_line());
      if (!at.explanation().empty()) absl::StrAppend(&detail, " (", at.explanation(), ")");
      x.add_steps()->CopyFrom(MakeStep(name, ok ? v1::STEP_OK : v1::STEP_FAILED, detail));
      if (!ok) {
        ++e.script_failures;
        if (!spec.at_script().continue_on_error()) {
          FailAttemptLocked(
              job, e, absl::FailedPreconditionError(absl::StrCat(name, " failed: ", detail)), fx);
          return;
        }
      }
      ++e.script_index;
      if (e.script_index < spec.at_script().commands_size()) {
        v1::AgentRequest req;
        req.mutable_execute()->set_command(spec.at_script().commands(e.script_index));
        SendLocked(job, e, std::move(req), fx);
        return;
      }
      CompleteLocked(job, e, v1::SUCCEEDED, absl::OkStatus(),
                     absl::StrCat(spec.at_script().commands_size(), " command(s) run",
                                  e.script_failures > 0
                                      ? absl::StrCat(", ", e.script_failures, " failed (ignored)")
                                      : ""));
      return;
    }
    case Stage::kRollback: {
      std::string sha;
      if (resp.response_case() == v1::AgentResponse::kWriteCredential) {
        const v1::WriteReport& rep = resp.write_credential();
        for (const auto& s : rep.steps()) {
          v1::Step* step = x.add_steps();
          *step = s;
          step->set_name(absl::StrCat("rollback.", s.name()));
        }
        sha = rep.sha256().empty() ? rep.entry().sha256() : rep.sha256();
      } else if (resp.response_case() != v1::AgentResponse::kDeleteCredential) {
        CompleteLocked(job, e, v1::FAILED, e.cause,
                       absl::StrCat("rotation failed (", StatusText(e.cause),
                                    ") and the rollback got an unexpected answer"));
        return;
      }
      if (!e.rec.rollback_sha256.empty() && !sha.empty() &&
          absl::AsciiStrToUpper(sha) != absl::AsciiStrToUpper(e.rec.rollback_sha256)) {
        CompleteLocked(job, e, v1::FAILED, e.cause,
                       absl::StrCat("rotation failed (", StatusText(e.cause),
                                    ") and the restored entry does not verify (sha256 ", sha,
                                    ", expected ", e.rec.rollback_sha256, ")"));
        return;
      }
      x.set_sha256(sha);
      CompleteLocked(job, e, v1::ROLLED_BACK, e.cause,
                     absl::StrCat("rotation failed (", StatusText(e.cause), "); ",
                                  e.rec.rollback_content.empty()
                                      ? "the new entry was removed (the slot was empty)"
                                      : absl::StrCat("the old entry was restored and verified "
                                                     "(sha256 ",
                                                     sha, ")")));
      return;
    }
    case Stage::kIdle:
      break;
  }
  FailAttemptLocked(job, e, absl::InternalError("response for an idle execution"), fx);
}

void JobEngine::FailAttemptLocked(Job& job, Exec& e, const absl::Status& status, Effects& fx) {
  const v1::JobSpec& spec = job.rec.spec;
  const uint32_t attempts = e.rec.execution.attempts();
  if (e.stage == Stage::kRollback) {
    // The restore itself failed (timed out, device gone): the entry is in an
    // unknown state, so the execution fails with both causes.
    CompleteLocked(
        job, e, status.code() == absl::StatusCode::kDeadlineExceeded ? v1::TIMED_OUT : v1::FAILED,
        e.cause,
        absl::StrCat("rotation failed (", StatusText(e.cause), ") and the rollback failed (",
                     StatusText(status), ")"));
    return;
  }
  const bool retryable = IsRetryable(status.code());
  const bool will_retry =
      retryable && job.rec.state == v1::JOB_IN_PROGRESS && attempts < spec.retry().max_attempts();
  // A rotation that will not be retried restores the old entry, unless it
  // failed before anything could have been written in this attempt (reading
  // the old entry) or the device cannot be reached at all (locating it).
  if (spec.has_rotate() && e.rec.has_rollback && !will_retry && e.stage != Stage::kReadOld &&
      e.stage != Stage::kIdle) {
    StartRollbackLocked(job, e, status, fx);
    return;
  }
  if (will_retry) {
    RequeueLocked(job, e, status, fx);
    return;
  }
  if (retryable && job.rec.state != v1::JOB_IN_PROGRESS) {
    CompleteLocked(job, e, v1::CANCELED, status,
                   absl::StrCat("job ", job.rec.state == v1::JOB_ABORTED ? "aborted" : "canceled",
                                "; attempt ", attempts, " failed: ", StatusText(status)));
    return;
  }
  const v1::ExecutionState state =
      status.code() == absl::StatusCode::kDeadlineExceeded ? v1::TIMED_OUT : v1::FAILED;
  std::string reason = StatusText(status);
  if (retryable) absl::StrAppend(&reason, " (", attempts, " attempt(s), retries exhausted)");
  CompleteLocked(job, e, state, status, reason);
}

void JobEngine::StartRollbackLocked(Job& job, Exec& e, const absl::Status& cause, Effects& fx) {
  // The decision is committed before the restore is sent: an attempt
  // resumed after a restart continues the rollback instead of writing the
  // new content again.
  store::ExecutionRecord next = e.rec;
  next.stage = static_cast<uint32_t>(Stage::kRollback);
  next.cause_code = static_cast<int>(cause.code());
  next.cause_message = std::string(cause.message());
  next.execution.add_steps()->CopyFrom(
      MakeStep("rollback", v1::STEP_OK,
               absl::StrCat("rotation failed (", StatusText(cause), "); restoring the old entry")));
  if (!CommitExecLocked(job, e, std::move(next),
                        absl::StrCat("attempt ", e.rec.execution.attempts(), " failed (",
                                     StatusText(cause), "); restoring the old entry"))) {
    DeferLocked(e, Deferred{.kind = Deferred::Kind::kFail, .status = cause});
    return;
  }
  e.cause = cause;
  e.stage = Stage::kRollback;
  // The rollback gets a fresh deadline of its own.
  e.gen = NewGenLocked();
  e.deadline = clock_->Now() + FromProtoDuration(job.rec.spec.execution_timeout());
  SendRollbackLocked(job, e, fx);
}

void JobEngine::SendRollbackLocked(Job& job, Exec& e, Effects& fx) {
  const auto& a = job.rec.spec.rotate();
  v1::AgentRequest req;
  if (e.rec.rollback_content.empty()) {
    auto* d = req.mutable_delete_credential();
    d->set_sec_tag(a.sec_tag());
    d->set_type(a.type());
    d->set_ignore_missing(true);
  } else {
    auto* w = req.mutable_write_credential();
    w->set_sec_tag(a.sec_tag());
    w->set_type(a.type());
    w->set_content(e.rec.rollback_content);
  }
  SendLocked(job, e, std::move(req), fx);
}

void JobEngine::SendCertificateLocked(Job& job, Exec& e, Effects& fx) {
  e.stage = Stage::kWriteCert;
  v1::AgentRequest req;
  auto* w = req.mutable_write_credential();
  w->set_sec_tag(job.rec.spec.keygen_and_sign().sec_tag());
  w->set_type(v1::CLIENT_CERT);
  w->set_content(e.rec.signed_cert);
  SendLocked(job, e, std::move(req), fx);
}

void JobEngine::RequeueLocked(Job& job, Exec& e, const absl::Status& status, Effects& fx) {
  const v1::RetryPolicy& rp = job.rec.spec.retry();
  BackoffPolicy policy{.initial = FromProtoDuration(rp.initial_backoff()),
                       .max = FromProtoDuration(rp.max_backoff()),
                       .multiplier = rp.multiplier()};
  const absl::Duration delay = JitteredBackoff(policy, e.rec.execution.attempts(), *random_);
  const absl::Time now = clock_->Now();
  store::ExecutionRecord next = e.rec;
  v1::Execution& x = next.execution;
  x.set_state(v1::QUEUED);
  x.set_last_status_code(static_cast<int>(status.code()));
  x.set_last_status_message(std::string(status.message()));
  *x.mutable_next_attempt_at() = ToProtoTime(now + delay);
  next.stage = static_cast<uint32_t>(Stage::kIdle);
  if (!CommitExecLocked(job, e, std::move(next),
                        absl::StrCat(StatusText(status), "; retry in ", FormatDelay(delay)))) {
    DeferLocked(e, Deferred{.kind = Deferred::Kind::kFail, .status = status});
    return;
  }
  e.gen = NewGenLocked();
  e.deadline = absl::InfiniteFuture();
  e.stage = Stage::kIdle;
}

void JobEngine::CompleteLocked(Job& job, Exec& e, v1::ExecutionState state,
                               const absl::Status& status, const std::string& reason) {
  store::ExecutionRecord next = e.rec;
  v1::Execution& x = next.execution;
  x.set_state(state);
  x.set_last_status_code(static_cast<int>(status.code()));
  x.set_last_status_message(status.ok() ? reason : std::string(status.message()));
  *x.mutable_finished_at() = ToProtoTime(clock_->Now());
  x.clear_next_attempt_at();
  // Progress kept for a resume is no longer needed once the execution is
  // final.
  next.has_rollback = false;
  next.rollback_content.clear();
  next.stage = static_cast<uint32_t>(Stage::kIdle);
  next.cause_code = 0;
  next.cause_message.clear();
  next.signed_cert.clear();
  if (!CommitExecLocked(job, e, std::move(next), reason)) {
    DeferLocked(
        e,
        Deferred{
            .kind = Deferred::Kind::kComplete, .status = status, .state = state, .reason = reason});
    return;
  }
  e.gen = NewGenLocked();
  e.deadline = absl::InfiniteFuture();
  e.stage = Stage::kIdle;
  AuditLocked(job, e, reason);
  CheckAbortLocked(job);
}

void JobEngine::DeferLocked(Exec& e, Deferred d) {
  // The attempt is over as far as replies go; the outcome waits for the
  // store (Tick retries it at store_retry_at_, set by the failed commit).
  e.gen = NewGenLocked();
  e.deadline = absl::InfiniteFuture();
  e.deferred = std::move(d);
}

void JobEngine::RetryDeferredLocked(Job& job, Exec& e, Effects& fx) {
  Deferred d = *std::move(e.deferred);
  e.deferred.reset();
  switch (d.kind) {
    case Deferred::Kind::kFail:
      FailAttemptLocked(job, e, d.status, fx);
      return;
    case Deferred::Kind::kComplete:
      CompleteLocked(job, e, d.state, d.status, d.reason);
      return;
    case Deferred::Kind::kResume:
      StartAttemptLocked(job, e, /*resumed=*/true, fx);
      return;
  }
}

void JobEngine::NoteStoreFailureLocked() {
  store_retry_at_ = std::min(store_retry_at_, clock_->Now() + options_.store_retry_delay);
}

void JobEngine::AuditLocked(const Job& job, const Exec& e, const std::string& reason) {
  if (auditor_ == nullptr || e.rec.execution.attempts() == 0) return;
  auditor_->ExecutionFinished(job.rec.creator, job.rec.id, ActionName(job.rec.spec),
                              e.rec.execution, reason);
}

bool JobEngine::CommitExecLocked(Job& job, Exec& e, store::ExecutionRecord next,
                                 const std::string& reason) {
  v1::ExecutionTransition t;
  t.set_from(e.rec.execution.state());
  t.set_to(next.execution.state());
  *t.mutable_at() = ToProtoTime(clock_->Now());
  t.set_attempt(next.execution.attempts());
  t.set_reason(reason);
  store::JobUpdate update;
  update.executions.push_back(next);
  update.transitions.emplace_back(next.execution.imei(), t);
  absl::Status s = store_->Commit(job.rec.id, update);
  if (!s.ok()) {
    ATB_LOG(ERROR) << "job " << job.rec.id << " device " << next.execution.imei()
                   << ": cannot commit " << ExecutionStateName(t.from()) << " -> "
                   << ExecutionStateName(t.to()) << ": " << s;
    NoteStoreFailureLocked();
    return false;
  }
  AddToCounts(&job.counts, e.rec.execution.state(), -1);
  AddToCounts(&job.counts, next.execution.state(), 1);
  e.rec = std::move(next);
  EmitLocked(job, &e, &t);
  return true;
}

absl::Status JobEngine::PersistExecLocked(Job& job, const store::ExecutionRecord& next) {
  store::JobUpdate update;
  update.executions.push_back(next);
  absl::Status s = store_->Commit(job.rec.id, update);
  if (!s.ok()) {
    ATB_LOG(ERROR) << "job " << job.rec.id << " device " << next.execution.imei()
                   << ": cannot save execution: " << s;
    NoteStoreFailureLocked();
    // Retryable: nothing was sent after the unsaved step.
    return absl::UnavailableError(
        absl::StrCat("the server could not save the execution's progress: ", s.message()));
  }
  return absl::OkStatus();
}

void JobEngine::CheckAbortLocked(Job& job) {
  if (job.rec.state != v1::JOB_IN_PROGRESS) return;
  const v1::AbortCriteria& ac = job.rec.spec.abort();
  if (ac.failure_percent() <= 0) return;
  const v1::JobCounts& c = job.counts;
  const uint32_t failed = c.failed() + c.timed_out() + c.rolled_back();
  const uint32_t finished = failed + c.succeeded() + c.skipped();
  if (finished == 0 || finished < std::max<uint32_t>(1, ac.min_executed())) return;
  const double pct = 100.0 * failed / finished;
  if (pct < ac.failure_percent()) return;
  const std::string reason =
      absl::StrFormat("aborted: %u of %u finished executions failed (%.1f%% >= %.1f%%)", failed,
                      finished, pct, ac.failure_percent());
  if (StopJobLocked(job, v1::JOB_ABORTED, reason)) {
    ATB_LOG(WARNING) << "job " << job.rec.id << " " << reason;
  }
}

bool JobEngine::StopJobLocked(Job& job, v1::JobState state, const std::string& reason) {
  const absl::Time now = clock_->Now();
  store::JobRecord rec = job.rec;
  rec.state = state;
  rec.reason = reason;
  store::JobUpdate update;
  std::vector<std::pair<Exec*, v1::ExecutionTransition>> changed;
  for (Exec* ep : job.order) {
    Exec& e = *ep;
    if (e.rec.execution.state() != v1::QUEUED) continue;
    // A committed rollback waiting for its device still restores the old
    // entry (as one in flight does): a cancel must not strand the new one.
    if (RollbackPending(e.rec)) continue;
    const std::string& imei = e.rec.execution.imei();
    store::ExecutionRecord next = e.rec;
    next.execution.set_state(v1::CANCELED);
    *next.execution.mutable_finished_at() = ToProtoTime(now);
    next.execution.clear_next_attempt_at();
    next.execution.set_last_status_code(static_cast<int>(absl::StatusCode::kCancelled));
    next.execution.set_last_status_message(reason);
    next.has_rollback = false;
    next.rollback_content.clear();
    next.stage = static_cast<uint32_t>(Stage::kIdle);
    next.signed_cert.clear();
    v1::ExecutionTransition t;
    t.set_from(v1::QUEUED);
    t.set_to(v1::CANCELED);
    *t.mutable_at() = ToProtoTime(now);
    t.set_attempt(next.execution.attempts());
    t.set_reason(absl::StrCat("job ", reason));
    update.executions.push_back(next);
    update.transitions.emplace_back(imei, t);
    changed.emplace_back(&e, t);
  }
  update.job = rec;
  absl::Status s = store_->Commit(job.rec.id, update);
  if (!s.ok()) {
    ATB_LOG(ERROR) << "job " << job.rec.id << ": cannot commit " << JobStateName(state) << ": "
                   << s;
    NoteStoreFailureLocked();
    return false;
  }
  job.rec = std::move(rec);
  for (size_t i = 0; i < changed.size(); ++i) {
    Exec& e = *changed[i].first;
    AddToCounts(&job.counts, v1::QUEUED, -1);
    AddToCounts(&job.counts, v1::CANCELED, 1);
    e.rec = update.executions[i];
    e.gen = NewGenLocked();
    e.wait_until = absl::InfinitePast();
    EmitLocked(job, &e, &changed[i].second);
    AuditLocked(job, e, changed[i].second.reason());
  }
  EmitLocked(job, nullptr, nullptr);
  return true;
}

void JobEngine::PumpLocked(Job& job, Effects& fx) {
  if (stopped_) return;
  const absl::Time now = clock_->Now();
  if (job.rec.state != v1::JOB_IN_PROGRESS) {
    // A stopped job starts nothing new, but its pending rollbacks still run.
    for (Exec* ep : job.order) {
      Exec& e = *ep;
      if (e.rec.execution.state() != v1::QUEUED || !RollbackPending(e.rec)) continue;
      if (e.wait_until > now || FromProtoTime(e.rec.execution.next_attempt_at()) > now) continue;
      if (!StartAttemptLocked(job, e, /*resumed=*/false, fx)) return;  // Store trouble.
    }
    return;
  }
  const uint32_t cap = std::max<uint32_t>(1, job.rec.spec.rollout().max_concurrency());
  const uint32_t per_minute = job.rec.spec.rollout().per_minute();
  while (!job.starts.empty() && job.starts.front() <= now - options_.rate_window) {
    job.starts.pop_front();
  }
  for (Exec* ep : job.order) {
    if (job.rec.state != v1::JOB_IN_PROGRESS) {
      PumpLocked(job, fx);  // Aborted meanwhile: only pending rollbacks go on.
      return;
    }
    if (job.counts.in_progress() >= cap) return;
    if (per_minute > 0 && job.starts.size() >= per_minute) return;
    Exec& e = *ep;
    if (e.rec.execution.state() != v1::QUEUED) continue;
    if (FromProtoTime(e.rec.execution.next_attempt_at()) > now) continue;
    if (e.wait_until > now) continue;                                // Waiting for its device.
    if (!StartAttemptLocked(job, e, /*resumed=*/false, fx)) return;  // Store trouble.
  }
}

bool JobEngine::MaybeFinishLocked(Job& job) {
  if (job.counts.queued() + job.counts.in_progress() > 0) return false;
  store::JobRecord rec = job.rec;
  if (rec.state == v1::JOB_IN_PROGRESS) {
    rec.state = v1::JOB_COMPLETED;
    rec.reason = absl::StrCat(
        job.counts.succeeded(), " succeeded, ", job.counts.skipped(), " skipped, ",
        job.counts.failed() + job.counts.timed_out() + job.counts.rolled_back(), " failed");
  }
  rec.finished_at = clock_->Now();
  // Secrets are kept only while they may still be needed.
  rec.spec = RedactSpec(rec.spec);
  store::JobUpdate update;
  update.job = rec;
  update.scrubs_secrets = SpecHasSecret(job.rec.spec);
  absl::Status s = store_->Commit(rec.id, update);
  if (!s.ok()) {
    ATB_LOG(ERROR) << "job " << rec.id << ": cannot commit its end: " << s;
    NoteStoreFailureLocked();
    return false;
  }
  job.rec = std::move(rec);
  ATB_LOG(INFO) << "job " << job.rec.id << " ended " << JobStateName(job.rec.state) << ": "
                << job.rec.reason;
  EmitLocked(job, nullptr, nullptr);
  job.observers.clear();
  return true;
}

void JobEngine::AfterChangeLocked(Effects& fx) {
  if (stopped_) return;
  std::vector<std::string> finished;
  for (auto& [id, job] : active_) {
    PumpLocked(*job, fx);
    if (MaybeFinishLocked(*job)) finished.push_back(id);
  }
  for (const auto& id : finished) active_.erase(id);
  const absl::Time wake = ComputeWakeLocked(clock_->Now());
  if (wake != last_wake_) {
    last_wake_ = wake;
    if (wake_listener_) wake_listener_(wake);
  }
}

absl::Time JobEngine::ComputeWakeLocked(absl::Time now) const {
  absl::Time wake = store_retry_at_;
  if (stopped_) return absl::InfiniteFuture();
  for (const auto& [id, job] : active_) {
    bool eligible_waiting = false;
    for (const auto& [imei, e] : job->execs) {
      const v1::ExecutionState s = e.rec.execution.state();
      if (s == v1::IN_PROGRESS) {
        // A deferred outcome waits for the store retry (already in `wake`),
        // never for its past deadline.
        if (!e.deferred.has_value()) wake = std::min(wake, e.deadline);
      } else if (s == v1::QUEUED &&
                 (job->rec.state == v1::JOB_IN_PROGRESS || RollbackPending(e.rec))) {
        const absl::Time at =
            std::max(FromProtoTime(e.rec.execution.next_attempt_at()), e.wait_until);
        if (at > now) {
          wake = std::min(wake, at);
        } else {
          eligible_waiting = true;
        }
      }
    }
    const uint32_t per_minute = job->rec.spec.rollout().per_minute();
    if (eligible_waiting && per_minute > 0 && job->starts.size() >= per_minute) {
      wake = std::min(wake, job->starts.front() + options_.rate_window);
    }
  }
  return wake;
}

v1::JobEvent JobEngine::MakeEventLocked(const Job& job) const {
  v1::JobEvent ev;
  ev.set_job_id(job.rec.id);
  ev.set_job_state(job.rec.state);
  *ev.mutable_counts() = job.counts;
  return ev;
}

void JobEngine::EmitLocked(Job& job, const Exec* e, const v1::ExecutionTransition* t) {
  if (job.observers.empty()) return;
  v1::JobEvent ev = MakeEventLocked(job);
  if (e != nullptr) *ev.mutable_execution() = e->rec.execution;
  if (t != nullptr) *ev.mutable_transition() = *t;
  for (JobObserver* o : job.observers) o->OnJobEvent(ev);
}

}  // namespace atbridge::server::jobs
