#include "common/at/credential_types.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/at/byte_text.h"
#include "common/at/pem.h"

namespace atbridge::at {

namespace {

constexpr size_t kMaxPskHexChars = 128;
constexpr size_t kMaxPskIdentityBytes = 256;

}  // namespace

std::string CredentialTypeName(int type) {
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
    case 8:
      return "endorsement key";
    case 9:
      return "ownership key";
    case 10:
      return "Nordic identity root CA";
    case 11:
      return "Nordic base public key";
    default:
      return absl::StrCat("type ", type);
  }
}

bool IsSecretType(int type) { return type == kTypeClientPrivateKey || type == kTypePsk; }

bool IsCertificateType(int type) { return type == kTypeRootCa || type == kTypeClientCert; }

bool IsReadableType(int type) {
  return type == kTypeRootCa || type == kTypeClientCert || type == kTypePskIdentity;
}

absl::Status ValidateContentShape(int type, absl::string_view content) {
  if (type < 0 || type > kMaxCredentialType) {
    return absl::InvalidArgumentError(
        absl::StrCat("credential type ", type, " is out of range 0..", kMaxCredentialType));
  }
  const std::string name = CredentialTypeName(type);
  if (content.empty()) return absl::InvalidArgumentError(absl::StrCat(name, " content is empty"));
  if (IsCertificateType(type) || type == kTypeClientPrivateKey) {
    absl::StatusOr<NormalizedPem> pem = NormalizePem(
        content, type == kTypeClientPrivateKey ? PemKind::kPrivateKey : PemKind::kCertificates);
    if (!pem.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ": ", pem.status().message()));
    }
    return absl::OkStatus();
  }
  if (type == kTypePsk) {
    // Secret: messages give lengths and positions, never characters.
    if (content.size() > kMaxPskHexChars || content.size() % 2 != 0) {
      return absl::InvalidArgumentError(absl::StrCat("PSK must be an even number (2..",
                                                     kMaxPskHexChars, ") of hex digits, got ",
                                                     content.size(), " characters"));
    }
    for (size_t i = 0; i < content.size(); ++i) {
      if (!absl::ascii_isxdigit(static_cast<unsigned char>(content[i]))) {
        return absl::InvalidArgumentError(absl::StrCat("PSK character ", i, " is not a hex digit"));
      }
    }
    return absl::OkStatus();
  }
  size_t max_bytes = type == kTypePskIdentity ? kMaxPskIdentityBytes : 4096;
  if (content.size() > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " is ", content.size(), " bytes, longer than ", max_bytes));
  }
  for (size_t i = 0; i < content.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(content[i]);
    const bool lf_ok = type != kTypePskIdentity && c == '\n';
    if ((c < 0x20 || c > 0x7e || c == '"') && !lf_ok) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " byte ", i, " is ", DescribeByte(c),
                       type == kTypePskIdentity ? " (printable ASCII only, no '\"')"
                                                : " (printable ASCII and LF only, no '\"')"));
    }
  }
  return absl::OkStatus();
}

namespace {

// Cursor helpers over `text` for RedactSecrets.
size_t SkipBlanks(absl::string_view text, size_t pos) {
  while (pos < text.size() && (text[pos] == ' ' || text[pos] == '\t')) ++pos;
  return pos;
}

// Reads a decimal number at `*pos` (after blanks); returns false if none.
bool ReadNumber(absl::string_view text, size_t* pos, uint64_t* value) {
  size_t p = SkipBlanks(text, *pos);
  const size_t start = p;
  uint64_t v = 0;
  while (p < text.size() && absl::ascii_isdigit(static_cast<unsigned char>(text[p]))) {
    if (v < (uint64_t{1} << 60)) v = v * 10 + static_cast<uint64_t>(text[p] - '0');
    ++p;
  }
  if (p == start) return false;
  *pos = SkipBlanks(text, p);
  *value = v;
  return true;
}

bool ReadComma(absl::string_view text, size_t* pos) {
  size_t p = SkipBlanks(text, *pos);
  if (p < text.size() && text[p] == ',') {
    *pos = p + 1;
    return true;
  }
  return false;
}

// Redacts one argument at `*pos` (after blanks): a quoted string (to its
// closing quote, or to the end of the text if it has none) or a bare token up
// to ',' ';' CR or LF. Appends the result to `out` and advances `*pos`.
void RedactArgument(absl::string_view text, size_t* pos, std::string* out) {
  size_t p = SkipBlanks(text, *pos);
  absl::StrAppend(out, text.substr(*pos, p - *pos));
  if (p < text.size() && text[p] == '"') {
    const size_t close = text.find('"', p + 1);
    const size_t content_end = close == absl::string_view::npos ? text.size() : close;
    const size_t n = content_end - (p + 1);
    absl::StrAppend(out, "\"<redacted ", n, " bytes>");
    if (close != absl::string_view::npos) out->push_back('"');
    *pos = close == absl::string_view::npos ? text.size() : close + 1;
    return;
  }
  size_t e = p;
  while (e < text.size() && text[e] != ',' && text[e] != ';' && text[e] != '\r' &&
         text[e] != '\n') {
    ++e;
  }
  if (e > p) absl::StrAppend(out, "<redacted ", e - p, " bytes>");
  *pos = e;
}

}  // namespace

std::string RedactSecrets(absl::string_view text) {
  static constexpr absl::string_view kCmng = "%CMNG";
  std::string out;
  out.reserve(text.size());
  size_t copied = 0;
  size_t search = 0;
  while (search + kCmng.size() <= text.size()) {
    // Case-insensitive search for "%CMNG".
    size_t hit = absl::string_view::npos;
    for (size_t i = search; i + kCmng.size() <= text.size(); ++i) {
      if (text[i] == '%' && absl::EqualsIgnoreCase(text.substr(i, kCmng.size()), kCmng)) {
        hit = i;
        break;
      }
    }
    if (hit == absl::string_view::npos) break;
    size_t pos = SkipBlanks(text, hit + kCmng.size());
    search = hit + kCmng.size();
    uint64_t opcode = 0;
    uint64_t tag = 0;
    if (pos >= text.size() || text[pos] != '=') continue;
    ++pos;
    if (!ReadNumber(text, &pos, &opcode) || opcode != 0) continue;
    if (!ReadComma(text, &pos)) continue;
    if (!ReadNumber(text, &pos, &tag)) continue;
    if (!ReadComma(text, &pos)) continue;
    // A type that is not a plain number is treated as secret (fail closed).
    uint64_t type = 0;
    size_t after_type = pos;
    const bool numeric_type = ReadNumber(text, &after_type, &type);
    const bool secret = !numeric_type || type == kTypeClientPrivateKey || type == kTypePsk;
    size_t content_pos = after_type;
    if (!numeric_type) {
      // Skip the malformed type token.
      while (content_pos < text.size() && text[content_pos] != ',' && text[content_pos] != ';' &&
             text[content_pos] != '\r' && text[content_pos] != '\n') {
        ++content_pos;
      }
    }
    if (!ReadComma(text, &content_pos)) continue;
    // Copy up to the content, then the content (redacted if secret).
    absl::StrAppend(&out, text.substr(copied, content_pos - copied));
    pos = content_pos;
    if (secret) {
      RedactArgument(text, &pos, &out);
    } else {
      size_t p = SkipBlanks(text, pos);
      if (p < text.size() && text[p] == '"') {
        const size_t close = text.find('"', p + 1);
        p = close == absl::string_view::npos ? text.size() : close + 1;
      } else {
        while (p < text.size() && text[p] != ',' && text[p] != ';' && text[p] != '\r' &&
               text[p] != '\n') {
          ++p;
        }
      }
      absl::StrAppend(&out, text.substr(pos, p - pos));
      pos = p;
    }
    // A password argument after the content is always redacted.
    size_t pw = pos;
    if (ReadComma(text, &pw)) {
      absl::StrAppend(&out, text.substr(pos, pw - pos));
      pos = pw;
      RedactArgument(text, &pos, &out);
    }
    copied = pos;
    search = pos;
  }
  absl::StrAppend(&out, text.substr(copied));
  return out;
}

}  // namespace atbridge::at
