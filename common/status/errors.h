// Conversions of OS and Asio errors into absl::Status at module edges.
#ifndef ATBRIDGE_COMMON_STATUS_ERRORS_H_
#define ATBRIDGE_COMMON_STATUS_ERRORS_H_

#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace atbridge {

// Maps an errno value to a status whose message is "<what>: <strerror>".
// ENOENT -> NOT_FOUND, EACCES/EPERM -> PERMISSION_DENIED, EIO/ENXIO/ENODEV/
// EBADF/EPIPE/ECONNRESET/EBUSY -> UNAVAILABLE, ETIMEDOUT -> DEADLINE_EXCEEDED,
// ECANCELED -> CANCELLED, EINVAL -> INVALID_ARGUMENT, others -> UNKNOWN.
absl::Status PosixError(int err, absl::string_view what);

// Same for std::error_code (and boost::system::error_code, which converts to
// it); the generic and system categories are mapped through errno, others
// become UNKNOWN.
absl::Status FromErrorCode(const std::error_code& ec, absl::string_view what);

// Returns `status` with `prefix: ` prepended to its message (code unchanged).
absl::Status Annotate(const absl::Status& status, absl::string_view prefix);

}  // namespace atbridge

#endif  // ATBRIDGE_COMMON_STATUS_ERRORS_H_
