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
    kOverflow,  // A command exceeded max_command_bytes; it was discarded up to
                // its terminator. A modem host answers "ERROR" and goes on.
  };
  Type type;
  std::string command;
  size_t bytes = 0;  // kOverflow: length of the discarded command.
};

// nRF91 AT host framing: a command ends at CR or LF outside double quotes;
// CR/LF inside quotes are part of the command (a PEM); CRLF is one
// terminator; BS (0x08) and DEL (0x7F) delete the previous byte, also inside
// quotes; a line with nothing printable produces no event (no answer).
class CommandFramer {
 public:
  explicit CommandFramer(CommandFramerOptions options = {});
  void Feed(absl::string_view bytes, std::vector<FramerEvent>* out);
  // Bytes held for an unfinished command.
  size_t pending_bytes() const;
  void Reset();

 private:
  CommandFramerOptions options_;
  std::string buf_;
  bool in_quotes_ = false;
  bool overflowing_ = false;
  size_t overflow_bytes_ = 0;
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
