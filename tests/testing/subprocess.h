// Runs a binary for end-to-end tests and waits for its readiness line
// (never sleeps). Output lines are collected; stderr is merged into stdout
// unless separated.
#ifndef ATBRIDGE_TESTS_TESTING_SUBPROCESS_H_
#define ATBRIDGE_TESTS_TESTING_SUBPROCESS_H_

#include <sys/types.h>

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace atbridge::testing {

class Subprocess {
 public:
  struct Options {
    // Merge stderr into the collected output (default) or pass it through.
    bool merge_stderr = true;
    // Extra environment entries "K=V" (added to the inherited environment).
    std::vector<std::string> env;
    // Data written to stdin, then stdin is closed (unless keep_stdin_open).
    std::string stdin_data;
    bool keep_stdin_open = false;
    // Echo every output line to the test's stderr, prefixed with the name.
    bool echo = false;
  };

  Subprocess() = default;
  ~Subprocess();  // Kills (SIGKILL) and reaps if still running.
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // Starts argv[0] (a path) with argv.
  absl::Status Start(const std::vector<std::string>& argv, const Options& options);
  absl::Status Start(const std::vector<std::string>& argv) { return Start(argv, Options()); }

  // Waits until a line starting with `prefix` appears; returns that line.
  // Fails with DEADLINE_EXCEEDED after `timeout`, or UNAVAILABLE if the
  // process exits first. Output so far is in the error message.
  absl::StatusOr<std::string> WaitForLine(const std::string& prefix,
                                          absl::Duration timeout = absl::Seconds(30));
  // Same with an arbitrary predicate over each line.
  absl::StatusOr<std::string> WaitForLineMatching(
      const std::function<bool(const std::string&)>& pred, absl::Duration timeout);

  // Writes to the child's stdin (if kept open).
  absl::Status WriteStdin(const std::string& data);
  void CloseStdin();

  // Sends a signal.
  void Signal(int sig);
  // Waits for exit; returns the wait status decoded: exit code, or 128+signal.
  // DEADLINE_EXCEEDED if it does not exit in time.
  absl::StatusOr<int> Wait(absl::Duration timeout = absl::Seconds(30));
  // Signal(SIGKILL) + Wait.
  void Kill();

  pid_t pid() const { return pid_; }
  bool running() const;
  // All output lines so far, and as one string.
  std::vector<std::string> Lines() const;
  std::string Output() const;

 private:
  void ReaderLoop(int fd);

  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  std::string name_;
  bool echo_ = false;
  std::thread reader_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> lines_;
  std::string partial_;
  bool eof_ = false;
  std::optional<int> exit_code_;
};

// Runs a command to completion with a timeout; returns {exit code, output}.
struct RunResult {
  int exit_code = -1;
  std::string output;
};
absl::StatusOr<RunResult> RunCommand(const std::vector<std::string>& argv,
                                     const Subprocess::Options& options = {},
                                     absl::Duration timeout = absl::Seconds(60));

// Path of a built binary in build/bin.
std::string BinaryPath(const std::string& name);

}  // namespace atbridge::testing

#endif  // ATBRIDGE_TESTS_TESTING_SUBPROCESS_H_
