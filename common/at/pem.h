// PEM validation and normalization with OpenSSL, before a byte reaches the
// UART, and the modem-side well-formedness check the simulator applies.
#ifndef ATBRIDGE_COMMON_AT_PEM_H_
#define ATBRIDGE_COMMON_AT_PEM_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace atbridge::at {

enum class PemKind {
  kCertificates,  // One or more CERTIFICATE blocks (types 0 and 1).
  kPrivateKey,    // One private key block (type 2): PRIVATE KEY, EC PRIVATE
                  // KEY, RSA PRIVATE KEY or ENCRYPTED PRIVATE KEY.
};

struct NormalizedPem {
  // Canonical content: each block "-----BEGIN X-----\n" + base64 wrapped at
  // 64 columns + "\n-----END X-----", blocks joined by "\n", LF only, NO
  // trailing newline (the bytes a modem stores between the quotes).
  std::string content;
  // One human sentence per kind of repair made, e.g. "converted CRLF line
  // endings to LF", "removed leading spaces", "replaced literal \n sequences
  // with newlines", "restored newlines that had been replaced by spaces",
  // "re-wrapped base64 at 64 columns", "removed trailing newline". Empty when
  // the input was already canonical.
  std::vector<std::string> repairs;
  int blocks = 0;  // Number of PEM blocks.
};

// Repairs what can be repaired (CRLF, indentation, stray spaces, spaces in
// place of newlines, literal "\n" sequences, wrong wrapping, blank lines,
// trailing newline) and parses every block with OpenSSL (certificates:
// X.509; keys: a private key, never echoed in errors). Fails with
// INVALID_ARGUMENT naming the line (1-based, of the input) for what cannot be
// repaired: no BEGIN line, mismatched END, invalid base64 character, a block
// OpenSSL cannot parse, text outside blocks, a '"' anywhere.
absl::StatusOr<NormalizedPem> NormalizePem(absl::string_view input, PemKind kind);

// Options for the modem-side check.
struct ModemPemCheckOptions {
  // CRLF line endings. Accepted by default: nrfcloud-utils sends CRLF and its
  // SHA check passes on real modems; false models the field report of 527
  // for CRLF pasted from a terminal (nrf91-at-credentials.md §7).
  bool accept_crlf = true;
};

// What an nRF91 accepts for a type 0/1 %CMNG write: well-formed PEM
// certificates: BEGIN and END lines of their own, base64 lines of any width
// each ended by a newline (LF, or CRLF if accepted), a single trailing
// newline and one blank line between certificates (how nrfcloud-utils joins
// CA bundles) tolerated, and each certificate must parse. Returns false for
// leading or stray spaces, spaces instead of newlines, literal "\n", blank
// lines, lone CRs, garbage. The simulator answers +CME ERROR: 527 when this
// is false. (NormalizePem still re-wraps at 64 columns.)
bool ModemAcceptsCertificatePem(absl::string_view content,
                                const ModemPemCheckOptions& options = {});

// Certificate metadata from the first certificate in `pem` (for inventory):
// subject, issuer (RFC 2253) and notAfter as Unix seconds; false if none parses.
struct PemCertSummary {
  std::string subject;
  std::string issuer;
  int64_t not_after_unix = 0;
};
bool SummarizeCertificatePem(absl::string_view pem, PemCertSummary* out);

}  // namespace atbridge::at

#endif  // ATBRIDGE_COMMON_AT_PEM_H_
