#include "tests/integration/sim/sim_harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <functional>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status/errors.h"

namespace atbridge::sim::testing {
namespace {

speed_t BaudConstant(int baud) {
  switch (baud) {
    case 9600:
      return B9600;
    case 19200:
      return B19200;
    case 38400:
      return B38400;
    case 57600:
      return B57600;
    case 230400:
      return B230400;
    case 460800:
      return B460800;
    case 921600:
      return B921600;
    case 1000000:
      return B1000000;
    default:
      return B115200;
  }
}

int RemainingMs(absl::Time deadline) {
  int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
  return ms < 0 ? 0 : static_cast<int>(ms);
}

}  // namespace

bool IsFinalLine(absl::string_view line) {
  if (line == "OK" || line == "ERROR") return true;
  int code = 0;
  return absl::StartsWith(line, "+CME ERROR: ") &&
         absl::SimpleAtoi(line.substr(strlen("+CME ERROR: ")), &code);
}

std::vector<std::string> SplitLines(absl::string_view bytes, std::string* rest) {
  std::vector<std::string> lines;
  bool in_quotes = false;
  size_t start = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (bytes[i] == '"') in_quotes = !in_quotes;
    if (!in_quotes && bytes[i] == '\r' && i + 1 < bytes.size() && bytes[i + 1] == '\n') {
      if (i > start) lines.emplace_back(bytes.substr(start, i - start));
      start = i + 2;
      ++i;
    }
  }
  *rest = std::string(bytes.substr(start));
  return lines;
}

absl::StatusOr<std::unique_ptr<PtyClient>> PtyClient::Open(const std::string& path,
                                                           const Options& options) {
  int fd = open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return PosixError(errno, absl::StrCat("open ", path));
  std::unique_ptr<PtyClient> client(new PtyClient(fd));
  if (!options.configure) return client;
  struct termios tio;
  if (tcgetattr(fd, &tio) != 0) return PosixError(errno, absl::StrCat("tcgetattr ", path));
  cfmakeraw(&tio);
  cfsetispeed(&tio, BaudConstant(options.baud));
  cfsetospeed(&tio, BaudConstant(options.baud));
  tio.c_cflag |= CLOCAL | CREAD;
  if (options.rtscts) {
    tio.c_cflag |= CRTSCTS;
  } else {
    tio.c_cflag &= ~CRTSCTS;
  }
  tio.c_cc[VMIN] = 1;
  tio.c_cc[VTIME] = 0;
  if (tcsetattr(fd, TCSANOW, &tio) != 0) return PosixError(errno, absl::StrCat("tcsetattr ", path));
  return client;
}

PtyClient::~PtyClient() {
  if (fd_ >= 0) close(fd_);
}

absl::Status PtyClient::Write(absl::string_view bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = write(fd_, bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return PosixError(errno, "write to pty");
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

absl::Status PtyClient::WritePaced(absl::string_view bytes, size_t chunk, absl::Duration gap) {
  for (size_t off = 0; off < bytes.size(); off += chunk) {
    absl::Status s = Write(bytes.substr(off, chunk));
    if (!s.ok()) return s;
    // Pacing is the behaviour under test here (a host UART without flow
    // control), not a wait for readiness.
    struct timespec ts = absl::ToTimespec(gap);
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR) {
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> PtyClient::ReadFor(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  std::string out;
  while (true) {
    struct pollfd p = {fd_, POLLIN, 0};
    int r = poll(&p, 1, RemainingMs(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return PosixError(errno, "poll pty");
    if (r == 0) return out;
    char buf[4096];
    ssize_t n = read(fd_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return PosixError(errno, "read pty");
    if (n == 0) return absl::UnavailableError("pty hung up");
    out.append(buf, static_cast<size_t>(n));
  }
}

absl::Status PtyClient::ReadMore(absl::Time deadline,
                                 const std::function<std::string()>& timeout_message) {
  while (true) {
    struct pollfd p = {fd_, POLLIN, 0};
    int r = poll(&p, 1, RemainingMs(deadline));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return PosixError(errno, "poll pty");
    if (r == 0) return absl::DeadlineExceededError(timeout_message());
    char buf[4096];
    ssize_t n = read(fd_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return PosixError(errno, "read pty");
    if (n == 0) return absl::UnavailableError("pty hung up");
    pending_.append(buf, static_cast<size_t>(n));
    return absl::OkStatus();
  }
}

absl::StatusOr<std::string> PtyClient::ReadUntil(absl::string_view marker, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    size_t at = pending_.find(marker.data(), 0, marker.size());
    if (at != std::string::npos) {
      std::string out = pending_.substr(0, at + marker.size());
      pending_.erase(0, at + marker.size());
      return out;
    }
    absl::Status s = ReadMore(deadline, [&] {
      return absl::StrCat("\"", absl::CHexEscape(marker), "\" did not come; got \"",
                          absl::CHexEscape(pending_), "\"");
    });
    if (!s.ok()) return s;
  }
}

absl::StatusOr<AtAnswer> PtyClient::ReadAnswer(absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  while (true) {
    std::string rest;
    std::vector<std::string> lines = SplitLines(pending_, &rest);
    for (size_t i = 0; i < lines.size(); ++i) {
      if (!IsFinalLine(lines[i])) continue;
      AtAnswer answer;
      answer.lines.assign(lines.begin(), lines.begin() + static_cast<ptrdiff_t>(i));
      answer.final = lines[i];
      // Keep whatever followed the final line for the next answer.
      std::string tail;
      for (size_t j = i + 1; j < lines.size(); ++j) absl::StrAppend(&tail, lines[j], "\r\n");
      pending_ = tail + rest;
      return answer;
    }
    absl::Status s = ReadMore(deadline, [&] {
      return absl::StrCat("no final result in time; got \"", absl::CHexEscape(pending_), "\"");
    });
    if (!s.ok()) return s;
  }
}

absl::StatusOr<AtAnswer> PtyClient::Command(absl::string_view bytes, absl::Duration timeout) {
  absl::Status s = Write(bytes);
  if (!s.ok()) return s;
  return ReadAnswer(timeout);
}

absl::StatusOr<AtAnswer> OneShot(const std::string& path, absl::string_view bytes,
                                 absl::Duration timeout) {
  auto client = PtyClient::Open(path);
  if (!client.ok()) return client.status();
  return (*client)->Command(bytes, timeout);
}

SimProcess::SimProcess() : link_dir_(dir_.File("links")) {}

absl::Status SimProcess::Start(const std::vector<std::string>& args, absl::Duration timeout,
                               const std::vector<std::string>& wrapper) {
  std::vector<std::string> argv = wrapper;
  for (const std::string& arg :
       {::atbridge::testing::BinaryPath("atbridge-sim"), std::string("--link-dir"), link_dir_}) {
    argv.push_back(arg);
  }
  argv.insert(argv.end(), args.begin(), args.end());
  process_ = std::make_unique<::atbridge::testing::Subprocess>();
  absl::Time start = absl::Now();
  absl::Status s = process_->Start(argv);
  if (!s.ok()) return s;
  auto line = process_->WaitForLine("atbridge-sim ready: ", timeout);
  if (!line.ok()) return line.status();
  startup_ = absl::Now() - start;
  return absl::OkStatus();
}

absl::StatusOr<int> SimProcess::Stop() {
  process_->Signal(SIGTERM);
  return process_->Wait(absl::Seconds(10));
}

std::string SimProcess::Link(int k) const { return absl::StrCat(link_dir_, "/modem", k); }

absl::Status WaitForPath(const std::string& path, absl::Duration timeout) {
  std::string dir = path.substr(0, path.rfind('/'));
  int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (fd < 0) return PosixError(errno, "inotify_init1");
  if (inotify_add_watch(fd, dir.c_str(), IN_CREATE | IN_MOVED_TO) < 0) {
    int err = errno;
    close(fd);
    return PosixError(err, absl::StrCat("inotify_add_watch ", dir));
  }
  absl::Time deadline = absl::Now() + timeout;
  struct stat st;
  absl::Status result = absl::OkStatus();
  while (lstat(path.c_str(), &st) != 0) {
    struct pollfd p = {fd, POLLIN, 0};
    int r = poll(&p, 1, RemainingMs(deadline));
    if (r == 0) {
      result = absl::DeadlineExceededError(absl::StrCat(path, " did not appear in time"));
      break;
    }
    char buf[4096];
    while (read(fd, buf, sizeof(buf)) > 0) {
    }
  }
  close(fd);
  return result;
}

absl::StatusOr<std::string> WaitForFileText(const std::string& path, absl::string_view needle,
                                            int count, absl::Duration timeout) {
  int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (fd < 0) return PosixError(errno, "inotify_init1");
  if (inotify_add_watch(fd, path.c_str(), IN_MODIFY) < 0) {
    int err = errno;
    close(fd);
    return PosixError(err, absl::StrCat("inotify_add_watch ", path));
  }
  absl::Time deadline = absl::Now() + timeout;
  absl::StatusOr<std::string> result;
  while (true) {
    // Read after arming the watch, so no append is missed.
    std::string text;
    int in = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (in >= 0) {
      char buf[65536];
      ssize_t n;
      while ((n = read(in, buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
      close(in);
    }
    int found = 0;
    for (size_t at = text.find(needle.data(), 0, needle.size()); at != std::string::npos;
         at = text.find(needle.data(), at + needle.size(), needle.size())) {
      ++found;
    }
    if (found >= count) {
      result = std::move(text);
      break;
    }
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, RemainingMs(deadline)) == 0) {
      result = absl::DeadlineExceededError(absl::StrCat(
          path, " has \"", needle, "\" ", found, " times, not ", count, "; it holds:\n", text));
      break;
    }
    char events[4096];
    while (read(fd, events, sizeof(events)) > 0) {
    }
  }
  close(fd);
  return result;
}

}  // namespace atbridge::sim::testing
