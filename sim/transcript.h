// --transcript: every byte each modem receives and sends, one record per
// chunk, as text lines:
//   2026-11-26T11:36:00.123456Z modem3 rx "AT%CMNG=1\r\n"
//   2026-11-26T11:36:00.123789Z modem3 tx "OK\r\n"
//   2026-11-26T11:36:00.200000Z modem3 note "dropped 12 bytes (RX FIFO overrun)"
// Bytes are escaped (\r \n \t \\ \" \xNN), so a record is one line.
//
// Secrets never reach the file: received bytes go through a per-modem
// at::StreamRedactor, which holds a %CMNG command line until it ends and
// then redacts it whole (a private key or PSK written with %CMNG is never
// split across records where redaction could miss it). Answers carry no secrets (types 2 and 3 are
// never readable, %KEYGEN keys never leave the modem).
//
// Not thread-safe: used from the simulator's io_context thread.
#ifndef ATBRIDGE_SIM_TRANSCRIPT_H_
#define ATBRIDGE_SIM_TRANSCRIPT_H_

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace atbridge::sim {

class Transcript {
 public:
  // Opens `path` for appending (a restarted simulator continues the same
  // transcript). Errors name the path.
  static absl::StatusOr<std::unique_ptr<Transcript>> Open(const std::string& path);
  ~Transcript();
  Transcript(const Transcript&) = delete;
  Transcript& operator=(const Transcript&) = delete;

  // Writes one record (flushed). `direction` is "rx", "tx" or "note".
  void Record(int modem, absl::string_view direction, absl::string_view bytes);

 private:
  explicit Transcript(std::FILE* file) : file_(file) {}
  std::FILE* file_;
};

}  // namespace atbridge::sim

#endif  // ATBRIDGE_SIM_TRANSCRIPT_H_
