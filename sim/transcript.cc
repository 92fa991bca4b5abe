#include "sim/transcript.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/at/credential_types.h"
#include "common/status/errors.h"

namespace atbridge::sim {
namespace {

// A held line that may carry a secret: anything mentioning %CMNG.
bool MayHoldSecret(absl::string_view text) {
  for (size_t i = 0; i + 5 <= text.size(); ++i) {
    if (text[i] == '%' && absl::EqualsIgnoreCase(text.substr(i, 5), "%CMNG")) return true;
  }
  return false;
}

}  // namespace

std::string EscapeBytes(absl::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() + 8);
  for (char ch : bytes) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '\r':
        out += "\\r";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      default:
        if (c >= 0x20 && c < 0x7f) {
          out.push_back(ch);
        } else {
          absl::StrAppendFormat(&out, "\\x%02x", c);
        }
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Transcript>> Transcript::Open(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "ae");
  if (f == nullptr) return PosixError(errno, absl::StrCat("open transcript ", path));
  return std::unique_ptr<Transcript>(new Transcript(f));
}

Transcript::~Transcript() {
  if (file_ != nullptr) std::fclose(file_);
}

void Transcript::Record(int modem, absl::string_view direction, absl::string_view bytes) {
  std::string line =
      absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone()),
                   " modem", modem, " ", direction, " \"", EscapeBytes(bytes), "\"\n");
  std::fwrite(line.data(), 1, line.size(), file_);
  std::fflush(file_);
}

std::string TranscriptRxFilter::Summary() const {
  size_t keep = std::min<size_t>(held_.find('"'), 64);
  keep = std::min(keep, held_.size());
  return absl::StrCat(absl::string_view(held_).substr(0, keep), "<withheld ",
                      overlong_bytes_ - keep, " bytes of an overlong line>");
}

std::string TranscriptRxFilter::Append(absl::string_view chunk) {
  std::string out;
  for (char c : chunk) {
    if (c == '"') in_quotes_ = !in_quotes_;
    bool terminator = !in_quotes_ && (c == '\r' || c == '\n');
    if (overlong_) {
      if (terminator) {
        out += Summary();
        out.push_back(c);
        held_.clear();
        overlong_ = false;
        overlong_bytes_ = 0;
      } else {
        ++overlong_bytes_;
      }
      continue;
    }
    if (terminator) {
      std::string line = at::RedactSecrets(held_);
      if (absl::StrContains(line, "PRIVATE KEY")) {
        // Belt and braces: a key form RedactSecrets did not recognise (e.g.
        // inside a ';' chain) is withheld from its first quote on.
        size_t quote = std::min(line.find('"'), line.size());
        line = absl::StrCat(line.substr(0, quote), "<withheld ", line.size() - quote, " bytes>");
      }
      out += line;
      out.push_back(c);
      held_.clear();
      continue;
    }
    held_.push_back(c);
    if (held_.size() > max_hold_) {
      overlong_ = true;
      overlong_bytes_ = held_.size();
      held_.resize(64);  // Enough for Summary().
    }
  }
  return out;
}

std::string TranscriptRxFilter::Flush() {
  std::string out;
  if (overlong_) {
    out = Summary();
  } else if (!held_.empty()) {
    // An unterminated line: whole-line redaction is impossible, so a line
    // that may carry a secret keeps only its text up to the first quote.
    if (MayHoldSecret(held_)) {
      size_t quote = std::min(held_.find('"'), held_.size());
      out = absl::StrCat(absl::string_view(held_).substr(0, quote), "<withheld ",
                         held_.size() - quote, " bytes of an unterminated line>");
    } else {
      out = held_;
    }
  }
  held_.clear();
  in_quotes_ = false;
  overlong_ = false;
  overlong_bytes_ = 0;
  return out;
}

}  // namespace atbridge::sim
