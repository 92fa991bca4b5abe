// The status code is the retry contract (design.md §4).
#ifndef ATBRIDGE_COMMON_STATUS_RETRY_H_
#define ATBRIDGE_COMMON_STATUS_RETRY_H_

#include "absl/status/status.h"

namespace atbridge {

// True for codes a caller should retry with jittered exponential backoff:
// UNAVAILABLE (port or agent gone), DEADLINE_EXCEEDED (no answer in time),
// DATA_LOSS (hash mismatch after a write, e.g. bytes dropped on a UART without
// flow control), ABORTED (restart the whole transaction). Everything else —
// INVALID_ARGUMENT, FAILED_PRECONDITION, PERMISSION_DENIED, NOT_FOUND,
// RESOURCE_EXHAUSTED ... — is reported, not retried.
constexpr bool IsRetryable(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded ||
         code == absl::StatusCode::kDataLoss || code == absl::StatusCode::kAborted;
}

}  // namespace atbridge

#endif  // ATBRIDGE_COMMON_STATUS_RETRY_H_
