#include "common/at/transcript_text.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/at/credential_types.h"

namespace atbridge::at {

namespace {

constexpr absl::string_view kCmng = "%CMNG";

}  // namespace

std::string StreamRedactor::Feed(absl::string_view bytes) {
  std::string out;
  for (char c : bytes) {
    const bool ends_line = !in_quotes_ && (c == '\r' || c == '\n');
    if (c == '"') in_quotes_ = !in_quotes_;
    if (ends_line) in_quotes_ = false;
    if (holding_) {
      if (ends_line) {
        out += Flush();
        out.push_back(c);
      } else if (held_.size() < max_hold_) {
        held_.push_back(c);
      } else {
        ++overflow_bytes_;
      }
      continue;
    }
    if (!candidate_.empty()) {
      candidate_.push_back(c);
      if (!absl::StartsWithIgnoreCase(kCmng, candidate_)) {
        // Not "%CMNG" after all: release it and look at `c` again below.
        candidate_.pop_back();
        out += candidate_;
        candidate_.clear();
      } else {
        if (candidate_.size() == kCmng.size()) {
          holding_ = true;
          held_ = std::move(candidate_);
          candidate_.clear();
        }
        continue;
      }
    }
    // The quote state already counts `c`: a '%' that starts a command is one
    // that was outside quotes before it, and '%' does not change it.
    if (c == '%' && !in_quotes_) {
      candidate_.push_back(c);
      continue;
    }
    out.push_back(c);
  }
  return out;
}

std::string StreamRedactor::Flush() {
  std::string out = std::move(candidate_);
  candidate_.clear();
  if (holding_) {
    absl::StrAppend(&out, RedactSecrets(held_));
    if (overflow_bytes_ > 0) {
      absl::StrAppend(&out, "<withheld ", overflow_bytes_, " bytes of an overlong line>");
    }
  }
  holding_ = false;
  held_.clear();
  overflow_bytes_ = 0;
  return out;
}

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

}  // namespace atbridge::at
