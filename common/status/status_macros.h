// RETURN_IF_ERROR and ASSIGN_OR_RETURN with upstream Abseil's names (Abseil
// 20220623 ships neither), so a later upgrade is a rename.
#ifndef ATBRIDGE_COMMON_STATUS_STATUS_MACROS_H_
#define ATBRIDGE_COMMON_STATUS_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Evaluates `expr` (an absl::Status); returns it from the enclosing function
// if it is not OK.
#define RETURN_IF_ERROR(expr)                                            \
  do {                                                                   \
    ::absl::Status atb_status_macro_status_ = (expr);                    \
    if (!atb_status_macro_status_.ok()) return atb_status_macro_status_; \
  } while (false)

#define ATB_STATUS_MACROS_CONCAT_INNER_(x, y) x##y
#define ATB_STATUS_MACROS_CONCAT_(x, y) ATB_STATUS_MACROS_CONCAT_INNER_(x, y)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status from
// the enclosing function, else assigns the value to `lhs`, which may be a
// declaration: ASSIGN_OR_RETURN(auto port, OpenPort(path));
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  ATB_ASSIGN_OR_RETURN_IMPL_(ATB_STATUS_MACROS_CONCAT_(atb_statusor_, __LINE__), lhs, rexpr)

// `lhs` may be a declaration and `statusor` is a name being declared: neither
// can be parenthesized.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define ATB_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr)   \
  auto statusor = (rexpr);                                 \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()
// NOLINTEND(bugprone-macro-parentheses)

#endif  // ATBRIDGE_COMMON_STATUS_STATUS_MACROS_H_
