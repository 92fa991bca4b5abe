#include "sim/pty.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status/errors.h"

namespace atbridge::sim {

absl::StatusOr<Pty> Pty::Open() {
  Pty pty;
  pty.master_fd_ = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
  if (pty.master_fd_ < 0) return PosixError(errno, "posix_openpt");
  if (grantpt(pty.master_fd_) != 0) return PosixError(errno, "grantpt");
  if (unlockpt(pty.master_fd_) != 0) return PosixError(errno, "unlockpt");
  char name[PATH_MAX];
  if (ptsname_r(pty.master_fd_, name, sizeof(name)) != 0) return PosixError(errno, "ptsname_r");
  pty.slave_path_ = name;
  pty.slave_fd_ = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (pty.slave_fd_ < 0) return PosixError(errno, absl::StrCat("open ", name));
  struct termios tio;
  if (tcgetattr(pty.slave_fd_, &tio) != 0) {
    return PosixError(errno, absl::StrCat("tcgetattr ", name));
  }
  cfmakeraw(&tio);
  cfsetispeed(&tio, B115200);
  cfsetospeed(&tio, B115200);
  if (tcsetattr(pty.slave_fd_, TCSANOW, &tio) != 0) {
    return PosixError(errno, absl::StrCat("tcsetattr ", name));
  }
  return pty;
}

Pty::~Pty() { Close(); }

Pty::Pty(Pty&& other) noexcept
    : master_fd_(std::exchange(other.master_fd_, -1)),
      slave_fd_(std::exchange(other.slave_fd_, -1)),
      slave_path_(std::move(other.slave_path_)) {}

Pty& Pty::operator=(Pty&& other) noexcept {
  if (this != &other) {
    Close();
    master_fd_ = std::exchange(other.master_fd_, -1);
    slave_fd_ = std::exchange(other.slave_fd_, -1);
    slave_path_ = std::move(other.slave_path_);
  }
  return *this;
}

int Pty::ReleaseMaster() { return std::exchange(master_fd_, -1); }

void Pty::Close() {
  if (slave_fd_ >= 0) close(std::exchange(slave_fd_, -1));
  if (master_fd_ >= 0) close(std::exchange(master_fd_, -1));
}

absl::Status ReplaceSymlink(const std::string& target, const std::string& link_path) {
  struct stat st;
  if (lstat(link_path.c_str(), &st) == 0 && !S_ISLNK(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat(link_path, " exists and is not a symlink; refusing to replace it"));
  }
  std::string tmp = absl::StrCat(link_path, ".tmp-", getpid());
  unlink(tmp.c_str());
  if (symlink(target.c_str(), tmp.c_str()) != 0) {
    return PosixError(errno, absl::StrCat("symlink ", tmp, " -> ", target));
  }
  if (rename(tmp.c_str(), link_path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return PosixError(err, absl::StrCat("rename ", tmp, " to ", link_path));
  }
  return absl::OkStatus();
}

void RemoveSymlinkIfPointsTo(const std::string& target, const std::string& link_path) {
  char buf[PATH_MAX];
  ssize_t n = readlink(link_path.c_str(), buf, sizeof(buf) - 1);
  if (n < 0) return;
  if (std::string(buf, static_cast<size_t>(n)) == target) unlink(link_path.c_str());
}

absl::Status EnsureFileLimit(size_t needed) {
  struct rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return PosixError(errno, "getrlimit(RLIMIT_NOFILE)");
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur >= needed) return absl::OkStatus();
  if (lim.rlim_cur == RLIM_INFINITY) return absl::OkStatus();
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < needed) {
    return absl::ResourceExhaustedError(
        absl::StrCat("need ", needed, " file descriptors but the hard RLIMIT_NOFILE is ",
                     lim.rlim_max, "; raise it (ulimit -Hn) or use fewer modems"));
  }
  lim.rlim_cur = lim.rlim_max == RLIM_INFINITY ? needed : lim.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &lim) != 0) return PosixError(errno, "setrlimit(RLIMIT_NOFILE)");
  return absl::OkStatus();
}

}  // namespace atbridge::sim
