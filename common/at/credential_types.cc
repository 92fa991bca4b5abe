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

bool EndsToken(char c) { return c == ',' || c == ';' || c == '\r' || c == '\n'; }

// Reads one argument token at `*pos` up to ',', ';', CR, LF or the end (a
// quoted token up to its closing quote) and returns it without the blanks
// around it; `*pos` ends at the delimiter.
absl::string_view ReadToken(absl::string_view text, size_t* pos) {
  size_t p = SkipBlanks(text, *pos);
  const size_t start = p;
  if (p < text.size() && text[p] == '"') {
    const size_t close = text.find('"', p + 1);
    p = close == absl::string_view::npos ? text.size() : close + 1;
  }
  while (p < text.size() && !EndsToken(text[p])) ++p;
  *pos = p;
  size_t end = p;
  while (end > start && (text[end - 1] == ' ' || text[end - 1] == '\t')) --end;
  return text.substr(start, end - start);
}

// A decimal with an optional sign, as ParseCommandLine reads numbers.
bool ParseSigned(absl::string_view token, bool* negative, uint64_t* magnitude) {
  *negative = false;
  if (!token.empty() && (token[0] == '+' || token[0] == '-')) {
    *negative = token[0] == '-';
    token.remove_prefix(1);
  }
  if (token.empty()) return false;
  uint64_t v = 0;
  for (char c : token) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
    if (v < (uint64_t{1} << 60)) v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  *magnitude = v;
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
  while (e < text.size() && !EndsToken(text[e])) ++e;
  if (e > p) absl::StrAppend(out, "<redacted ", e - p, " bytes>");
  *pos = e;
}

// After "%CMNG" at `pos`: if this is a write ("=0,<tag>,<type>,"), sets
// `*content_pos` to the start of the content argument and `*secret` to
// whether it must be redacted. Fails closed: an opcode or type that is not a
// plain number counts as a write of a secret.
bool MatchWrite(absl::string_view text, size_t pos, size_t* content_pos, bool* secret) {
  pos = SkipBlanks(text, pos);
  if (pos >= text.size() || text[pos] != '=') return false;
  ++pos;
  bool negative = false;
  uint64_t value = 0;
  absl::string_view opcode = ReadToken(text, &pos);
  if (ParseSigned(opcode, &negative, &value) && value != 0) return false;
  if (!ReadComma(text, &pos)) return false;
  ReadToken(text, &pos);  // sec_tag
  if (!ReadComma(text, &pos)) return false;
  absl::string_view type = ReadToken(text, &pos);
  if (!ReadComma(text, &pos)) return false;
  *secret = !ParseSigned(type, &negative, &value) ||
            (!negative && (value == static_cast<uint64_t>(kTypeClientPrivateKey) ||
                           value == static_cast<uint64_t>(kTypePsk)));
  *content_pos = pos;
  return true;
}

}  // namespace

std::string RedactSecrets(absl::string_view text) {
  static constexpr absl::string_view kCmng = "%CMNG";
  std::string out;
  out.reserve(text.size());
  size_t copied = 0;
  bool in_quotes = false;  // Only "%CMNG" outside quotes starts a command.
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '\r' || c == '\n') {
      in_quotes = false;  // Each transcript line starts outside quotes.
      ++i;
      continue;
    }
    if (c == '"') {
      in_quotes = !in_quotes;
      ++i;
      continue;
    }
    size_t content_pos = 0;
    bool secret = false;
    if (in_quotes || c != '%' || !absl::EqualsIgnoreCase(text.substr(i, kCmng.size()), kCmng) ||
        !MatchWrite(text, i + kCmng.size(), &content_pos, &secret)) {
      ++i;
      continue;
    }
    // Copy up to the content, then the content (redacted if secret).
    absl::StrAppend(&out, text.substr(copied, content_pos - copied));
    size_t pos = content_pos;
    if (secret) {
      RedactArgument(text, &pos, &out);
    } else {
      const size_t start = pos;
      ReadToken(text, &pos);
      absl::StrAppend(&out, text.substr(start, pos - start));
    }
    // A password argument after the content is always redacted, and so is
    // anything else up to the end of the command (fail closed).
    for (size_t next = pos; ReadComma(text, &next); next = pos) {
      absl::StrAppend(&out, text.substr(pos, next - pos));
      pos = next;
      RedactArgument(text, &pos, &out);
    }
    copied = pos;
    i = pos;
    in_quotes = false;
  }
  absl::StrAppend(&out, text.substr(copied));
  return out;
}

}  // namespace atbridge::at
