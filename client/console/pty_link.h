// A local pseudo-terminal whose slave is reachable at a chosen path (a
// symlink), for `attach`: any serial tool opens the path as if the board
// were plugged in here.
//
// It behaves like a real serial port (common/pty/pty.h, ToolWatcher): while
// no tool has the port open, we hold the slave ourselves, so tools can open
// and close it any number of times; when a tool opens it we let go, so the
// last tool's close is reported as a hangup on the master (reads fail with
// EIO), and OnHangup() then takes the slave back and resets the line: the
// next tool starts with a fresh raw line (no echo, no CR/LF translation,
// 115200 8N1) and nothing stale, whatever termios the previous tool left.
// Tools may change termios (speed, CRTSCTS): a pty accepts and ignores them.
//
// The owner's rules:
//   - call TakeOpens() at the start of each master read handler and before
//     each write to the master, so an open that already happened is known;
//   - a master read failing with EIO means "the last tool closed the port":
//     call OnHangup(), drop output still meant for the tool, read again;
//   - while !ToolPresent(), drop output instead of writing it (a closed
//     port drops what arrives).
//
// Not thread-safe; owns its fds and the link, which is removed at
// destruction (only if it still points at our pty). The master, once
// released, must stay open as long as this object lives.
#ifndef ATBRIDGE_CLIENT_CONSOLE_PTY_LINK_H_
#define ATBRIDGE_CLIENT_CONSOLE_PTY_LINK_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/pty/pty.h"

namespace atbridge::client {

class PtyLink {
 public:
  // Opens a pty and starts watching for tools opening it. Nothing is linked
  // yet (see Link()). INVALID_ARGUMENT for an empty path; RESOURCE_EXHAUSTED
  // when inotify is unavailable.
  static absl::StatusOr<std::unique_ptr<PtyLink>> Create(const std::string& link_path);
  ~PtyLink();
  PtyLink(const PtyLink&) = delete;
  PtyLink& operator=(const PtyLink&) = delete;

  // Links the slave at link_path(). A symlink there is replaced; any other
  // existing file is ALREADY_EXISTS (and left alone).
  absl::Status Link();
  bool linked() const { return linked_; }

  // Hands the master fd to the caller (e.g. an Asio stream_descriptor), who
  // then owns it. Returns -1 if already released.
  int ReleaseMaster();
  // Readable when TakeOpens() has work (inotify; non-blocking). Owned here:
  // give a dup() to an event loop that closes what it is given.
  int watch_fd() const { return watcher_->fd(); }
  // Notes tools that opened the port since the last call (and lets go of our
  // slave for them). Returns true if there was any.
  bool TakeOpens();
  // The master reported a hangup (a read failed with EIO): takes the slave
  // back and resets the line.
  absl::Status OnHangup();
  // Whether a tool has (or just had) the port open. Free while one is known
  // to; otherwise asks the kernel (pty::ToolWatcher::ToolPresent), which also
  // knows of a tool whose open went unreported.
  absl::StatusOr<bool> ToolPresent();

  const std::string& slave_path() const { return pty_.slave_path(); }
  const std::string& link_path() const { return link_path_; }

 private:
  PtyLink() = default;

  pty::Pty pty_;
  std::unique_ptr<pty::ToolWatcher> watcher_;
  int watch_handle_ = -1;
  std::string link_path_;
  bool linked_ = false;
};

}  // namespace atbridge::client

#endif  // ATBRIDGE_CLIENT_CONSOLE_PTY_LINK_H_
