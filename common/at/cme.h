// The modem's error codes, what they mean to a human, and the status code
// (retry contract) each becomes (design.md §4, nrf91-at-credentials.md §3).
#ifndef ATBRIDGE_COMMON_AT_CME_H_
#define ATBRIDGE_COMMON_AT_CME_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/at/response_parser.h"

namespace atbridge::at {

struct CmeInfo {
  int code;
  const char* name;         // Short, e.g. "not found".
  const char* explanation;  // One or two sentences a lab engineer can act on.
  absl::StatusCode status;  // e.g. 518 -> kFailedPrecondition.
};

// The entry for a CME code, or nullptr if unknown. Covers at least 0, 23, 50,
// 51, 60, 513..529:
//   513 NOT_FOUND, 514 PERMISSION_DENIED, 515 RESOURCE_EXHAUSTED,
//   518 FAILED_PRECONDITION ("modem active; CFUN=4 needed"),
//   519 ALREADY_EXISTS, 523 INTERNAL, 527 INVALID_ARGUMENT ("content
//   rejected; check PEM newlines/indentation"), 528 UNAVAILABLE (power-off
//   warning; retryable) ...
const CmeInfo* LookupCme(int code);

// The status for a final result: OK -> OkStatus; CME n -> the table's code
// with message "<context>: +CME ERROR: n (<name>): <explanation>"; unknown
// CME -> UNKNOWN; plain ERROR -> UNKNOWN ("modem answered ERROR; enable
// AT+CMEE=1 for a reason"); CMS -> UNKNOWN. `context` names the operation,
// e.g. "write sec_tag 20 type 0 on modem0".
absl::Status StatusFromFinal(const FinalResult& final, absl::string_view context);

}  // namespace atbridge::at

#endif  // ATBRIDGE_COMMON_AT_CME_H_
