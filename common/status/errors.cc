#include "common/status/errors.h"

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace atbridge {

namespace {

absl::StatusCode CodeForErrno(int err) {
  switch (err) {
    case 0:
      return absl::StatusCode::kOk;
    case ENOENT:
      return absl::StatusCode::kNotFound;
    case EACCES:
    case EPERM:
      return absl::StatusCode::kPermissionDenied;
    case EIO:
    case ENXIO:
    case ENODEV:
    case EBADF:
    case EPIPE:
    case ECONNRESET:
    case ECONNREFUSED:
    case EBUSY:
    case EAGAIN:
      return absl::StatusCode::kUnavailable;
    case ETIMEDOUT:
      return absl::StatusCode::kDeadlineExceeded;
    case ECANCELED:
      return absl::StatusCode::kCancelled;
    case EINVAL:
    case ENOTTY:
      return absl::StatusCode::kInvalidArgument;
    case EEXIST:
      return absl::StatusCode::kAlreadyExists;
    case ENOSPC:
    case ENOMEM:
    case EMFILE:
    case ENFILE:
      return absl::StatusCode::kResourceExhausted;
    default:
      return absl::StatusCode::kUnknown;
  }
}

}  // namespace

absl::Status PosixError(int err, absl::string_view what) {
  absl::StatusCode code = CodeForErrno(err);
  if (code == absl::StatusCode::kOk) return absl::OkStatus();
  return absl::Status(code, absl::StrCat(what, ": ", std::strerror(err)));
}

absl::Status FromErrorCode(const std::error_code& ec, absl::string_view what) {
  if (!ec) return absl::OkStatus();
  if (ec.category() == std::generic_category() || ec.category() == std::system_category()) {
    return PosixError(ec.value(), what);
  }
  return absl::UnknownError(absl::StrCat(what, ": ", ec.message()));
}

absl::Status Annotate(const absl::Status& status, absl::string_view prefix) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat(prefix, ": ", status.message()));
}

}  // namespace atbridge
