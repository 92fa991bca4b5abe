// Parsers for the information lines of the nRF91 commands atbridge uses.
// Each takes Response::lines of a command that ended in OK.
#ifndef ATBRIDGE_COMMON_AT_MODEM_RESPONSES_H_
#define ATBRIDGE_COMMON_AT_MODEM_RESPONSES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace atbridge::at {

// One %CMNG list or read line:
//   %CMNG: <tag>,<type>,"<sha256>"               (list)
//   %CMNG: <tag>,<type>,"<sha256>","<content>"   (read; content byte-exact)
struct CmngEntry {
  uint32_t sec_tag = 0;  // Tags >= 2^31 (the modem's own) are kept as listed.
  int type = 0;
  std::string sha256;                  // 64 hex chars, as reported (uppercase).
  std::optional<std::string> content;  // Read only.
};

// Parses one %CMNG line. INVALID_ARGUMENT (naming the line) if malformed.
absl::StatusOr<CmngEntry> ParseCmngLine(absl::string_view line);
// All lines of a list response (lines that are not %CMNG are an error).
absl::StatusOr<std::vector<CmngEntry>> ParseCmngList(const std::vector<std::string>& lines);

// "+CFUN: <n>" -> n.
absl::StatusOr<int> ParseCfun(const std::vector<std::string>& lines);

// AT+CGSN (bare 15 digits) or AT+CGSN=1 (+CGSN: "<imei>") -> 15-digit IMEI.
absl::StatusOr<std::string> ParseImei(const std::vector<std::string>& lines);

// A single bare information line (AT+CGMI, AT+CGMM, AT+CGMR) -> its text.
absl::StatusOr<std::string> ParseSingleLine(const std::vector<std::string>& lines);

// %KEYGEN: "<b64url(body)>.<b64url(cose)>" -> decoded body (CSR DER or
// SubjectPublicKeyInfo DER) and COSE bytes. Also %ATTESTTOKEN.
struct SignedBlob {
  std::string body;  // DER
  std::string cose;
};
absl::StatusOr<SignedBlob> ParseKeygen(const std::vector<std::string>& lines);
absl::StatusOr<SignedBlob> ParseAttestToken(const std::vector<std::string>& lines);

// Functional modes (AT+CFUN) in which %CMNG write/delete are refused (518):
// 1 normal, 2 receive only, 21 LTE on.
bool IsActiveCfun(int mode);

// base64url without padding (RFC 4648 §5), as the modem formats blobs.
std::string Base64UrlEncode(absl::string_view bytes);
absl::StatusOr<std::string> Base64UrlDecode(absl::string_view text);

}  // namespace atbridge::at

#endif  // ATBRIDGE_COMMON_AT_MODEM_RESPONSES_H_
