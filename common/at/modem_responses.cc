#include "common/at/modem_responses.h"

#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/at/byte_text.h"

namespace atbridge::at {

namespace {

// A response line quoted in an error message: escaped and cut short (a %CMNG
// read line carries a whole certificate).
std::string LineForMessage(absl::string_view line) {
  return absl::StrCat("\"", EscapeForMessage(line, 80), "\"");
}

absl::Status Malformed(absl::string_view what, absl::string_view line) {
  return absl::InvalidArgumentError(absl::StrCat(what, ": ", LineForMessage(line)));
}

// A cursor over one response line.
class Cursor {
 public:
  explicit Cursor(absl::string_view text) : text_(text) {}

  bool AtEnd() const { return pos_ == text_.size(); }
  void SkipSpaces() {
    while (pos_ < text_.size() && text_[pos_] == ' ') ++pos_;
  }
  bool Consume(char c) {
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  // An unsigned decimal up to `max`.
  bool Unsigned(uint64_t max, uint64_t* out) {
    const size_t start = pos_;
    uint64_t value = 0;
    while (pos_ < text_.size() && absl::ascii_isdigit(static_cast<unsigned char>(text_[pos_]))) {
      const uint64_t digit = static_cast<uint64_t>(text_[pos_] - '0');
      if (value > (max - digit) / 10) return false;
      value = value * 10 + digit;
      ++pos_;
    }
    if (pos_ == start) return false;
    *out = value;
    return true;
  }
  // A double-quoted string without '"' inside; CR/LF and commas allowed.
  bool Quoted(std::string* out) {
    if (!Consume('"')) return false;
    const size_t close = text_.find('"', pos_);
    if (close == absl::string_view::npos) return false;
    *out = std::string(text_.substr(pos_, close - pos_));
    pos_ = close + 1;
    return true;
  }
  absl::string_view Rest() const { return text_.substr(pos_); }

 private:
  absl::string_view text_;
  size_t pos_ = 0;
};

bool IsHex64(absl::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// Finds the one line starting with `prefix`; the rest after the prefix.
absl::StatusOr<absl::string_view> FindPrefixed(const std::vector<std::string>& lines,
                                               absl::string_view prefix) {
  const std::string* found = nullptr;
  for (const std::string& line : lines) {
    if (absl::StartsWith(line, prefix)) {
      if (found != nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat("response has more than one ", prefix, " line"));
      }
      found = &line;
    }
  }
  if (found == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("response has no ", prefix, " line (", lines.size(), " information line(s))"));
  }
  return absl::string_view(*found).substr(prefix.size());
}

absl::StatusOr<SignedBlob> ParseBlob(const std::vector<std::string>& lines,
                                     absl::string_view prefix) {
  absl::StatusOr<absl::string_view> rest = FindPrefixed(lines, prefix);
  if (!rest.ok()) return rest.status();
  Cursor cursor(*rest);
  cursor.SkipSpaces();
  std::string quoted;
  if (!cursor.Quoted(&quoted)) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, " value is not a quoted \"<body>.<cose>\" string"));
  }
  cursor.SkipSpaces();
  if (!cursor.AtEnd()) {
    return absl::InvalidArgumentError(absl::StrCat("unexpected text after the ", prefix, " value"));
  }
  const size_t dot = quoted.find('.');
  if (dot == std::string::npos || quoted.find('.', dot + 1) != std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, " value must be two base64url parts joined by one '.'"));
  }
  absl::StatusOr<std::string> body = Base64UrlDecode(absl::string_view(quoted).substr(0, dot));
  if (!body.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, " body: ", body.status().message()));
  }
  absl::StatusOr<std::string> cose = Base64UrlDecode(absl::string_view(quoted).substr(dot + 1));
  if (!cose.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, " COSE part: ", cose.status().message()));
  }
  if (body->empty()) return absl::InvalidArgumentError(absl::StrCat(prefix, " body is empty"));
  if (cose->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, " COSE part is empty"));
  }
  return SignedBlob{*std::move(body), *std::move(cose)};
}

constexpr char kB64UrlAlphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int B64UrlValue(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

}  // namespace

absl::StatusOr<CmngEntry> ParseCmngLine(absl::string_view line) {
  static constexpr absl::string_view kPrefix = "%CMNG:";
  if (!absl::StartsWith(line, kPrefix)) return Malformed("not a %CMNG line", line);
  Cursor cursor(line.substr(kPrefix.size()));
  CmngEntry entry;
  uint64_t value = 0;
  cursor.SkipSpaces();
  if (!cursor.Unsigned(std::numeric_limits<uint32_t>::max(), &value)) {
    return Malformed("%CMNG line has no valid sec_tag", line);
  }
  entry.sec_tag = static_cast<uint32_t>(value);
  cursor.SkipSpaces();
  if (!cursor.Consume(',')) return Malformed("%CMNG line has no type", line);
  cursor.SkipSpaces();
  if (!cursor.Unsigned(255, &value)) return Malformed("%CMNG line has no valid type", line);
  entry.type = static_cast<int>(value);
  cursor.SkipSpaces();
  if (!cursor.Consume(',')) return Malformed("%CMNG line has no SHA-256", line);
  cursor.SkipSpaces();
  if (!cursor.Quoted(&entry.sha256) || !IsHex64(entry.sha256)) {
    return Malformed("%CMNG line has no quoted 64-hex-digit SHA-256", line);
  }
  cursor.SkipSpaces();
  if (cursor.AtEnd()) return entry;
  if (!cursor.Consume(',')) return Malformed("unexpected text after the %CMNG SHA-256", line);
  cursor.SkipSpaces();
  std::string content;
  if (!cursor.Quoted(&content)) return Malformed("%CMNG read content is not quoted", line);
  cursor.SkipSpaces();
  if (!cursor.AtEnd()) return Malformed("unexpected text after the %CMNG content", line);
  entry.content = std::move(content);
  return entry;
}

absl::StatusOr<std::vector<CmngEntry>> ParseCmngList(const std::vector<std::string>& lines) {
  std::vector<CmngEntry> entries;
  entries.reserve(lines.size());
  for (const std::string& line : lines) {
    absl::StatusOr<CmngEntry> entry = ParseCmngLine(line);
    if (!entry.ok()) return entry.status();
    entries.push_back(*std::move(entry));
  }
  return entries;
}

absl::StatusOr<int> ParseCfun(const std::vector<std::string>& lines) {
  absl::StatusOr<absl::string_view> rest = FindPrefixed(lines, "+CFUN:");
  if (!rest.ok()) return rest.status();
  Cursor cursor(*rest);
  cursor.SkipSpaces();
  uint64_t value = 0;
  if (!cursor.Unsigned(255, &value)) {
    return Malformed("+CFUN line has no functional mode", absl::StrCat("+CFUN:", *rest));
  }
  cursor.SkipSpaces();
  if (!cursor.AtEnd()) {
    return Malformed("unexpected text in +CFUN line", absl::StrCat("+CFUN:", *rest));
  }
  return static_cast<int>(value);
}

absl::StatusOr<std::string> ParseImei(const std::vector<std::string>& lines) {
  auto is_imei = [](absl::string_view text) {
    if (text.size() != 15) return false;
    for (char c : text) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
    }
    return true;
  };
  for (const std::string& raw : lines) {
    absl::string_view line = absl::StripAsciiWhitespace(raw);
    if (is_imei(line)) return std::string(line);
    if (absl::ConsumePrefix(&line, "+CGSN:")) {
      line = absl::StripAsciiWhitespace(line);
      if (line.size() >= 2 && line.front() == '"' && line.back() == '"') {
        line = line.substr(1, line.size() - 2);
      }
      if (is_imei(line)) return std::string(line);
      return Malformed("+CGSN line does not hold a 15-digit IMEI", raw);
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("response has no 15-digit IMEI (", lines.size(), " information line(s))"));
}

absl::StatusOr<std::string> ParseSingleLine(const std::vector<std::string>& lines) {
  if (lines.size() != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected one information line, got ", lines.size()));
  }
  absl::string_view text = absl::StripAsciiWhitespace(lines[0]);
  if (text.empty()) return absl::InvalidArgumentError("information line is empty");
  return std::string(text);
}

absl::StatusOr<SignedBlob> ParseKeygen(const std::vector<std::string>& lines) {
  return ParseBlob(lines, "%KEYGEN:");
}

absl::StatusOr<SignedBlob> ParseAttestToken(const std::vector<std::string>& lines) {
  return ParseBlob(lines, "%ATTESTTOKEN:");
}

bool IsActiveCfun(int mode) { return mode == 1 || mode == 2 || mode == 21; }

std::string Base64UrlEncode(absl::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16) |
                       (static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8) |
                       static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 2]));
    out.push_back(kB64UrlAlphabet[(v >> 18) & 63]);
    out.push_back(kB64UrlAlphabet[(v >> 12) & 63]);
    out.push_back(kB64UrlAlphabet[(v >> 6) & 63]);
    out.push_back(kB64UrlAlphabet[v & 63]);
  }
  const size_t rest = bytes.size() - i;
  if (rest == 1) {
    const uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    out.push_back(kB64UrlAlphabet[(v >> 18) & 63]);
    out.push_back(kB64UrlAlphabet[(v >> 12) & 63]);
  } else if (rest == 2) {
    const uint32_t v = (static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16) |
                       (static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8);
    out.push_back(kB64UrlAlphabet[(v >> 18) & 63]);
    out.push_back(kB64UrlAlphabet[(v >> 12) & 63]);
    out.push_back(kB64UrlAlphabet[(v >> 6) & 63]);
  }
  return out;
}

absl::StatusOr<std::string> Base64UrlDecode(absl::string_view text) {
  // Padding is not what the modem sends, but a correctly padded value is
  // accepted.
  if (text.size() % 4 == 0 && !text.empty()) {
    if (absl::EndsWith(text, "==")) {
      text.remove_suffix(2);
    } else if (absl::EndsWith(text, "=")) {
      text.remove_suffix(1);
    }
  }
  if (text.size() % 4 == 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("base64url text of ", text.size(), " characters is truncated"));
  }
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const int v = B64UrlValue(text[i]);
    if (v < 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "base64url character ", i, " is ", DescribeByte(static_cast<unsigned char>(text[i])),
          ", not in [A-Za-z0-9_-]"));
    }
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // Leftover bits must be zero (canonical encoding).
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) {
    return absl::InvalidArgumentError("base64url text has non-zero padding bits");
  }
  return out;
}

}  // namespace atbridge::at
