// ContentValidator used while the AT library has no sources: OpenSSL parses
// certificates (common/pki), keys and PSKs get shape checks. It normalizes
// only line endings; the agent does the full repair before writing.
#include <cctype>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/pki/pki.h"
#include "server/jobs/content_validator.h"

namespace atbridge::server::jobs {

namespace {

class FallbackContentValidator final : public ContentValidator {
 public:
  absl::StatusOr<ValidatedContent> Validate(int type, absl::string_view content,
                                            bool strict) const override {
    const std::string label = CredentialTypeLabel(type);
    if (type < 0 || type > 11) {
      return absl::InvalidArgumentError(absl::StrCat("credential type ", type, " is not 0..11"));
    }
    if (content.empty()) return absl::InvalidArgumentError(absl::StrCat(label, " is empty"));
    if (absl::StrContains(content, "\"")) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, " contains '\"', which cannot be sent inside an AT string"));
    }
    ValidatedContent out;
    out.normalized = std::string(content);
    if (absl::StrContains(out.normalized, "\r\n")) {
      out.normalized = absl::StrReplaceAll(out.normalized, {{"\r\n", "\n"}});
      out.repairs.push_back("converted CRLF line endings to LF");
    }
    while (!out.normalized.empty() && out.normalized.back() == '\n') {
      out.normalized.pop_back();
      if (out.repairs.empty() || out.repairs.back() != "removed trailing newline") {
        out.repairs.push_back("removed trailing newline");
      }
    }
    if (type == 0 || type == 1) {
      auto info = pki::ParseCertificate(out.normalized);
      if (!info.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(label, " does not parse as a PEM certificate: ", info.status().message()));
      }
    } else if (type == 2) {
      if (!absl::StrContains(out.normalized, "-----BEGIN") ||
          !absl::StrContains(out.normalized, "PRIVATE KEY-----")) {
        return absl::InvalidArgumentError(
            absl::StrCat(label, " is not a PEM private key (no BEGIN ... PRIVATE KEY line)"));
      }
    } else if (type == 3) {
      if (out.normalized.size() % 2 != 0 || out.normalized.size() > 128) {
        return absl::InvalidArgumentError(
            absl::StrCat(label, " must be an even number (2..128) of hex digits"));
      }
      for (char c : out.normalized) {
        if (!std::isxdigit(static_cast<unsigned char>(c))) {
          return absl::InvalidArgumentError(absl::StrCat(label, " must be hex digits only"));
        }
      }
    } else if (type == 4) {
      if (out.normalized.size() > 256) {
        return absl::InvalidArgumentError(absl::StrCat(label, " is longer than 256 characters"));
      }
      for (char c : out.normalized) {
        if (c < 0x20 || c > 0x7e) {
          return absl::InvalidArgumentError(
              absl::StrCat(label, " must be printable ASCII on one line"));
        }
      }
    }
    if (strict && !out.repairs.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(label, " needs repairs and the write is strict: ", out.repairs[0]));
    }
    return out;
  }
};

}  // namespace

// Without the AT library's parser: everything after the first quote of a
// command that mentions %CMNG is redacted (certificates included).
std::string internal::RedactCommandOnce(absl::string_view command) {
  std::string upper(command);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  const size_t cmng = upper.find("%CMNG");
  if (cmng == std::string::npos) return std::string(command);
  const size_t quote = command.find('"', cmng);
  if (quote == absl::string_view::npos) {
    const size_t comma = command.find(',', cmng);
    if (comma == absl::string_view::npos) return std::string(command);
    return absl::StrCat(command.substr(0, comma + 1), "<redacted ", command.size() - comma - 1,
                        " bytes>");
  }
  return absl::StrCat(command.substr(0, quote), "\"<redacted ", command.size() - quote,
                      " bytes>\"");
}

std::unique_ptr<ContentValidator> NewContentValidator() {
  return std::make_unique<FallbackContentValidator>();
}

}  // namespace atbridge::server::jobs
