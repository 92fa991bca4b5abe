#include "client/core/errors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace atbridge::client {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(CtlExitCodeTest, EveryStatusCodeMapsToADocumentedExitCode) {
  struct Case {
    absl::StatusCode code;
    int exit;
  };
  const Case cases[] = {
      {absl::StatusCode::kOk, 0},
      // A peer's CANCELLED is not a local interruption (130 is only ever
      // set explicitly, on a signal).
      {absl::StatusCode::kCancelled, 3},
      {absl::StatusCode::kUnknown, 1},
      {absl::StatusCode::kInvalidArgument, 6},
      {absl::StatusCode::kDeadlineExceeded, 3},
      {absl::StatusCode::kNotFound, 5},
      {absl::StatusCode::kAlreadyExists, 7},
      {absl::StatusCode::kPermissionDenied, 4},
      {absl::StatusCode::kResourceExhausted, 1},
      {absl::StatusCode::kFailedPrecondition, 7},
      {absl::StatusCode::kAborted, 1},
      {absl::StatusCode::kOutOfRange, 6},
      {absl::StatusCode::kUnimplemented, 1},
      {absl::StatusCode::kInternal, 1},
      {absl::StatusCode::kUnavailable, 3},
      {absl::StatusCode::kDataLoss, 1},
      {absl::StatusCode::kUnauthenticated, 4},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(ExitCodeFor(absl::Status(c.code, "x")), c.exit) << absl::StatusCodeToString(c.code);
  }
  // Every exit code used is in the help text.
  for (const char* code : {"0 ", "1 ", "2 ", "3 ", "4 ", "5 ", "6 ", "7 ", "130 "}) {
    EXPECT_THAT(kExitCodesHelp, HasSubstr(std::string("  ") + code)) << code;
  }
}

TEST(CtlExitCodeTest, UsageAndOperationFailuresOverrideTheCode) {
  EXPECT_EQ(ExitCodeFor(UsageError("bad flag")), kExitUsage);
  EXPECT_EQ(CodeLabel(UsageError("bad flag")), "usage");
  absl::Status f = OperationFailed("AT+X on modem0", "+CME ERROR: 50", "incorrect parameters");
  EXPECT_EQ(ExitCodeFor(f), kExitFailed);
  EXPECT_EQ(CodeLabel(f), "+CME ERROR: 50");
  EXPECT_EQ(ExitCodeFor(WithExitCode(absl::InternalError("x"), 9)), 9);
}

TEST(CtlFormatErrorTest, OneLineWithWhatCodeAndExplanation) {
  absl::Status s = WithWhat(absl::NotFoundError("no port modem9 on agent bench1"), "at modem9");
  EXPECT_EQ(FormatError(s, {}),
            "error: at modem9 (NOT_FOUND): no port modem9 on agent bench1\n"
            "hint: list devices with 'atbridgectl devices list'\n");
  // Newlines in an explanation do not break the one-line format.
  std::string multi = FormatError(absl::InternalError("a\nb"), {});
  EXPECT_EQ(multi, "error: atbridgectl (INTERNAL): a; b\n");
  // The first "what" wins.
  EXPECT_EQ(WhatOf(WithWhat(WithWhat(absl::InternalError("x"), "inner"), "outer")), "inner");
  EXPECT_EQ(FormatError(absl::OkStatus(), {}), "");
}

TEST(CtlFormatErrorTest, OperationFailedShowsTheModemsCode) {
  EXPECT_EQ(
      FormatError(OperationFailed("AT%CMNG=2,1,2 on modem0", "+CME ERROR: 514", "no access"), {}),
      "error: AT%CMNG=2,1,2 on modem0 (+CME ERROR: 514): no access\n");
}

TEST(CtlHintTest, PermissionHintForEitherOfTwoRolesIsARunnableCommand) {
  ErrorContext c{.required_role = "automation or operator", .identity = "vera (viewer)"};
  EXPECT_EQ(HintFor(absl::PermissionDeniedError("vera may not call CreateJob"), c),
            "this needs the automation or operator role (you are vera (viewer)); an admin can "
            "issue one with 'atbridgectl pki issue --role automation --name <you>' (or --role "
            "operator)");
  ErrorContext one{.required_role = "viewer"};
  EXPECT_EQ(HintFor(absl::PermissionDeniedError("x"), one),
            "this needs the viewer role; an admin can issue one with 'atbridgectl pki issue "
            "--role viewer --name <you>'");
}

TEST(CtlHintTest, APeerCancelIsNotAnInterruption) {
  absl::Status s = absl::CancelledError("Cancelled");
  EXPECT_EQ(ExitCodeFor(s), kExitUnavailable);
  EXPECT_THAT(HintFor(s, {}), HasSubstr("peer cancelled"));
  EXPECT_EQ(ExitCodeFor(WithExitCode(s, kExitInterrupted)), 130);
}

TEST(CtlHintTest, UnavailableNamesTheEndpoint) {
  ErrorContext server{.mode = "server", .address = "lab:7443"};
  EXPECT_EQ(HintFor(absl::UnavailableError("failed to connect to all addresses"), server),
            "is the server running? check --server (now lab:7443)");
  ErrorContext agent{.mode = "agent", .address = "127.0.0.1:7444"};
  EXPECT_EQ(HintFor(absl::UnavailableError("Connection refused"), agent),
            "is the agent running? check --agent (now 127.0.0.1:7444)");
  EXPECT_THAT(HintFor(absl::UnavailableError("Ssl handshake failed"), server),
              HasSubstr("--ca, --cert and --key"));
  EXPECT_THAT(HintFor(absl::UnavailableError("device 35 is offline"), server),
              HasSubstr("not connected to the server"));
}

TEST(CtlHintTest, PermissionDeniedNamesTheRoleNeeded) {
  ErrorContext ctx{.required_role = "operator", .identity = "vera (viewer)"};
  EXPECT_EQ(HintFor(absl::PermissionDeniedError("vera may not call Execute"), ctx),
            "this needs the operator role (you are vera (viewer)); an admin can issue one with "
            "'atbridgectl pki issue --role operator --name <you>'");
  EXPECT_THAT(HintFor(absl::UnauthenticatedError("x"), {}), HasSubstr("--cert and --key"));
}

TEST(CtlHintTest, LeaseConflictsPointAtLeaseList) {
  EXPECT_THAT(HintFor(absl::FailedPreconditionError(
                          "port modem0 is leased by alice until 2026-11-26T13:00:00Z (flashing)"),
                      {}),
              HasSubstr("atbridgectl lease list"));
  EXPECT_EQ(HintFor(absl::FailedPreconditionError("modem is in CFUN=1"), {}), "");
}

TEST(CtlHintTest, DeadlineMentionsTheTimeout) {
  ErrorContext ctx{.mode = "server", .timeout = "30s"};
  EXPECT_THAT(HintFor(absl::DeadlineExceededError("Deadline Exceeded"), ctx),
              StartsWith("no answer in time (--timeout 30s); raise --timeout"));
}

TEST(CtlHintTest, AnExplicitHintWins) {
  absl::Status s = WithHint(absl::UnavailableError("x"), "do this");
  EXPECT_EQ(HintFor(s, {.mode = "server"}), "do this");
  EXPECT_EQ(FormatError(WithWhat(s, "push"), {}), "error: push (UNAVAILABLE): x\nhint: do this\n");
}

}  // namespace
}  // namespace atbridge::client
