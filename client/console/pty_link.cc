#include "client/console/pty_link.h"

#include <utility>

#include "common/status/status_macros.h"

namespace atbridge::client {

absl::StatusOr<std::unique_ptr<PtyLink>> PtyLink::Create(const std::string& link_path) {
  if (link_path.empty()) return absl::InvalidArgumentError("the link path is empty");
  std::unique_ptr<PtyLink> p(new PtyLink());
  p->link_path_ = link_path;
  ASSIGN_OR_RETURN(p->pty_, pty::Pty::Open());
  ASSIGN_OR_RETURN(p->watcher_, pty::ToolWatcher::Create());
  ASSIGN_OR_RETURN(p->watch_handle_, p->watcher_->Add(&p->pty_));
  return p;
}

PtyLink::~PtyLink() {
  if (linked_) pty::RemoveSymlinkIfPointsTo(pty_.slave_path(), link_path_);
  if (watcher_) watcher_->Remove(watch_handle_);
}

absl::Status PtyLink::Link() {
  RETURN_IF_ERROR(pty::ReplaceSymlink(pty_.slave_path(), link_path_));
  linked_ = true;
  return absl::OkStatus();
}

int PtyLink::ReleaseMaster() { return pty_.ReleaseMaster(); }

bool PtyLink::TakeOpens() { return !watcher_->TakeOpens().empty(); }

absl::Status PtyLink::OnHangup() { return watcher_->OnHangup(watch_handle_); }

absl::StatusOr<bool> PtyLink::ToolPresent() { return watcher_->ToolPresent(watch_handle_); }

}  // namespace atbridge::client
