#include "agent/modem/transcript.h"

#include <cerrno>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/at/credential_types.h"
#include "common/status/errors.h"

namespace atbridge::agent {

std::string EscapeBytes(absl::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (unsigned char c : bytes) {
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
      default:
        if (c < 0x20 || c >= 0x7f) {
          absl::StrAppendFormat(&out, "\\x%02x", c);
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  return out;
}

namespace {

constexpr absl::string_view kCmng = "%CMNG";

}  // namespace

std::string RxRedactor::Feed(absl::string_view bytes) {
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

std::string RxRedactor::Flush() {
  std::string out = std::move(candidate_);
  candidate_.clear();
  if (holding_) {
    absl::StrAppend(&out, at::RedactSecrets(held_));
    if (overflow_bytes_ > 0) {
      absl::StrAppend(&out, "<withheld ", overflow_bytes_, " bytes of an overlong line>");
    }
  }
  holding_ = false;
  held_.clear();
  overflow_bytes_ = 0;
  return out;
}

absl::StatusOr<std::unique_ptr<Transcript>> Transcript::Open(const std::string& path,
                                                             const std::string& port,
                                                             Clock& clock) {
  std::ofstream out(path, std::ios::app | std::ios::binary);
  if (!out) return PosixError(errno, absl::StrCat("open transcript ", path));
  return std::unique_ptr<Transcript>(new Transcript(std::move(out), port, clock));
}

Transcript::Transcript(std::ofstream out, std::string port, Clock& clock)
    : out_(std::move(out)),
      port_(std::move(port)),
      clock_(clock),
      // Large enough for any credential write, so it is always redacted whole.
      tx_framer_(at::CommandFramerOptions{.max_command_bytes = 1 << 20}) {}

void Transcript::Write(char direction, absl::string_view text) {
  out_ << absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", clock_.Now(), absl::UTCTimeZone()) << ' '
       << port_ << ' ' << direction << ' ' << text << '\n';
  out_.flush();
}

void Transcript::RecordTx(absl::string_view bytes) {
  std::vector<at::FramerEvent> events;
  tx_framer_.Feed(bytes, &events);
  for (const auto& e : events) {
    if (e.type == at::FramerEvent::Type::kCommand) {
      Write('>', EscapeBytes(at::RedactSecrets(e.command)));
    } else {
      Write('>', absl::StrCat("<", e.bytes, "-byte command over the modem buffer, not shown>"));
    }
  }
}

void Transcript::RecordRx(absl::string_view bytes) { Write('<', EscapeBytes(bytes)); }

void Transcript::RecordEvent(absl::string_view text) { Write('#', text); }

}  // namespace atbridge::agent
