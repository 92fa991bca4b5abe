#include "common/pty/pty.h"

#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/inotify.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status/errors.h"

namespace atbridge::pty {

namespace {

// The settings of a port nobody has configured: raw bytes both ways (no
// echo, no CR/LF translation, no signals), 115200 8N1.
absl::Status SetFreshLine(int slave_fd, const std::string& name) {
  struct termios tio;
  if (tcgetattr(slave_fd, &tio) != 0) return PosixError(errno, absl::StrCat("tcgetattr ", name));
  cfmakeraw(&tio);
  tio.c_cflag |= CLOCAL | CREAD;
  tio.c_cflag &= ~static_cast<tcflag_t>(CRTSCTS);
  cfsetispeed(&tio, B115200);
  cfsetospeed(&tio, B115200);
  if (tcsetattr(slave_fd, TCSANOW, &tio) != 0) {
    return PosixError(errno, absl::StrCat("tcsetattr ", name));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Pty> Pty::Open(bool non_blocking_master) {
  Pty pty;
  int flags = O_RDWR | O_NOCTTY | O_CLOEXEC | (non_blocking_master ? O_NONBLOCK : 0);
  pty.master_fd_ = posix_openpt(flags);
  if (pty.master_fd_ < 0) return PosixError(errno, "open a pty (posix_openpt)");
  pty.owns_master_ = true;
  if (grantpt(pty.master_fd_) != 0) return PosixError(errno, "grantpt");
  if (unlockpt(pty.master_fd_) != 0) return PosixError(errno, "unlockpt");
  char name[PATH_MAX];
  if (ptsname_r(pty.master_fd_, name, sizeof(name)) != 0) return PosixError(errno, "ptsname_r");
  pty.slave_path_ = name;
  pty.slave_fd_ = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (pty.slave_fd_ < 0) return PosixError(errno, absl::StrCat("open ", name));
  if (absl::Status s = SetFreshLine(pty.slave_fd_, pty.slave_path_); !s.ok()) return s;
  return pty;
}

Pty::~Pty() { Close(); }

Pty::Pty(Pty&& other) noexcept
    : master_fd_(std::exchange(other.master_fd_, -1)),
      owns_master_(std::exchange(other.owns_master_, false)),
      slave_fd_(std::exchange(other.slave_fd_, -1)),
      slave_path_(std::move(other.slave_path_)) {}

Pty& Pty::operator=(Pty&& other) noexcept {
  if (this != &other) {
    Close();
    master_fd_ = std::exchange(other.master_fd_, -1);
    owns_master_ = std::exchange(other.owns_master_, false);
    slave_fd_ = std::exchange(other.slave_fd_, -1);
    slave_path_ = std::move(other.slave_path_);
  }
  return *this;
}

int Pty::ReleaseMaster() {
  if (!owns_master_) return -1;
  owns_master_ = false;
  return master_fd_;
}

void Pty::LetGo() {
  if (slave_fd_ >= 0) close(std::exchange(slave_fd_, -1));
}

absl::Status Pty::Retake() {
  if (slave_fd_ >= 0) return absl::OkStatus();
  if (slave_path_.empty()) return absl::FailedPreconditionError("the pty is closed");
  slave_fd_ = open(slave_path_.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave_fd_ < 0) return PosixError(errno, absl::StrCat("reopen ", slave_path_));
  return absl::OkStatus();
}

absl::Status Pty::ResetLine() {
  if (slave_fd_ < 0) return absl::FailedPreconditionError("the slave is not held");
  if (absl::Status s = SetFreshLine(slave_fd_, slave_path_); !s.ok()) return s;
  // Both ways: what the owner wrote that no tool read, and what the line
  // itself produced since the last tool left (the echo of the owner's last
  // bytes when a tool left ECHO on). All a tool wrote has been read already:
  // the master reports the hangup only once it is drained.
  if (tcflush(slave_fd_, TCIOFLUSH) != 0) {
    return PosixError(errno, absl::StrCat("tcflush ", slave_path_));
  }
  return absl::OkStatus();
}

void Pty::Close() {
  if (slave_fd_ >= 0) close(std::exchange(slave_fd_, -1));
  slave_path_.clear();
  if (owns_master_ && master_fd_ >= 0) close(master_fd_);
  master_fd_ = -1;
  owns_master_ = false;
}

absl::StatusOr<std::unique_ptr<ToolWatcher>> ToolWatcher::Create() {
  int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    if (errno == EMFILE) {
      return absl::ResourceExhaustedError(
          "inotify_init1: too many inotify instances (raise fs.inotify.max_user_instances)");
    }
    return PosixError(errno, "inotify_init1");
  }
  return std::unique_ptr<ToolWatcher>(new ToolWatcher(fd));
}

ToolWatcher::~ToolWatcher() { close(fd_); }

namespace {

absl::StatusOr<int> AddWatch(int inotify_fd, const std::string& path) {
  int wd = inotify_add_watch(inotify_fd, path.c_str(), IN_OPEN);
  if (wd >= 0) return wd;
  if (errno == ENOSPC) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "watch ", path, ": inotify watch limit reached (raise fs.inotify.max_user_watches)"));
  }
  return PosixError(errno, absl::StrCat("inotify_add_watch ", path));
}

}  // namespace

absl::StatusOr<int> ToolWatcher::Add(Pty* pty) {
  absl::StatusOr<int> wd = AddWatch(fd_, pty->slave_path());
  if (!wd.ok()) return wd.status();
  int handle = next_handle_++;
  entries_[handle] = Entry{pty, *wd};
  handle_by_wd_[*wd] = handle;
  return handle;
}

void ToolWatcher::Remove(int handle) {
  auto it = entries_.find(handle);
  if (it == entries_.end()) return;
  if (it->second.wd >= 0) {
    inotify_rm_watch(fd_, it->second.wd);
    handle_by_wd_.erase(it->second.wd);
  }
  entries_.erase(it);
}

std::vector<int> ToolWatcher::TakeOpens() {
  std::vector<int> opened;
  alignas(struct inotify_event) char buf[4096];
  for (;;) {
    ssize_t n = read(fd_, buf, sizeof(buf));
    if (n <= 0) break;  // EAGAIN: drained (errors end the read the same way).
    for (ssize_t off = 0; off < n;) {
      const auto* event = reinterpret_cast<const struct inotify_event*>(buf + off);
      off += static_cast<ssize_t>(sizeof(struct inotify_event) + event->len);
      if ((event->mask & IN_OPEN) == 0) continue;  // IN_IGNORED after a removal.
      auto it = handle_by_wd_.find(event->wd);
      if (it == handle_by_wd_.end()) continue;  // A watch removed since.
      entries_[it->second].pty->LetGo();
      if (std::find(opened.begin(), opened.end(), it->second) == opened.end()) {
        opened.push_back(it->second);
      }
    }
  }
  return opened;
}

absl::Status ToolWatcher::OnHangup(int handle) {
  auto it = entries_.find(handle);
  if (it == entries_.end()) return absl::NotFoundError(absl::StrCat("no watched pty ", handle));
  Pty& pty = *it->second.pty;
  const std::string& path = pty.slave_path();
  // Adding a watch on a watched inode replaces its mask and keeps its wd:
  // while the slave is reopened, only the node's deletion (which the reopen
  // never causes) is listened for.
  if (inotify_add_watch(fd_, path.c_str(), IN_DELETE_SELF) != it->second.wd) {
    return PosixError(errno, absl::StrCat("pause the watch on ", path));
  }
  absl::Status retaken = pty.Retake();
  if (inotify_add_watch(fd_, path.c_str(), IN_OPEN) != it->second.wd) {
    return PosixError(errno, absl::StrCat("resume the watch on ", path));
  }
  if (!retaken.ok()) return retaken;
  return pty.ResetLine();
}

absl::StatusOr<bool> ToolWatcher::ToolPresent(int handle) {
  auto it = entries_.find(handle);
  if (it == entries_.end()) return absl::NotFoundError(absl::StrCat("no watched pty ", handle));
  Pty& pty = *it->second.pty;
  if (!pty.holds_slave()) return true;
  TakeOpens();
  if (!pty.holds_slave()) return true;
  // No open was reported, but one made while OnHangup had the watch paused
  // would not have been: the kernel knows. Closing our fd leaves the master
  // hung up exactly when no other slave fd is open.
  pty.LetGo();
  struct pollfd p = {.fd = pty.master_fd(), .events = POLLIN, .revents = 0};
  if (poll(&p, 1, 0) < 0) return PosixError(errno, absl::StrCat("poll ", pty.slave_path()));
  if ((p.revents & POLLHUP) == 0) return true;
  if (absl::Status s = OnHangup(handle); !s.ok()) return s;
  return false;
}

absl::Status ReplaceSymlink(const std::string& target, const std::string& link_path) {
  struct stat st;
  if (lstat(link_path.c_str(), &st) == 0 && !S_ISLNK(st.st_mode)) {
    return absl::AlreadyExistsError(
        absl::StrCat(link_path, " exists and is not a symlink; refusing to replace it"));
  }
  // Link atomically: a tool never sees the path missing or half made.
  std::string tmp = absl::StrCat(link_path, ".atbridge-", getpid());
  unlink(tmp.c_str());
  if (symlink(target.c_str(), tmp.c_str()) != 0) {
    return PosixError(errno, absl::StrCat("symlink ", tmp, " -> ", target));
  }
  if (rename(tmp.c_str(), link_path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return PosixError(err, absl::StrCat("link ", link_path));
  }
  return absl::OkStatus();
}

void RemoveSymlinkIfPointsTo(const std::string& target, const std::string& link_path) {
  char buf[PATH_MAX];
  ssize_t n = readlink(link_path.c_str(), buf, sizeof(buf) - 1);
  if (n < 0) return;
  if (std::string(buf, static_cast<size_t>(n)) == target) unlink(link_path.c_str());
}

absl::StatusOr<PathClaim> PathClaim::Claim(const std::string& path, const std::string& what) {
  // The absolute, lexically normal form, so "./tty" and "/x/tty" are one
  // claim; the file itself need not exist.
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(path, ec);
  if (ec) return FromErrorCode(ec, absl::StrCat("resolve ", path));
  const std::string name = abs.lexically_normal().string();
  std::string address = absl::StrCat("atbridge-claim:", name);
  struct sockaddr_un addr = {};
  addr.sun_family = AF_UNIX;
  // Abstract namespace: a leading NUL, no file; the name is not NUL-ended.
  if (address.size() > sizeof(addr.sun_path) - 1) {
    // Long paths keep their tail, which is where they differ.
    address = absl::StrCat("atbridge-claim:...",
                           address.substr(address.size() - (sizeof(addr.sun_path) - 20)));
  }
  memcpy(addr.sun_path + 1, address.data(), address.size());
  socklen_t len =
      static_cast<socklen_t>(offsetof(struct sockaddr_un, sun_path) + 1 + address.size());
  PathClaim claim;
  claim.fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (claim.fd_ < 0) return PosixError(errno, "socket(AF_UNIX)");
  if (bind(claim.fd_, reinterpret_cast<struct sockaddr*>(&addr), len) != 0) {
    if (errno == EADDRINUSE) {
      return absl::AlreadyExistsError(absl::StrCat(name, " is in use by another running ", what));
    }
    return PosixError(errno, absl::StrCat("claim ", name));
  }
  return claim;
}

PathClaim::~PathClaim() {
  if (fd_ >= 0) close(fd_);
}

PathClaim::PathClaim(PathClaim&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

PathClaim& PathClaim::operator=(PathClaim&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

absl::Status EnsureFileLimit(size_t needed) {
  struct rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return PosixError(errno, "getrlimit(RLIMIT_NOFILE)");
  if (lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur >= needed) return absl::OkStatus();
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < needed) {
    return absl::ResourceExhaustedError(
        absl::StrCat("need ", needed, " file descriptors but the hard RLIMIT_NOFILE is ",
                     lim.rlim_max, "; raise it (ulimit -Hn) or use fewer modems"));
  }
  lim.rlim_cur = lim.rlim_max == RLIM_INFINITY ? needed : lim.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &lim) != 0) return PosixError(errno, "setrlimit(RLIMIT_NOFILE)");
  return absl::OkStatus();
}

}  // namespace atbridge::pty
