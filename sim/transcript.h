// --transcript: every byte each modem receives and sends, one record per
// chunk, as text lines:
//   2026-11-26T11:36:00.123456Z modem3 rx "AT%CMNG=1\r\n"
//   2026-11-26T11:36:00.123789Z modem3 tx "OK\r\n"
//   2026-11-26T11:36:00.200000Z modem3 note "dropped 12 bytes (RX FIFO overrun)"
// Bytes are escaped (\r \n \t \\ \" \xNN), so a record is one line.
//
// Secrets never reach the file: received bytes go through a per-modem
// TranscriptRxFilter that holds the tail of an unterminated command line
// until the line ends, then redacts whole lines with at::RedactSecrets (a
// private key or PSK written with %CMNG is never split across records where
// redaction could miss it). Answers carry no secrets (types 2 and 3 are never
// readable, %KEYGEN keys never leave the modem).
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

// Escapes bytes for a record: printable ASCII stays, the rest is \r \n \t
// \\ \" or \xNN.
std::string EscapeBytes(absl::string_view bytes);

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

// Turns received chunks into redacted record payloads (see above).
class TranscriptRxFilter {
 public:
  // `max_hold`: a line longer than this (the AT host rejects it anyway) is
  // recorded as its first bytes up to the first quote (at most 64) and a
  // count of the withheld rest, so no secret leaks from an overlong line.
  explicit TranscriptRxFilter(size_t max_hold) : max_hold_(max_hold) {}

  // Appends a chunk; returns the text to record now (may be empty).
  std::string Append(absl::string_view chunk);
  // Forgets held bytes (e.g. the modem was unplugged), returning what can
  // be recorded of them.
  std::string Flush();

 private:
  std::string Summary() const;

  size_t max_hold_;
  std::string held_;        // The current line (since the last terminator).
  bool in_quotes_ = false;  // Quote state at the end of held_.
  bool overlong_ = false;   // held_ passed max_hold_: only counting now.
  size_t overlong_bytes_ = 0;
};

}  // namespace atbridge::sim

#endif  // ATBRIDGE_SIM_TRANSCRIPT_H_
