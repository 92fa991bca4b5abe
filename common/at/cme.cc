#include "common/at/cme.h"

#include <iterator>

#include "absl/strings/str_cat.h"
#include "common/at/byte_text.h"

namespace atbridge::at {

namespace {

using Code = absl::StatusCode;

// Names follow Nordic's AT reference; explanations say what to do about it.
constexpr CmeInfo kCmeTable[] = {
    {0, "phone failure",
     "The modem reported a generic failure. Retry the command once; if it persists, "
     "power-cycle the board and check the modem firmware.",
     Code::kInternal},
    {23, "memory failure",
     "The modem could not handle the data in memory; the content is probably too large. Keep "
     "each %CMNG write under 4 KB (split a CA chain across sec_tags) and try again.",
     Code::kInternal},
    {50, "incorrect parameters",
     "The modem rejected the command's parameters (sec_tag, type, or format). Check them "
     "against the AT reference for this firmware.",
     Code::kInvalidArgument},
    {51, "command disabled",
     "The command is disabled on this modem (firmware or configuration). It cannot be used "
     "here; check the firmware version and its feature set.",
     Code::kFailedPrecondition},
    {60, "system failure",
     "The modem reported an internal system failure. Power-cycle the board; if it happens "
     "again, update or reflash the modem firmware.",
     Code::kInternal},
    {513, "not found",
     "No credential (or key) exists at this sec_tag and type. List the credentials "
     "(AT%CMNG=1) to see what the modem holds.",
     Code::kNotFound},
    {514, "no access",
     "The modem does not allow this access: private keys and PSKs cannot be read back, and "
     "the modem's own tags are protected. Use the SHA-256 from a list instead.",
     Code::kPermissionDenied},
    {515, "memory full",
     "The modem's credential storage is full. Delete credentials that are no longer used "
     "(AT%CMNG=3) and try again.",
     Code::kResourceExhausted},
    {516, "radio connection active",
     "A radio connection is active. Put the modem offline with AT+CFUN=4 and try again.",
     Code::kFailedPrecondition},
    {517, "modem not activated",
     "The modem is not activated for this operation. Check the functional mode (AT+CFUN?) "
     "and the modem firmware's requirements.",
     Code::kFailedPrecondition},
    {518, "not allowed in active state",
     "The modem is active; credentials can only be written or deleted in CFUN=4 or 0. Send "
     "AT+CFUN=4 first and restore the mode afterwards.",
     Code::kFailedPrecondition},
    {519, "already exists",
     "An entry that cannot be overwritten already exists at this sec_tag and type. Delete it "
     "first (AT%CMNG=3) or use another sec_tag.",
     Code::kAlreadyExists},
    {520, "authentication failed",
     "Authentication failed (%XSUDO), or the %XPMNG entry already exists. Check the "
     "signature or key used, or delete the entry first.",
     Code::kPermissionDenied},
    {521, "PLMN search interrupted",
     "The network search was interrupted and only partial results are available. Retry "
     "later.",
     Code::kUnavailable},
    {522, "band configuration invalid",
     "The band configuration is not valid for the selected system mode. Fix the band lock "
     "or system mode settings.",
     Code::kInvalidArgument},
    {523, "key generation failed",
     "The modem could not generate the key (%KEYGEN). Make sure the modem is offline "
     "(AT+CFUN=4) and the sec_tag is free, then retry; power-cycle if it persists.",
     Code::kInternal},
    {524, "no source found",
     "The modem found no source for the requested data. Check that the prerequisite "
     "credential or key exists.",
     Code::kNotFound},
    {525, "JWT creation failed",
     "The modem could not create the JWT. Check that the sec_tag holds a usable key.",
     Code::kInternal},
    {526, "unspecified modem error",
     "The modem returned a code that Nordic does not document. Check the modem firmware's "
     "release notes.",
     Code::kUnknown},
    {527, "invalid content",
     "The modem rejected the content; check PEM newlines and indentation: every line must "
     "end with a newline, with no leading spaces, no literal \\n, and base64 wrapped at 64 "
     "columns. Let atbridge normalize the PEM.",
     Code::kInvalidArgument},
    {528, "power-off warning active",
     "The modem refuses writes while a power-off warning (%XPOFWARN) is active. Restore the "
     "supply voltage and retry.",
     Code::kUnavailable},
    {529, "claim token failed",
     "The modem could not create a response for %CLAIMTOKEN. Retry; check the modem "
     "firmware if it persists.",
     Code::kInternal},
};

}  // namespace

const CmeInfo* LookupCme(int code) {
  for (const CmeInfo& info : kCmeTable) {
    if (info.code == code) return &info;
  }
  return nullptr;
}

absl::Status StatusFromFinal(const FinalResult& final, absl::string_view context) {
  const std::string prefix = context.empty() ? std::string() : absl::StrCat(context, ": ");
  switch (final.kind) {
    case FinalKind::kOk:
      return absl::OkStatus();
    case FinalKind::kNone:
      return absl::InternalError(absl::StrCat(prefix, "no final result from the modem"));
    case FinalKind::kError:
      return absl::UnknownError(
          absl::StrCat(prefix, "modem answered ERROR; enable AT+CMEE=1 for a reason"));
    case FinalKind::kCmeError: {
      const CmeInfo* info = LookupCme(final.code);
      if (info == nullptr) {
        return absl::UnknownError(
            absl::StrCat(prefix, "+CME ERROR: ", final.code, " (unknown code)"));
      }
      return absl::Status(info->status, absl::StrCat(prefix, "+CME ERROR: ", final.code, " (",
                                                     info->name, "): ", info->explanation));
    }
    case FinalKind::kCmeText:
      return absl::UnknownError(absl::StrCat(prefix, final.line.empty()
                                                         ? std::string("+CME ERROR")
                                                         : EscapeForMessage(final.line, 200)));
    case FinalKind::kCmsError:
      return absl::UnknownError(absl::StrCat(prefix, final.line.empty()
                                                         ? absl::StrCat("+CMS ERROR: ", final.code)
                                                         : EscapeForMessage(final.line, 200)));
  }
  return absl::UnknownError(absl::StrCat(prefix, "unrecognized final result"));
}

}  // namespace atbridge::at
