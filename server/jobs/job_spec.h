// Job specs: defaults, validation, redaction of secrets, human descriptions,
// and assembling the API's Job message from stored records. Pure functions.
#ifndef ATBRIDGE_SERVER_JOBS_JOB_SPEC_H_
#define ATBRIDGE_SERVER_JOBS_JOB_SPEC_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "atbridge/v1/provisioning.pb.h"
#include "server/jobs/content_validator.h"
#include "server/store/store.h"

namespace atbridge::server::jobs {

// Values used where a spec leaves a field 0 (documented in provisioning.proto).
struct JobDefaults {
  uint32_t max_concurrency = 10;
  uint32_t max_attempts = 3;
  absl::Duration initial_backoff = absl::Seconds(1);
  absl::Duration max_backoff = absl::Seconds(60);
  double multiplier = 2.0;
  absl::Duration execution_timeout = absl::Seconds(120);
};

// Limits on what a spec may ask for.
inline constexpr uint32_t kMaxAttemptsLimit = 20;
inline constexpr uint32_t kMaxConcurrencyLimit = 1000;
inline constexpr size_t kMaxScriptCommands = 100;
inline constexpr size_t kMaxCommandBytes = 4096;
inline constexpr uint32_t kMaxSecTag = 2147483647;

// Checks everything that can be checked without a device: an action is set,
// tags and types are in range, content is valid for its type (via
// `validator`), AT commands are printable single-line AT commands, policy
// values are in range. `have_signer`: whether keygen-and-sign is possible.
// INVALID_ARGUMENT (FAILED_PRECONDITION for keygen without a CA) naming the
// field; never quotes secret content.
absl::Status ValidateJobSpec(const v1::JobSpec& spec, const ContentValidator& validator,
                             bool have_signer);

// A copy with every 0/unset policy field replaced by `defaults`.
v1::JobSpec WithDefaults(const v1::JobSpec& spec, const JobDefaults& defaults);

// Whether the spec carries secret content (write/rotate of type 2 or 3).
bool SpecHasSecret(const v1::JobSpec& spec);

// A copy safe to return or log: secret content replaced by
// "<redacted N bytes>".
v1::JobSpec RedactSpec(const v1::JobSpec& spec);

// "write", "delete", "rotate", "keygen-and-sign", "at-script" ("none").
std::string ActionName(const v1::JobSpec& spec);

// What the action would do to a device, for dry runs and logs, e.g.
// "write client certificate at sec_tag 42 (1203 bytes, sha256 3F2A...)".
// Never includes secret content or its hash.
std::string DescribeAction(const v1::JobSpec& spec, const ContentValidator& validator);

// Adds `delta` to the counter of `state` (and to total).
void AddToCounts(v1::JobCounts* counts, v1::ExecutionState state, int delta);

// The API view of a job: redacted spec, counts, and the executions when
// `include_executions`.
v1::Job BuildJob(const store::JobRecord& record,
                 const std::vector<store::ExecutionRecord>& executions, bool include_executions);

// "SUCCEEDED", "QUEUED", ... / "JOB_COMPLETED" ...
std::string ExecutionStateName(v1::ExecutionState state);
std::string JobStateName(v1::JobState state);
// "OK", "UNAVAILABLE", ... for a grpc/absl status code number.
std::string StatusCodeName(int code);

}  // namespace atbridge::server::jobs

#endif  // ATBRIDGE_SERVER_JOBS_JOB_SPEC_H_
