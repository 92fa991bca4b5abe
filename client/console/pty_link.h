// A local pseudo-terminal whose slave is reachable at a chosen path (a
// symlink), for `attach`: any serial tool opens the path as if the board
// were plugged in here.
//
// We keep one slave fd open for the pty's whole life, so the master never
// sees a hangup (EIO) when a tool closes the port, and successive tools can
// open and close it as often as they like. The line starts raw (no echo, no
// CR/LF translation, 115200 8N1); tools may change termios (speed, CRTSCTS):
// a pty accepts and ignores them.
//
// Not thread-safe; owns its fds and the link, which is removed at
// destruction (only if it still points at our pty).
#ifndef ATBRIDGE_CLIENT_CONSOLE_PTY_LINK_H_
#define ATBRIDGE_CLIENT_CONSOLE_PTY_LINK_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/pty/pty.h"

namespace atbridge::client {

class PtyLink {
 public:
  // Opens a pty and links its slave at `link_path`. A stale symlink there is
  // replaced; any other existing file is ALREADY_EXISTS.
  static absl::StatusOr<std::unique_ptr<PtyLink>> Create(const std::string& link_path);
  ~PtyLink();
  PtyLink(const PtyLink&) = delete;
  PtyLink& operator=(const PtyLink&) = delete;

  // Hands the master fd to the caller (e.g. an Asio stream_descriptor), who
  // then owns it. Returns -1 if already released.
  int ReleaseMaster();
  const std::string& slave_path() const { return pty_.slave_path(); }
  const std::string& link_path() const { return link_path_; }

 private:
  PtyLink() = default;

  pty::Pty pty_;
  std::string link_path_;
  bool linked_ = false;
};

}  // namespace atbridge::client

#endif  // ATBRIDGE_CLIENT_CONSOLE_PTY_LINK_H_
