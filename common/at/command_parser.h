// DCE side (simulator, and tests that play modem): framing bytes from a host
// into command lines the way an nRF91 AT host does, and tokenizing them.
// Shares the grammar of command_builder.h: Build -> Frame -> Parse round-trips.
//
// Pure and single-threaded, like response_parser.h.
#ifndef ATBRIDGE_COMMON_AT_COMMAND_PARSER_H_
#define ATBRIDGE_COMMON_AT_COMMAND_PARSER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace atbridge::at {

struct CommandFramerOptions {
  // Longest command accepted (CONFIG_AT_HOST_CMD_MAX_LEN, default 4096).
  size_t max_command_bytes = 4096;
};

struct FramerEvent {
  enum class Type {
    kCommand,   // `command` is one complete command line (no terminator).
    kOverflow,  // A command reached max_command_bytes + 1 bytes. Reported
                // once, at the cap (a modem host answers "ERROR" and goes
                // on); the rest of it is discarded up to its terminator
                // outside quotes, with quotes tracked in the discarded bytes.
  };
  Type type;
  std::string command;
  size_t bytes = 0;  // kOverflow: bytes of the command when the cap was hit.
};

// nRF91 AT host framing (sdk-nrf lib/at_host/at_host.c, except that CR, LF
// and CRLF all end a command and an overflow is reported as SLM does):
//  - a command ends at CR or LF outside double quotes; CRLF is one
//    terminator; CR/LF inside quotes are part of the command (a PEM);
//  - every '"' flips the quote state (there is no escape);
//  - BS (0x08) and DEL (0x7F) delete the previous byte, also inside quotes,
//    without changing the quote state (erasing a '"' does not close it);
//  - NUL outside quotes is ignored; a NUL inside quotes is kept until the
//    command ends, which then ends at that NUL (the host passes it on as a
//    C string);
//  - a line with no byte above 0x20 produces no event (no answer);
//  - an over-long command: see kOverflow. A lost closing quote thus turns
//    into one kOverflow at the cap, never a hang, and the framer resumes at
//    the first terminator after the next '"'.
class CommandFramer {
 public:
  explicit CommandFramer(CommandFramerOptions options = {});
  void Feed(absl::string_view bytes, std::vector<FramerEvent>* out);
  // Bytes held for an unfinished command.
  size_t pending_bytes() const;
  // Inside a double-quoted string: terminators are data until the next '"'.
  bool in_quotes() const { return in_quotes_; }
  // The next bytes would not start a new command: bytes are held, a quote
  // is open, or an over-long command is being discarded up to its end.
  bool has_partial() const { return !buf_.empty() || in_quotes_ || overflowing_; }
  void Reset();

 private:
  CommandFramerOptions options_;
  std::string buf_;
  bool in_quotes_ = false;
  bool overflowing_ = false;
};

// One parameter of a command.
struct AtParam {
  enum class Kind { kEmpty, kNumber, kString, kRaw };
  Kind kind = Kind::kEmpty;
  int64_t number = 0;  // kNumber
  std::string text;    // kString (unquoted content, byte-exact), kRaw (as typed)
};

// One command of a (possibly ';'-chained) command line.
struct AtCommand {
  enum class Type {
    kAction,  // AT+CGSN
    kSet,     // AT+CFUN=4
    kRead,    // AT+CFUN?
    kTest,    // AT+CFUN=?
  };
  std::string name;  // Upper-cased, with its prefix: "+CFUN", "%CMNG"; "" for bare "AT".
  Type type = Type::kAction;
  std::vector<AtParam> params;
};

// Parses a command line: "AT" (any case) followed by one or more commands
// separated by ';' ("AT+CFUN=4;+CFUN?"). Quoted strings keep CR/LF and
// commas. INVALID_ARGUMENT for a line not starting with AT, an unterminated
// quote, or a malformed name.
absl::StatusOr<std::vector<AtCommand>> ParseCommandLine(absl::string_view line);

// DCE response formatting, nRF91 AT host style (no echo, no leading blank
// line): each info line + "\r\n", then the final line + "\r\n".
std::string FormatResponse(const std::vector<std::string>& info_lines,
                           absl::string_view final_line);

}  // namespace atbridge::at

#endif  // ATBRIDGE_COMMON_AT_COMMAND_PARSER_H_
