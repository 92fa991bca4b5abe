#include "client/core/errors.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace atbridge::client {

namespace {

constexpr char kWhatUrl[] = "atbridge.client/what";
constexpr char kLabelUrl[] = "atbridge.client/label";
constexpr char kHintUrl[] = "atbridge.client/hint";
constexpr char kExitUrl[] = "atbridge.client/exit";

std::string Payload(const absl::Status& s, const char* url) {
  auto p = s.GetPayload(url);
  return p.has_value() ? std::string(*p) : std::string();
}

bool ContainsAny(absl::string_view text, std::initializer_list<absl::string_view> needles) {
  const std::string lower = absl::AsciiStrToLower(text);
  for (absl::string_view n : needles) {
    if (absl::StrContains(lower, absl::AsciiStrToLower(n))) return true;
  }
  return false;
}

}  // namespace

const char kExitCodesHelp[] =
    "Exit codes:\n"
    "  0    ok\n"
    "  1    the operation ran and failed (AT error, job with failed executions)\n"
    "  2    usage: bad command line, config file or input file\n"
    "  3    unavailable: server, agent or device unreachable, no answer in time, or the peer\n"
    "       cancelled the call\n"
    "  4    permission denied: your certificate's role may not do this\n"
    "  5    not found: no such device, port, credential or job\n"
    "  6    invalid argument: refused by validation (e.g. a PEM the modem would reject)\n"
    "  7    failed precondition: port leased by someone else, modem state, already exists\n"
    "  130  interrupted by a signal (push --wait, jobs watch, console)\n";

absl::Status UsageError(absl::string_view explanation) {
  absl::Status s = absl::InvalidArgumentError(explanation);
  s.SetPayload(kLabelUrl, absl::Cord("usage"));
  s.SetPayload(kExitUrl, absl::Cord(absl::StrCat(kExitUsage)));
  return s;
}

absl::Status OperationFailed(absl::string_view what, absl::string_view label,
                             absl::string_view explanation) {
  absl::Status s = absl::AbortedError(explanation);
  s.SetPayload(kWhatUrl, absl::Cord(what));
  s.SetPayload(kLabelUrl, absl::Cord(label));
  s.SetPayload(kExitUrl, absl::Cord(absl::StrCat(kExitFailed)));
  return s;
}

absl::Status WithWhat(absl::Status status, absl::string_view what) {
  if (status.ok() || status.GetPayload(kWhatUrl).has_value()) return status;
  status.SetPayload(kWhatUrl, absl::Cord(what));
  return status;
}

absl::Status WithHint(absl::Status status, absl::string_view hint) {
  if (status.ok()) return status;
  status.SetPayload(kHintUrl, absl::Cord(hint));
  return status;
}

absl::Status WithExitCode(absl::Status status, int exit_code) {
  if (status.ok()) return status;
  status.SetPayload(kExitUrl, absl::Cord(absl::StrCat(exit_code)));
  return status;
}

int ExitCodeFor(const absl::Status& status) {
  if (status.ok()) return kExitOk;
  int explicit_code = 0;
  if (absl::SimpleAtoi(Payload(status, kExitUrl), &explicit_code)) return explicit_code;
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return kExitOk;
    // CANCELLED from the peer (a server or agent shutting down) is not an
    // interruption: only a local signal exits 130, with an explicit code.
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kUnavailable:
      return kExitUnavailable;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return kExitInvalidArgument;
    case absl::StatusCode::kNotFound:
      return kExitNotFound;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
      return kExitFailedPrecondition;
    case absl::StatusCode::kPermissionDenied:
    case absl::StatusCode::kUnauthenticated:
      return kExitPermissionDenied;
    default:
      return kExitFailed;
  }
}

std::string CodeLabel(const absl::Status& status) {
  std::string label = Payload(status, kLabelUrl);
  if (!label.empty()) return label;
  return absl::StatusCodeToString(status.code());
}

std::string WhatOf(const absl::Status& status) { return Payload(status, kWhatUrl); }

std::string HintFor(const absl::Status& status, const ErrorContext& context) {
  if (status.ok()) return "";
  std::string hint = Payload(status, kHintUrl);
  if (!hint.empty()) return hint;
  const absl::string_view msg = status.message();
  const bool server = context.mode == "server";
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
      if (ContainsAny(msg, {"handshake", "ssl", "tls", "certificate", "x509"})) {
        return "the TLS handshake failed: check --ca, --cert and --key, and that the peer's "
               "certificate names the host you dial (or pass --server-name)";
      }
      if (ContainsAny(msg, {"is offline", "not connected", "disconnected"})) {
        return "the device's agent is not connected to the server; see 'atbridgectl devices list'";
      }
      if (context.mode.empty()) return "";
      return absl::StrCat(
          "is the ", server ? "server" : "agent", " running? check --", server ? "server" : "agent",
          context.address.empty() ? "" : absl::StrCat(" (now ", context.address, ")"));
    case absl::StatusCode::kDeadlineExceeded:
      return absl::StrCat(
          "no answer in time",
          context.timeout.empty() ? "" : absl::StrCat(" (--timeout ", context.timeout, ")"),
          "; raise --timeout, or check that the ",
          server ? "server" : (context.mode.empty() ? "peer" : "agent"),
          " and the device are reachable");
    case absl::StatusCode::kCancelled:
      // A local signal (exit 130) needs no advice about the peer.
      if (ExitCodeFor(status) == kExitInterrupted) return "";
      return "the peer cancelled the call (is the server or agent shutting down?); try again";
    case absl::StatusCode::kPermissionDenied: {
      if (context.required_role.empty()) {
        return "your certificate's role may not do this; see 'atbridgectl config show'";
      }
      std::string who =
          context.identity.empty() ? "" : absl::StrCat(" (you are ", context.identity, ")");
      // "automation or operator": the command takes the first as the example.
      std::vector<std::string> roles = absl::StrSplit(context.required_role, " or ");
      std::string out = absl::StrCat("this needs the ", context.required_role, " role", who,
                                     "; an admin can issue one with 'atbridgectl pki issue --role ",
                                     roles[0], " --name <you>'");
      for (size_t i = 1; i < roles.size(); ++i)
        absl::StrAppend(&out, " (or --role ", roles[i], ")");
      return out;
    }
    case absl::StatusCode::kUnauthenticated:
      return "your certificate was not accepted: check --cert and --key (and that it is signed by "
             "the CA the peer trusts)";
    case absl::StatusCode::kFailedPrecondition:
      if (ContainsAny(msg, {"leased by", "lease"})) {
        return "see who holds which port with 'atbridgectl lease list'; the holder frees it with "
               "'atbridgectl lease release DEVICE' (an admin may add --force)";
      }
      return "";
    case absl::StatusCode::kNotFound:
      if (ContainsAny(msg, {"job"})) return "list jobs with 'atbridgectl jobs list'";
      if (ContainsAny(msg, {"device", "port", "imei", "alias", "agent"})) {
        return "list devices with 'atbridgectl devices list'";
      }
      return "";
    default:
      return "";
  }
}

std::string FormatError(const absl::Status& status, const ErrorContext& context) {
  if (status.ok()) return "";
  std::string what = WhatOf(status);
  if (what.empty()) what = "atbridgectl";
  std::string explanation(status.message());
  // One line: newlines inside an explanation become "; ".
  for (size_t pos; (pos = explanation.find('\n')) != std::string::npos;) {
    explanation.replace(pos, 1, "; ");
  }
  std::string out = absl::StrCat("error: ", what, " (", CodeLabel(status), ")");
  if (!explanation.empty()) absl::StrAppend(&out, ": ", explanation);
  out.push_back('\n');
  std::string hint = HintFor(status, context);
  if (!hint.empty()) absl::StrAppend(&out, "hint: ", hint, "\n");
  return out;
}

}  // namespace atbridge::client
