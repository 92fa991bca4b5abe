#include "sim/port_watcher.h"

#include <utility>
#include <vector>

#include "common/log.h"
#include "common/status/errors.h"

namespace atbridge::sim {

namespace asio = boost::asio;

absl::StatusOr<std::unique_ptr<PortWatcher>> PortWatcher::Create(asio::io_context& io) {
  absl::StatusOr<std::unique_ptr<pty::ToolWatcher>> watcher = pty::ToolWatcher::Create();
  if (!watcher.ok()) return watcher.status();
  std::unique_ptr<PortWatcher> self(new PortWatcher(io, *std::move(watcher)));
  boost::system::error_code ec;
  self->fd_.assign(self->watcher_->fd(), ec);
  if (ec) return FromErrorCode(ec, "watch the inotify fd of the tool watcher");
  self->Wait();
  return self;
}

PortWatcher::PortWatcher(asio::io_context& io, std::unique_ptr<pty::ToolWatcher> watcher)
    : watcher_(std::move(watcher)), fd_(io) {}

PortWatcher::~PortWatcher() {
  boost::system::error_code ec;
  fd_.cancel(ec);
  // The ToolWatcher owns the fd and closes it.
  if (fd_.is_open()) fd_.release();
}

void PortWatcher::Wait() {
  fd_.async_wait(asio::posix::stream_descriptor::wait_read,
                 [this](const boost::system::error_code& ec) {
                   if (ec) return;  // Cancelled: the simulator is going away.
                   TakeOpens();
                   Wait();
                 });
}

int PortWatcher::Add(pty::Pty* pty, std::function<void()> on_open) {
  absl::StatusOr<int> handle = watcher_->Add(pty);
  if (!handle.ok()) {
    if (!warned_) {
      ATB_LOG(WARNING) << handle.status()
                       << "; such ports keep unread answers and a tool's termios across a close";
      warned_ = true;
    }
    return 0;
  }
  on_open_[*handle] = std::move(on_open);
  return *handle;
}

void PortWatcher::Remove(int handle) {
  if (handle == 0) return;
  watcher_->Remove(handle);
  on_open_.erase(handle);
}

void PortWatcher::TakeOpens() {
  for (int handle : watcher_->TakeOpens()) {
    auto it = on_open_.find(handle);
    if (it != on_open_.end() && it->second) it->second();
  }
}

bool PortWatcher::ToolPresent(int handle) {
  TakeOpens();  // Pending opens run their callbacks here, not unseen inside.
  absl::StatusOr<bool> present = watcher_->ToolPresent(handle);
  if (!present.ok()) {
    ATB_LOG(WARNING) << "is a tool on the port? " << present.status();
    return true;
  }
  return *present;
}

absl::Status PortWatcher::OnHangup(int handle) { return watcher_->OnHangup(handle); }

}  // namespace atbridge::sim
