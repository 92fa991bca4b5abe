// A per-port record of every byte exchanged, with timestamps, secrets
// redacted (common/at/credential_types.h RedactSecrets) before anything is
// written. Host-to-modem bytes are framed into whole commands first, so a
// %CMNG write split across chunks is still recognised and redacted.
//
// Thread-compatible: used from the port's io thread only.
#ifndef ATBRIDGE_AGENT_MODEM_TRANSCRIPT_H_
#define ATBRIDGE_AGENT_MODEM_TRANSCRIPT_H_

#include <fstream>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/at/command_parser.h"
#include "common/clock.h"

namespace atbridge::agent {

class Transcript {
 public:
  // Opens `path` for appending. NOT_FOUND/PERMISSION_DENIED name the path.
  static absl::StatusOr<std::unique_ptr<Transcript>> Open(const std::string& path,
                                                          const std::string& port, Clock& clock);

  // Bytes written to the modem (any chunking).
  void RecordTx(absl::string_view bytes);
  // Bytes read from the modem.
  void RecordRx(absl::string_view bytes);
  // A note (port opened, lost, ...).
  void RecordEvent(absl::string_view text);

 private:
  Transcript(std::ofstream out, std::string port, Clock& clock);
  void Write(char direction, absl::string_view text);

  std::ofstream out_;
  std::string port_;
  Clock& clock_;
  at::CommandFramer tx_framer_;
};

// Makes modem output safe to record or show to console watchers: a modem
// with echo on repeats every command, including a %CMNG write of a private
// key or PSK. From a "%CMNG" outside quotes to the end of its line (a CR or
// LF outside quotes) bytes are held, then released through
// at::RedactSecrets; everything else is released at once, so an interactive
// console is not delayed. Fails closed: a held line longer than `max_hold`
// releases only its redacted head and a count of the rest.
//
// Thread-compatible: used from the port's io thread only.
class RxRedactor {
 public:
  explicit RxRedactor(size_t max_hold = 64 * 1024) : max_hold_(max_hold) {}

  // Consumes `bytes`; returns what may be shown now (possibly empty).
  std::string Feed(absl::string_view bytes);
  // Releases what is held (redacted; an unterminated secret is redacted to
  // its end) and starts afresh, e.g. when the port is lost.
  std::string Flush();

 private:
  size_t max_hold_;
  bool in_quotes_ = false;  // Quote state of the current line.
  std::string candidate_;   // A possible start of "%CMNG".
  bool holding_ = false;
  std::string held_;
  size_t overflow_bytes_ = 0;  // Bytes of a held line beyond max_hold_.
};

// Printable form of raw bytes: \r, \n, \t, \\, \" and \xNN for the rest.
std::string EscapeBytes(absl::string_view bytes);

}  // namespace atbridge::agent

#endif  // ATBRIDGE_AGENT_MODEM_TRANSCRIPT_H_
