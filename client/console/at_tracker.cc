#include "client/console/at_tracker.h"

#include <vector>

namespace atbridge::client {

void AtTracker::Sent(absl::string_view bytes) {
  for (char c : bytes) {
    if (c == '"') quoted_ = !quoted_;
    if (!quoted_ && (c == '\r' || c == '\n')) {
      if (line_started_) ++pending_;
      line_started_ = false;
      continue;
    }
    line_started_ = true;
  }
}

void AtTracker::Received(absl::string_view bytes) {
  std::vector<at::ParserEvent> events;
  // One byte at a time: the answers of several commands may share a chunk,
  // and each must be framed as the answer of the command in flight.
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (pending_ > 0 && !parser_.command_in_flight()) parser_.BeginCommand({});
    events.clear();
    parser_.Feed(bytes.substr(i, 1), &events);
    for (const auto& ev : events) {
      if (ev.type == at::ParserEvent::Type::kComplete && pending_ > 0) --pending_;
    }
  }
}

}  // namespace atbridge::client
