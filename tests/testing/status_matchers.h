// GoogleTest matchers for absl::Status / StatusOr with upstream's names.
#ifndef ATBRIDGE_TESTS_TESTING_STATUS_MATCHERS_H_
#define ATBRIDGE_TESTS_TESTING_STATUS_MATCHERS_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <ostream>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace atbridge::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = GetStatus(arg);
  if (!s.ok()) *result_listener << "status is " << s;
  return s.ok();
}

MATCHER_P(StatusIs, code, "has status code " + ::testing::PrintToString(code)) {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher,
           "has status code " + ::testing::PrintToString(code) + " and a matching message") {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code && ::testing::Matches(message_matcher)(std::string(s.message()));
}

// A StatusOr that is OK and whose value matches `value_matcher`.
MATCHER_P(IsOkAndHolds, value_matcher, "is OK and holds a matching value") {
  if (!arg.ok()) {
    *result_listener << "status is " << arg.status();
    return false;
  }
  return ::testing::ExplainMatchResult(value_matcher, *arg, result_listener);
}

}  // namespace atbridge::testing

#define ATB_STATUS_TESTING_CONCAT_INNER_(x, y) x##y
#define ATB_STATUS_TESTING_CONCAT_(x, y) ATB_STATUS_TESTING_CONCAT_INNER_(x, y)

#define ASSERT_OK(expr) ASSERT_THAT(expr, ::atbridge::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT(expr, ::atbridge::testing::IsOk())

// ASSERT_OK_AND_ASSIGN(auto x, FunctionReturningStatusOr());
#define ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  ATB_ASSERT_OK_AND_ASSIGN_IMPL_(ATB_STATUS_TESTING_CONCAT_(atb_statusor_, __LINE__), lhs, rexpr)
// `lhs` may be a declaration and `statusor` is a name being declared: neither
// can be parenthesized.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define ATB_ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                   \
  ASSERT_TRUE(statusor.ok()) << statusor.status();           \
  lhs = std::move(statusor).value()
// NOLINTEND(bugprone-macro-parentheses)

#endif  // ATBRIDGE_TESTS_TESTING_STATUS_MATCHERS_H_
