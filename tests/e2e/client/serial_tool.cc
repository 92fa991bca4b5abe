// A tiny serial tool for the attach tests, standing in for picocom or
// nrfcredstore: opens PATH like a serial port (raw, 115200, CRTSCTS, input
// flushed), reads and sets the modem lines as pyserial does for rtscts/dtr
// (TIOCMGET, TIOCMSET, TIOCMBIS; a pty refuses them with ENOTTY or EINVAL,
// which tools ignore: any other error fails), sends each COMMAND with CRLF,
// reads its answer up to the final result line (OK, ERROR, +CME/+CMS ERROR
// outside quotes, so a quoted multi-line PEM is read whole), prints each
// answer C-escaped on its own line, and closes the port.
//
//   atbridge_serial_tool [--no-flush] PATH COMMAND...
//   atbridge_serial_tool --sloppy PATH
// --no-flush keeps whatever is waiting in the port (a tool that does not
// call reset_input_buffer()). --sloppy opens PATH, turns on ECHO and ICANON,
// and closes without reading or restoring anything.
// Exit 0 when every command got a final result; 1 otherwise (after 10 s per
// command, so a broken relay fails the test instead of hanging it).
#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"

namespace {

bool IsFinal(const std::string& line) {
  return line == "OK" || line == "ERROR" || absl::StartsWith(line, "+CME ERROR:") ||
         absl::StartsWith(line, "+CMS ERROR:");
}

// True once `answer` ends with a final result line that is outside quotes.
bool Complete(const std::string& answer) {
  bool quoted = false;
  std::string line;
  for (char c : answer) {
    if (c == '"') quoted = !quoted;
    if (!quoted && c == '\n') {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (IsFinal(line)) return true;
      line.clear();
      continue;
    }
    line.push_back(c);
  }
  return false;
}

bool WriteAll(int fd, const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

// A modem-line ioctl; ENOTTY/EINVAL (what a pty says) are fine.
bool ModemLines(int fd, unsigned long request, int* lines, const char* name) {
  if (ioctl(fd, request, lines) == 0 || errno == ENOTTY || errno == EINVAL) return true;
  std::fprintf(stderr, "%s: %s\n", name, std::strerror(errno));
  return false;
}

int Sloppy(const char* path) {
  int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    std::fprintf(stderr, "open %s: %s\n", path, std::strerror(errno));
    return 1;
  }
  struct termios t;
  if (tcgetattr(fd, &t) != 0) return 1;
  t.c_lflag |= ECHO | ICANON;
  if (tcsetattr(fd, TCSANOW, &t) != 0) return 1;
  close(fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int first = 1;
  bool flush = true;
  if (argc == 3 && std::strcmp(argv[1], "--sloppy") == 0) return Sloppy(argv[2]);
  if (argc > 1 && std::strcmp(argv[1], "--no-flush") == 0) {
    flush = false;
    ++first;
  }
  if (argc < first + 2) {
    std::fprintf(stderr, "usage: %s [--no-flush] PATH COMMAND... | --sloppy PATH\n", argv[0]);
    return 2;
  }
  const char* path = argv[first];
  int fd = open(path, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) {
    std::fprintf(stderr, "open %s: %s\n", path, std::strerror(errno));
    return 1;
  }
  struct termios t;
  if (tcgetattr(fd, &t) != 0) {
    std::fprintf(stderr, "tcgetattr: %s\n", std::strerror(errno));
    return 1;
  }
  cfmakeraw(&t);
  cfsetispeed(&t, B115200);
  cfsetospeed(&t, B115200);
  t.c_cflag |= CRTSCTS | CLOCAL | CREAD;
  t.c_cc[VMIN] = 1;
  t.c_cc[VTIME] = 0;
  if (tcsetattr(fd, TCSANOW, &t) != 0) {
    std::fprintf(stderr, "tcsetattr: %s\n", std::strerror(errno));
    return 1;
  }
  // What pyserial does for rtscts/dtr: read the lines, set them, raise
  // RTS/DTR.
  int lines = 0;
  if (!ModemLines(fd, TIOCMGET, &lines, "TIOCMGET")) return 1;
  lines |= TIOCM_RTS | TIOCM_DTR;
  if (!ModemLines(fd, TIOCMSET, &lines, "TIOCMSET")) return 1;
  int raise = TIOCM_RTS | TIOCM_DTR;
  if (!ModemLines(fd, TIOCMBIS, &raise, "TIOCMBIS")) return 1;
  if (flush) tcflush(fd, TCIFLUSH);

  int rc = 0;
  for (int i = first + 1; i < argc; ++i) {
    if (!WriteAll(fd, std::string(argv[i]) + "\r\n")) {
      std::fprintf(stderr, "write: %s\n", std::strerror(errno));
      return 1;
    }
    std::string answer;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!Complete(answer)) {
      int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                      deadline - std::chrono::steady_clock::now())
                                      .count());
      if (left <= 0) break;
      struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
      int r = poll(&p, 1, left);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      char buf[4096];
      ssize_t n = read(fd, buf, sizeof(buf));
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
      if (n <= 0) break;
      answer.append(buf, static_cast<size_t>(n));
    }
    std::printf("%s\n", absl::CEscape(answer).c_str());
    if (!Complete(answer)) rc = 1;
  }
  std::fflush(stdout);
  close(fd);
  return rc;
}
