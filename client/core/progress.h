// A small ANSI progress bar for jobs (no progress-bar library is packaged).
//
// On a terminal one line is redrawn in place ("\r" + erase-line): a stacked
// bar (succeeded/skipped '=', failed '!', in progress '>', queued ' ') and
// counts by state. When output is not a terminal, a plain line is printed
// each time the counts change, so logs stay readable.
//
// Thread-compatible: one owner writes to it.
#ifndef ATBRIDGE_CLIENT_CORE_PROGRESS_H_
#define ATBRIDGE_CLIENT_CORE_PROGRESS_H_

#include <ostream>
#include <string>

#include "absl/strings/string_view.h"
#include "atbridge/v1/provisioning.pb.h"

namespace atbridge::client {

// "[=====!>>   ]" with `width` cells between the brackets; with `color`,
// ANSI colors (green done, red failed, yellow running).
std::string RenderBar(const v1::JobCounts& counts, int width, bool color);

// "succeeded 7  skipped 1  failed 1  running 2  queued 9" (zero counts left
// out, except that an empty job says "no executions").
std::string RenderCounts(const v1::JobCounts& counts);

// The terminal line: "<label> [bar] done/total pct%  <counts>".
std::string RenderProgressLine(absl::string_view label, const v1::JobCounts& counts, int bar_width,
                               bool color);

// The plain line: "<label>: done/total (<counts>) <state>".
std::string RenderPlainLine(absl::string_view label, const v1::JobCounts& counts,
                            v1::JobState state);

class ProgressReporter {
 public:
  // `tty`: redraw in place with ANSI codes; otherwise plain lines.
  ProgressReporter(std::ostream& out, bool tty, std::string label, int bar_width = 30);
  // Shows the new counts (plain mode prints only when something changed).
  void Update(const v1::JobCounts& counts, v1::JobState state);
  // Prints a line above the bar (e.g. an execution that failed).
  void Note(absl::string_view line);
  // Ends the bar line (terminal mode) so later output starts on a new line.
  void Finish();

 private:
  void Redraw();

  std::ostream& out_;
  bool tty_;
  std::string label_;
  int bar_width_;
  bool drawn_ = false;
  std::string last_plain_;
  v1::JobCounts counts_;
  v1::JobState state_ = v1::JOB_STATE_UNSPECIFIED;
};

}  // namespace atbridge::client

#endif  // ATBRIDGE_CLIENT_CORE_PROGRESS_H_
