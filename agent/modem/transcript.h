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

}  // namespace atbridge::agent

#endif  // ATBRIDGE_AGENT_MODEM_TRANSCRIPT_H_
