// The job engine: durable credential jobs over a fleet (model: AWS IoT Jobs).
//
// A job = action + target devices (IMEIs, resolved by the caller) + rollout
// (max concurrency, starts per minute) + retry policy (jittered exponential
// backoff, only for retryable status codes, common/status/retry.h) + abort
// criteria + per-attempt timeout + dry run + idempotency key. Each device has
// an execution: QUEUED -> IN_PROGRESS -> SUCCEEDED | SKIPPED | FAILED |
// TIMED_OUT | CANCELED | ROLLED_BACK, and IN_PROGRESS -> QUEUED for a retry.
//
// Durability: every transition is committed to the JobStore before it is
// acted on (before a request is sent, before an event is published), and so
// is progress a resumed attempt needs (the old entry kept for a rollback, the
// decision to roll back, a signed certificate, an offline wait). Start()
// reloads unfinished jobs; IN_PROGRESS executions re-run their attempt
// (writes are idempotent on the agent: same hash -> skipped), or resume their
// rollback. A commit that fails is retried after
// EngineOptions::store_retry_delay; until then the execution waits (its
// outcome is kept in memory, nothing is sent for it, stale replies are
// dropped).
//
// No polling and no threads: the engine computes the next time it must wake
// (backoff expiry, rate slot, attempt deadline) and reports it to the wake
// listener; the owner arms one timer and calls Tick() then. Agent calls go
// through the AgentClient interface, time through Clock, jitter through
// Random: this library links no gRPC.
//
// Thread-safety: all public methods are thread-safe (one internal mutex).
// Observers and the wake listener are called with that mutex held, in commit
// order: they must not block or call back into the engine. AgentClient::Send
// is called without the mutex held.
#ifndef ATBRIDGE_SERVER_JOBS_ENGINE_H_
#define ATBRIDGE_SERVER_JOBS_ENGINE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "atbridge/v1/provisioning.pb.h"
#include "common/clock.h"
#include "common/random.h"
#include "server/jobs/agent_client.h"
#include "server/jobs/content_validator.h"
#include "server/jobs/csr_signer.h"
#include "server/jobs/job_spec.h"
#include "server/store/store.h"

namespace atbridge::server::jobs {

struct EngineOptions {
  // Values for 0 fields of a spec.
  JobDefaults defaults;
  // The window of Rollout.per_minute.
  absl::Duration rate_window = absl::Minutes(1);
  // When a store commit fails, try again after this long.
  absl::Duration store_retry_delay = absl::Seconds(1);
  // A device that is offline when its execution would start (or resume) is
  // waited for this long without using an attempt; it starts as soon as
  // DevicesOnline() names it. After the wait, offline counts as a failed
  // attempt (UNAVAILABLE, retried per the policy). Zero disables waiting.
  absl::Duration offline_wait = absl::Minutes(2);
};

// Receives one record per execution outcome, for the audit log: a terminal
// state of an execution that made at least one attempt on its device.
// Called with the engine lock held, after the outcome is committed: must not
// block or call back into the engine.
class ExecutionAuditor {
 public:
  virtual ~ExecutionAuditor() = default;
  // `creator` made job `job_id`; `action` is ActionName() of its spec;
  // `execution` is the final snapshot (no history), `reason` the final
  // transition's reason. Neither carries secrets.
  virtual void ExecutionFinished(const v1::Actor& creator, const std::string& job_id,
                                 const std::string& action, const v1::Execution& execution,
                                 const std::string& reason) = 0;
};

// Receives job events (WatchJob). See the threading note above.
class JobObserver {
 public:
  virtual ~JobObserver() = default;
  // An execution transition (execution and transition set) or a job-level
  // change (neither set). A job-level event whose job_state is not
  // JOB_IN_PROGRESS and whose counts show nothing queued or in progress is
  // the last event: the observer is dropped after it.
  virtual void OnJobEvent(const v1::JobEvent& event) = 0;
};

class JobEngine {
 public:
  // Dependencies are not owned and must outlive the engine; `signer` may be
  // null (keygen-and-sign jobs are then refused), as may `auditor`.
  JobEngine(EngineOptions options, store::JobStore* store, AgentClient* agents, const Clock* clock,
            Random* random, const ContentValidator* validator, CsrSigner* signer,
            ExecutionAuditor* auditor = nullptr);
  ~JobEngine();
  JobEngine(const JobEngine&) = delete;
  JobEngine& operator=(const JobEngine&) = delete;

  // Loads unfinished jobs from the store and resumes them. Call once, before
  // anything can call CreateJob/CancelJob/Watch (those return UNAVAILABLE
  // until then): the server starts the engine before it serves.
  // FAILED_PRECONDITION when called again.
  absl::Status Start();
  // Stops starting attempts and ignores responses from now on; what is
  // IN_PROGRESS stays so in the store and resumes at the next Start().
  // Observers are dropped. Idempotent.
  void Stop();

  struct CreateResult {
    v1::Job job;
    bool existing = false;  // True when the idempotency key matched a job.
  };
  // Validates `spec`, applies defaults and creates the job for `imeis`
  // (deduplicated; must not be empty: FAILED_PRECONDITION). With an
  // idempotency key already used, returns that job. Dry runs complete at
  // once: every execution SKIPPED with "dry run: would ...".
  absl::StatusOr<CreateResult> CreateJob(const v1::JobSpec& spec,
                                         const std::vector<std::string>& imeis,
                                         const v1::Actor& creator);

  // Cancels a running job: QUEUED executions become CANCELED, IN_PROGRESS
  // ones finish their attempt (and are not retried). A finished job is
  // returned unchanged. NOT_FOUND for an unknown id.
  absl::StatusOr<v1::Job> CancelJob(const std::string& job_id, const std::string& reason);

  // A job from the store (redacted spec, counts, executions with history
  // when asked). NOT_FOUND for an unknown id.
  absl::StatusOr<v1::Job> GetJob(const std::string& job_id, bool include_executions);
  // Jobs newest first (limit 0 = 50).
  absl::StatusOr<std::vector<v1::Job>> ListJobs(v1::JobState state, uint32_t limit);

  // Returns the job's current view (with executions) and, when the job is
  // still running (`*running` true), registers `observer` for its events
  // until the last one. NOT_FOUND for an unknown id.
  absl::StatusOr<v1::Job> Watch(const std::string& job_id, JobObserver* observer, bool* running);
  // Unregisters an observer (no-op if it is not registered).
  void Unwatch(const std::string& job_id, JobObserver* observer);

  // Handles what is due now (attempt deadlines, backoff expiries, rate
  // slots). Called by the owner's timer at the wake time, harmless anytime.
  void Tick();
  // The next time Tick() has work (InfiniteFuture when none).
  absl::Time NextWakeTime() const;
  // Called (under the engine lock) whenever NextWakeTime() changes.
  void SetWakeListener(std::function<void(absl::Time)> listener);

  // Devices that came online (agent hello, port ready): executions waiting
  // for them start now.
  void DevicesOnline(const std::vector<std::string>& imeis);

  // Number of jobs being run (for metrics and tests).
  size_t ActiveJobCount() const;
  // Executions of the jobs being run, by state (for metrics).
  v1::JobCounts ActiveExecutionCounts() const;

 private:
  struct Exec;
  struct Job;
  using Effects = std::vector<std::function<void()>>;

  // An outcome that could not be committed, retried by Tick().
  struct Deferred;

  void OnResponse(const std::string& job_id, const std::string& imei, uint64_t gen,
                  uint32_t attempt, absl::StatusOr<v1::AgentResponse> result);

  // All *Locked methods need mu_ held.
  bool WaitForDeviceLocked(Job& job, Exec& e, const absl::Status& why, bool resumed)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool StartAttemptLocked(Job& job, Exec& e, bool resumed, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void BeginActionLocked(Job& job, Exec& e, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AdvanceLocked(Job& job, Exec& e, absl::StatusOr<v1::AgentResponse> result, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FailAttemptLocked(Job& job, Exec& e, const absl::Status& status, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartRollbackLocked(Job& job, Exec& e, const absl::Status& cause, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SendRollbackLocked(Job& job, Exec& e, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SendCertificateLocked(Job& job, Exec& e, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RequeueLocked(Job& job, Exec& e, const absl::Status& status, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CompleteLocked(Job& job, Exec& e, v1::ExecutionState state, const absl::Status& status,
                      const std::string& reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Keeps an outcome whose commit failed for Tick() to retry; the attempt
  // gets no more replies meanwhile.
  void DeferLocked(Exec& e, Deferred d) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RetryDeferredLocked(Job& job, Exec& e, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NoteStoreFailureLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t NewGenLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return ++next_gen_; }
  void SendLocked(Job& job, Exec& e, v1::AgentRequest request, Effects& fx)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool CommitExecLocked(Job& job, Exec& e, store::ExecutionRecord next, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status PersistExecLocked(Job& job, const store::ExecutionRecord& next)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AuditLocked(const Job& job, const Exec& e, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CheckAbortLocked(Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool StopJobLocked(Job& job, v1::JobState state, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PumpLocked(Job& job, Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool MaybeFinishLocked(Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void AfterChangeLocked(Effects& fx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Time ComputeWakeLocked(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EmitLocked(Job& job, const Exec* e, const v1::ExecutionTransition* t)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::JobEvent MakeEventLocked(const Job& job) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reads a job view from the store (consistent: every commit is one
  // transaction), so it needs no engine lock.
  absl::StatusOr<v1::Job> LoadJob(const std::string& job_id, bool include_executions) const;
  std::string NewJobIdLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const EngineOptions options_;
  store::JobStore* const store_;
  AgentClient* const agents_;
  const Clock* const clock_;
  Random* const random_;
  const ContentValidator* const validator_;
  CsrSigner* const signer_;
  ExecutionAuditor* const auditor_;

  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  // Attempt generations come from one counter for the engine's lifetime, so
  // a reply captured for any earlier attempt (or an earlier load of the same
  // execution) never matches a later one.
  uint64_t next_gen_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, std::unique_ptr<Job>> active_ ABSL_GUARDED_BY(mu_);
  absl::Time store_retry_at_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  absl::Time last_wake_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  std::function<void(absl::Time)> wake_listener_ ABSL_GUARDED_BY(mu_);
};

}  // namespace atbridge::server::jobs

#endif  // ATBRIDGE_SERVER_JOBS_ENGINE_H_
