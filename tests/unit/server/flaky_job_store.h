// A store::JobStore over a real store whose commits can be made to fail: the
// next N Commit() calls return UNAVAILABLE without touching the database, as
// a busy or failing disk would. For engine tests of store trouble.
#ifndef ATBRIDGE_TESTS_UNIT_SERVER_FLAKY_JOB_STORE_H_
#define ATBRIDGE_TESTS_UNIT_SERVER_FLAKY_JOB_STORE_H_

#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "server/store/store.h"

namespace atbridge::server::testing {

class FlakyJobStore final : public store::JobStore {
 public:
  explicit FlakyJobStore(store::JobStore* real) : real_(real) {}

  // The next `n` Commit() calls fail.
  void FailNextCommits(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_commits_ = n;
  }
  int failed_commits() {
    std::lock_guard<std::mutex> lock(mu_);
    return failed_;
  }

  absl::Status CreateJob(const store::JobRecord& job, const store::JobUpdate& initial) override {
    return real_->CreateJob(job, initial);
  }
  absl::Status Commit(const std::string& job_id, const store::JobUpdate& update) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (fail_commits_ > 0) {
        --fail_commits_;
        ++failed_;
        return absl::UnavailableError("commit job " + job_id + ": database is locked (injected)");
      }
    }
    return real_->Commit(job_id, update);
  }
  absl::StatusOr<store::JobRecord> GetJob(const std::string& job_id) override {
    return real_->GetJob(job_id);
  }
  absl::StatusOr<std::optional<store::JobRecord>> FindJobByIdempotencyKey(
      const std::string& key) override {
    return real_->FindJobByIdempotencyKey(key);
  }
  absl::StatusOr<std::vector<store::JobRecord>> ListJobs(v1::JobState state, int limit) override {
    return real_->ListJobs(state, limit);
  }
  absl::StatusOr<std::vector<store::JobRecord>> ListUnfinishedJobs() override {
    return real_->ListUnfinishedJobs();
  }
  absl::StatusOr<std::vector<store::ExecutionRecord>> ListExecutions(const std::string& job_id,
                                                                     bool with_history) override {
    return real_->ListExecutions(job_id, with_history);
  }

 private:
  store::JobStore* const real_;
  std::mutex mu_;
  int fail_commits_ = 0;
  int failed_ = 0;
};

}  // namespace atbridge::server::testing

#endif  // ATBRIDGE_TESTS_UNIT_SERVER_FLAKY_JOB_STORE_H_
