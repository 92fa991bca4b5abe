#include "client/console/pty_link.h"

#include <utility>

#include "common/status/status_macros.h"

namespace atbridge::client {

absl::StatusOr<std::unique_ptr<PtyLink>> PtyLink::Create(const std::string& link_path) {
  if (link_path.empty()) return absl::InvalidArgumentError("the link path is empty");
  std::unique_ptr<PtyLink> p(new PtyLink());
  p->link_path_ = link_path;
  ASSIGN_OR_RETURN(p->pty_, pty::Pty::Open());
  RETURN_IF_ERROR(pty::ReplaceSymlink(p->pty_.slave_path(), link_path));
  p->linked_ = true;
  return p;
}

PtyLink::~PtyLink() {
  if (linked_) pty::RemoveSymlinkIfPointsTo(pty_.slave_path(), link_path_);
}

int PtyLink::ReleaseMaster() { return pty_.ReleaseMaster(); }

}  // namespace atbridge::client
