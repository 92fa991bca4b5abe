#include "sim/transcript.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/at/transcript_text.h"
#include "common/status/errors.h"

namespace atbridge::sim {

absl::StatusOr<std::unique_ptr<Transcript>> Transcript::Open(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "ae");
  if (f == nullptr) return PosixError(errno, absl::StrCat("open transcript ", path));
  return std::unique_ptr<Transcript>(new Transcript(f));
}

Transcript::~Transcript() {
  if (file_ != nullptr) std::fclose(file_);
}

void Transcript::Record(int modem, absl::string_view direction, absl::string_view bytes) {
  std::string line =
      absl::StrCat(absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone()),
                   " modem", modem, " ", direction, " \"", at::EscapeBytes(bytes), "\"\n");
  std::fwrite(line.data(), 1, line.size(), file_);
  std::fflush(file_);
}

}  // namespace atbridge::sim
