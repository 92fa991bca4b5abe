// How atbridgectl reports failures: one line
//   error: <what> (<code>): <explanation>
// plus, where one helps, a line
//   hint: <what to try>
// and a documented exit code (docs/cli.md, `atbridgectl --help`).
//
// Errors travel as absl::Status. The status message is the explanation;
// payloads carry what failed, a code label that replaces the status code name
// (e.g. "+CME ERROR: 527", "usage"), an explicit hint and an explicit exit
// code. Pure functions, thread-compatible.
#ifndef ATBRIDGE_CLIENT_CORE_ERRORS_H_
#define ATBRIDGE_CLIENT_CORE_ERRORS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace atbridge::client {

// Exit codes. Keep in sync with docs/cli.md and kExitCodesHelp.
enum ExitCode : int {
  kExitOk = 0,
  // The operation ran and failed: an AT command ended in ERROR/+CME ERROR, a
  // job had failed executions, an internal or data error.
  kExitFailed = 1,
  // Bad command line, config file or input file.
  kExitUsage = 2,
  // Server, agent or device unreachable, no answer in time, or the peer
  // cancelled the call.
  kExitUnavailable = 3,
  // The certificate's role may not do this, or the certificate was refused.
  kExitPermissionDenied = 4,
  // No such device, port, credential or job.
  kExitNotFound = 5,
  // Refused by validation (e.g. a PEM the modem would reject).
  kExitInvalidArgument = 6,
  // Not possible in the current state: the port is leased by someone else,
  // the modem state forbids it, it already exists.
  kExitFailedPrecondition = 7,
  // Interrupted by a local signal (SIGINT/SIGTERM) while waiting; never
  // inferred from a status code (a peer's CANCELLED is unavailable, 3).
  kExitInterrupted = 130,
};

// The exit code table as printed at the end of `atbridgectl --help`.
extern const char kExitCodesHelp[];

// A usage error (exit 2, code label "usage").
absl::Status UsageError(absl::string_view explanation);

// An operation that ran and failed (exit 1) with a custom code label, e.g.
// OperationFailed("AT+CGSN=9 on modem0", "+CME ERROR: 50", "incorrect parameters").
absl::Status OperationFailed(absl::string_view what, absl::string_view label,
                             absl::string_view explanation);

// Sets what failed ("list devices on server 127.0.0.1:7443"), unless the
// status already says. OK passes through unchanged.
absl::Status WithWhat(absl::Status status, absl::string_view what);
// Sets an explicit hint (replaces the generic one).
absl::Status WithHint(absl::Status status, absl::string_view hint);
// Sets an explicit exit code.
absl::Status WithExitCode(absl::Status status, int exit_code);

// What the hints may mention.
struct ErrorContext {
  // "server" or "agent" once the connection is known; empty otherwise.
  std::string mode;
  // The address dialled.
  std::string address;
  // The role the command needs ("viewer", "operator", "admin", ...).
  std::string required_role;
  // Who we are, e.g. "alice (viewer)", when our certificate could be read.
  std::string identity;
  // The --timeout in effect, e.g. "30s".
  std::string timeout;
};

// The exit code for a status (OK -> 0).
int ExitCodeFor(const absl::Status& status);
// "UNAVAILABLE", "usage", "+CME ERROR: 527", ...
std::string CodeLabel(const absl::Status& status);
// What failed, or "" when unknown.
std::string WhatOf(const absl::Status& status);
// The hint to print, or "" when none helps.
std::string HintFor(const absl::Status& status, const ErrorContext& context);
// "error: <what> (<code>): <explanation>\n" and maybe "hint: ...\n".
std::string FormatError(const absl::Status& status, const ErrorContext& context);

}  // namespace atbridge::client

#endif  // ATBRIDGE_CLIENT_CORE_ERRORS_H_
