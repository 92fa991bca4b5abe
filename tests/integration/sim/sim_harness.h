// Test harness for atbridge-sim over real ptys: the simulator as a
// subprocess (waited for by its readiness line) and a plain POSIX client
// (open, raw termios, write, poll-with-deadline reads), as a host tool would
// use a serial port.
#ifndef ATBRIDGE_TESTS_INTEGRATION_SIM_SIM_HARNESS_H_
#define ATBRIDGE_TESTS_INTEGRATION_SIM_SIM_HARNESS_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace atbridge::sim::testing {

// A modem's answer to one command.
struct AtAnswer {
  std::vector<std::string> lines;  // Information lines (quoted CR/LF kept).
  std::string final;               // "OK", "ERROR" or "+CME ERROR: <n>".
  bool ok() const { return final == "OK"; }
};

// Splits `bytes` into CRLF-terminated lines (terminators outside quotes);
// `rest` gets an unterminated tail.
std::vector<std::string> SplitLines(absl::string_view bytes, std::string* rest);
bool IsFinalLine(absl::string_view line);

// One open serial port (a pty slave through its link). Closes on destruction.
class PtyClient {
 public:
  struct Options {
    int baud = 115200;
    bool rtscts = true;  // Host tools open with RTS/CTS on by default.
    // false: take the line as it is (no tcsetattr), as a tool that trusts
    // the port's settings does.
    bool configure = true;
  };
  static absl::StatusOr<std::unique_ptr<PtyClient>> Open(const std::string& path,
                                                         const Options& options);
  static absl::StatusOr<std::unique_ptr<PtyClient>> Open(const std::string& path) {
    return Open(path, Options());
  }
  ~PtyClient();

  absl::Status Write(absl::string_view bytes);
  // Writes `bytes` in chunks of `chunk` bytes, waiting `gap` after each (UART
  // pacing by a host without flow control).
  absl::Status WritePaced(absl::string_view bytes, size_t chunk, absl::Duration gap);
  // Reads until a final result line; DEADLINE_EXCEEDED if none in time,
  // UNAVAILABLE on hangup/EIO.
  absl::StatusOr<AtAnswer> ReadAnswer(absl::Duration timeout = absl::Seconds(5));
  // Write + ReadAnswer.
  absl::StatusOr<AtAnswer> Command(absl::string_view bytes,
                                   absl::Duration timeout = absl::Seconds(5));
  // Waits up to `timeout` for bytes: returns what arrived (possibly empty),
  // UNAVAILABLE on hangup/EIO.
  absl::StatusOr<std::string> ReadFor(absl::Duration timeout);
  // Reads until `marker` has arrived; returns every byte up to and
  // including it (what follows stays for the next read). DEADLINE_EXCEEDED
  // with what came so far if it does not come in time.
  absl::StatusOr<std::string> ReadUntil(absl::string_view marker,
                                        absl::Duration timeout = absl::Seconds(5));
  int fd() const { return fd_; }

 private:
  explicit PtyClient(int fd) : fd_(fd) {}
  // One poll + read into pending_: DEADLINE_EXCEEDED(timeout_message())
  // when nothing came by `deadline`, UNAVAILABLE on hangup/EIO.
  absl::Status ReadMore(absl::Time deadline, const std::function<std::string()>& timeout_message);
  int fd_;
  std::string pending_;
};

// Opens `path`, runs one command, closes (nrfcredstore style).
absl::StatusOr<AtAnswer> OneShot(const std::string& path, absl::string_view bytes,
                                 absl::Duration timeout = absl::Seconds(5));

// atbridge-sim as a subprocess in its own temp dir.
class SimProcess {
 public:
  SimProcess();
  // Starts with --link-dir <dir>/links plus `args`; waits for the ready line.
  // `wrapper` (e.g. {"/usr/bin/prlimit", "--nofile=1024:4096"}) is run with
  // the simulator's command line as its arguments.
  absl::Status Start(const std::vector<std::string>& args,
                     absl::Duration timeout = absl::Seconds(30),
                     const std::vector<std::string>& wrapper = {});
  // SIGTERM and wait; returns the exit code.
  absl::StatusOr<int> Stop();
  std::string Link(int k) const;
  const std::string& link_dir() const { return link_dir_; }
  const ::atbridge::testing::TempDir& dir() const { return dir_; }
  ::atbridge::testing::Subprocess& process() { return *process_; }
  absl::Duration startup_time() const { return startup_; }

 private:
  ::atbridge::testing::TempDir dir_;
  std::string link_dir_;
  std::unique_ptr<::atbridge::testing::Subprocess> process_;
  absl::Duration startup_;
};

// Waits (inotify, no polling) until `path` exists, up to `timeout`.
absl::Status WaitForPath(const std::string& path, absl::Duration timeout);

// Waits (inotify on the file, no polling) until the file at `path` holds
// `needle` at least `count` times, up to `timeout`; returns its content.
// Used with the simulator's --transcript, which flushes every record.
absl::StatusOr<std::string> WaitForFileText(const std::string& path, absl::string_view needle,
                                            int count, absl::Duration timeout = absl::Seconds(5));

}  // namespace atbridge::sim::testing

#endif  // ATBRIDGE_TESTS_INTEGRATION_SIM_SIM_HARNESS_H_
