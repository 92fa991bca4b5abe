#include "common/at/pem.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <algorithm>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "common/at/byte_text.h"
#include "common/pki/pki.h"

namespace atbridge::at {

namespace {

constexpr absl::string_view kBegin = "-----BEGIN ";
constexpr absl::string_view kEnd = "-----END ";
constexpr absl::string_view kDashes = "-----";
constexpr size_t kWrap = 64;
constexpr absl::string_view kRewrapRepair = "re-wrapped base64 at 64 columns";

constexpr char kB64Alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int B64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

bool IsB64Char(char c) { return B64Value(c) >= 0 || c == '='; }
bool IsBlank(char c) { return c == ' ' || c == '\t'; }
bool IsSpaceOrNewline(char c) { return c == ' ' || c == '\t' || c == '\n'; }

std::string B64Encode(absl::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t v = static_cast<uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (i + 1 < bytes.size()) {
      v |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    }
    if (i + 2 < bytes.size()) {
      v |= static_cast<uint32_t>(static_cast<unsigned char>(bytes[i + 2]));
    }
    out.push_back(kB64Alphabet[(v >> 18) & 63]);
    out.push_back(kB64Alphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < bytes.size() ? kB64Alphabet[(v >> 6) & 63] : '=');
    out.push_back(i + 2 < bytes.size() ? kB64Alphabet[v & 63] : '=');
  }
  return out;
}

// Strict standard base64 with padding: returns false for a bad length,
// misplaced '=' or non-zero padding bits.
bool B64Decode(absl::string_view text, std::string* out) {
  if (text.empty() || text.size() % 4 != 0) return false;
  size_t pad = 0;
  if (text.back() == '=') pad = text[text.size() - 2] == '=' ? 2 : 1;
  out->clear();
  out->reserve(text.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < text.size() - pad; ++i) {
    const int v = B64Value(text[i]);
    if (v < 0) return false;  // Includes an '=' before the end.
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return bits == 0 || (acc & ((1u << bits) - 1)) == 0;
}

// The input after line-ending repairs, with the input line of every byte.
struct WorkText {
  std::string text;        // '\n' is the only line ending.
  std::vector<int> lines;  // 1-based input line of each byte of `text`.
  bool crlf = false;       // Saw CRLF.
  bool lone_cr = false;    // Saw CR without LF.
  bool literal = false;    // Saw literal "\n" (backslash, n).
};

absl::Status LineError(int line, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("PEM line ", line, ": ", what));
}

absl::StatusOr<WorkText> Prepare(absl::string_view input) {
  WorkText work;
  work.text.reserve(input.size());
  work.lines.reserve(input.size());
  int line = 1;
  auto emit = [&](char c) {
    work.text.push_back(c);
    work.lines.push_back(line);
  };
  for (size_t i = 0; i < input.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(input[i]);
    if (c == '"') {
      return LineError(line, "'\"' is not allowed in PEM content (it would end the AT string)");
    }
    if (c == '\r') {
      emit('\n');
      if (i + 1 < input.size() && input[i + 1] == '\n') {
        work.crlf = true;
        ++i;
      } else {
        work.lone_cr = true;
      }
      ++line;
      continue;
    }
    if (c == '\n') {
      emit('\n');
      ++line;
      continue;
    }
    if (c == '\\') {
      // Literal escapes from JSON or a shell: \n, \r\n and \r become newlines.
      absl::string_view rest = input.substr(i + 1);
      if (absl::StartsWith(rest, "r\\n")) {
        emit('\n');
        i += 3;
      } else if (absl::StartsWith(rest, "n") || absl::StartsWith(rest, "r")) {
        emit('\n');
        i += 1;
      } else {
        return LineError(line, "unexpected '\\' (only literal \\n sequences can be repaired)");
      }
      work.literal = true;
      continue;
    }
    if (c == '\t' || (c >= 0x20 && c < 0x7f)) {
      emit(static_cast<char>(c));
      continue;
    }
    return LineError(line, absl::StrCat(DescribeByte(c), " is not allowed in PEM content"));
  }
  return work;
}

struct Block {
  std::string label;
  int begin_line = 0;
  std::string der;
  std::string canonical;  // BEGIN line, wrapped base64, END line; no final newline.
};

bool IsValidLabel(absl::string_view label) {
  if (label.empty() || label.front() == ' ' || label.back() == ' ') return false;
  for (char c : label) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ' ')) return false;
  }
  return true;
}

bool IsKeyLabel(absl::string_view label) {
  return label == "PRIVATE KEY" || label == "EC PRIVATE KEY" || label == "RSA PRIVATE KEY" ||
         label == "ENCRYPTED PRIVATE KEY";
}

// Checks the DER of one block with OpenSSL. Key errors never carry details
// that could come from key material.
absl::Status CheckDer(const Block& block, int index) {
  const auto* data = reinterpret_cast<const unsigned char*>(block.der.data());
  const auto size = static_cast<long>(block.der.size());  // NOLINT(google-runtime-int)
  const unsigned char* p = data;
  bool ok = false;
  if (block.label == "CERTIFICATE") {
    X509* cert = d2i_X509(nullptr, &p, size);
    ok = cert != nullptr && p == data + size;
    X509_free(cert);
    ERR_clear_error();
    if (!ok) {
      return LineError(block.begin_line,
                       absl::StrCat("certificate ", index,
                                    " does not parse as X.509 (truncated or corrupted base64?)"));
    }
    return absl::OkStatus();
  }
  if (block.label == "PRIVATE KEY") {
    PKCS8_PRIV_KEY_INFO* p8 = d2i_PKCS8_PRIV_KEY_INFO(nullptr, &p, size);
    if (p8 != nullptr && p == data + size) {
      EVP_PKEY* key = EVP_PKCS82PKEY(p8);
      ok = key != nullptr;
      EVP_PKEY_free(key);
    }
    PKCS8_PRIV_KEY_INFO_free(p8);
  } else if (block.label == "EC PRIVATE KEY" || block.label == "RSA PRIVATE KEY") {
    EVP_PKEY* key = d2i_PrivateKey(block.label == "EC PRIVATE KEY" ? EVP_PKEY_EC : EVP_PKEY_RSA,
                                   nullptr, &p, size);
    ok = key != nullptr && p == data + size;
    EVP_PKEY_free(key);
  } else if (block.label == "ENCRYPTED PRIVATE KEY") {
    X509_SIG* sig = d2i_X509_SIG(nullptr, &p, size);
    ok = sig != nullptr && p == data + size;
    X509_SIG_free(sig);
  }
  ERR_clear_error();
  if (!ok) {
    return LineError(block.begin_line,
                     absl::StrCat(block.label, " block does not parse as a private key"));
  }
  return absl::OkStatus();
}

// Splits `b64` into 64-column lines.
std::vector<absl::string_view> Wrap(absl::string_view b64) {
  std::vector<absl::string_view> out;
  for (size_t i = 0; i < b64.size(); i += kWrap) out.push_back(b64.substr(i, kWrap));
  return out;
}

// Splits on any of ' ', '\t', '\n', dropping empty pieces.
std::vector<absl::string_view> Tokens(absl::string_view text, bool newline_only) {
  std::vector<absl::string_view> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (newline_only ? text[i] == '\n' : IsSpaceOrNewline(text[i]))) ++i;
    const size_t start = i;
    while (i < text.size() && !(newline_only ? text[i] == '\n' : IsSpaceOrNewline(text[i]))) ++i;
    if (i > start) out.push_back(text.substr(start, i - start));
  }
  return out;
}

// Whether the whitespace-separated pieces look like wrapped lines whose
// newlines became spaces: all but the last the same length (a multiple of 4),
// the last no longer.
bool LooksLikeWrappedLines(const std::vector<absl::string_view>& tokens) {
  if (tokens.size() < 2) return true;
  const size_t width = tokens[0].size();
  if (width % 4 != 0 || width < 16) return false;
  for (size_t i = 1; i + 1 < tokens.size(); ++i) {
    if (tokens[i].size() != width) return false;
  }
  return tokens.back().size() <= width;
}

class Normalizer {
 public:
  Normalizer(const WorkText& work, PemKind kind) : work_(work), text_(work.text), kind_(kind) {}

  absl::StatusOr<NormalizedPem> Run() {
    NormalizedPem result;
    size_t pos = 0;
    size_t last_end = 0;  // Just past the last END marker.
    while (true) {
      while (pos < text_.size() && IsSpaceOrNewline(text_[pos])) ++pos;
      if (pos == text_.size()) break;
      if (!absl::StartsWith(text_.substr(pos), kBegin)) {
        if (blocks_.empty()) {
          if (text_.find(kBegin) == absl::string_view::npos) {
            return LineError(LineAt(pos), "no -----BEGIN line found");
          }
          return LineError(LineAt(pos), "text before the first -----BEGIN line");
        }
        return LineError(LineAt(pos), "text after the last -----END line (trailing garbage)");
      }
      absl::Status status = ParseBlock(&pos);
      if (!status.ok()) return status;
      last_end = pos;
    }
    if (blocks_.empty()) return LineError(LineAt(text_.size()), "no -----BEGIN line found");

    if (kind_ == PemKind::kCertificates) {
      for (const Block& block : blocks_) {
        if (block.label != "CERTIFICATE") {
          return LineError(block.begin_line,
                           absl::StrCat("expected a CERTIFICATE block, found ", block.label));
        }
      }
    } else {
      if (!IsKeyLabel(blocks_[0].label)) {
        return LineError(blocks_[0].begin_line,
                         absl::StrCat("expected a private key block (PRIVATE KEY, EC PRIVATE KEY, "
                                      "RSA PRIVATE KEY or ENCRYPTED PRIVATE KEY), found ",
                                      blocks_[0].label));
      }
      if (blocks_.size() != 1) {
        return LineError(
            blocks_[1].begin_line,
            absl::StrCat("a private key entry holds exactly one block, found ", blocks_.size()));
      }
    }
    for (size_t i = 0; i < blocks_.size(); ++i) {
      absl::Status status = CheckDer(blocks_[i], static_cast<int>(i + 1));
      if (!status.ok()) return status;
    }

    for (size_t i = 0; i < blocks_.size(); ++i) {
      if (i > 0) result.content.push_back('\n');
      result.content += blocks_[i].canonical;
    }
    result.blocks = static_cast<int>(blocks_.size());

    // Layout repairs, judged on the text as it came in.
    AnalyzeLines(last_end);
    // After the last END: blanks on its line, then newline(s).
    absl::string_view trailing = text_.substr(last_end);
    size_t blanks = 0;
    while (blanks < trailing.size() && IsBlank(trailing[blanks])) ++blanks;
    if (blanks > 0) trailing_spaces_ = true;
    trailing.remove_prefix(blanks);
    if (work_.crlf) result.repairs.emplace_back("converted CRLF line endings to LF");
    if (work_.lone_cr) result.repairs.emplace_back("converted CR line endings to LF");
    if (work_.literal) result.repairs.emplace_back("replaced literal \\n sequences with newlines");
    if (leading_spaces_) result.repairs.emplace_back("removed leading spaces");
    if (trailing_spaces_) result.repairs.emplace_back("removed trailing spaces");
    if (spaces_for_newlines_) {
      result.repairs.emplace_back("restored newlines that had been replaced by spaces");
    }
    if (stray_spaces_) result.repairs.emplace_back("removed stray spaces inside base64");
    if (rewrapped_) result.repairs.emplace_back(kRewrapRepair);
    if (blank_lines_) result.repairs.emplace_back("removed blank lines");
    if (trailing == "\n") {
      result.repairs.emplace_back("removed trailing newline");
    } else if (!trailing.empty()) {
      result.repairs.emplace_back("removed trailing blank lines and whitespace");
    }
    return result;
  }

 private:
  int LineAt(size_t pos) const {
    if (work_.lines.empty()) return 1;
    if (pos >= work_.lines.size()) return work_.lines.back();
    return work_.lines[pos];
  }

  // Parses one block at `*pos` (which is at "-----BEGIN ").
  absl::Status ParseBlock(size_t* pos) {
    Block block;
    const size_t begin = *pos;
    block.begin_line = LineAt(begin);
    const size_t label_start = begin + kBegin.size();
    const size_t label_end = text_.find(kDashes, label_start);
    if (label_end == absl::string_view::npos ||
        text_.substr(label_start, label_end - label_start).find('\n') != absl::string_view::npos) {
      return LineError(block.begin_line, "malformed -----BEGIN line (no closing -----)");
    }
    block.label = std::string(text_.substr(label_start, label_end - label_start));
    if (!IsValidLabel(block.label)) {
      return LineError(block.begin_line, absl::StrCat("malformed -----BEGIN line (label \"",
                                                      EscapeForMessage(block.label, 40), "\")"));
    }
    const size_t body_start = label_end + kDashes.size();
    const size_t end = text_.find(kEnd, body_start);
    const size_t next_begin = text_.find(kBegin, body_start);
    if (end == absl::string_view::npos || next_begin < end) {
      return LineError(
          block.begin_line,
          absl::StrCat("BEGIN ", block.label, " has no matching -----END line (truncated block?)"));
    }
    const size_t end_label_start = end + kEnd.size();
    const size_t end_label_end = text_.find(kDashes, end_label_start);
    if (end_label_end == absl::string_view::npos ||
        text_.substr(end_label_start, end_label_end - end_label_start).find('\n') !=
            absl::string_view::npos) {
      return LineError(LineAt(end), "malformed -----END line (no closing -----)");
    }
    absl::string_view end_label = text_.substr(end_label_start, end_label_end - end_label_start);
    if (end_label != block.label) {
      return LineError(LineAt(end), absl::StrCat("END ", EscapeForMessage(end_label, 40),
                                                 " does not match BEGIN ", block.label, " (line ",
                                                 block.begin_line, ")"));
    }
    *pos = end_label_end + kDashes.size();

    // The body: base64 and whitespace only.
    absl::string_view body = text_.substr(body_start, end - body_start);
    std::string b64;
    b64.reserve(body.size());
    for (size_t i = 0; i < body.size(); ++i) {
      const char c = body[i];
      if (IsSpaceOrNewline(c)) continue;
      if (!IsB64Char(c)) {
        std::string what = absl::StrCat("invalid base64 character in ", block.label, " block");
        if (!IsKeyLabel(block.label) && kind_ == PemKind::kCertificates) {
          what =
              absl::StrCat("invalid base64 character ", DescribeByte(static_cast<unsigned char>(c)),
                           " in ", block.label, " block");
        }
        return LineError(LineAt(body_start + i), what);
      }
      b64.push_back(c);
    }
    if (b64.empty()) {
      return LineError(block.begin_line, absl::StrCat(block.label, " block is empty"));
    }
    if (b64.size() % 4 != 0 || !B64Decode(b64, &block.der)) {
      return LineError(block.begin_line,
                       absl::StrCat(block.label, " block's base64 is truncated or malformed (",
                                    b64.size(), " characters)"));
    }
    const std::string canonical_b64 = B64Encode(block.der);
    if (canonical_b64 != b64) {
      return LineError(block.begin_line,
                       absl::StrCat(block.label, " block's base64 is not canonical"));
    }
    block.canonical = absl::StrCat(kBegin, block.label, kDashes, "\n");
    const std::vector<absl::string_view> wrapped = Wrap(canonical_b64);
    for (absl::string_view line : wrapped) absl::StrAppend(&block.canonical, line, "\n");
    absl::StrAppend(&block.canonical, kEnd, block.label, kDashes);

    // How the body was laid out.
    const std::vector<absl::string_view> tokens = Tokens(body, /*newline_only=*/false);
    std::vector<absl::string_view> lines = Tokens(body, /*newline_only=*/true);
    bool inner_spaces = false;
    std::vector<std::string> effective;
    for (absl::string_view line : lines) {
      std::string joined;
      size_t first = 0;
      size_t last = line.size();
      while (first < last && IsBlank(line[first])) ++first;
      while (last > first && IsBlank(line[last - 1])) --last;
      for (size_t i = first; i < last; ++i) {
        if (IsBlank(line[i])) {
          inner_spaces = true;
        } else {
          joined.push_back(line[i]);
        }
      }
      if (!joined.empty()) effective.push_back(std::move(joined));
    }
    const bool begin_shares_line = !body.empty() && body.front() != '\n' &&
                                   !Tokens(body.substr(0, body.find('\n')), false).empty();
    const size_t last_newline = body.rfind('\n');
    const bool end_shares_line =
        !Tokens(last_newline == absl::string_view::npos ? body : body.substr(last_newline + 1),
                false)
             .empty();
    if (begin_shares_line || end_shares_line || (inner_spaces && LooksLikeWrappedLines(tokens))) {
      spaces_for_newlines_ = true;
      effective.clear();
      for (absl::string_view token : tokens) effective.emplace_back(token);
    } else if (inner_spaces) {
      stray_spaces_ = true;
    }
    if (effective.size() != wrapped.size() ||
        !std::equal(effective.begin(), effective.end(), wrapped.begin())) {
      rewrapped_ = true;
    }
    blocks_.push_back(std::move(block));
    return absl::OkStatus();
  }

  // Leading/trailing spaces and blank lines, over everything before the
  // trailing part. Also spots blocks that share a line.
  void AnalyzeLines(size_t last_end) {
    absl::string_view text = text_.substr(0, last_end);
    size_t start = 0;
    while (start <= text.size()) {
      size_t nl = text.find('\n', start);
      if (nl == absl::string_view::npos) nl = text.size();
      absl::string_view line = text.substr(start, nl - start);
      size_t first = 0;
      while (first < line.size() && IsBlank(line[first])) ++first;
      if (first == line.size()) {
        // A whitespace-only line; the last piece before the trailing part
        // is not a line of its own.
        if (nl < text.size() || !line.empty()) blank_lines_ = true;
      } else {
        if (first > 0) leading_spaces_ = true;
        if (IsBlank(line.back())) trailing_spaces_ = true;
        // "-----END X----- -----BEGIN Y-----" on one line.
        const size_t end_marker = line.find(kEnd);
        if (end_marker != absl::string_view::npos &&
            line.find(kBegin, end_marker) != absl::string_view::npos) {
          spaces_for_newlines_ = true;
        }
      }
      if (nl == text.size()) break;
      start = nl + 1;
    }
  }

  const WorkText& work_;
  absl::string_view text_;
  PemKind kind_;
  std::vector<Block> blocks_;
  bool leading_spaces_ = false;
  bool trailing_spaces_ = false;
  bool spaces_for_newlines_ = false;
  bool stray_spaces_ = false;
  bool rewrapped_ = false;
  bool blank_lines_ = false;
};

}  // namespace

absl::StatusOr<NormalizedPem> NormalizePem(absl::string_view input, PemKind kind) {
  absl::StatusOr<WorkText> work = Prepare(input);
  if (!work.ok()) return work.status();
  return Normalizer(*work, kind).Run();
}

bool ModemAcceptsCertificatePem(absl::string_view content, const ModemPemCheckOptions& options) {
  std::string text(content);
  if (text.find('\r') != std::string::npos) {
    if (!options.accept_crlf) return false;
    // Every CR must start a CRLF.
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\r' && (i + 1 == text.size() || text[i + 1] != '\n')) return false;
    }
    text = absl::StrReplaceAll(text, {{"\r\n", "\n"}});
  }
  if (!text.empty() && text.back() == '\n') text.pop_back();
  // One blank line between certificates is tolerated (nrfcloud-utils joins
  // CA certificates that way).
  text = absl::StrReplaceAll(text, {{"-----\n\n-----BEGIN ", "-----\n-----BEGIN "}});
  absl::StatusOr<NormalizedPem> normalized = NormalizePem(text, PemKind::kCertificates);
  if (!normalized.ok()) return false;
  // Any line width is well-formed (RFC 7468; mbedTLS reads any): the only
  // repair allowed is our own re-wrapping at 64 columns. Anything else
  // (leading or stray spaces, spaces for newlines, literal \n, blank lines,
  // trailing garbage) is a malformed PEM.
  for (const std::string& repair : normalized->repairs) {
    if (repair != kRewrapRepair) return false;
  }
  return normalized->repairs.empty() ? normalized->content == text : true;
}

bool SummarizeCertificatePem(absl::string_view pem, PemCertSummary* out) {
  absl::StatusOr<pki::CertificateInfo> info = pki::ParseCertificate(pem);
  if (!info.ok()) {
    absl::StatusOr<NormalizedPem> normalized = NormalizePem(pem, PemKind::kCertificates);
    if (!normalized.ok()) return false;
    info = pki::ParseCertificate(normalized->content);
    if (!info.ok()) return false;
  }
  out->subject = info->subject;
  out->issuer = info->issuer;
  out->not_after_unix = absl::ToUnixSeconds(info->not_after);
  return true;
}

}  // namespace atbridge::at
