// Which AT commands sent through a console still await their answer, for
// `console` in pipe mode: after end of input the session stays open until
// every command line sent has its final result code (or a deadline passes),
// so a script's last reply is not lost.
//
// A command is a non-empty line ended by CR or LF outside double quotes (a
// quoted multi-line PEM is one command). Answers are framed and classified
// by the AT library's response parser (common/at/response_parser.h): OK,
// ERROR, +CME ERROR and +CMS ERROR end a command; URCs do not.
//
// Pure; thread-compatible.
#ifndef ATBRIDGE_CLIENT_CONSOLE_AT_TRACKER_H_
#define ATBRIDGE_CLIENT_CONSOLE_AT_TRACKER_H_

#include <string>

#include "absl/strings/string_view.h"
#include "common/at/response_parser.h"

namespace atbridge::client {

class AtTracker {
 public:
  // Bytes written to the modem.
  void Sent(absl::string_view bytes);
  // Bytes the modem sent back.
  void Received(absl::string_view bytes);
  // Commands sent whose final result has not arrived.
  int pending() const { return pending_; }

 private:
  bool line_started_ = false;
  bool quoted_ = false;
  int pending_ = 0;
  at::ResponseParser parser_;
};

}  // namespace atbridge::client

#endif  // ATBRIDGE_CLIENT_CONSOLE_AT_TRACKER_H_
