#include "common/at/command_parser.h"

#include <limits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/at/byte_text.h"

namespace atbridge::at {

namespace {

// sdk-nrf lib/at_host/at_host.c, uart_rx_handler(): a command is sent only
// if it has a byte above ' ' ("*c > ' '" on an unsigned ARM char, so bytes
// from 0x80 up count too).
bool HasPrintable(absl::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) > 0x20) return true;
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------
// CommandFramer

CommandFramer::CommandFramer(CommandFramerOptions options) : options_(options) {}

void CommandFramer::Feed(absl::string_view bytes, std::vector<FramerEvent>* out) {
  for (char c : bytes) {
    const bool terminator = c == '\r' || c == '\n';
    if (overflowing_) {
      // Discarding the rest of an over-long command (already reported) up to
      // its terminator outside quotes. Quotes are tracked in the discarded
      // bytes, so a PEM's own newlines never end the discard and its closing
      // quote does not start a quote that would swallow the next command.
      if (c == '"') {
        in_quotes_ = !in_quotes_;
      } else if (terminator && !in_quotes_) {
        overflowing_ = false;
      }
      continue;
    }
    if (c == '\b' || c == 0x7f) {
      // at_host.c: BS and DEL drop the previous byte, inside quotes too, and
      // do not touch the quote state ("if (at_cmd_len > 0) at_cmd_len--;"):
      // erasing a '"' leaves the host inside (or outside) quotes.
      if (!buf_.empty()) buf_.pop_back();
      continue;
    }
    if (!in_quotes_) {
      if (c == '\0') continue;  // at_host.c: "Ignored null; would terminate string early."
      if (terminator) {
        // CRLF: the LF ends an empty line, which produces no event.
        // at_host.c sends the buffer with "%s": a NUL kept inside quotes
        // ends the command there.
        const size_t nul = buf_.find('\0');
        if (nul != std::string::npos) buf_.resize(nul);
        if (HasPrintable(buf_)) {
          FramerEvent event{FramerEvent::Type::kCommand};
          event.command = std::move(buf_);
          out->push_back(std::move(event));
        }
        buf_.clear();
        continue;
      }
    }
    if (buf_.size() >= options_.max_command_bytes) {
      // One report, at the cap (SLM answers ERROR there too), so a runaway
      // quote is an error and never a hang. The quote state carries on into
      // the discarded bytes.
      FramerEvent event{FramerEvent::Type::kOverflow};
      event.bytes = buf_.size() + 1;
      out->push_back(std::move(event));
      overflowing_ = true;
      buf_.clear();
      if (c == '"') in_quotes_ = !in_quotes_;
      continue;
    }
    if (c == '"') in_quotes_ = !in_quotes_;
    buf_.push_back(c);
  }
}

size_t CommandFramer::pending_bytes() const { return buf_.size(); }

void CommandFramer::Reset() {
  buf_.clear();
  in_quotes_ = false;
  overflowing_ = false;
}

// ---------------------------------------------------------------------------
// ParseCommandLine

namespace {

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

bool IsNameChar(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_'; }

class LineParser {
 public:
  explicit LineParser(absl::string_view line) : line_(line) {}

  absl::StatusOr<std::vector<AtCommand>> Parse() {
    // Outer whitespace is not part of the command.
    size_t begin = 0;
    size_t end = line_.size();
    while (begin < end && IsOuterSpace(line_[begin])) ++begin;
    while (end > begin && IsOuterSpace(line_[end - 1])) --end;
    pos_ = begin;
    end_ = end;
    if (end_ - pos_ < 2 || absl::AsciiStrToUpper(line_.substr(pos_, 2)) != "AT") {
      return Error("command line must start with \"AT\"");
    }
    pos_ += 2;
    std::vector<AtCommand> commands;
    if (pos_ == end_) {
      commands.emplace_back();  // Bare "AT".
      return commands;
    }
    while (true) {
      absl::StatusOr<AtCommand> command = ParseOne();
      if (!command.ok()) return command.status();
      commands.push_back(*std::move(command));
      if (pos_ == end_) break;
      if (line_[pos_] == ';') {
        ++pos_;
        if (pos_ == end_) break;  // A trailing ';' ends the line.
        continue;
      }
      // Basic commands may follow each other without ';' (ATE0V1).
      if (commands.back().name.empty() || commands.back().name[0] == '+' ||
          commands.back().name[0] == '%' || commands.back().name[0] == '#') {
        return Error(absl::StrCat("unexpected ", DescribeByte(Byte()), " after command"));
      }
    }
    return commands;
  }

 private:
  static bool IsOuterSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

  unsigned char Byte() const { return static_cast<unsigned char>(line_[pos_]); }

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("AT command line byte ", pos_, ": ", what));
  }

  absl::StatusOr<AtCommand> ParseOne() {
    AtCommand command;
    while (pos_ < end_ && IsSpace(line_[pos_])) ++pos_;
    if (pos_ == end_) return Error("missing command after ';'");
    const char c = line_[pos_];
    if (c == '+' || c == '%' || c == '#') {
      const size_t start = pos_++;
      while (pos_ < end_ && IsNameChar(line_[pos_])) ++pos_;
      if (pos_ - start < 2) return Error("malformed command name (no letters after prefix)");
      command.name = absl::AsciiStrToUpper(line_.substr(start, pos_ - start));
      return ParseSuffix(std::move(command));
    }
    if (absl::ascii_isalpha(static_cast<unsigned char>(c)) || c == '&') {
      // V.250 basic command: a letter (or &letter), optional digits, e.g. E0,
      // Z, &F; S-registers Sn? / Sn=v.
      const size_t start = pos_++;
      if (c == '&') {
        if (pos_ >= end_ || !absl::ascii_isalpha(static_cast<unsigned char>(line_[pos_]))) {
          return Error("malformed basic command after '&'");
        }
        ++pos_;
      }
      const bool s_register = (c == 'S' || c == 's');
      if (s_register) {
        const size_t digits = pos_;
        while (pos_ < end_ && absl::ascii_isdigit(static_cast<unsigned char>(line_[pos_]))) ++pos_;
        if (pos_ == digits) return Error("S-register needs a number");
        command.name = absl::AsciiStrToUpper(line_.substr(start, pos_ - start));
        return ParseSuffix(std::move(command));
      }
      command.name = absl::AsciiStrToUpper(line_.substr(start, pos_ - start));
      const size_t digits = pos_;
      while (pos_ < end_ && absl::ascii_isdigit(static_cast<unsigned char>(line_[pos_]))) ++pos_;
      if (pos_ > digits) {
        AtParam param;
        if (!ParseNumber(line_.substr(digits, pos_ - digits), &param.number)) {
          return Error("number out of range");
        }
        param.kind = AtParam::Kind::kNumber;
        command.type = AtCommand::Type::kSet;
        command.params.push_back(std::move(param));
      }
      return command;
    }
    return Error(absl::StrCat("malformed command name (starts with ", DescribeByte(Byte()), ")"));
  }

  // After an extended name (or S-register): nothing, "?", "=?" or "=params".
  absl::StatusOr<AtCommand> ParseSuffix(AtCommand command) {
    if (pos_ == end_ || line_[pos_] == ';') {
      command.type = AtCommand::Type::kAction;
      return command;
    }
    if (line_[pos_] == '?') {
      ++pos_;
      command.type = AtCommand::Type::kRead;
      return ExpectCommandEnd(std::move(command));
    }
    if (line_[pos_] != '=') {
      return Error(absl::StrCat("unexpected ", DescribeByte(Byte()), " after command name"));
    }
    ++pos_;
    if (pos_ < end_ && line_[pos_] == '?') {
      ++pos_;
      command.type = AtCommand::Type::kTest;
      return ExpectCommandEnd(std::move(command));
    }
    command.type = AtCommand::Type::kSet;
    absl::Status status = ParseParams(&command.params);
    if (!status.ok()) return status;
    return command;
  }

  absl::StatusOr<AtCommand> ExpectCommandEnd(AtCommand command) {
    while (pos_ < end_ && IsSpace(line_[pos_])) ++pos_;
    if (pos_ != end_ && line_[pos_] != ';') {
      return Error(absl::StrCat("unexpected ", DescribeByte(Byte()), " after ",
                                command.type == AtCommand::Type::kRead ? "'?'" : "'=?'"));
    }
    return command;
  }

  // Parameters up to ';' or the end. "AT+X=" has none; "AT+X=," has two
  // empty ones.
  absl::Status ParseParams(std::vector<AtParam>* params) {
    while (pos_ < end_ && IsSpace(line_[pos_])) ++pos_;
    if (pos_ == end_ || line_[pos_] == ';') return absl::OkStatus();
    while (true) {
      AtParam param;
      absl::Status status = ParseParam(&param);
      if (!status.ok()) return status;
      params->push_back(std::move(param));
      if (pos_ < end_ && line_[pos_] == ',') {
        ++pos_;
        continue;
      }
      return absl::OkStatus();  // At the end or at ';'.
    }
  }

  absl::Status ParseParam(AtParam* param) {
    while (pos_ < end_ && IsSpace(line_[pos_])) ++pos_;
    if (pos_ < end_ && line_[pos_] == '"') {
      const size_t open = pos_++;
      const size_t close = line_.find('"', pos_);
      if (close == absl::string_view::npos || close >= end_) {
        pos_ = open;
        return Error("unterminated quoted string");
      }
      param->kind = AtParam::Kind::kString;
      param->text = std::string(line_.substr(pos_, close - pos_));
      pos_ = close + 1;
      while (pos_ < end_ && IsSpace(line_[pos_])) ++pos_;
      if (pos_ < end_ && line_[pos_] != ',' && line_[pos_] != ';') {
        return Error(absl::StrCat("unexpected ", DescribeByte(Byte()), " after quoted string"));
      }
      return absl::OkStatus();
    }
    const size_t start = pos_;
    while (pos_ < end_ && line_[pos_] != ',' && line_[pos_] != ';') {
      const unsigned char c = Byte();
      if (c == '"') return Error("quote inside an unquoted parameter");
      if (c < 0x20 || c > 0x7e) {
        return Error(absl::StrCat(DescribeByte(c), " outside quotes"));
      }
      ++pos_;
    }
    absl::string_view token = absl::StripAsciiWhitespace(line_.substr(start, pos_ - start));
    if (token.empty()) {
      param->kind = AtParam::Kind::kEmpty;
      return absl::OkStatus();
    }
    if (LooksNumeric(token)) {
      if (!ParseNumber(token, &param->number)) {
        pos_ = start;
        return Error("number out of range");
      }
      param->kind = AtParam::Kind::kNumber;
      return absl::OkStatus();
    }
    param->kind = AtParam::Kind::kRaw;
    param->text = std::string(token);
    return absl::OkStatus();
  }

  static bool LooksNumeric(absl::string_view token) {
    size_t i = 0;
    if (token[0] == '-' || token[0] == '+') i = 1;
    if (i == token.size()) return false;
    for (; i < token.size(); ++i) {
      if (!absl::ascii_isdigit(static_cast<unsigned char>(token[i]))) return false;
    }
    return true;
  }

  // Decimal with an optional sign; false when it does not fit int64.
  static bool ParseNumber(absl::string_view token, int64_t* out) {
    bool negative = false;
    size_t i = 0;
    if (token[0] == '-' || token[0] == '+') {
      negative = token[0] == '-';
      i = 1;
    }
    // Accumulate as a negative number so INT64_MIN fits.
    int64_t value = 0;
    constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
    for (; i < token.size(); ++i) {
      const int digit = token[i] - '0';
      if (value < (kMin + digit) / 10) return false;
      value = value * 10 - digit;
    }
    if (!negative) {
      if (value == kMin) return false;
      value = -value;
    }
    *out = value;
    return true;
  }

  absl::string_view line_;
  size_t pos_ = 0;
  size_t end_ = 0;
};

}  // namespace

absl::StatusOr<std::vector<AtCommand>> ParseCommandLine(absl::string_view line) {
  return LineParser(line).Parse();
}

std::string FormatResponse(const std::vector<std::string>& info_lines,
                           absl::string_view final_line) {
  std::string out;
  for (const std::string& line : info_lines) {
    absl::StrAppend(&out, line, "\r\n");
  }
  if (!final_line.empty()) absl::StrAppend(&out, final_line, "\r\n");
  return out;
}

}  // namespace atbridge::at
