#include "client/console/pty_link.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "common/status/errors.h"

namespace atbridge::client {

absl::StatusOr<std::unique_ptr<PtyLink>> PtyLink::Create(const std::string& link_path) {
  if (link_path.empty()) return absl::InvalidArgumentError("the link path is empty");
  std::unique_ptr<PtyLink> p(new PtyLink());
  p->link_path_ = link_path;
  p->master_fd_ = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (p->master_fd_ < 0) return PosixError(errno, "open a pty (posix_openpt)");
  if (grantpt(p->master_fd_) != 0 || unlockpt(p->master_fd_) != 0) {
    return PosixError(errno, "unlock the pty");
  }
  char name[128];
  if (ptsname_r(p->master_fd_, name, sizeof(name)) != 0) return PosixError(errno, "ptsname");
  p->slave_path_ = name;
  p->slave_fd_ = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (p->slave_fd_ < 0) return PosixError(errno, absl::StrCat("open ", name));
  struct termios t;
  if (tcgetattr(p->slave_fd_, &t) != 0) return PosixError(errno, absl::StrCat("tcgetattr ", name));
  cfmakeraw(&t);
  t.c_cflag |= CLOCAL | CREAD;
  cfsetispeed(&t, B115200);
  cfsetospeed(&t, B115200);
  if (tcsetattr(p->slave_fd_, TCSANOW, &t) != 0) {
    return PosixError(errno, absl::StrCat("tcsetattr ", name));
  }

  struct stat st;
  if (lstat(link_path.c_str(), &st) == 0 && !S_ISLNK(st.st_mode)) {
    return absl::AlreadyExistsError(
        absl::StrCat(link_path, " exists and is not a symlink; refusing to replace it"));
  }
  // Link atomically: a tool never sees the path missing or half made.
  const std::string tmp = absl::StrCat(link_path, ".atbridge-", getpid());
  unlink(tmp.c_str());
  if (symlink(name, tmp.c_str()) != 0) return PosixError(errno, absl::StrCat("symlink ", tmp));
  if (rename(tmp.c_str(), link_path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return PosixError(err, absl::StrCat("link ", link_path));
  }
  p->linked_ = true;
  return p;
}

PtyLink::~PtyLink() {
  if (linked_) {
    char target[256];
    ssize_t n = readlink(link_path_.c_str(), target, sizeof(target) - 1);
    if (n > 0 && std::string(target, static_cast<size_t>(n)) == slave_path_) {
      unlink(link_path_.c_str());
    }
  }
  if (slave_fd_ >= 0) close(slave_fd_);
  if (master_fd_ >= 0) close(master_fd_);
}

int PtyLink::ReleaseMaster() {
  int fd = master_fd_;
  master_fd_ = -1;
  return fd;
}

}  // namespace atbridge::client
