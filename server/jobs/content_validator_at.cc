// ContentValidator over the AT dialect library (built when atbridge_at has
// its sources).
#include "absl/strings/str_cat.h"
#include "common/at/credential_types.h"
#include "common/at/pem.h"
#include "server/jobs/content_validator.h"

namespace atbridge::server::jobs {

namespace {

class AtContentValidator final : public ContentValidator {
 public:
  absl::StatusOr<ValidatedContent> Validate(int type, absl::string_view content,
                                            bool strict) const override {
    if (type < 0 || type > at::kMaxCredentialType) {
      return absl::InvalidArgumentError(
          absl::StrCat("credential type ", type, " is not 0..", at::kMaxCredentialType));
    }
    ValidatedContent out;
    if (at::IsCertificateType(type) || type == at::kTypeClientPrivateKey) {
      auto pem = at::NormalizePem(content, at::IsCertificateType(type) ? at::PemKind::kCertificates
                                                                       : at::PemKind::kPrivateKey);
      if (!pem.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(CredentialTypeLabel(type), ": ", pem.status().message()));
      }
      out.normalized = std::move(pem->content);
      out.repairs = std::move(pem->repairs);
    } else {
      absl::Status s = at::ValidateContentShape(type, content);
      if (!s.ok()) return s;
      out.normalized = std::string(content);
    }
    if (strict && !out.repairs.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          CredentialTypeLabel(type), " needs repairs and the write is strict: ", out.repairs[0]));
    }
    return out;
  }
};

}  // namespace

std::string internal::RedactCommandOnce(absl::string_view command) {
  return at::RedactSecrets(command);
}

std::unique_ptr<ContentValidator> NewContentValidator() {
  return std::make_unique<AtContentValidator>();
}

}  // namespace atbridge::server::jobs
