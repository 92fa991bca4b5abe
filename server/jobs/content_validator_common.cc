#include "absl/strings/str_cat.h"
#include "server/jobs/content_validator.h"

namespace atbridge::server::jobs {

namespace {

// "<redacted 12 bytes>" -> "<redacted # bytes>", to compare the structure of
// commands whatever the counts.
std::string WithoutCounts(absl::string_view text) {
  static constexpr absl::string_view kOpen = "<redacted ";
  static constexpr absl::string_view kClose = " bytes>";
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    const size_t at = text.find(kOpen, i);
    if (at == absl::string_view::npos) break;
    size_t digits = at + kOpen.size();
    size_t end = digits;
    while (end < text.size() && text[end] >= '0' && text[end] <= '9') ++end;
    if (end == digits || text.substr(end, kClose.size()) != kClose) {
      absl::StrAppend(&out, text.substr(i, digits - i));
      i = digits;
      continue;
    }
    absl::StrAppend(&out, text.substr(i, digits - i), "#", kClose);
    i = end + kClose.size();
  }
  absl::StrAppend(&out, text.substr(i));
  return out;
}

}  // namespace

std::string RedactCommand(absl::string_view command) {
  std::string once = internal::RedactCommandOnce(command);
  if (once == command) return once;
  // What changed was only placeholders of an earlier redaction: keep their
  // counts (those of the original secrets).
  if (WithoutCounts(once) == WithoutCounts(command)) return std::string(command);
  return once;
}

bool IsSecretCredentialType(int type) { return type == 2 || type == 3; }

bool IsReadableCredentialType(int type) { return type == 0 || type == 1 || type == 4; }

std::string CredentialTypeLabel(int type) {
  switch (type) {
    case 0:
      return "root CA certificate";
    case 1:
      return "client certificate";
    case 2:
      return "client private key";
    case 3:
      return "PSK";
    case 4:
      return "PSK identity";
    case 5:
      return "public key";
    case 6:
      return "device identity public key";
    default:
      return absl::StrCat("type ", type);
  }
}

}  // namespace atbridge::server::jobs
