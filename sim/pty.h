// Pseudo-terminals that behave like a modem's UART for clients.
//
// The slave is put in raw mode at creation and one slave fd stays open inside
// the simulator for the pty's whole life, so clients can open and close the
// slave (through its link) any number of times without the master ever
// seeing hangup/EIO (Linux reports EIO on the master, and epoll spins on
// HUP, while no slave fd is open). Clients may change termios freely.
#ifndef ATBRIDGE_SIM_PTY_H_
#define ATBRIDGE_SIM_PTY_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace atbridge::sim {

// Owns both fds; closes them on destruction. Movable, not copyable.
class Pty {
 public:
  // Opens a master (non-blocking, close-on-exec) and its raw slave.
  static absl::StatusOr<Pty> Open();

  Pty() = default;
  ~Pty();
  Pty(Pty&& other) noexcept;
  Pty& operator=(Pty&& other) noexcept;
  Pty(const Pty&) = delete;
  Pty& operator=(const Pty&) = delete;

  int master_fd() const { return master_fd_; }
  // Gives up ownership of the master (e.g. to an Asio descriptor).
  int ReleaseMaster();
  const std::string& slave_path() const { return slave_path_; }
  // Closes the held slave fd and the master (if still owned).
  void Close();

 private:
  int master_fd_ = -1;
  int slave_fd_ = -1;
  std::string slave_path_;
};

// Points `link_path` at `target` atomically (symlink to a temporary name, then
// rename over), replacing a stale link. FAILED_PRECONDITION if `link_path`
// exists and is not a symlink (nothing else is ever replaced).
absl::Status ReplaceSymlink(const std::string& target, const std::string& link_path);

// Removes `link_path` if it is a symlink to `target` (a link that something
// else has re-pointed is left alone). Errors are ignored.
void RemoveSymlinkIfPointsTo(const std::string& target, const std::string& link_path);

// Raises the soft RLIMIT_NOFILE to at least `needed` descriptors (up to the
// hard limit). RESOURCE_EXHAUSTED if the hard limit is lower.
absl::Status EnsureFileLimit(size_t needed);

}  // namespace atbridge::sim

#endif  // ATBRIDGE_SIM_PTY_H_
