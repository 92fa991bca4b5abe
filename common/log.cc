#include "common/log.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <memory>
#include <mutex>

#include "absl/strings/ascii.h"

namespace atbridge::log {

namespace {

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};

std::mutex& SinkMutex() {
  static std::mutex mu;
  return mu;
}

Sink& TestSink() {
  static Sink sink;
  return sink;
}

spdlog::logger& Logger() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    auto l = std::make_shared<spdlog::logger>("atbridge", sink);
    l->set_pattern("%Y-%m-%dT%H:%M:%S.%e %L %v");
    l->set_level(spdlog::level::trace);
    return l;
  }();
  return *logger;
}

spdlog::level::level_enum ToSpd(Level level) {
  switch (level) {
    case Level::kDebug:
      return spdlog::level::debug;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kWarning:
      return spdlog::level::warn;
    case Level::kError:
      return spdlog::level::err;
    case Level::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

absl::string_view Basename(absl::string_view path) {
  size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

}  // namespace

void SetLevel(Level level) { g_level.store(static_cast<int>(level)); }

Level GetLevel() { return static_cast<Level>(g_level.load()); }

bool Enabled(Level level) { return static_cast<int>(level) >= g_level.load(); }

bool ParseLevel(absl::string_view text, Level* level) {
  std::string t = absl::AsciiStrToLower(text);
  if (t == "debug") {
    *level = Level::kDebug;
  } else if (t == "info") {
    *level = Level::kInfo;
  } else if (t == "warning" || t == "warn") {
    *level = Level::kWarning;
  } else if (t == "error") {
    *level = Level::kError;
  } else if (t == "off" || t == "none") {
    *level = Level::kOff;
  } else {
    return false;
  }
  return true;
}

void Write(Level level, absl::string_view file, int line, absl::string_view message) {
  if (!Enabled(level)) return;
  {
    std::lock_guard<std::mutex> lock(SinkMutex());
    if (TestSink()) {
      TestSink()(level, message);
      return;
    }
  }
  absl::string_view base = Basename(file);
  Logger().log(ToSpd(level), "{}:{}] {}", std::string_view(base.data(), base.size()), line,
               std::string_view(message.data(), message.size()));
}

void SetSinkForTesting(Sink sink) {
  std::lock_guard<std::mutex> lock(SinkMutex());
  TestSink() = std::move(sink);
}

}  // namespace atbridge::log
