#include "common/pty/pty.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace atbridge::pty {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Reads until `marker` has arrived and returns everything read, marker
// included. A pty delivers through a kernel work queue, so bytes written on
// one side show up on the other a moment later; the bound only keeps a
// broken test from hanging. Asserting "nothing else came" is done with a
// marker sent after the thing that must not arrive: bytes keep their order.
std::string ReadUntil(int fd, const std::string& marker) {
  std::string out;
  while (out.find(marker) == std::string::npos) {
    struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    if (poll(&p, 1, 5000) <= 0 || (p.revents & POLLIN) == 0) break;
    char buf[256];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void WriteAll(int fd, const std::string& s) {
  ASSERT_EQ(write(fd, s.data(), s.size()), static_cast<ssize_t>(s.size()));
}

int OpenTool(const std::string& path) { return open(path.c_str(), O_RDWR | O_NOCTTY); }

TEST(PtyTest, ToolsOpenAndCloseThroughALinkWhileTheMasterStaysHealthy) {
  testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(Pty pty, Pty::Open(/*non_blocking_master=*/true));
  const std::string link = dir.File("modem0");
  ASSERT_OK(ReplaceSymlink(pty.slave_path(), link));
  for (int i = 0; i < 10; ++i) {
    int tool = OpenTool(link);
    ASSERT_GE(tool, 0) << i;
    // Raw both ways: a multi-line quoted command and an answer pass unchanged.
    const std::string cmd = "AT%CMNG=0,1,0,\"-----BEGIN\nX\r\n\"\r\n";
    WriteAll(tool, cmd);
    EXPECT_EQ(ReadUntil(pty.master_fd(), cmd), cmd) << i;
    const std::string answer = "+CME ERROR: 527\r\n";
    WriteAll(pty.master_fd(), answer);
    EXPECT_EQ(ReadUntil(tool, answer), answer) << i;
    close(tool);
    // The held slave fd keeps the line up: no hangup, no EIO on the master.
    struct pollfd p = {.fd = pty.master_fd(), .events = POLLIN, .revents = 0};
    EXPECT_EQ(poll(&p, 1, 0), 0) << "revents " << p.revents;
    char c;
    errno = 0;
    EXPECT_EQ(read(pty.master_fd(), &c, 1), -1);
    EXPECT_EQ(errno, EAGAIN) << i;
  }
}

// A tool leaves a cooked, echoing line behind, as `stty sane` or a terminal
// program does.
void LeaveCookedLine(int tool) {
  struct termios t;
  ASSERT_EQ(tcgetattr(tool, &t), 0);
  t.c_lflag |= ECHO | ICANON;
  t.c_iflag |= ICRNL;
  ASSERT_EQ(tcsetattr(tool, TCSANOW, &t), 0);
}

bool IsRaw(const std::string& path) {
  int fd = OpenTool(path);
  struct termios t;
  bool raw = fd >= 0 && tcgetattr(fd, &t) == 0 && (t.c_lflag & (ECHO | ICANON)) == 0 &&
             (t.c_iflag & ICRNL) == 0 && cfgetospeed(&t) == static_cast<speed_t>(B115200);
  if (fd >= 0) close(fd);
  return raw;
}

// Whether the master reports a hangup now (all slave fds closed).
bool MasterHungUp(const Pty& pty) {
  struct pollfd p = {.fd = pty.master_fd(), .events = POLLIN, .revents = 0};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLHUP) != 0;
}

TEST(PtyTest, OnceLetGoTheLastToolsCloseIsAHangup) {
  ASSERT_OK_AND_ASSIGN(Pty pty, Pty::Open(/*non_blocking_master=*/true));
  int tool = OpenTool(pty.slave_path());
  ASSERT_GE(tool, 0);
  pty.LetGo();
  EXPECT_FALSE(pty.holds_slave());
  EXPECT_FALSE(MasterHungUp(pty)) << "the tool still has it";
  WriteAll(tool, "AT\r\n");
  close(tool);
  // What the tool wrote comes first, then the hangup.
  EXPECT_EQ(ReadUntil(pty.master_fd(), "AT\r\n"), "AT\r\n");
  EXPECT_TRUE(MasterHungUp(pty));
  char c;
  EXPECT_EQ(read(pty.master_fd(), &c, 1), -1);
  EXPECT_EQ(errno, EIO);
  ASSERT_OK(pty.Retake());
  EXPECT_TRUE(pty.holds_slave());
  EXPECT_FALSE(MasterHungUp(pty));
  ASSERT_OK(pty.Retake()) << "no-op when held";
}

TEST(PtyTest, ResetLineDropsWhatNobodyReadAndUndoesAToolsTermios) {
  ASSERT_OK_AND_ASSIGN(Pty pty, Pty::Open(/*non_blocking_master=*/true));
  int tool = OpenTool(pty.slave_path());
  ASSERT_GE(tool, 0);
  LeaveCookedLine(tool);
  WriteAll(tool, "AT+CGSN\r");  // Still on its way to the owner at close.
  close(tool);
  // With nobody on the port the echo turns the owner's own output back into
  // input: what a closed serial port never does.
  EXPECT_EQ(ReadUntil(pty.master_fd(), "AT+CGSN\r"), "AT+CGSN\r");
  WriteAll(pty.master_fd(), "stale answer\r\n");
  EXPECT_THAT(ReadUntil(pty.master_fd(), "stale answer"), ::testing::HasSubstr("stale answer"));

  ASSERT_OK(pty.ResetLine());
  tool = OpenTool(pty.slave_path());
  ASSERT_GE(tool, 0);
  WriteAll(pty.master_fd(), "+CFUN: 4\r\n");
  EXPECT_EQ(ReadUntil(tool, "+CFUN: 4\r\n"), "+CFUN: 4\r\n")
      << "the next tool gets neither the last one's answers nor a translated line";
  WriteAll(tool, "END");
  EXPECT_EQ(ReadUntil(pty.master_fd(), "END"), "END") << "no echo after the reset";
  close(tool);
  EXPECT_TRUE(IsRaw(pty.slave_path()));
}

// What an owner's event loop does when the master hangs up: read what is
// left, see EIO, hand over to the watcher.
void ServeHangup(Pty& pty, ToolWatcher& watcher, int handle) {
  ASSERT_TRUE(MasterHungUp(pty));
  char buf[256];
  while (read(pty.master_fd(), buf, sizeof(buf)) > 0) {
  }
  ASSERT_EQ(errno, EIO);
  ASSERT_OK(watcher.OnHangup(handle));
  EXPECT_TRUE(pty.holds_slave());
  EXPECT_FALSE(MasterHungUp(pty));
}

TEST(ToolWatcherTest, TheLastToolsCloseResetsTheLine) {
  testing::TempDir dir;
  ASSERT_OK_AND_ASSIGN(Pty pty, Pty::Open(/*non_blocking_master=*/true));
  const std::string link = dir.File("modem0");
  ASSERT_OK(ReplaceSymlink(pty.slave_path(), link));
  ASSERT_OK_AND_ASSIGN(auto watcher, ToolWatcher::Create());
  ASSERT_OK_AND_ASSIGN(int handle, watcher->Add(&pty));
  EXPECT_THAT(watcher->TakeOpens(), IsEmpty()) << "the Pty's own fd is not a tool";

  // Two tools through the link; the first to close leaves the other alone.
  int a = OpenTool(link);
  int b = OpenTool(link);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  EXPECT_THAT(watcher->TakeOpens(), ElementsAre(handle));
  EXPECT_FALSE(pty.holds_slave());
  LeaveCookedLine(b);
  close(a);
  EXPECT_FALSE(MasterHungUp(pty)) << "b still has the port";
  struct termios t;
  ASSERT_EQ(tcgetattr(b, &t), 0);
  EXPECT_NE(t.c_lflag & ECHO, 0u) << "b's settings survive a's close";
  WriteAll(pty.master_fd(), "unread\r\n");
  EXPECT_THAT(ReadUntil(pty.master_fd(), "unread"), ::testing::HasSubstr("unread")) << "echo";
  close(b);
  ServeHangup(pty, *watcher, handle);
  EXPECT_THAT(watcher->TakeOpens(), IsEmpty()) << "the watcher's own reopen is not a tool";

  // The next tool starts on a fresh line with nothing stale waiting.
  EXPECT_TRUE(IsRaw(link));
  EXPECT_THAT(watcher->TakeOpens(), ElementsAre(handle));
  ServeHangup(pty, *watcher, handle);
  int c = OpenTool(link);
  ASSERT_GE(c, 0);
  EXPECT_THAT(watcher->TakeOpens(), ElementsAre(handle));
  WriteAll(pty.master_fd(), "MARK");
  EXPECT_EQ(ReadUntil(c, "MARK"), "MARK") << "what nobody read was dropped";
  WriteAll(c, "END");
  EXPECT_EQ(ReadUntil(pty.master_fd(), "END"), "END") << "no echo";
  close(c);
  ServeHangup(pty, *watcher, handle);
  struct pollfd p = {.fd = watcher->fd(), .events = POLLIN, .revents = 0};
  EXPECT_EQ(poll(&p, 1, 0), 0) << "no events of our own";
}

TEST(ToolWatcherTest, ATooFastToolStillEndsInAHangup) {
  // The tool has opened and closed again before the owner looks: letting go
  // then makes the hangup immediate.
  ASSERT_OK_AND_ASSIGN(Pty pty, Pty::Open(/*non_blocking_master=*/true));
  ASSERT_OK_AND_ASSIGN(auto watcher, ToolWatcher::Create());
  ASSERT_OK_AND_ASSIGN(int handle, watcher->Add(&pty));
  close(OpenTool(pty.slave_path()));
  close(OpenTool(pty.slave_path()));
  EXPECT_THAT(watcher->TakeOpens(), ElementsAre(handle));
  ServeHangup(pty, *watcher, handle);
}

TEST(ToolWatcherTest, ToolPresentAsksTheKernelWhenNoOpenWasReported) {
  ASSERT_OK_AND_ASSIGN(Pty pty, Pty::Open(/*non_blocking_master=*/true));
  // A tool whose open the watcher never saw (here: made before the watch;
  // in life: during OnHangup's paused re-take).
  int unseen = OpenTool(pty.slave_path());
  ASSERT_GE(unseen, 0);
  ASSERT_OK_AND_ASSIGN(auto watcher, ToolWatcher::Create());
  ASSERT_OK_AND_ASSIGN(int handle, watcher->Add(&pty));
  EXPECT_TRUE(pty.holds_slave());
  EXPECT_THAT(watcher->ToolPresent(handle), testing::IsOkAndHolds(true));
  EXPECT_FALSE(pty.holds_slave()) << "let go: the tool's close will be a hangup";
  WriteAll(pty.master_fd(), "+CEREG: 1\r\n");
  EXPECT_EQ(ReadUntil(unseen, "+CEREG: 1\r\n"), "+CEREG: 1\r\n");
  EXPECT_THAT(watcher->ToolPresent(handle), testing::IsOkAndHolds(true)) << "free now";
  LeaveCookedLine(unseen);
  close(unseen);
  ServeHangup(pty, *watcher, handle);

  // Nobody: the answer is no, and the check leaves the slave held, the line
  // reset and no event behind.
  EXPECT_THAT(watcher->ToolPresent(handle), testing::IsOkAndHolds(false));
  EXPECT_TRUE(pty.holds_slave());
  EXPECT_FALSE(MasterHungUp(pty));
  struct pollfd p = {.fd = watcher->fd(), .events = POLLIN, .revents = 0};
  EXPECT_EQ(poll(&p, 1, 0), 0);
  EXPECT_TRUE(IsRaw(pty.slave_path()));
  EXPECT_THAT(watcher->ToolPresent(12345), testing::StatusIs(absl::StatusCode::kNotFound));
}

TEST(ToolWatcherTest, OneWatcherServesManyPtysAndForgetsRemovedOnes) {
  ASSERT_OK_AND_ASSIGN(Pty first, Pty::Open());
  ASSERT_OK_AND_ASSIGN(Pty second, Pty::Open());
  ASSERT_OK_AND_ASSIGN(auto watcher, ToolWatcher::Create());
  ASSERT_OK_AND_ASSIGN(int h1, watcher->Add(&first));
  ASSERT_OK_AND_ASSIGN(int h2, watcher->Add(&second));
  EXPECT_NE(h1, h2);
  int fd = OpenTool(second.slave_path());
  EXPECT_THAT(watcher->TakeOpens(), ElementsAre(h2));
  EXPECT_TRUE(first.holds_slave());
  EXPECT_FALSE(second.holds_slave());
  close(fd);
  ASSERT_OK(watcher->OnHangup(h2));
  watcher->Remove(h2);
  close(OpenTool(second.slave_path()));
  close(OpenTool(first.slave_path()));
  EXPECT_THAT(watcher->TakeOpens(), ElementsAre(h1));
  EXPECT_TRUE(second.holds_slave()) << "no longer watched";
  EXPECT_THAT(watcher->OnHangup(h2), testing::StatusIs(absl::StatusCode::kNotFound));
}

TEST(SymlinkTest, ReplacesALinkButNeverAFile) {
  testing::TempDir dir;
  const std::string stale = dir.File("stale");
  ASSERT_EQ(symlink("/dev/pts/does-not-exist", stale.c_str()), 0);
  ASSERT_OK(ReplaceSymlink("/dev/null", stale));
  char target[64] = {};
  ASSERT_GT(readlink(stale.c_str(), target, sizeof(target) - 1), 0);
  EXPECT_STREQ(target, "/dev/null");
  const std::string file = dir.WriteFile("regular", "data");
  EXPECT_THAT(ReplaceSymlink("/dev/null", file),
              testing::StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_EQ(testing::ReadFileOrDie(file), "data");
}

TEST(SymlinkTest, RemovesOnlyALinkThatStillPointsAtUs) {
  testing::TempDir dir;
  const std::string path = dir.File("tty");
  ASSERT_OK(ReplaceSymlink("/dev/pts/1000", path));
  RemoveSymlinkIfPointsTo("/dev/pts/999", path);
  struct stat st;
  EXPECT_EQ(lstat(path.c_str(), &st), 0) << "someone else's link stays";
  RemoveSymlinkIfPointsTo("/dev/pts/1000", path);
  EXPECT_NE(lstat(path.c_str(), &st), 0);
}

TEST(PathClaimTest, OneLiveClaimPerPathWhateverItsSpelling) {
  testing::TempDir dir;
  const std::string path = dir.File("ttyNRF0");
  {
    ASSERT_OK_AND_ASSIGN(PathClaim claim, PathClaim::Claim(path, "atbridgectl attach"));
    absl::StatusOr<PathClaim> again = PathClaim::Claim(dir.File("./x/../ttyNRF0"), "attach");
    EXPECT_THAT(again, testing::StatusIs(absl::StatusCode::kAlreadyExists));
    EXPECT_THAT(std::string(again.status().message()),
                ::testing::HasSubstr("in use by another running attach"));
    ASSERT_OK_AND_ASSIGN(PathClaim other, PathClaim::Claim(dir.File("ttyNRF1"), "attach"));
    PathClaim moved = std::move(claim);
    EXPECT_THAT(PathClaim::Claim(path, "attach"),
                testing::StatusIs(absl::StatusCode::kAlreadyExists));
  }
  EXPECT_OK(PathClaim::Claim(path, "attach").status()) << "released with its owner";
}

TEST(PathClaimTest, AClaimEndsWithItsProcessHoweverItDies) {
  testing::TempDir dir;
  const std::string path = dir.File("modems");
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    absl::StatusOr<PathClaim> claim = PathClaim::Claim(path, "atbridge-sim");
    char c = claim.ok() ? 'y' : 'n';
    (void)!write(ready[1], &c, 1);
    pause();  // Until SIGKILL.
    _exit(0);
  }
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, 'y');
  EXPECT_THAT(PathClaim::Claim(path, "atbridge-sim"),
              testing::StatusIs(absl::StatusCode::kAlreadyExists));
  kill(child, SIGKILL);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_OK(PathClaim::Claim(path, "atbridge-sim").status());
  close(ready[0]);
  close(ready[1]);
}

// In a child process, because a lowered hard limit cannot be raised again.
int FileLimitOutcome(rlim_t soft, rlim_t hard, size_t needed) {
  pid_t child = fork();
  if (child == 0) {
    struct rlimit lim = {.rlim_cur = soft, .rlim_max = hard};
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) _exit(10);
    absl::Status s = EnsureFileLimit(needed);
    if (!s.ok()) _exit(s.code() == absl::StatusCode::kResourceExhausted ? 2 : 11);
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) _exit(12);
    _exit(lim.rlim_cur >= needed ? 0 : 13);
  }
  int status = 0;
  waitpid(child, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(FileLimitTest, RaisesTheSoftLimitUpToTheHardOne) {
  EXPECT_EQ(FileLimitOutcome(64, 1500, 1000), 0);
  EXPECT_EQ(FileLimitOutcome(64, 1500, 32), 0);
  EXPECT_EQ(FileLimitOutcome(64, 500, 1000), 2) << "RESOURCE_EXHAUSTED";
}

}  // namespace
}  // namespace atbridge::pty
