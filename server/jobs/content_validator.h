// Validates credential content for a %CMNG type before a job is created, so
// a fleet push with a broken PEM fails at CreateJob rather than on every
// device. The agent validates again (and normalizes) before writing.
#ifndef ATBRIDGE_SERVER_JOBS_CONTENT_VALIDATOR_H_
#define ATBRIDGE_SERVER_JOBS_CONTENT_VALIDATOR_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace atbridge::server::jobs {

struct ValidatedContent {
  // The bytes the modem would store (normalized PEM where applicable).
  std::string normalized;
  // What normalization would change, one sentence each.
  std::vector<std::string> repairs;
};

// Thread-safety: implementations are thread-safe (stateless).
class ContentValidator {
 public:
  virtual ~ContentValidator() = default;
  // INVALID_ARGUMENT (never quoting secret content) when `content` cannot be
  // written as `type`; with `strict`, also when it would need repairs.
  virtual absl::StatusOr<ValidatedContent> Validate(int type, absl::string_view content,
                                                    bool strict) const = 0;
};

// The validator of this build: the AT library's (common/at/pem.h,
// credential_types.h) when it is linked, else a built-in OpenSSL check.
std::unique_ptr<ContentValidator> NewContentValidator();

// Whether a type's content is secret (2: private key, 3: PSK).
bool IsSecretCredentialType(int type);
// Whether a type can be read back (%CMNG=2): 0, 1, 4.
bool IsReadableCredentialType(int type);
// "client certificate", "root CA certificate", ... ("type N" otherwise).
std::string CredentialTypeLabel(int type);

// An AT command safe to store in a view, log, report or audit record: the
// secret payloads of %CMNG writes (private keys, PSKs, passwords) become
// "<redacted N bytes>" (at::RedactSecrets when the AT library is linked, a
// coarser rule otherwise). Other commands, and commands whose secrets are
// already redacted, are returned unchanged (idempotent).
std::string RedactCommand(absl::string_view command);

namespace internal {
// One pass of the build's redaction rule (not idempotent).
std::string RedactCommandOnce(absl::string_view command);
}  // namespace internal

}  // namespace atbridge::server::jobs

#endif  // ATBRIDGE_SERVER_JOBS_CONTENT_VALIDATOR_H_
