// Pseudo-terminals that serial tools can use as if a board were plugged in:
// shared by atbridge-sim (one per simulated modem) and `atbridgectl attach`.
//
// While no tool has the slave open, a Pty holds one slave fd itself: the
// master then never sees a hangup (Linux reports EIO on the master, and epoll
// HUP, while no slave fd is open), and tools can open and close the slave
// (usually through a symlink) any number of times. Holding it has a price: the
// line stays alive with nobody on it, so bytes written to the master queue up
// for the next tool, and termios a tool left behind (ECHO, ICRNL...) keep
// acting; with ECHO left on, the owner's own output comes back as input. A
// real serial port does neither: its driver drops what arrives while the port
// is closed, and the next open starts clean.
//
// ToolWatcher makes a Pty behave like the real port. When a tool opens the
// slave, the Pty lets go of its own fd, so the kernel reports the last tool's
// close as a hangup on the master (reads fail with EIO once the data is read;
// writes are accepted and dropped). The owner then calls
// ToolWatcher::OnHangup(), which takes the slave back and resets the line.
//
// Not thread-safe; each object is used from one thread.
#ifndef ATBRIDGE_COMMON_PTY_PTY_H_
#define ATBRIDGE_COMMON_PTY_PTY_H_

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace atbridge::pty {

// Owns the master and the held slave fd; closes them on destruction.
// Movable, not copyable.
class Pty {
 public:
  // Opens a master (close-on-exec; non-blocking if asked) and its slave in
  // the state of a freshly opened serial port: raw, 115200 8N1, CLOCAL|CREAD.
  static absl::StatusOr<Pty> Open(bool non_blocking_master = false);

  Pty() = default;
  ~Pty();
  Pty(Pty&& other) noexcept;
  Pty& operator=(Pty&& other) noexcept;
  Pty(const Pty&) = delete;
  Pty& operator=(const Pty&) = delete;

  // The master, owned or not (see ReleaseMaster).
  int master_fd() const { return master_fd_; }
  // Gives up ownership of the master (e.g. to an Asio descriptor), which the
  // new owner must keep open as long as this Pty lives (ToolWatcher polls
  // it). Returns -1 if already released.
  int ReleaseMaster();
  const std::string& slave_path() const { return slave_path_; }

  // Whether the Pty holds its own slave fd (see the file comment).
  bool holds_slave() const { return slave_fd_ >= 0; }
  // Closes the held slave fd: from now on the last tool's close is a hangup
  // on the master. No-op if not held.
  void LetGo();
  // Opens the held slave fd again (no-op if held). ToolWatcher::OnHangup
  // calls it with the watch paused, so the open is not taken for a tool's.
  absl::Status Retake();

  // Puts the line back the way Open() left it (raw, 115200 8N1) and drops
  // what is queued either way: what the owner wrote that no tool read, and
  // what the line produced after the last tool left (an echo, if it left
  // ECHO on). At a hangup the owner has read all a tool wrote: the master
  // reports it only once drained. What a closed serial port amounts to.
  // Needs the slave held.
  absl::Status ResetLine();

  // Closes the held slave fd and the master (if still owned). Tools holding
  // the slave then see a hangup, as after a USB unplug.
  void Close();

 private:
  int master_fd_ = -1;
  bool owns_master_ = false;
  int slave_fd_ = -1;
  std::string slave_path_;
};

// Watches any number of ptys (one inotify fd, one IN_OPEN watch each) and
// lets each one go of its held slave fd as soon as a tool opens it, so the
// kernel itself reports the last tool's close (see the file comment).
// inotify merges identical events and cannot say who opened, so an open is
// only a cue: the hangup is the truth. The Pty's own re-open is made with the
// watch paused, so a tool that opens in those microseconds goes unreported;
// ToolPresent() asks the kernel before the owner drops anything on the
// strength of "nobody is there", so no tool ever loses output to it. One race
// remains: such a tool may see the reset applied to its fresh line.
class ToolWatcher {
 public:
  // Fails only if inotify is unavailable (RESOURCE_EXHAUSTED when the
  // per-user instance limit, fs.inotify.max_user_instances, is reached).
  static absl::StatusOr<std::unique_ptr<ToolWatcher>> Create();
  ~ToolWatcher();
  ToolWatcher(const ToolWatcher&) = delete;
  ToolWatcher& operator=(const ToolWatcher&) = delete;

  // Readable (non-blocking, close-on-exec) when TakeOpens() has work; give it
  // to an event loop, do not read it yourself.
  int fd() const { return fd_; }

  // Starts watching `pty` (which holds its slave, as after Open()); `pty`
  // must outlive the watch (Remove it first). Returns a handle.
  // RESOURCE_EXHAUSTED names the sysctl when the watch limit
  // (fs.inotify.max_user_watches) is reached.
  absl::StatusOr<int> Add(Pty* pty);
  // Stops watching; unknown handles are ignored. The Pty keeps its state.
  void Remove(int handle);

  // Reads every pending event without blocking and lets go of the slave of
  // each watched pty a tool opened. Returns their handles, once each.
  std::vector<int> TakeOpens();

  // Call when the master of `handle`'s pty reports a hangup (a read fails
  // with EIO): takes the slave back and resets the line. Then read the
  // master again; drop what you still meant to send, nobody was there.
  absl::Status OnHangup(int handle);

  // Whether a tool has `handle`'s pty open: call it before dropping output
  // meant for a tool. Free while a tool is known to be there; otherwise it
  // reads pending opens and, if none, asks the kernel (lets go of the slave
  // and looks for a hangup, then takes it back with the line reset), which
  // catches a tool that opened while OnHangup had the watch paused.
  absl::StatusOr<bool> ToolPresent(int handle);

 private:
  struct Entry {
    Pty* pty;
    int wd;
  };
  explicit ToolWatcher(int fd) : fd_(fd) {}

  int fd_;
  int next_handle_ = 1;
  absl::flat_hash_map<int, Entry> entries_;     // handle -> pty and watch.
  absl::flat_hash_map<int, int> handle_by_wd_;  // inotify wd -> handle.
};

// Points `link_path` at `target` atomically (symlink to a temporary name,
// then rename over), replacing an existing symlink. ALREADY_EXISTS if
// `link_path` exists and is not a symlink: nothing else is ever replaced.
absl::Status ReplaceSymlink(const std::string& target, const std::string& link_path);

// Removes `link_path` if it is a symlink to `target` (a link that something
// else has re-pointed is left alone). Errors are ignored.
void RemoveSymlinkIfPointsTo(const std::string& target, const std::string& link_path);

// A claim on a path (a link path, a link directory) by one live process: an
// abstract unix socket named after the path's absolute form, so it needs no
// file and vanishes when the process dies, however it dies. Released on
// destruction. Movable.
class PathClaim {
 public:
  // ALREADY_EXISTS if another live process holds a claim on `path` (`what`
  // names the kind of owner for the message, e.g. "atbridgectl attach").
  static absl::StatusOr<PathClaim> Claim(const std::string& path, const std::string& what);

  PathClaim() = default;
  ~PathClaim();
  PathClaim(PathClaim&& other) noexcept;
  PathClaim& operator=(PathClaim&& other) noexcept;
  PathClaim(const PathClaim&) = delete;
  PathClaim& operator=(const PathClaim&) = delete;

 private:
  int fd_ = -1;
};

// Raises the soft RLIMIT_NOFILE to at least `needed` descriptors (up to the
// hard limit). RESOURCE_EXHAUSTED if the hard limit is lower.
absl::Status EnsureFileLimit(size_t needed);

}  // namespace atbridge::pty

#endif  // ATBRIDGE_COMMON_PTY_PTY_H_
