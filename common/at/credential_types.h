// Facts about %CMNG credential types (numbers as on the wire).
#ifndef ATBRIDGE_COMMON_AT_CREDENTIAL_TYPES_H_
#define ATBRIDGE_COMMON_AT_CREDENTIAL_TYPES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace atbridge::at {

inline constexpr int kTypeRootCa = 0;
inline constexpr int kTypeClientCert = 1;
inline constexpr int kTypeClientPrivateKey = 2;
inline constexpr int kTypePsk = 3;
inline constexpr int kTypePskIdentity = 4;
inline constexpr int kMaxCredentialType = 11;

// "root CA certificate", "client private key", ... ("type 9" if unnamed).
std::string CredentialTypeName(int type);
// Types 2 (private key) and 3 (PSK): never logged, returned or read back.
bool IsSecretType(int type);
// Types 0 and 1: PEM certificates, validated with OpenSSL.
bool IsCertificateType(int type);
// Whether %CMNG read is allowed for the type (0, 1, 4; not 2, 3).
bool IsReadableType(int type);

// Validates content for a type before any byte is sent: certificates and
// keys via pem.h (see NormalizePem), PSK = even-length hex (1..128 chars),
// PSK identity = printable ASCII (1..256). INVALID_ARGUMENT on failure; the
// message never quotes secret content.
absl::Status ValidateContentShape(int type, absl::string_view content);

// Redacts secret payloads in a command or a transcript line: the quoted
// content of AT%CMNG=0,<tag>,2|3,"..." (and a password argument) becomes
// "<redacted N bytes>". Other text is returned unchanged. Fails closed: any
// argument after the content is redacted too, an opcode or type that is not a
// plain number counts as a secret write, a missing closing quote redacts to
// the end, and only "%CMNG" outside double quotes (quote state restarting at
// each CR/LF) starts a command, as the modem would parse it.
std::string RedactSecrets(absl::string_view text);

}  // namespace atbridge::at

#endif  // ATBRIDGE_COMMON_AT_CREDENTIAL_TYPES_H_
