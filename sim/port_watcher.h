// Tells the simulator's ports when a tool opens or last closes their pty, so
// a port behaves like a real serial port across open/close (see
// common/pty/pty.h): what nobody read is gone at the next open, and termios
// a tool left behind do not outlive it.
//
// One per Simulator: one pty::ToolWatcher (one inotify fd, one watch per
// pty), its fd waited on by the io_context (async_wait -> TakeOpens -> wait
// again). Ports call Add() after plugging, Remove() before closing,
// TakeOpens() before they act on whether a tool is there, and OnHangup()
// when their master reports the last tool's close (EIO).
//
// Threading: the io_context thread only; not thread-safe. Must outlive the
// watches (the ports) and be destroyed before the io_context.
#ifndef ATBRIDGE_SIM_PORT_WATCHER_H_
#define ATBRIDGE_SIM_PORT_WATCHER_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <functional>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/pty/pty.h"

namespace atbridge::sim {

class PortWatcher {
 public:
  // Fails if inotify is unavailable (the caller then keeps the ptys'
  // held-slave behaviour and says so once).
  static absl::StatusOr<std::unique_ptr<PortWatcher>> Create(boost::asio::io_context& io);
  ~PortWatcher();
  PortWatcher(const PortWatcher&) = delete;
  PortWatcher& operator=(const PortWatcher&) = delete;

  // Watches `pty` (which must outlive the watch); `on_open` runs (on the
  // io_context thread) when a tool opened it. Returns the handle, or 0 when
  // the watch cannot be added (e.g. fs.inotify.max_user_watches): that port
  // keeps holding its slave, and one warning is logged per simulator.
  int Add(pty::Pty* pty, std::function<void()> on_open);
  // Stops watching; 0 and unknown handles are ignored.
  void Remove(int handle);
  // Reads pending opens without blocking: the ptys tools opened let go of
  // their slave (so the last close becomes a hangup), and their on_open runs.
  void TakeOpens();
  // Whether a tool has `handle`'s pty open (pty::ToolWatcher::ToolPresent:
  // pending opens first, then the kernel). A failed check says yes: nothing
  // is dropped on a guess.
  bool ToolPresent(int handle);
  // The master of `handle`'s pty reported a hangup: takes the slave back and
  // resets the line (raw, nothing unread). See pty::ToolWatcher::OnHangup.
  absl::Status OnHangup(int handle);

 private:
  PortWatcher(boost::asio::io_context& io, std::unique_ptr<pty::ToolWatcher> watcher);
  void Wait();

  std::unique_ptr<pty::ToolWatcher> watcher_;
  // Waits on watcher_->fd() (released, not closed, on destruction).
  boost::asio::posix::stream_descriptor fd_;
  absl::flat_hash_map<int, std::function<void()>> on_open_;
  bool warned_ = false;
};

}  // namespace atbridge::sim

#endif  // ATBRIDGE_SIM_PORT_WATCHER_H_
