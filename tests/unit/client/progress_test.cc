#include "client/core/progress.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

namespace atbridge::client {
namespace {

using ::testing::HasSubstr;

v1::JobCounts Counts(uint32_t ok, uint32_t failed, uint32_t running, uint32_t queued) {
  v1::JobCounts c;
  c.set_succeeded(ok);
  c.set_failed(failed);
  c.set_in_progress(running);
  c.set_queued(queued);
  c.set_total(ok + failed + running + queued);
  return c;
}

TEST(CtlBarTest, StacksStatesInAFixedWidth) {
  EXPECT_EQ(RenderBar(Counts(5, 0, 0, 5), 10, false), "[=====     ]");
  EXPECT_EQ(RenderBar(Counts(4, 2, 2, 2), 10, false), "[====!!>>  ]");
  EXPECT_EQ(RenderBar(Counts(10, 0, 0, 0), 10, false), "[==========]");
  EXPECT_EQ(RenderBar(Counts(0, 0, 0, 0), 10, false), "[          ]");
  // Always exactly `width` cells, whatever the mix.
  for (uint32_t total = 1; total <= 40; ++total) {
    for (uint32_t ok = 0; ok < total; ++ok) {
      EXPECT_EQ(RenderBar(Counts(ok, 1, total - ok - 1, 0), 20, false).size(), 22u) << total;
      EXPECT_EQ(RenderBar(Counts(ok, 0, 1, total - ok - 1), 20, false).size(), 22u) << total;
    }
  }
}

TEST(CtlBarTest, AFailureOrARunningOneIsAlwaysVisible) {
  EXPECT_EQ(RenderBar(Counts(0, 1, 0, 999), 10, false), "[!         ]");
  EXPECT_EQ(RenderBar(Counts(0, 0, 1, 999), 10, false), "[>         ]");
  EXPECT_EQ(RenderBar(Counts(999, 1, 0, 0), 10, false), "[=========!]");
}

TEST(CtlBarTest, ColorsWrapSegments) {
  std::string bar = RenderBar(Counts(1, 1, 0, 0), 4, true);
  EXPECT_EQ(bar, "[\x1b[32m==\x1b[0m\x1b[31m!!\x1b[0m]");
}

TEST(CtlCountsTextTest, ListsNonZeroStates) {
  v1::JobCounts c = Counts(7, 1, 2, 9);
  c.set_skipped(1);
  c.set_total(20);
  EXPECT_EQ(RenderCounts(c), "succeeded 7  skipped 1  failed 1  running 2  queued 9");
  EXPECT_EQ(RenderCounts(v1::JobCounts()), "no executions");
  EXPECT_EQ(RenderProgressLine("job j1", c, 10, false),
            "job j1 [====!>    ] 9/20 45%  succeeded 7  skipped 1  failed 1  running 2  queued 9");
  EXPECT_EQ(RenderPlainLine("job j1", c, v1::JOB_IN_PROGRESS),
            "job j1: 9/20 done (succeeded 7  skipped 1  failed 1  running 2  queued 9) "
            "in-progress");
}

TEST(CtlReporterTest, PlainModePrintsOnlyChanges) {
  std::ostringstream out;
  ProgressReporter p(out, /*tty=*/false, "job j1");
  p.Update(Counts(0, 0, 1, 1), v1::JOB_IN_PROGRESS);
  p.Update(Counts(0, 0, 1, 1), v1::JOB_IN_PROGRESS);
  p.Update(Counts(1, 0, 1, 0), v1::JOB_IN_PROGRESS);
  p.Note("  356187266000004 failed: boom");
  p.Finish();
  EXPECT_EQ(out.str(),
            "job j1: 0/2 done (running 1  queued 1) in-progress\n"
            "job j1: 1/2 done (succeeded 1  running 1) in-progress\n"
            "  356187266000004 failed: boom\n");
}

TEST(CtlReporterTest, TerminalModeRedrawsInPlace) {
  std::ostringstream out;
  ProgressReporter p(out, /*tty=*/true, "job j1", 4);
  p.Update(Counts(1, 0, 0, 1), v1::JOB_IN_PROGRESS);
  p.Note("note");
  p.Finish();
  const std::string s = out.str();
  EXPECT_EQ(s.rfind("\r\x1b[K", 0), 0u);
  EXPECT_THAT(s, HasSubstr("1/2 50%"));
  // The note clears the bar line, prints, then redraws the bar.
  EXPECT_THAT(s, HasSubstr("\r\x1b[Knote\n\r\x1b[Kjob j1"));
  EXPECT_EQ(s.back(), '\n');
}

}  // namespace
}  // namespace atbridge::client
