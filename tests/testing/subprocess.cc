#include "tests/testing/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
// glibc 2.36's <sys/pidfd.h> lacks extern "C" (fixed in 2.37): without this
// wrapper C++ callers get an undefined reference to a mangled pidfd_open.
extern "C" {
#include <sys/pidfd.h>
}
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

extern char** environ;

namespace atbridge::testing {

namespace {

int DecodeWait(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

Subprocess::~Subprocess() {
  if (pid_ > 0 && !exit_code_.has_value()) Kill();
  if (stdin_fd_ >= 0) close(stdin_fd_);
  if (reader_.joinable()) reader_.join();
}

absl::Status Subprocess::Start(const std::vector<std::string>& argv, const Options& options) {
  if (argv.empty()) return absl::InvalidArgumentError("empty argv");
  name_ = argv[0].substr(argv[0].rfind('/') + 1);
  echo_ = options.echo;
  int out_pipe[2];
  int in_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(in_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  if (options.merge_stderr) posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Own process group, so signals from the terminal do not hit children.
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  posix_spawnattr_setpgroup(&attr, 0);

  std::vector<std::string> env_store;
  for (char** e = environ; *e != nullptr; ++e) env_store.emplace_back(*e);
  for (const auto& e : options.env) env_store.push_back(e);
  std::vector<char*> envp;
  envp.reserve(env_store.size() + 1);
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args_store = argv;
  std::vector<char*> args;
  args.reserve(args_store.size() + 1);
  for (auto& a : args_store) args.push_back(a.data());
  args.push_back(nullptr);

  int rc = posix_spawn(&pid_, args[0], &fa, &attr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  close(out_pipe[1]);
  close(in_pipe[0]);
  if (rc != 0) {
    close(out_pipe[0]);
    close(in_pipe[1]);
    pid_ = -1;
    return absl::InternalError(absl::StrCat("spawn ", argv[0], ": ", std::strerror(rc)));
  }
  stdin_fd_ = in_pipe[1];
  if (!options.stdin_data.empty()) {
    absl::Status s = WriteStdin(options.stdin_data);
    if (!s.ok()) return s;
  }
  if (!options.keep_stdin_open) CloseStdin();
  int fd = out_pipe[0];
  reader_ = std::thread([this, fd] { ReaderLoop(fd); });
  return absl::OkStatus();
}

void Subprocess::ReaderLoop(int fd) {
  char buf[4096];
  while (true) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::lock_guard<std::mutex> lock(mu_);
    partial_.append(buf, static_cast<size_t>(n));
    size_t pos;
    while ((pos = partial_.find('\n')) != std::string::npos) {
      std::string line = partial_.substr(0, pos);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (echo_) std::cerr << "[" << name_ << "] " << line << std::endl;
      lines_.push_back(std::move(line));
      partial_.erase(0, pos + 1);
    }
    cv_.notify_all();
  }
  close(fd);
  std::lock_guard<std::mutex> lock(mu_);
  if (!partial_.empty()) {
    lines_.push_back(partial_);
    partial_.clear();
  }
  eof_ = true;
  cv_.notify_all();
}

absl::StatusOr<std::string> Subprocess::WaitForLine(const std::string& prefix,
                                                    absl::Duration timeout) {
  return WaitForLineMatching(
      [&prefix](const std::string& l) { return absl::StartsWith(l, prefix); }, timeout);
}

absl::StatusOr<std::string> Subprocess::WaitForLineMatching(
    const std::function<bool(const std::string&)>& pred, absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  size_t checked = 0;
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout));
  while (true) {
    for (; checked < lines_.size(); ++checked) {
      if (pred(lines_[checked])) return lines_[checked];
    }
    if (eof_) {
      return absl::UnavailableError(absl::StrCat(
          name_, " ended before the expected line; output:\n", absl::StrJoin(lines_, "\n")));
    }
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout && checked == lines_.size()) {
      return absl::DeadlineExceededError(absl::StrCat(
          name_, ": expected line not seen in time; output:\n", absl::StrJoin(lines_, "\n")));
    }
  }
}

absl::Status Subprocess::WriteStdin(const std::string& data) {
  if (stdin_fd_ < 0) return absl::FailedPreconditionError("stdin closed");
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(stdin_fd_, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return absl::UnavailableError(absl::StrCat("write stdin: ", std::strerror(errno)));
    off += static_cast<size_t>(n);
  }
  return absl::OkStatus();
}

void Subprocess::CloseStdin() {
  if (stdin_fd_ >= 0) {
    close(stdin_fd_);
    stdin_fd_ = -1;
  }
}

void Subprocess::Signal(int sig) {
  if (pid_ > 0 && !exit_code_.has_value()) kill(pid_, sig);
}

absl::StatusOr<int> Subprocess::Wait(absl::Duration timeout) {
  if (pid_ <= 0) return absl::FailedPreconditionError("not started");
  if (exit_code_.has_value()) return *exit_code_;
  // A pidfd becomes readable when the process exits: wait on it with poll().
  int pfd = pidfd_open(pid_, 0);
  if (pfd < 0) return absl::InternalError(absl::StrCat("pidfd_open: ", std::strerror(errno)));
  struct pollfd p = {.fd = pfd, .events = POLLIN, .revents = 0};
  int ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
  int r;
  do {
    r = poll(&p, 1, ms);
  } while (r < 0 && errno == EINTR);
  close(pfd);
  if (r == 0) return absl::DeadlineExceededError(absl::StrCat(name_, " did not exit in time"));
  int status = 0;
  pid_t w;
  do {
    w = waitpid(pid_, &status, 0);
  } while (w < 0 && errno == EINTR);
  if (w < 0) return absl::InternalError(absl::StrCat("waitpid: ", std::strerror(errno)));
  exit_code_ = DecodeWait(status);
  if (reader_.joinable()) reader_.join();
  return *exit_code_;
}

void Subprocess::Kill() {
  Signal(SIGKILL);
  (void)Wait(absl::Seconds(10));
}

bool Subprocess::running() const {
  return pid_ > 0 && !exit_code_.has_value() && kill(pid_, 0) == 0;
}

std::vector<std::string> Subprocess::Lines() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lines_;
}

std::string Subprocess::Output() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out = absl::StrJoin(lines_, "\n");
  if (!partial_.empty()) absl::StrAppend(&out, out.empty() ? "" : "\n", partial_);
  return out;
}

absl::StatusOr<RunResult> RunCommand(const std::vector<std::string>& argv,
                                     const Subprocess::Options& options, absl::Duration timeout) {
  Subprocess p;
  absl::Status s = p.Start(argv, options);
  if (!s.ok()) return s;
  auto code = p.Wait(timeout);
  if (!code.ok()) {
    p.Kill();
    return absl::DeadlineExceededError(
        absl::StrCat(argv[0], " did not finish in time; output:\n", p.Output()));
  }
  return RunResult{*code, p.Output()};
}

std::string BinaryPath(const std::string& name) {
  return std::string(ATBRIDGE_BIN_DIR) + "/" + name;
}

}  // namespace atbridge::testing
