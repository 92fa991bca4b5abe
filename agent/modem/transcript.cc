#include "agent/modem/transcript.h"

#include <cerrno>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/at/credential_types.h"
#include "common/at/transcript_text.h"
#include "common/status/errors.h"

namespace atbridge::agent {

absl::StatusOr<std::unique_ptr<Transcript>> Transcript::Open(const std::string& path,
                                                             const std::string& port,
                                                             Clock& clock) {
  std::ofstream out(path, std::ios::app | std::ios::binary);
  if (!out) return PosixError(errno, absl::StrCat("open transcript ", path));
  return std::unique_ptr<Transcript>(new Transcript(std::move(out), port, clock));
}

Transcript::Transcript(std::ofstream out, std::string port, Clock& clock)
    : out_(std::move(out)),
      port_(std::move(port)),
      clock_(clock),
      // Large enough for any credential write, so it is always redacted whole.
      tx_framer_(at::CommandFramerOptions{.max_command_bytes = 1 << 20}) {}

void Transcript::Write(char direction, absl::string_view text) {
  out_ << absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", clock_.Now(), absl::UTCTimeZone()) << ' '
       << port_ << ' ' << direction << ' ' << text << '\n';
  out_.flush();
}

void Transcript::RecordTx(absl::string_view bytes) {
  std::vector<at::FramerEvent> events;
  tx_framer_.Feed(bytes, &events);
  for (const auto& e : events) {
    if (e.type == at::FramerEvent::Type::kCommand) {
      Write('>', at::EscapeBytes(at::RedactSecrets(e.command)));
    } else {
      Write('>', absl::StrCat("<", e.bytes, "-byte command over the modem buffer, not shown>"));
    }
  }
}

void Transcript::RecordRx(absl::string_view bytes) { Write('<', at::EscapeBytes(bytes)); }

void Transcript::RecordEvent(absl::string_view text) { Write('#', text); }

}  // namespace atbridge::agent
