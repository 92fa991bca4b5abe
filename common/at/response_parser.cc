#include "common/at/response_parser.h"

#include <cstdint>
#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace atbridge::at {

namespace {

// Bytes of an overflowing line kept for the kOverflow event.
constexpr size_t kOverflowHeadBytes = 64;

bool StartsWithAny(absl::string_view line, const std::vector<std::string>& prefixes) {
  for (const std::string& prefix : prefixes) {
    if (!prefix.empty() && absl::StartsWith(line, prefix)) return true;
  }
  return false;
}

// "+XYZ: ...", "%XYZ: ...", "#XYZ: ..." (a name of letters, digits or '_'
// followed by ':').
bool LooksLikeUrc(absl::string_view line) {
  if (line.size() < 3) return false;
  if (line[0] != '+' && line[0] != '%' && line[0] != '#') return false;
  size_t i = 1;
  while (i < line.size() &&
         (absl::ascii_isalnum(static_cast<unsigned char>(line[i])) || line[i] == '_')) {
    ++i;
  }
  return i > 1 && i < line.size() && line[i] == ':';
}

// Parses the text after "+CME ERROR:" / "+CMS ERROR:". Returns true with the
// number in `code` when it is a (space-padded) non-negative decimal integer.
bool ParseErrorCode(absl::string_view rest, int* code) {
  rest = absl::StripAsciiWhitespace(rest);
  if (rest.empty() || rest.size() > 9) return false;
  int value = 0;
  for (char c : rest) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + (c - '0');
  }
  *code = value;
  return true;
}

}  // namespace

FinalResult ParseFinalResult(absl::string_view line) {
  FinalResult result;
  static constexpr absl::string_view kCme = "+CME ERROR:";
  static constexpr absl::string_view kCms = "+CMS ERROR:";
  if (line == "OK") {
    result.kind = FinalKind::kOk;
  } else if (line == "ERROR") {
    result.kind = FinalKind::kError;
  } else if (absl::StartsWith(line, kCme)) {
    int code = 0;
    if (ParseErrorCode(line.substr(kCme.size()), &code)) {
      result.kind = FinalKind::kCmeError;
      result.code = code;
    } else {
      // Text, or nothing at all: still a final error (never left hanging).
      result.kind = FinalKind::kCmeText;
    }
  } else if (absl::StartsWith(line, kCms)) {
    // A textual CMS error keeps code 0; the raw line says what it was.
    int code = 0;
    result.kind = FinalKind::kCmsError;
    if (ParseErrorCode(line.substr(kCms.size()), &code)) result.code = code;
  } else {
    return result;
  }
  result.line = std::string(line);
  return result;
}

ResponseParser::ResponseParser(ResponseParserOptions options) : options_(std::move(options)) {
  if (options_.max_line_bytes == 0) options_.max_line_bytes = 1;
}

void ResponseParser::BeginCommand(CommandExpectation expectation) {
  // A caller that forgot to complete or abandon the previous command gets
  // the safe behaviour: the previous command still owns its reply.
  if (in_flight_) Abandon();
  expectation_ = std::move(expectation);
  current_ = Response();
  in_flight_ = true;
  echo_pending_ = !expectation_.echo.empty();
}

void ResponseParser::Abandon() {
  if (!in_flight_) return;
  in_flight_ = false;
  ++abandoned_;
  abandoned_prefixes_.push_back(std::move(expectation_.info_prefixes));
  expectation_ = CommandExpectation();
  current_ = Response();
  echo_pending_ = false;
}

void ResponseParser::Reset() {
  line_.clear();
  in_quotes_ = false;
  overflowing_ = false;
  overflow_bytes_ = 0;
  overflow_head_.clear();
  nul_bytes_ = 0;
  in_flight_ = false;
  abandoned_ = 0;
  abandoned_prefixes_.clear();
  expectation_ = CommandExpectation();
  current_ = Response();
  echo_pending_ = false;
}

bool ResponseParser::command_in_flight() const { return in_flight_; }

bool ResponseParser::draining() const { return abandoned_ > 0; }

void ResponseParser::Feed(absl::string_view bytes, std::vector<ParserEvent>* out) {
  for (char c : bytes) {
    if (c == '\0') {
      // Counted as garbage and dropped; never ends a line or a string.
      if (overflowing_) {
        ++overflow_bytes_;
      } else {
        ++nul_bytes_;
      }
      continue;
    }
    if (overflowing_) {
      if (c == '\r' || c == '\n') {
        EndLine(out);
      } else {
        ++overflow_bytes_;
      }
      continue;
    }
    if ((c == '\r' || c == '\n') && !in_quotes_) {
      EndLine(out);
      continue;
    }
    if (line_.size() >= options_.max_line_bytes) {
      // Over the cap: report once at the next terminator. The quote state is
      // reset so that a runaway odd quote cannot swallow every terminator.
      overflowing_ = true;
      overflow_head_ = line_.substr(0, kOverflowHeadBytes);
      overflow_bytes_ = line_.size() + 1;
      line_.clear();
      in_quotes_ = false;
      continue;
    }
    if (c == '"') in_quotes_ = !in_quotes_;
    line_.push_back(c);
    if (in_flight_ && expectation_.expect_prompt && !in_quotes_ && line_ == "> ") {
      line_.clear();
      expectation_.expect_prompt = false;  // One prompt per command.
      ParserEvent event{ParserEvent::Type::kPrompt};
      out->push_back(std::move(event));
    }
  }
}

void ResponseParser::EndLine(std::vector<ParserEvent>* out) {
  if (nul_bytes_ > 0) {
    ParserEvent event{ParserEvent::Type::kGarbage};
    event.bytes = nul_bytes_;
    out->push_back(std::move(event));
    nul_bytes_ = 0;
  }
  in_quotes_ = false;
  if (overflowing_) {
    ParserEvent event{ParserEvent::Type::kOverflow};
    event.line = std::move(overflow_head_);
    event.bytes = overflow_bytes_;
    out->push_back(std::move(event));
    overflowing_ = false;
    overflow_bytes_ = 0;
    overflow_head_.clear();
    line_.clear();
    return;
  }
  if (line_.empty()) return;  // Empty lines (and the LF of CRLF) are skipped.
  std::string line;
  line.swap(line_);
  OnLine(std::move(line), out);
}

void ResponseParser::OnLine(std::string line, std::vector<ParserEvent>* out) {
  FinalResult final = ParseFinalResult(line);

  // An abandoned command still owns its reply, up to its final result.
  if (abandoned_ > 0) {
    const std::vector<std::string>& prefixes = abandoned_prefixes_.front();
    if (final.kind != FinalKind::kNone) {
      --abandoned_;
      abandoned_prefixes_.pop_front();
    } else if (!StartsWithAny(line, prefixes) && StartsWithAny(line, options_.urc_prefixes)) {
      ParserEvent event{ParserEvent::Type::kUrc};
      event.line = std::move(line);
      out->push_back(std::move(event));
      return;
    }
    ParserEvent event{ParserEvent::Type::kStale};
    event.line = std::move(line);
    out->push_back(std::move(event));
    return;
  }

  if (in_flight_) {
    if (echo_pending_ && line == expectation_.echo) {
      echo_pending_ = false;  // E1: the modem repeated the command.
      return;
    }
    if (final.kind != FinalKind::kNone) {
      current_.final = std::move(final);
      in_flight_ = false;
      echo_pending_ = false;
      ParserEvent event{ParserEvent::Type::kComplete};
      event.response = std::move(current_);
      current_ = Response();
      expectation_ = CommandExpectation();
      out->push_back(std::move(event));
      return;
    }
    if (StartsWithAny(line, expectation_.info_prefixes) ||
        !StartsWithAny(line, options_.urc_prefixes)) {
      echo_pending_ = false;
      current_.lines.push_back(std::move(line));
      return;
    }
    ParserEvent event{ParserEvent::Type::kUrc};
    event.line = std::move(line);
    out->push_back(std::move(event));
    return;
  }

  // Idle.
  if (final.kind == FinalKind::kNone &&
      (StartsWithAny(line, options_.urc_prefixes) || LooksLikeUrc(line))) {
    ParserEvent event{ParserEvent::Type::kUrc};
    event.line = std::move(line);
    out->push_back(std::move(event));
    return;
  }
  ParserEvent event{ParserEvent::Type::kGarbage};
  event.bytes = line.size();
  event.line = std::move(line);
  out->push_back(std::move(event));
}

}  // namespace atbridge::at
