#include "common/at/transcript_text.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/at/credential_types.h"

namespace atbridge::at {

namespace {

constexpr absl::string_view kCmng = "%CMNG";

bool IsEditByte(char c) { return c == '\b' || c == 0x7f; }

}  // namespace

std::string StreamRedactor::Feed(absl::string_view bytes) {
  std::string out;
  for (char c : bytes) {
    const bool ends_line = !in_quotes_ && (c == '\r' || c == '\n');
    if (holding_) {
      if (ends_line) {
        out += Flush();
        out.push_back(c);
        continue;
      }
      if (c == '"') in_quotes_ = !in_quotes_;
      if (IsEditByte(c) || c == '\0') edited_ = true;
      if (held_.size() < max_hold_) {
        held_.push_back(c);
      } else {
        ++overflow_bytes_;
      }
      continue;
    }
    if (ends_line) {
      out += candidate_;
      candidate_.clear();
      out.push_back(c);
      line_.clear();
      continue;
    }
    // The line as the modem's framer will see it (common/at/command_parser.h):
    // BS and DEL erase, also inside quotes, without touching the quote state;
    // NUL outside quotes is dropped. So "%CMX<BS>NG" is caught too.
    const bool was_in_quotes = in_quotes_;
    if (IsEditByte(c)) {
      if (!line_.empty()) line_.pop_back();
    } else {
      if (c == '"') in_quotes_ = !in_quotes_;
      if (c != '\0' || in_quotes_) line_.push_back(c);
    }
    if (line_.size() > 2 * kMaxTrackedLine) {
      const size_t drop = line_.size() - kMaxTrackedLine;
      line_.erase(0, drop);
      candidate_at_ = candidate_at_ >= drop ? candidate_at_ - drop : 0;
    }
    // A '%' outside quotes may start "%CMNG": its bytes wait (so a write's
    // echo stays one piece) while the edited line still spells a prefix.
    if (candidate_.empty() && c == '%' && !was_in_quotes) candidate_at_ = line_.size() - 1;
    if (!candidate_.empty() || (c == '%' && !was_in_quotes)) {
      candidate_.push_back(c);
      const bool prefix =
          line_.size() > candidate_at_ && line_[candidate_at_] == '%' &&
          line_.size() - candidate_at_ <= kCmng.size() &&
          absl::StartsWithIgnoreCase(kCmng, absl::string_view(line_).substr(candidate_at_));
      if (!prefix) {
        out += candidate_;
        candidate_.clear();
      } else if (line_.size() - candidate_at_ == kCmng.size()) {
        holding_ = true;
        synthetic_prefix_ = false;
        edited_ = absl::StrContains(candidate_, '\b') || absl::StrContains(candidate_, '\x7f') ||
                  absl::StrContains(candidate_, '\0');
        held_ = std::move(candidate_);
        candidate_.clear();
      }
      continue;
    }
    out.push_back(c);
    if (!in_quotes_ && line_.size() >= kCmng.size() &&
        absl::EqualsIgnoreCase(absl::string_view(line_).substr(line_.size() - kCmng.size()),
                               kCmng)) {
      // Spelled by edits after its bytes went out: hold what follows.
      holding_ = true;
      synthetic_prefix_ = true;
      edited_ = false;
    }
  }
  return out;
}

std::string StreamRedactor::Flush() {
  std::string out = std::move(candidate_);
  candidate_.clear();
  if (holding_) {
    if (edited_) {
      // Erased or NUL bytes in the command: what the modem executes cannot
      // be read off the bytes with certainty, so none of it is shown.
      absl::StrAppend(&out, "<redacted ", held_.size(), " bytes of an edited line>");
    } else if (synthetic_prefix_) {
      // The command name was released already; redact what follows it.
      absl::StrAppend(&out, RedactSecrets(absl::StrCat(kCmng, held_)).substr(kCmng.size()));
    } else {
      absl::StrAppend(&out, RedactSecrets(held_));
    }
    if (overflow_bytes_ > 0) {
      absl::StrAppend(&out, "<withheld ", overflow_bytes_, " bytes of an overlong line>");
    }
  }
  holding_ = false;
  edited_ = false;
  held_.clear();
  overflow_bytes_ = 0;
  // Whatever comes next starts a new line (e.g. after the port was lost).
  in_quotes_ = false;
  line_.clear();
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
