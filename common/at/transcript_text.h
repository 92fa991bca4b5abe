// What agent and simulator need to record AT traffic safely: a redactor for
// byte streams that may carry secret %CMNG writes, and a one-line escaping.
#ifndef ATBRIDGE_COMMON_AT_TRANSCRIPT_TEXT_H_
#define ATBRIDGE_COMMON_AT_TRANSCRIPT_TEXT_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace atbridge::at {

// Makes a byte stream that may carry AT commands safe to record or show: the
// agent's view of modem output (a modem with echo on repeats every command,
// a %CMNG write of a private key or PSK included) and the simulator's view of
// what a tool sent it. After a "%CMNG" outside quotes (recognised as the
// modem's framer edits the line: BS/DEL erase, NUL is dropped) the rest of its
// line (to a CR or LF outside quotes) is held, then released through
// at::RedactSecrets; everything else is released at once, so an interactive
// console is not delayed. Fails closed: a held line with BS, DEL or NUL in it
// is withheld whole, and one longer than `max_hold` releases only its redacted
// head and a count of the rest.
//
// Thread-compatible.
class StreamRedactor {
 public:
  explicit StreamRedactor(size_t max_hold = 64 * 1024) : max_hold_(max_hold) {}

  // Consumes `bytes`; returns what may be shown now (possibly empty).
  std::string Feed(absl::string_view bytes);
  // Releases what is held (redacted; an unterminated secret is redacted to
  // its end) and starts afresh, e.g. when the port is lost.
  std::string Flush();

 private:
  // Bytes of the current line kept to recognise "%CMNG" after edits.
  static constexpr size_t kMaxTrackedLine = 4096;
  size_t max_hold_;
  bool in_quotes_ = false;         // Quote state of the current line.
  std::string line_;               // The current line as the modem's framer edits it.
  std::string candidate_;          // Raw bytes of a possible "%CMNG", held back.
  size_t candidate_at_ = 0;        // Where its '%' is in line_.
  bool holding_ = false;           // After "%CMNG" outside quotes, to the line's end.
  bool synthetic_prefix_ = false;  // "%CMNG" was released before holding began.
  bool edited_ = false;            // The held bytes contain BS, DEL or NUL.
  std::string held_;
  size_t overflow_bytes_ = 0;  // Bytes of a held line beyond max_hold_.
};

// Printable one-line form of raw bytes: printable ASCII stays, the rest is
// \r \n \t \\ \" or \xNN.
std::string EscapeBytes(absl::string_view bytes);

}  // namespace atbridge::at

#endif  // ATBRIDGE_COMMON_AT_TRANSCRIPT_TEXT_H_
