#include "client/core/progress.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/core/output.h"

namespace atbridge::client {

namespace {

constexpr char kGreen[] = "\x1b[32m";
constexpr char kRed[] = "\x1b[31m";
constexpr char kYellow[] = "\x1b[33m";
constexpr char kReset[] = "\x1b[0m";

// Cells for `part` of `total` in `width`, rounding down.
int Cells(uint64_t part, uint64_t total, int width) {
  if (total == 0) return 0;
  return static_cast<int>(part * static_cast<uint64_t>(width) / total);
}

}  // namespace

std::string RenderBar(const v1::JobCounts& c, int width, bool color) {
  const uint64_t total = c.total();
  const uint64_t ok = c.succeeded() + c.skipped();
  const uint64_t bad = FailedCount(c);
  const uint64_t running = c.in_progress();
  // Cumulative boundaries keep the bar exactly `width` wide and monotonic.
  const int ok_end = Cells(ok, total, width);
  int bad_end = Cells(ok + bad, total, width);
  if (bad > 0 && bad_end == ok_end && bad_end < width) ++bad_end;  // A failure always shows.
  int run_end = std::max(bad_end, Cells(ok + bad + running, total, width));
  if (running > 0 && run_end == bad_end && run_end < width) ++run_end;
  std::string bar = "[";
  auto segment = [&](int cells, char ch, const char* code) {
    if (cells <= 0) return;
    if (color) bar += code;
    bar.append(static_cast<size_t>(cells), ch);
    if (color) bar += kReset;
  };
  segment(ok_end, '=', kGreen);
  segment(bad_end - ok_end, '!', kRed);
  segment(run_end - bad_end, '>', kYellow);
  bar.append(static_cast<size_t>(width - run_end), ' ');
  bar += "]";
  return bar;
}

std::string RenderCounts(const v1::JobCounts& c) {
  std::vector<std::string> parts;
  auto add = [&](uint32_t n, const char* name) {
    if (n > 0) parts.push_back(absl::StrCat(name, " ", n));
  };
  add(c.succeeded(), "succeeded");
  add(c.skipped(), "skipped");
  add(c.failed(), "failed");
  add(c.timed_out(), "timed-out");
  add(c.rolled_back(), "rolled-back");
  add(c.canceled(), "canceled");
  add(c.in_progress(), "running");
  add(c.queued(), "queued");
  if (parts.empty()) return c.total() == 0 ? "no executions" : "";
  return absl::StrJoin(parts, "  ");
}

std::string RenderProgressLine(absl::string_view label, const v1::JobCounts& c, int bar_width,
                               bool color) {
  const uint32_t done = DoneCount(c);
  const uint32_t pct = c.total() == 0 ? 100 : done * 100 / c.total();
  return absl::StrCat(label, " ", RenderBar(c, bar_width, color), " ", done, "/", c.total(), " ",
                      pct, "%  ", RenderCounts(c));
}

std::string RenderPlainLine(absl::string_view label, const v1::JobCounts& c, v1::JobState state) {
  return absl::StrCat(label, ": ", DoneCount(c), "/", c.total(), " done (", RenderCounts(c), ") ",
                      JobStateName(state));
}

ProgressReporter::ProgressReporter(std::ostream& out, bool tty, std::string label, int bar_width)
    : out_(out), tty_(tty), label_(std::move(label)), bar_width_(bar_width) {}

void ProgressReporter::Update(const v1::JobCounts& counts, v1::JobState state) {
  counts_ = counts;
  state_ = state;
  if (tty_) {
    Redraw();
    return;
  }
  std::string line = RenderPlainLine(label_, counts_, state_);
  if (line == last_plain_) return;
  last_plain_ = line;
  out_ << line << "\n";
  out_.flush();
}

void ProgressReporter::Note(absl::string_view line) {
  if (tty_ && drawn_) out_ << "\r\x1b[K";
  out_ << line << "\n";
  if (tty_ && drawn_) Redraw();
  out_.flush();
}

void ProgressReporter::Finish() {
  if (tty_ && drawn_) {
    out_ << "\n";
    drawn_ = false;
  }
  out_.flush();
}

void ProgressReporter::Redraw() {
  out_ << "\r\x1b[K" << RenderProgressLine(label_, counts_, bar_width_, /*color=*/true);
  out_.flush();
  drawn_ = true;
}

}  // namespace atbridge::client
