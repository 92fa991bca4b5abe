// Logging facade. Abseil 20220623 has no absl/log; this offers the same
// streaming shape over spdlog, which stays out of every other header.
//
//   ATB_LOG(INFO) << "port " << name << " ready";
//
// Thread-safe. Logs go to stderr unless a sink is installed. Never log
// secret material (private keys, PSKs): redact first.
#ifndef ATBRIDGE_COMMON_LOG_H_
#define ATBRIDGE_COMMON_LOG_H_

#include <functional>
#include <sstream>
#include <string>

#include "absl/strings/string_view.h"

namespace atbridge::log {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kOff = 4 };

// Messages below `level` are dropped. Default: kInfo.
void SetLevel(Level level);
Level GetLevel();
bool Enabled(Level level);

// Parses "debug", "info", "warning"/"warn", "error", "off".
bool ParseLevel(absl::string_view text, Level* level);

// Writes one message (no trailing newline needed).
void Write(Level level, absl::string_view file, int line, absl::string_view message);

// Replaces the output with `sink` (nullptr restores stderr). For tests.
using Sink = std::function<void(Level, absl::string_view message)>;
void SetSinkForTesting(Sink sink);

// Accumulates one message and writes it when destroyed.
class LogMessage {
 public:
  LogMessage(Level level, const char* file, int line) : level_(level), file_(file), line_(line) {}
  ~LogMessage() { Write(level_, file_, line_, stream_.str()); }
  LogMessage(const LogMessage&) = delete;
  LogMessage& operator=(const LogMessage&) = delete;
  std::ostream& stream() { return stream_; }

 private:
  Level level_;
  const char* file_;
  int line_;
  std::ostringstream stream_;
};

// Swallows the stream when the level is disabled (keeps `a ? b : c` typed).
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace atbridge::log

#define ATB_LOG_LEVEL_DEBUG ::atbridge::log::Level::kDebug
#define ATB_LOG_LEVEL_INFO ::atbridge::log::Level::kInfo
#define ATB_LOG_LEVEL_WARNING ::atbridge::log::Level::kWarning
#define ATB_LOG_LEVEL_ERROR ::atbridge::log::Level::kError

#define ATB_LOG(severity)                             \
  !::atbridge::log::Enabled(ATB_LOG_LEVEL_##severity) \
      ? (void)0                                       \
      : ::atbridge::log::Voidify() &                  \
            ::atbridge::log::LogMessage(ATB_LOG_LEVEL_##severity, __FILE__, __LINE__).stream()

#endif  // ATBRIDGE_COMMON_LOG_H_
