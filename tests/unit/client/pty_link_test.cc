#include "client/console/pty_link.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace atbridge::client {
namespace {

// Reads what is available within `ms` (data is already on its way: the
// bound only protects the test from hanging).
std::string ReadSome(int fd, size_t want, int ms = 2000) {
  std::string out;
  while (out.size() < want) {
    struct pollfd p = {.fd = fd, .events = POLLIN, .revents = 0};
    if (poll(&p, 1, ms) <= 0) break;
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

// What the owner (attach) does when the master has something to say.
void DrainHangup(PtyLink& link, int master) {
  link.TakeOpens();
  char buf[256];
  for (;;) {
    struct pollfd p = {.fd = master, .events = POLLIN, .revents = 0};
    ASSERT_GT(poll(&p, 1, 2000), 0) << "no hangup reported on the master";
    ssize_t n = read(master, buf, sizeof(buf));
    if (n < 0 && errno == EIO) break;
  }
  ASSERT_OK(link.OnHangup());
}

void ExpectQuiet(int master) {
  char c;
  errno = 0;
  EXPECT_EQ(read(master, &c, 1), -1);
  EXPECT_EQ(errno, EAGAIN);
  struct pollfd p = {.fd = master, .events = POLLIN, .revents = 0};
  EXPECT_EQ(poll(&p, 1, 0), 0) << "revents " << p.revents;
}

TEST(CtlPtyLinkTest, ToolsOpenAndCloseThePathAndEachCloseIsOneHangup) {
  testing::TempDir dir;
  const std::string path = dir.File("ttyNRF0");
  ASSERT_OK_AND_ASSIGN(auto link, PtyLink::Create(path));
  struct stat st;
  EXPECT_NE(lstat(path.c_str(), &st), 0) << "nothing is linked before Link()";
  ASSERT_OK(link->Link());
  char target[256] = {};
  ASSERT_GT(readlink(path.c_str(), target, sizeof(target) - 1), 0);
  EXPECT_EQ(std::string(target), link->slave_path());
  int master = link->ReleaseMaster();
  ASSERT_GE(master, 0);
  EXPECT_EQ(link->ReleaseMaster(), -1);
  fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);

  for (int i = 0; i < 10; ++i) {
    EXPECT_THAT(link->ToolPresent(), testing::IsOkAndHolds(false)) << i;
    int tool = open(path.c_str(), O_RDWR | O_NOCTTY);
    ASSERT_GE(tool, 0) << i;
    EXPECT_TRUE(link->TakeOpens()) << i;
    EXPECT_THAT(link->ToolPresent(), testing::IsOkAndHolds(true)) << i;
    // What serial tools do: raw, 115200, hardware flow control.
    struct termios t;
    ASSERT_EQ(tcgetattr(tool, &t), 0);
    cfmakeraw(&t);
    cfsetispeed(&t, B115200);
    cfsetospeed(&t, B115200);
    t.c_cflag |= CRTSCTS | CLOCAL | CREAD;
    ASSERT_EQ(tcsetattr(tool, TCSANOW, &t), 0) << i;
    // Bytes pass unchanged both ways: no echo, no CR/LF translation.
    const std::string cmd = "AT%CMNG=0,1,0,\"-----BEGIN\nX\r\n\"\r\n";
    WriteAll(tool, cmd);
    EXPECT_EQ(ReadSome(master, cmd.size()), cmd) << i;
    const std::string answer = "+CME ERROR: 527\r\n";
    WriteAll(master, answer);
    EXPECT_EQ(ReadSome(tool, answer.size()), answer) << i;
    close(tool);
    // The close is a hangup; after OnHangup the master is quiet again.
    DrainHangup(*link, master);
    EXPECT_THAT(link->ToolPresent(), testing::IsOkAndHolds(false)) << i;
    ExpectQuiet(master);
  }
  close(master);
  link.reset();
  EXPECT_NE(lstat(path.c_str(), &st), 0) << "the link must be removed";
}

TEST(CtlPtyLinkTest, TheNextToolGetsAFreshLineWhateverThePreviousOneLeft) {
  testing::TempDir dir;
  const std::string path = dir.File("tty");
  ASSERT_OK_AND_ASSIGN(auto link, PtyLink::Create(path));
  ASSERT_OK(link->Link());
  int master = link->ReleaseMaster();
  fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);

  // A tool turns echo and canonical mode on, and leaves without reading.
  int sloppy = open(path.c_str(), O_RDWR | O_NOCTTY);
  ASSERT_GE(sloppy, 0);
  struct termios t;
  ASSERT_EQ(tcgetattr(sloppy, &t), 0);
  t.c_lflag |= ECHO | ICANON;
  ASSERT_EQ(tcsetattr(sloppy, TCSANOW, &t), 0);
  WriteAll(master, "stale\r\n");
  // The line echoes it (ECHO) in its own time; let that happen while the
  // tool is there, as it would with a modem answering before the close.
  std::string echo = ReadSome(master, 5);
  EXPECT_EQ(echo.substr(0, 5), "stale");
  close(sloppy);
  DrainHangup(*link, master);
  // Nobody there: the owner drops modem output (ToolPresent() is false),
  // and nothing echoes back.
  EXPECT_THAT(link->ToolPresent(), testing::IsOkAndHolds(false));
  ExpectQuiet(master);

  int next = open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK);
  ASSERT_GE(next, 0);
  EXPECT_TRUE(link->TakeOpens());
  ASSERT_EQ(tcgetattr(next, &t), 0);
  EXPECT_EQ(t.c_lflag & (ECHO | ICANON), 0u);
  EXPECT_EQ(t.c_oflag & OPOST, 0u);
  char c;
  errno = 0;
  EXPECT_EQ(read(next, &c, 1), -1) << "stale bytes reached the next tool";
  EXPECT_EQ(errno, EAGAIN);
  close(next);
  close(master);
}

TEST(CtlPtyLinkTest, ReplacesAStaleLinkButNotAFile) {
  testing::TempDir dir;
  const std::string stale = dir.File("stale");
  ASSERT_EQ(symlink("/dev/pts/does-not-exist", stale.c_str()), 0);
  ASSERT_OK_AND_ASSIGN(auto link, PtyLink::Create(stale));
  ASSERT_OK(link->Link());
  link.reset();
  const std::string file = dir.WriteFile("regular", "data");
  ASSERT_OK_AND_ASSIGN(auto refused, PtyLink::Create(file));
  EXPECT_THAT(refused->Link(), testing::StatusIs(absl::StatusCode::kAlreadyExists));
  refused.reset();
  EXPECT_EQ(testing::ReadFileOrDie(file), "data");
}

TEST(CtlPtyLinkTest, LeavesALinkSomeoneElseRepointed) {
  testing::TempDir dir;
  const std::string path = dir.File("tty");
  ASSERT_OK_AND_ASSIGN(auto link, PtyLink::Create(path));
  ASSERT_OK(link->Link());
  ASSERT_EQ(unlink(path.c_str()), 0);
  ASSERT_EQ(symlink("/dev/null", path.c_str()), 0);
  link.reset();
  struct stat st;
  EXPECT_EQ(lstat(path.c_str(), &st), 0);
}

}  // namespace
}  // namespace atbridge::client
