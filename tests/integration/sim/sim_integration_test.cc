// atbridge-sim over real ptys: the binary is started as a subprocess and
// driven through DIR/modemK with plain POSIX I/O, as host tools do.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/at/modem_responses.h"
#include "common/pki/pki.h"
#include "common/status/status_macros.h"
#include "tests/integration/sim/sim_harness.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace atbridge::sim::testing {
namespace {

using ::atbridge::testing::ReadFileOrDie;
using ::atbridge::testing::TestDataPath;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::SizeIs;

constexpr char kAmazonSha[] = "AD6FB002E6B34C0559FA8F93A3794FF12C4E3F119BD77290C52525123FB9EA74";

std::string AmazonPem() {
  std::string pem = ReadFileOrDie(TestDataPath("pem/AmazonRootCA1.pem"));
  while (!pem.empty() && pem.back() == '\n') pem.pop_back();
  return pem;
}

std::string CmngWrite(uint32_t tag, int type, absl::string_view content) {
  return absl::StrCat("AT%CMNG=0,", tag, ",", type, ",\"", content, "\"\r\n");
}

bool LuhnOk(const std::string& imei) {
  if (imei.size() != 15) return false;
  int sum = 0;
  for (int i = 0; i < 15; ++i) {
    int d = imei[14 - i] - '0';
    if (d < 0 || d > 9) return false;
    if (i % 2 == 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 == 0;
}

// A certificate chain of about 3.5 KB that a modem accepts: the Amazon root
// plus CA-issued EC certificates, blocks joined by LF, no trailing newline.
std::string BuildChain(size_t min_bytes) {
  std::string chain = AmazonPem();
  auto ca = pki::CreateCa(pki::CaOptions());
  EXPECT_TRUE(ca.ok()) << ca.status();
  chain += "\n" + ca->cert_pem;
  for (int i = 0; chain.size() < min_bytes; ++i) {
    pki::IssueOptions io;
    io.common_name = absl::StrCat("device-", i, ".lab.example");
    io.dns_names = {io.common_name};
    auto cert = pki::IssueCertificate(*ca, io);
    EXPECT_TRUE(cert.ok()) << cert.status();
    if (!absl::EndsWith(chain, "\n")) chain += "\n";
    chain += cert->cert_pem;
  }
  while (!chain.empty() && chain.back() == '\n') chain.pop_back();
  return chain;
}

// Final result line of a command, or the failure as text (never crashes).
std::string FinalOf(const absl::StatusOr<AtAnswer>& a) {
  return a.ok() ? a->final : a.status().ToString();
}
std::string Final(PtyClient& c, absl::string_view cmd) { return FinalOf(c.Command(cmd)); }
// Information lines, or one line holding the failure.
std::vector<std::string> Lines(PtyClient& c, absl::string_view cmd) {
  auto a = c.Command(cmd);
  return a.ok() ? a->lines : std::vector<std::string>{a.status().ToString()};
}
std::vector<std::string> OneShotLines(const std::string& path, absl::string_view cmd) {
  auto a = OneShot(path, cmd);
  return a.ok() ? a->lines : std::vector<std::string>{a.status().ToString()};
}

// The %CMNG list lines for a tag, as (type, sha).
std::vector<std::string> ListTag(PtyClient& c, uint32_t tag) {
  auto a = c.Command(absl::StrCat("AT%CMNG=1,", tag, "\r\n"));
  EXPECT_TRUE(a.ok()) << a.status();
  if (!a.ok()) return {};
  EXPECT_EQ(a->final, "OK");
  return a->lines;
}

// nrfcredstore (pascal-nordic/nrfcredstore, src/nrfcredstore: cli.py,
// comms.py, command_interface.py, credstore.py; pyserial serialposix.py)
// byte for byte, one invocation of the tool per Invocation:
//  - pyserial open(): O_RDWR|O_NOCTTY|O_NONBLOCK; raw termios (CLOCAL|CREAD,
//    no ICANON/ECHO*/ISIG/IEXTEN, no OPOST/ONLCR/OCRNL, no INLCR/IGNCR/ICRNL/
//    IGNBRK/PARMRK, CS8, 1 stop bit, no parity, no XON/XOFF, CRTSCTS as
//    rtscts=True sets it, VMIN=0 VTIME=0); TIOCMBIS DTR (EINVAL/ENOTTY
//    ignored); reset_input_buffer();
//  - Comms._init_serial(): reset_output_buffer(), write("\r\n"), flush(),
//    sleep(0.2), reset_input_buffer();
//  - main(): detect_shell_mode() writes "at AT+CGSN" (a shell probe) up to 3
//    times, then "AT+CGSN", each without flushing, each read by
//    expect_response("OK", "ERROR", "", timeout=2) and accepted when a
//    15-digit number came with OK; enable_error_codes(): AT+CMEE=1;
//    exec_cmd(): AT+CFUN=4, then the subcommand;
//  - every at_command(): reset_input_buffer(), then command + "\r\n" in one
//    write (a %CMNG write carries file.read().rstrip(): the PEM with its LF
//    newlines and no trailing newline, in quotes);
//  - expect_response(): pyserial readline() (bytes up to '\n', timeout 3 s),
//    strip(), skip empty lines; ends at a line == "OK" or "ERROR" or starting
//    with "+CME ERROR".
// It never opens the port twice at once and closes it when the process ends.
class Nrfcredstore {
 public:
  // What one expect_response() saw.
  struct Response {
    bool ok = false;
    std::string final;               // The line that ended it ("" on timeout).
    std::vector<std::string> lines;  // Stripped non-empty lines before it.
    std::string raw;                 // Every byte read.
  };

  static absl::StatusOr<std::unique_ptr<Nrfcredstore>> Invoke(const std::string& port) {
    int fd = open(port.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return absl::InternalError(absl::StrCat("open ", port, ": ", strerror(errno)));
    std::unique_ptr<Nrfcredstore> tool(new Nrfcredstore(fd));
    struct termios t;
    if (tcgetattr(fd, &t) != 0) return absl::InternalError("tcgetattr");
    t.c_cflag |= CLOCAL | CREAD;
    t.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO | ECHOE | ECHOK | ECHONL | ISIG | IEXTEN |
                                        ECHOCTL | ECHOKE);
    t.c_oflag &= ~static_cast<tcflag_t>(OPOST | ONLCR | OCRNL);
    t.c_iflag &= ~static_cast<tcflag_t>(INLCR | IGNCR | ICRNL | IGNBRK | IUCLC | PARMRK);
    cfsetispeed(&t, B115200);
    cfsetospeed(&t, B115200);
    t.c_cflag &= ~static_cast<tcflag_t>(CSIZE | CSTOPB | PARENB | PARODD | CMSPAR);
    t.c_cflag |= CS8 | CRTSCTS;
    t.c_iflag &= ~static_cast<tcflag_t>(INPCK | ISTRIP | IXON | IXOFF | IXANY);
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    if (tcsetattr(fd, TCSANOW, &t) != 0) return absl::InternalError("tcsetattr");
    int dtr = TIOCM_DTR;
    if (ioctl(fd, TIOCMBIS, &dtr) != 0 && errno != EINVAL && errno != ENOTTY) {
      return absl::InternalError(absl::StrCat("TIOCMBIS: ", strerror(errno)));
    }
    tcflush(fd, TCIFLUSH);  // Serial.open() -> reset_input_buffer()
    tcflush(fd, TCOFLUSH);  // Comms._init_serial(): reset_output_buffer()
    RETURN_IF_ERROR(tool->WriteAll("\r\n"));
    tcdrain(fd);
    // Its time.sleep(0.2): nothing may come back for the empty line.
    std::string early = tool->ReadFor(absl::Milliseconds(200));
    if (!early.empty()) {
      return absl::InternalError(
          absl::StrCat("answer to an empty line: ", absl::CHexEscape(early)));
    }
    tcflush(fd, TCIFLUSH);
    return tool;
  }

  ~Nrfcredstore() { close(fd_); }

  // detect_shell_mode(): every probe's response, in order.
  std::vector<Response> DetectShellMode() {
    std::vector<Response> seen;
    for (const char* cmd : {"at AT+CGSN", "AT+CGSN"}) {
      for (int i = 0; i < 3; ++i) {
        EXPECT_OK(WriteAll(absl::StrCat(cmd, "\r\n")));
        seen.push_back(ExpectResponse(absl::Seconds(2)));
        const Response& r = seen.back();
        if (r.ok && !r.lines.empty() &&
            std::regex_search(r.lines.back(), std::regex("[0-9]{15}"))) {
          shell_ = absl::StartsWith(cmd, "at ");
          return seen;
        }
      }
    }
    return seen;
  }
  bool shell() const { return shell_; }

  // at_command() followed by expect_response().
  Response AtCommand(absl::string_view command) {
    tcflush(fd_, TCIFLUSH);
    EXPECT_OK(WriteAll(absl::StrCat(command, "\r\n")));
    return ExpectResponse(absl::Seconds(15));
  }

  // main() up to exec_cmd()'s subcommand: probe, CMEE=1, CFUN=4.
  void Prologue() {
    std::vector<Response> probes = DetectShellMode();
    ASSERT_THAT(probes, SizeIs(4)) << "three shell probes, then AT+CGSN";
    for (int i = 0; i < 3; ++i) EXPECT_EQ(probes[i].raw, "ERROR\r\n") << "at AT+CGSN";
    EXPECT_THAT(probes[3].raw, MatchesRegex("[0-9]{15}\r\nOK\r\n"));
    EXPECT_FALSE(shell());
    EXPECT_EQ(AtCommand("AT+CMEE=1").raw, "OK\r\n");
    EXPECT_EQ(AtCommand("AT+CFUN=4").raw, "OK\r\n");
  }

 private:
  explicit Nrfcredstore(int fd) : fd_(fd) {}

  absl::Status WriteAll(absl::string_view bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = write(fd_, bytes.data() + off, bytes.size() - off);
      if (n >= 0) {
        off += static_cast<size_t>(n);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return absl::InternalError(absl::StrCat("write: ", strerror(errno)));
      struct pollfd p = {fd_, POLLOUT, 0};  // pyserial's select() for writability.
      poll(&p, 1, 1000);
    }
    return absl::OkStatus();
  }

  // Bytes arriving within `timeout`.
  std::string ReadFor(absl::Duration timeout) {
    std::string out;
    absl::Time deadline = absl::Now() + timeout;
    for (;;) {
      int ms =
          static_cast<int>(std::max<int64_t>(0, absl::ToInt64Milliseconds(deadline - absl::Now())));
      struct pollfd p = {fd_, POLLIN, 0};
      if (poll(&p, 1, ms) <= 0) return out;
      char buf[256];
      ssize_t n = read(fd_, buf, sizeof(buf));
      if (n <= 0) return out;
      out.append(buf, static_cast<size_t>(n));
    }
  }

  // pyserial readline(): one byte at a time up to '\n', each read waiting
  // up to the port timeout (3 s). Empty on timeout.
  std::string ReadLine() {
    std::string line;
    for (;;) {
      struct pollfd p = {fd_, POLLIN, 0};
      if (poll(&p, 1, 3000) <= 0) return line;
      char c;
      ssize_t n = read(fd_, &c, 1);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) return line;
      raw_ += c;
      line += c;
      if (c == '\n') return line;
    }
  }

  Response ExpectResponse(absl::Duration timeout) {
    Response r;
    raw_.clear();
    absl::Time end = absl::Now() + timeout;
    while (absl::Now() < end) {
      std::string line(absl::StripAsciiWhitespace(ReadLine()));
      if (line.empty()) continue;
      if (line == "OK" || line == "ERROR" || absl::StartsWith(line, "+CME ERROR")) {
        r.ok = line == "OK";
        r.final = line;
        break;
      }
      r.lines.push_back(line);
    }
    r.raw = raw_;
    return r;
  }

  int fd_;
  bool shell_ = true;
  std::string raw_;
};

// The issue's acceptance test: a client that speaks like nrfcredstore works
// against DIR/modem0 unmodified, the port opened and closed by each run.
TEST(SimIntegrationTest, NrfcredstoreRunsAgainstTheLinkUnmodified) {
  SimProcess sim;
  ASSERT_OK(sim.Start({"--count", "2"}));
  const std::string port = sim.Link(0);
  using Response = Nrfcredstore::Response;

  std::string imei;
  {  // nrfcredstore DIR/modem0 imei
    ASSERT_OK_AND_ASSIGN(auto tool, Nrfcredstore::Invoke(port));
    ASSERT_NO_FATAL_FAILURE(tool->Prologue());
    Response r = tool->AtCommand("AT+CGSN");
    ASSERT_TRUE(r.ok);
    ASSERT_THAT(r.lines, SizeIs(1));
    imei = r.lines[0].substr(0, 15);
    EXPECT_EQ(r.raw, absl::StrCat(imei, "\r\nOK\r\n"));
    EXPECT_TRUE(LuhnOk(imei)) << imei;
  }
  // nrfcredstore DIR/modem0 write 16842753 ROOT_CA_CERT AmazonRootCA1.pem
  const std::string cert(
      absl::StripTrailingAsciiWhitespace(ReadFileOrDie(TestDataPath("pem/AmazonRootCA1.pem"))));
  ASSERT_EQ(cert, AmazonPem());
  {
    ASSERT_OK_AND_ASSIGN(auto tool, Nrfcredstore::Invoke(port));
    ASSERT_NO_FATAL_FAILURE(tool->Prologue());
    Response r = tool->AtCommand(absl::StrCat("AT%CMNG=0,16842753,0,\"", cert, "\""));
    EXPECT_EQ(r.raw, "OK\r\n");
  }
  {  // nrfcredstore DIR/modem0 list --tag 16842753 --type ROOT_CA_CERT
    ASSERT_OK_AND_ASSIGN(auto tool, Nrfcredstore::Invoke(port));
    ASSERT_NO_FATAL_FAILURE(tool->Prologue());
    Response r = tool->AtCommand("AT%CMNG=1,16842753,0");
    // calculate_expected_hash(): SHA-256 of the text, upper-case hex.
    EXPECT_EQ(r.raw, absl::StrCat("%CMNG: 16842753,0,\"", pki::Sha256Hex(cert), "\"\r\nOK\r\n"));
    EXPECT_EQ(pki::Sha256Hex(cert), kAmazonSha);
  }
  // Both broken forms users really sent: CMEE is on, so 527 with its code.
  for (const char* seed :
       {"pem/seed-spaces-instead-of-newlines.txt", "pem/seed-literal-backslash-n.txt"}) {
    const std::string content(
        absl::StripTrailingAsciiWhitespace(ReadFileOrDie(TestDataPath(seed))));
    ASSERT_OK_AND_ASSIGN(auto tool, Nrfcredstore::Invoke(port));
    ASSERT_NO_FATAL_FAILURE(tool->Prologue());
    Response r = tool->AtCommand(absl::StrCat("AT%CMNG=0,20,0,\"", content, "\""));
    EXPECT_EQ(r.raw, "+CME ERROR: 527\r\n") << seed;
    EXPECT_FALSE(r.ok);
  }
  {  // nrfcredstore DIR/modem0 generate 16842753 csr.der
    ASSERT_OK_AND_ASSIGN(auto tool, Nrfcredstore::Invoke(port));
    ASSERT_NO_FATAL_FAILURE(tool->Prologue());
    Response r = tool->AtCommand("AT%KEYGEN=16842753,2,0");
    ASSERT_TRUE(r.ok) << r.raw;
    ASSERT_THAT(r.lines, SizeIs(1));
    // credstore.keygen(): the part before '.' of the quoted blob, base64url.
    std::string blob = std::vector<std::string>(absl::StrSplit(r.lines[0], '"')).at(1);
    ASSERT_OK_AND_ASSIGN(std::string der, at::Base64UrlDecode(blob.substr(0, blob.find('.'))));
    EXPECT_OK(pki::CsrSubject(der).status());
  }
  {  // nrfcredstore DIR/modem0 attoken
    ASSERT_OK_AND_ASSIGN(auto tool, Nrfcredstore::Invoke(port));
    ASSERT_NO_FATAL_FAILURE(tool->Prologue());
    Response r = tool->AtCommand("AT%ATTESTTOKEN");
    ASSERT_TRUE(r.ok);
    EXPECT_THAT(r.raw, MatchesRegex("%ATTESTTOKEN: \"[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\"\r\nOK\r\n"));
  }
  {  // nrfcredstore DIR/modem0 delete 16842753 ROOT_CA_CERT; list
    ASSERT_OK_AND_ASSIGN(auto tool, Nrfcredstore::Invoke(port));
    ASSERT_NO_FATAL_FAILURE(tool->Prologue());
    EXPECT_EQ(tool->AtCommand("AT%CMNG=3,16842753,0").raw, "OK\r\n");
  }
  {
    ASSERT_OK_AND_ASSIGN(auto tool, Nrfcredstore::Invoke(port));
    ASSERT_NO_FATAL_FAILURE(tool->Prologue());
    Response r = tool->AtCommand("AT%CMNG=1");
    EXPECT_THAT(r.raw, MatchesRegex("%CMNG: 16842753,2,\"[0-9A-F]{64}\"\r\nOK\r\n"))
        << "only the generated key is left";
  }

  // The other modem is independent: a different IMEI, empty store.
  ASSERT_OK_AND_ASSIGN(AtAnswer imei1, OneShot(sim.Link(1), "AT+CGSN=1\r\n"));
  ASSERT_THAT(imei1.lines, SizeIs(1));
  EXPECT_THAT(imei1.lines[0], MatchesRegex("\\+CGSN: \"[0-9]{15}\""));
  EXPECT_THAT(imei1.lines[0], Not(HasSubstr(imei)));
  ASSERT_OK_AND_ASSIGN(AtAnswer list1, OneShot(sim.Link(1), "AT%CMNG=1\r\n"));
  EXPECT_THAT(list1.lines, IsEmpty());

  ASSERT_OK_AND_ASSIGN(int code, sim.Stop());
  EXPECT_EQ(code, 0);
  struct stat st;
  EXPECT_NE(lstat(port.c_str(), &st), 0) << "links are removed at exit";
}

// AmazonRootCA1.pem exactly as the file is, trailing newline included: the
// modem stores those bytes and lists the SHA-256 of exactly them.
TEST(SimIntegrationTest, ListedShaIsTheShaOfTheExactBytesWritten) {
  const std::string file = ReadFileOrDie(TestDataPath("pem/AmazonRootCA1.pem"));
  ASSERT_TRUE(absl::EndsWith(file, "-----END CERTIFICATE-----\n"));
  SimProcess sim;
  ASSERT_OK(sim.Start({}));
  ASSERT_OK_AND_ASSIGN(auto c, PtyClient::Open(sim.Link(0)));
  ASSERT_EQ(Final(*c, "AT+CMEE=1\r\n"), "OK");
  ASSERT_EQ(Final(*c, CmngWrite(7, 0, file)), "OK");
  const std::string sha = pki::Sha256Hex(file);
  EXPECT_THAT(ListTag(*c, 7), ElementsAre(absl::StrCat("%CMNG: 7,0,\"", sha, "\"")));
  EXPECT_NE(sha, kAmazonSha) << "the newline is part of what is hashed";
  ASSERT_EQ(Final(*c, CmngWrite(8, 0, AmazonPem())), "OK");
  EXPECT_THAT(ListTag(*c, 8), ElementsAre(absl::StrCat("%CMNG: 8,0,\"", kAmazonSha, "\"")));
  ASSERT_OK_AND_ASSIGN(AtAnswer read, c->Command("AT%CMNG=2,7,0\r\n"));
  ASSERT_OK_AND_ASSIGN(auto entry, at::ParseCmngLine(read.lines.at(0)));
  EXPECT_EQ(entry.content, file);
}

// Corpus case 19 over a real pty: what the sim actually answers.
TEST(SimIntegrationTest, CfunTestAndChainAnswers) {
  SimProcess sim;
  ASSERT_OK(sim.Start({"--cfun", "1"}));
  ASSERT_OK_AND_ASSIGN(auto c, PtyClient::Open(sim.Link(0)));
  ASSERT_OK(c->Write("AT+CFUN=?\r"));
  ASSERT_OK_AND_ASSIGN(std::string test, c->ReadUntil("OK\r\n"));
  EXPECT_EQ(test, "+CFUN: (0,1,2,4,20,21,30,31,40,41,44)\r\nOK\r\n");
  ASSERT_OK(c->Write("AT+CFUN=4;+CFUN?\r"));
  ASSERT_OK_AND_ASSIGN(std::string chain, c->ReadUntil("OK\r\n"));
  EXPECT_EQ(chain, "+CFUN: 4\r\nOK\r\n");
  // Sub-modes: LTE on, then GNSS on, reads 1 and refuses credential changes.
  ASSERT_OK(c->Write("AT+CMEE=1;+CFUN=21;+CFUN=31;+CFUN?\r"));
  ASSERT_OK_AND_ASSIGN(std::string sub, c->ReadUntil("OK\r\n"));
  EXPECT_EQ(sub, "+CFUN: 1\r\nOK\r\n");
  EXPECT_EQ(Final(*c, CmngWrite(1, 0, AmazonPem())), "+CME ERROR: 518");
  ASSERT_OK(c->Write("AT+CFUN=20;+CFUN=30;+CFUN?\r"));
  ASSERT_OK_AND_ASSIGN(std::string off, c->ReadUntil("OK\r\n"));
  EXPECT_EQ(off, "+CFUN: 44\r\nOK\r\n");
  EXPECT_EQ(Final(*c, CmngWrite(1, 0, AmazonPem())), "OK");
}

TEST(SimIntegrationTest, IdentificationFramingAndChains) {
  SimProcess sim;
  ASSERT_OK(sim.Start({"--model", "nRF9160-SICA", "--firmware", "mfw_nrf9160_1.3.5"}));
  ASSERT_OK_AND_ASSIGN(auto c, PtyClient::Open(sim.Link(0)));

  ASSERT_OK_AND_ASSIGN(AtAnswer a, c->Command("AT+CGMI;+CGMM;+CGMR\r"));
  EXPECT_THAT(a.lines,
              ElementsAre("Nordic Semiconductor ASA", "nRF9160-SICA", "mfw_nrf9160_1.3.5"));
  EXPECT_EQ(a.final, "OK");

  // Default CMEE=0: plain ERROR. Unknown command and bad values: ERROR.
  ASSERT_OK_AND_ASSIGN(AtAnswer cmee, c->Command("AT+CMEE?\r"));
  EXPECT_THAT(cmee.lines, ElementsAre("+CMEE: 0"));
  EXPECT_EQ(Final(*c, "AT+FOO\r"), "ERROR");
  EXPECT_EQ(Final(*c, "AT+CFUN=3\r"), "ERROR");
  // A chain stops at its first error.
  ASSERT_OK_AND_ASSIGN(AtAnswer chain, c->Command("AT+CFUN=0;+CFUN=99;+CFUN?\r\n"));
  EXPECT_THAT(chain.lines, IsEmpty());
  EXPECT_EQ(chain.final, "ERROR");
  ASSERT_OK_AND_ASSIGN(AtAnswer cfun, c->Command("AT+CFUN?\r"));
  EXPECT_THAT(cfun.lines, ElementsAre("+CFUN: 0"));

  // Terminators: LF alone, CR alone, CRLF; two commands in one write are
  // answered in order; an empty line gets no answer.
  ASSERT_OK(c->Write("\r\n\r\nAT\nAT+CGSN=1\r"));
  ASSERT_OK_AND_ASSIGN(AtAnswer first, c->ReadAnswer());
  EXPECT_THAT(first.lines, IsEmpty());
  EXPECT_EQ(first.final, "OK");
  ASSERT_OK_AND_ASSIGN(AtAnswer second, c->ReadAnswer());
  EXPECT_THAT(second.lines, ElementsAre(MatchesRegex("\\+CGSN: \"[0-9]{15}\"")));

  // A command longer than the AT host buffer: ERROR, and the modem goes on.
  std::string huge = "AT+CGSN=" + std::string(5000, '1') + "\r\n";
  ASSERT_OK_AND_ASSIGN(AtAnswer overflow, c->Command(huge));
  EXPECT_EQ(overflow.final, "ERROR");
  ASSERT_OK_AND_ASSIGN(AtAnswer at, c->Command("AT\r\n"));
  EXPECT_EQ(at.final, "OK");

  // Attestation token: stable, two base64url parts.
  ASSERT_OK_AND_ASSIGN(AtAnswer t1, c->Command("AT%ATTESTTOKEN\r\n"));
  ASSERT_OK_AND_ASSIGN(AtAnswer t2, c->Command("AT%ATTESTTOKEN\r\n"));
  ASSERT_THAT(t1.lines, SizeIs(1));
  EXPECT_THAT(t1.lines[0], MatchesRegex("%ATTESTTOKEN: \"[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\""));
  EXPECT_EQ(t1.lines, t2.lines);
  EXPECT_EQ(sim.process().running(), true);
}

// Item 1 of issue 4: a 5.9 KB chain in one write is one command too long
// for the AT host buffer. It gets exactly one ERROR and the next command its
// normal answer (the framer once reset its quote state at the cap: 31 ERRORs,
// then the closing quote swallowed the next AT).
TEST(SimIntegrationTest, OverlongQuotedPemGetsOneErrorAndTheModemStaysUsable) {
  const std::string chain = BuildChain(5900);
  ASSERT_GT(chain.size(), 4096u);
  SimProcess sim;
  ASSERT_OK(sim.Start({}));
  ASSERT_OK_AND_ASSIGN(auto c, PtyClient::Open(sim.Link(0)));
  ASSERT_OK(c->Write(absl::StrCat(CmngWrite(9, 0, chain), "AT\r\n")));
  ASSERT_OK_AND_ASSIGN(AtAnswer overflow, c->ReadAnswer());
  EXPECT_EQ(overflow.final, "ERROR");
  EXPECT_THAT(overflow.lines, IsEmpty());
  ASSERT_OK_AND_ASSIGN(AtAnswer at, c->ReadAnswer());
  EXPECT_EQ(at.final, "OK") << "the AT right behind the chain";
  EXPECT_THAT(at.lines, IsEmpty());
  ASSERT_OK_AND_ASSIGN(AtAnswer again, c->Command("AT+CFUN?\r\n"));
  EXPECT_THAT(again.lines, ElementsAre("+CFUN: 4"));
  EXPECT_THAT(ListTag(*c, 9), IsEmpty());
}

// Corpus case 15 exactly as given (an odd quote) reaches the cap with the
// command behind it: one ERROR, no hang; the modem resumes after the quote
// is closed.
TEST(SimIntegrationTest, OddQuoteHitsTheCapWithOneError) {
  SimProcess sim;
  ASSERT_OK(sim.Start({"--max-command", "16"}));
  ASSERT_OK_AND_ASSIGN(auto c, PtyClient::Open(sim.Link(0)));
  ASSERT_OK(c->Write("\r\n+X: \"abc\r\nOK\r\n"));
  ASSERT_OK_AND_ASSIGN(AtAnswer capped, c->Command("AT\r\n"));
  EXPECT_EQ(capped.final, "ERROR");
  ASSERT_OK(c->Write("\"\r\n"));
  ASSERT_OK_AND_ASSIGN(AtAnswer at, c->Command("AT\r\n"));
  EXPECT_EQ(at.final, "OK");
  EXPECT_THAT(at.lines, IsEmpty());
}

// The simulator records when it has seen the last tool close modem0: the
// point after which a real port would have dropped what nobody read. Tests
// wait for it (an event, not a sleep) before the next tool opens; a tool
// that opens sooner races the close exactly as on hardware, where an answer
// still under way reaches whoever has the port open when it arrives.
constexpr char kModem0Closed[] = "modem0 note \"the last tool closed the port";

TEST(SimIntegrationTest, AnAnswerNobodyReadIsGoneAtTheNextOpen) {
  ::atbridge::testing::TempDir files;
  const std::string transcript = files.File("transcript.txt");
  SimProcess sim;
  ASSERT_OK(sim.Start({"--transcript", transcript}));
  {
    ASSERT_OK_AND_ASSIGN(auto first, PtyClient::Open(sim.Link(0)));
    ASSERT_OK(first->Write("AT+CGMR\r\n"));
  }  // Closed without reading the answer.
  ASSERT_OK(WaitForFileText(transcript, kModem0Closed, 1).status());

  // The next tool does not flush its input (PtyClient never does).
  ASSERT_OK_AND_ASSIGN(auto next, PtyClient::Open(sim.Link(0)));
  ASSERT_OK(next->Write("AT+CFUN?\r\n"));
  ASSERT_OK_AND_ASSIGN(std::string got, next->ReadUntil("OK\r\n"));
  EXPECT_EQ(got, "+CFUN: 4\r\nOK\r\n");
  ASSERT_OK(next->Write("AT\r\n"));
  ASSERT_OK_AND_ASSIGN(std::string ok, next->ReadUntil("OK\r\n"));
  EXPECT_EQ(ok, "OK\r\n");
}

// A tool that leaves an echoing, canonical line behind (stty sane, a
// terminal program) does not impose it on the next one: the next open finds
// the line raw and the answers byte-exact, and the simulator's output is
// not echoed back to it as input while nobody has the port.
TEST(SimIntegrationTest, TermiosAToolLeftBehindDoNotOutliveIt) {
  ::atbridge::testing::TempDir files;
  const std::string transcript = files.File("transcript.txt");
  SimProcess sim;
  ASSERT_OK(sim.Start({"--transcript", transcript}));
  {
    ASSERT_OK_AND_ASSIGN(auto first, PtyClient::Open(sim.Link(0)));
    struct termios t;
    ASSERT_EQ(tcgetattr(first->fd(), &t), 0);
    t.c_lflag |= ECHO | ICANON;
    t.c_iflag |= ICRNL;
    t.c_oflag |= OPOST | ONLCR;
    ASSERT_EQ(tcsetattr(first->fd(), TCSANOW, &t), 0);
  }
  ASSERT_OK(WaitForFileText(transcript, kModem0Closed, 1).status());

  ASSERT_OK_AND_ASSIGN(auto next, PtyClient::Open(sim.Link(0), {.configure = false}));
  struct termios t;
  ASSERT_EQ(tcgetattr(next->fd(), &t), 0);
  EXPECT_EQ(t.c_lflag & (ECHO | ICANON), 0u);
  EXPECT_EQ(t.c_iflag & ICRNL, 0u);
  EXPECT_EQ(t.c_oflag & OPOST, 0u);
  ASSERT_OK(next->Write("AT+CFUN?\r"));
  ASSERT_OK_AND_ASSIGN(std::string got, next->ReadUntil("OK\r\n"));
  EXPECT_EQ(got, "+CFUN: 4\r\nOK\r\n");
  ASSERT_OK(next->Write("AT\r\n"));
  ASSERT_OK_AND_ASSIGN(std::string ok, next->ReadUntil("OK\r\n"));
  EXPECT_EQ(ok, "OK\r\n") << "nothing was echoed back and answered in between";
}

TEST(SimIntegrationTest, CmngErrorCodesAndByteExactRead) {
  SimProcess sim;
  ASSERT_OK(sim.Start({"--capacity", "3"}));
  ASSERT_OK_AND_ASSIGN(auto c, PtyClient::Open(sim.Link(0), {.baud = 9600, .rtscts = false}));
  const std::string pem = AmazonPem();

  // CMEE=0: the 518 is a plain ERROR.
  ASSERT_EQ(Final(*c, "AT+CFUN=1\r\n"), "OK");
  EXPECT_EQ(Final(*c, CmngWrite(7, 0, pem)), "ERROR");
  ASSERT_EQ(Final(*c, "AT+CMEE=1\r\n"), "OK");
  EXPECT_EQ(Final(*c, CmngWrite(7, 0, pem)), "+CME ERROR: 518");
  EXPECT_EQ(Final(*c, "AT%CMNG=3,7,0\r\n"), "+CME ERROR: 518");
  ASSERT_EQ(Final(*c, "AT+CFUN=21\r\n"), "OK");
  EXPECT_EQ(Final(*c, CmngWrite(7, 0, pem)), "+CME ERROR: 518");
  ASSERT_EQ(Final(*c, "AT+CFUN=4\r\n"), "OK");

  EXPECT_EQ(Final(*c, CmngWrite(7, 0, pem)), "OK");
  EXPECT_EQ(Final(*c, CmngWrite(7, 0, pem)), "OK") << "overwrite is allowed";
  EXPECT_EQ(Final(*c, CmngWrite(7, 4, "lab-device-7")), "OK");
  EXPECT_EQ(Final(*c, CmngWrite(7, 3, "00112233445566778899aabbccddeeff")), "OK");
  // Full (capacity 3); an overwrite still works.
  EXPECT_EQ(Final(*c, CmngWrite(8, 4, "x")), "+CME ERROR: 515");
  EXPECT_EQ(Final(*c, CmngWrite(7, 4, "lab-device-7b")), "OK");
  // Reserved tag, types the user may not write.
  EXPECT_EQ(Final(*c, CmngWrite(2147483648u, 4, "x")), "+CME ERROR: 514");
  EXPECT_EQ(Final(*c, CmngWrite(9, 5, "x")), "+CME ERROR: 514");

  // Read of type 0: content byte-exact, with its SHA-256.
  ASSERT_OK_AND_ASSIGN(AtAnswer read, c->Command("AT%CMNG=2,7,0\r\n"));
  ASSERT_EQ(read.final, "OK");
  ASSERT_THAT(read.lines, SizeIs(1));
  EXPECT_EQ(read.lines[0], absl::StrCat("%CMNG: 7,0,\"", kAmazonSha, "\",\"", pem, "\""));
  ASSERT_OK_AND_ASSIGN(auto parsed, at::ParseCmngLine(read.lines[0]));
  EXPECT_EQ(parsed.content, pem);
  // PSK and keys are never readable; missing entries are 513.
  EXPECT_EQ(Final(*c, "AT%CMNG=2,7,3\r\n"), "+CME ERROR: 514");
  EXPECT_EQ(Final(*c, "AT%CMNG=2,7,2\r\n"), "+CME ERROR: 514");
  EXPECT_EQ(Final(*c, "AT%CMNG=2,7,1\r\n"), "+CME ERROR: 513");
  EXPECT_EQ(Final(*c, "AT%CMNG=3,99,0\r\n"), "+CME ERROR: 513");

  // The list is sorted by tag then type.
  ASSERT_OK_AND_ASSIGN(AtAnswer list, c->Command("AT%CMNG=1\r\n"));
  ASSERT_THAT(list.lines, SizeIs(3));
  EXPECT_TRUE(absl::StartsWith(list.lines[0], "%CMNG: 7,0,"));
  EXPECT_TRUE(absl::StartsWith(list.lines[1], "%CMNG: 7,3,"));
  EXPECT_EQ(list.lines[2], absl::StrCat("%CMNG: 7,4,\"", pki::Sha256Hex("lab-device-7b"), "\""));

  EXPECT_EQ(Final(*c, "AT%CMNG=3,7,3\r\n"), "OK");
  EXPECT_THAT(ListTag(*c, 7), SizeIs(2));
}

// What a type 0/1 write accepts (issue 4, item 5): any well-formed PEM,
// CRLF included by default, each stored and hashed byte for byte; the forms
// users really broke are 527.
TEST(SimIntegrationTest, CertificateFormsTheModemTakes) {
  const std::string pem = AmazonPem();
  std::vector<std::string> lines = absl::StrSplit(pem, '\n');
  std::string b64;
  for (size_t i = 1; i + 1 < lines.size(); ++i) b64 += lines[i];
  std::string wrapped76 = lines.front() + "\n";
  for (size_t i = 0; i < b64.size(); i += 76) absl::StrAppend(&wrapped76, b64.substr(i, 76), "\n");
  wrapped76 += lines.back();
  const std::string crlf = absl::StrReplaceAll(pem, {{"\n", "\r\n"}});

  SimProcess sim;
  ASSERT_OK(sim.Start({}));
  ASSERT_OK_AND_ASSIGN(auto c, PtyClient::Open(sim.Link(0)));
  ASSERT_EQ(Final(*c, "AT+CMEE=1\r\n"), "OK");
  EXPECT_EQ(Final(*c, CmngWrite(31, 0, wrapped76)), "OK");
  EXPECT_THAT(ListTag(*c, 31),
              ElementsAre(absl::StrCat("%CMNG: 31,0,\"", pki::Sha256Hex(wrapped76), "\"")));
  EXPECT_EQ(Final(*c, CmngWrite(32, 0, crlf)), "OK");
  EXPECT_THAT(ListTag(*c, 32),
              ElementsAre(absl::StrCat("%CMNG: 32,0,\"", pki::Sha256Hex(crlf), "\"")));
  ASSERT_OK_AND_ASSIGN(AtAnswer read, c->Command("AT%CMNG=2,32,0\r\n"));
  ASSERT_OK_AND_ASSIGN(auto entry, at::ParseCmngLine(read.lines.at(0)));
  EXPECT_EQ(entry.content, crlf) << "read back CRLF and all";
  for (const std::string& broken :
       {" " + pem, absl::StrReplaceAll(pem, {{"\n", " "}}),
        absl::StrReplaceAll(pem, {{"\n", "\\n"}}), absl::StrReplaceAll(pem, {{"\n", "\n "}})}) {
    EXPECT_EQ(Final(*c, CmngWrite(33, 0, broken)), "+CME ERROR: 527") << absl::CHexEscape(broken);
  }

  SimProcess strict;
  ASSERT_OK(strict.Start({"--reject-crlf"}));
  ASSERT_OK_AND_ASSIGN(auto s, PtyClient::Open(strict.Link(0)));
  ASSERT_EQ(Final(*s, "AT+CMEE=1\r\n"), "OK");
  EXPECT_EQ(Final(*s, CmngWrite(32, 0, crlf)), "+CME ERROR: 527");
  EXPECT_EQ(Final(*s, CmngWrite(32, 0, wrapped76)), "OK");
}

// Bytes the simulator recorded as lost to RX FIFO overruns (its transcript
// notes "dropped N bytes (RX FIFO overrun)").
uint64_t DroppedBytes(const std::string& transcript) {
  uint64_t total = 0;
  for (absl::string_view line : absl::StrSplit(ReadFileOrDie(transcript), '\n')) {
    constexpr absl::string_view kNote = "note \"dropped ";
    size_t at = line.find(kNote);
    if (at == absl::string_view::npos || !absl::StrContains(line, "(RX FIFO overrun)")) continue;
    absl::string_view rest = line.substr(at + kNote.size());
    uint64_t n = 0;
    if (absl::SimpleAtoi(rest.substr(0, rest.find(' ')), &n)) total += n;
  }
  return total;
}

TEST(SimIntegrationTest, BurstWithoutFlowControlLosesBytesPacedWriteIsIntact) {
  const std::string chain = BuildChain(3500);
  ASSERT_GE(chain.size(), 3500u);
  ASSERT_LT(chain.size() + 40, 4096u);
  const std::string sha = pki::Sha256Hex(chain);
  ::atbridge::testing::TempDir files;
  const std::string transcript = files.File("transcript.txt");

  SimProcess sim;
  ASSERT_OK(sim.Start(
      {"--baud", "115200", "--no-flow-control", "--fifo", "64", "--transcript", transcript}));
  ASSERT_OK_AND_ASSIGN(auto c, PtyClient::Open(sim.Link(0), {.baud = 115200, .rtscts = false}));
  ASSERT_EQ(Final(*c, "AT+CMEE=1\r\n"), "OK");

  // One burst: far faster than 11520 bytes/s into a 64-byte FIFO.
  ASSERT_OK(c->Write(CmngWrite(100, 0, chain)));
  // End the damaged command without adding a quote it does not need: a bare
  // CRLF first (the closing quote may have arrived with its CRLF lost; a
  // second '"' would make the line unparsable), then, if that was taken as
  // quoted data, the quote and CRLF. Repeat while the FIFO is still full and
  // drops even these.
  absl::StatusOr<AtAnswer> answer = absl::DeadlineExceededError("not sent");
  for (int i = 0; i < 20 && !answer.ok(); ++i) {
    ASSERT_OK(c->Write("\r\n"));
    answer = c->ReadAnswer(absl::Milliseconds(200));
    if (answer.ok()) break;
    ASSERT_OK(c->Write("\"\r\n"));
    answer = c->ReadAnswer(absl::Milliseconds(200));
  }
  ASSERT_OK(answer.status());
  ASSERT_OK_AND_ASSIGN(AtAnswer at, c->Command("AT\r\n"));
  EXPECT_EQ(at.final, "OK");
  // The loss is the simulator's own record, not an inference from a missing
  // hash: bytes were dropped, and what arrived was refused (527) or stored
  // as something else than the chain.
  const uint64_t dropped = DroppedBytes(transcript);
  EXPECT_GT(dropped, 0u);
  std::vector<std::string> listed = ListTag(*c, 100);
  if (answer->final == "OK") {
    ASSERT_THAT(listed, SizeIs(1));
    EXPECT_THAT(listed[0], Not(HasSubstr(sha))) << "an entry whose hash shows the loss";
  } else {
    EXPECT_EQ(answer->final, "+CME ERROR: 527");
    EXPECT_THAT(listed, IsEmpty());
  }

  // Paced: 16-byte chunks with the line time of 64 bytes between them. The
  // simulator measures arrival when it reads (a pty carries no timestamps),
  // so a simulator starved of CPU (a loaded 2-core CI box) can merge chunks
  // and overrun; like the agent on DATA_LOSS, retry a bounded number of times.
  const absl::Duration gap = absl::Microseconds(64 * 10 * 1000000 / 115200);
  int attempts = 0;
  std::vector<std::string> stored;
  const std::string intact = absl::StrCat("%CMNG: 100,0,\"", sha, "\"");
  while (attempts < 3 && stored != std::vector<std::string>{intact}) {
    ++attempts;
    absl::Time start = absl::Now();
    ASSERT_OK(c->WritePaced(CmngWrite(100, 0, chain), 16, gap));
    ASSERT_OK_AND_ASSIGN(AtAnswer paced, c->ReadAnswer());
    EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
    if (paced.final == "OK") stored = ListTag(*c, 100);
  }
  EXPECT_THAT(stored, ElementsAre(intact)) << "after " << attempts << " paced attempts";
  if (attempts > 1) std::cerr << "paced write needed " << attempts << " attempts\n";

  // Reading it back takes at least its line time at 115200 baud.
  absl::Time start = absl::Now();
  ASSERT_OK_AND_ASSIGN(AtAnswer read, c->Command("AT%CMNG=2,100,0\r\n"));
  absl::Duration took = absl::Now() - start;
  ASSERT_EQ(read.final, "OK");
  ASSERT_THAT(read.lines, SizeIs(1));
  EXPECT_THAT(read.lines[0], HasSubstr(chain));
  EXPECT_GE(took, absl::Microseconds(static_cast<int64_t>(read.lines[0].size()) * 10 * 1000000 /
                                     115200 * 9 / 10));
}

TEST(SimIntegrationTest, FlowControlNeverLosesBytes) {
  const std::string chain = BuildChain(3500);
  SimProcess sim;
  ASSERT_OK(sim.Start({"--baud", "115200", "--fifo", "64"}));
  ASSERT_OK_AND_ASSIGN(auto c, PtyClient::Open(sim.Link(0)));
  // One burst, but RTS/CTS holds the writer back instead of dropping.
  absl::Time start = absl::Now();
  ASSERT_OK_AND_ASSIGN(AtAnswer write, c->Command(CmngWrite(5, 0, chain)));
  EXPECT_EQ(write.final, "OK");
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(280)) << "input is consumed at 11520 B/s";
  EXPECT_THAT(ListTag(*c, 5),
              ElementsAre(absl::StrCat("%CMNG: 5,0,\"", pki::Sha256Hex(chain), "\"")));
}

TEST(SimIntegrationTest, KeygenReturnsAVerifiableCsrAndKeepsTheKey) {
  SimProcess sim;
  ASSERT_OK(sim.Start({}));
  ASSERT_OK_AND_ASSIGN(auto c, PtyClient::Open(sim.Link(0)));
  ASSERT_EQ(Final(*c, "AT+CMEE=1\r\n"), "OK");

  ASSERT_OK_AND_ASSIGN(AtAnswer kg,
                       c->Command("AT%KEYGEN=16842753,2,0,\"CN=dev1,O=Lab\",\"101010000\"\r\n"));
  ASSERT_EQ(kg.final, "OK");
  ASSERT_OK_AND_ASSIGN(at::SignedBlob blob, at::ParseKeygen(kg.lines));
  ASSERT_OK_AND_ASSIGN(std::string subject, pki::CsrSubject(blob.body));
  EXPECT_THAT(subject, HasSubstr("CN=dev1"));
  EXPECT_THAT(subject, HasSubstr("O=Lab"));
  // COSE_Sign1 (tag 18) whose payload carries the body's SHA-256.
  ASSERT_FALSE(blob.cose.empty());
  EXPECT_EQ(static_cast<uint8_t>(blob.cose[0]), 0xd2);
  std::string digest = absl::HexStringToBytes(pki::Sha256Hex(blob.body));
  EXPECT_THAT(blob.cose, HasSubstr(digest));

  // A signed certificate for it can be made by a CA (what the server does).
  auto ca = pki::CreateCa(pki::CaOptions());
  ASSERT_OK(ca.status());
  ASSERT_OK(pki::SignCsr(*ca, blob.body, pki::SignCsrOptions()).status());

  // Without attributes: CN is the device UUID in lower case.
  ASSERT_OK_AND_ASSIGN(AtAnswer kg2, c->Command("AT%KEYGEN=11,2,0\r\n"));
  ASSERT_OK_AND_ASSIGN(at::SignedBlob blob2, at::ParseKeygen(kg2.lines));
  ASSERT_OK_AND_ASSIGN(std::string subject2, pki::CsrSubject(blob2.body));
  EXPECT_THAT(subject2, MatchesRegex("CN=[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-"
                                     "[0-9a-f]{12}"));
  // Format 1: the public key only.
  ASSERT_OK_AND_ASSIGN(AtAnswer kg3, c->Command("AT%KEYGEN=12,2,1\r\n"));
  ASSERT_OK_AND_ASSIGN(at::SignedBlob blob3, at::ParseKeygen(kg3.lines));
  EXPECT_THAT(pki::CsrSubject(blob3.body), Not(::atbridge::testing::IsOk()));
  EXPECT_LT(blob3.body.size(), 100u);  // A P-256 SubjectPublicKeyInfo is 91 bytes.

  // The key is listed as the tag's type-2 entry but can never be read.
  std::vector<std::string> listed = ListTag(*c, 16842753);
  ASSERT_THAT(listed, SizeIs(1));
  EXPECT_THAT(listed[0], MatchesRegex("%CMNG: 16842753,2,\"[0-9A-F]{64}\""));
  EXPECT_EQ(Final(*c, "AT%CMNG=2,16842753,2\r\n"), "+CME ERROR: 514");

  // Not while active.
  ASSERT_EQ(Final(*c, "AT+CFUN=1\r\n"), "OK");
  EXPECT_EQ(Final(*c, "AT%KEYGEN=13,2,0\r\n"), "+CME ERROR: 518");
}

TEST(SimIntegrationTest, UnplugAndReplugKeepsIdentityAndStore) {
  SimProcess sim;
  ASSERT_OK(sim.Start({"--unplug-after", "4", "--replug-after", "400"}));
  const std::string port = sim.Link(0);
  ASSERT_OK_AND_ASSIGN(auto c, PtyClient::Open(port));
  ASSERT_OK_AND_ASSIGN(AtAnswer imei, c->Command("AT+CGSN\r\n"));
  ASSERT_EQ(Final(*c, "AT+CMEE=1\r\n"), "OK");
  ASSERT_EQ(Final(*c, CmngWrite(3, 0, AmazonPem())), "OK");

  // The 4th command unplugs the modem: no answer, the port hangs up and
  // its link disappears.
  ASSERT_OK(c->Write("AT\r\n"));
  auto gone = c->ReadAnswer(absl::Seconds(5));
  EXPECT_THAT(gone, ::atbridge::testing::StatusIs(absl::StatusCode::kUnavailable));
  struct stat st;
  EXPECT_NE(lstat(port.c_str(), &st), 0);
  c.reset();

  // It comes back on a new pty at the same path, same IMEI, same store;
  // volatile settings (CMEE) are back to their defaults.
  ASSERT_OK(WaitForPath(port, absl::Seconds(5)));
  ASSERT_OK_AND_ASSIGN(auto c2, PtyClient::Open(port));
  ASSERT_OK_AND_ASSIGN(AtAnswer imei2, c2->Command("AT+CGSN\r\n"));
  EXPECT_EQ(imei2.lines, imei.lines);
  EXPECT_THAT(ListTag(*c2, 3), ElementsAre(absl::StrCat("%CMNG: 3,0,\"", kAmazonSha, "\"")));
  ASSERT_OK_AND_ASSIGN(AtAnswer cmee, c2->Command("AT+CMEE?\r\n"));
  EXPECT_THAT(cmee.lines, ElementsAre("+CMEE: 0"));
}

TEST(SimIntegrationTest, StateFileSurvivesRestartAndTranscriptHasNoKeys) {
  ::atbridge::testing::TempDir files;
  const std::string state = files.File("nvm.json");
  const std::string transcript = files.File("transcript.txt");
  // A client private key written by the host (type 2), in PEM.
  auto ca = pki::CreateCa(pki::CaOptions());
  ASSERT_OK(ca.status());
  std::string key_pem = ca->key_pem;
  while (!key_pem.empty() && key_pem.back() == '\n') key_pem.pop_back();

  SimProcess sim;
  std::vector<std::string> args = {"--state-file", state, "--transcript", transcript};
  std::string imei;
  {
    ASSERT_OK(sim.Start(args));
    ASSERT_OK_AND_ASSIGN(auto c, PtyClient::Open(sim.Link(0)));
    imei = Lines(*c, "AT+CGSN\r\n").at(0);
    ASSERT_EQ(Final(*c, CmngWrite(42, 0, AmazonPem())), "OK");
    ASSERT_EQ(Final(*c, CmngWrite(42, 2, key_pem)), "OK");
    // Also sent in small pieces, so a key split across reads is covered.
    ASSERT_OK(c->WritePaced(CmngWrite(43, 2, key_pem), 16, absl::Microseconds(200)));
    ASSERT_EQ(FinalOf(c->ReadAnswer()), "OK");
    ASSERT_EQ(Final(*c, "AT%KEYGEN=44,2,0\r\n"), "OK");
    ASSERT_EQ(Final(*c, "AT+CFUN=0\r\n"), "OK");
    ASSERT_OK_AND_ASSIGN(int code, sim.Stop());
    EXPECT_EQ(code, 0);
  }
  {
    ASSERT_OK(sim.Start(args));
    ASSERT_OK_AND_ASSIGN(auto c, PtyClient::Open(sim.Link(0)));
    EXPECT_EQ(Lines(*c, "AT+CGSN\r\n").at(0), imei) << "IMEIs are stable";
    EXPECT_THAT(Lines(*c, "AT+CFUN?\r\n"), ElementsAre("+CFUN: 0"));
    ASSERT_OK_AND_ASSIGN(AtAnswer list, c->Command("AT%CMNG=1\r\n"));
    EXPECT_THAT(list.lines,
                ElementsAre(absl::StrCat("%CMNG: 42,0,\"", kAmazonSha, "\""),
                            absl::StrCat("%CMNG: 42,2,\"", pki::Sha256Hex(key_pem), "\""),
                            absl::StrCat("%CMNG: 43,2,\"", pki::Sha256Hex(key_pem), "\""),
                            MatchesRegex("%CMNG: 44,2,\"[0-9A-F]{64}\"")));
    ASSERT_OK_AND_ASSIGN(int code, sim.Stop());
    EXPECT_EQ(code, 0);
  }

  // No private key bytes in the transcript: neither the host's key nor the
  // one %KEYGEN made (which only the state file, the modem's NVM, holds).
  std::string text = ReadFileOrDie(transcript);
  // The bytes before a "%CMNG" are recorded as they come, the command line
  // itself once it ends (redacted whole), so "AT" may be a record of its own.
  EXPECT_THAT(text, HasSubstr("%CMNG=0,42,0,\\\"-----BEGIN CERTIFICATE-----"));
  EXPECT_THAT(text, HasSubstr("%CMNG=0,42,2,\\\"<redacted "));
  EXPECT_THAT(text, HasSubstr("AT%KEYGEN=44,2,0"));
  EXPECT_THAT(text, Not(HasSubstr("PRIVATE KEY-----")));
  std::vector<std::string> key_lines;
  for (absl::string_view l : absl::StrSplit(key_pem, '\n')) {
    if (!absl::StartsWith(l, "-----")) key_lines.emplace_back(l);
  }
  ASSERT_FALSE(key_lines.empty());
  for (const std::string& l : key_lines) {
    EXPECT_THAT(text, Not(HasSubstr(l.substr(0, 24))));
  }
  // Base64 of the keygen'd key from the state file.
  std::string nvm = ReadFileOrDie(state);
  EXPECT_THAT(nvm, HasSubstr(imei));
  struct stat st;
  ASSERT_EQ(stat(state.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(SimIntegrationTest, FaultInjection) {
  {
    SimProcess sim;
    ASSERT_OK(sim.Start({"--flaky", "1", "--flaky-modes", "busy", "--seed", "7"}));
    ASSERT_OK_AND_ASSIGN(auto c, PtyClient::Open(sim.Link(0)));
    ASSERT_EQ(Final(*c, "AT+CMEE=1\r\n"), "OK");
    EXPECT_EQ(Final(*c, CmngWrite(1, 0, AmazonPem())), "+CME ERROR: 528");
    EXPECT_THAT(ListTag(*c, 1), IsEmpty());
  }
  {
    SimProcess sim;
    ASSERT_OK(sim.Start({"--flaky", "1", "--flaky-modes", "corrupt", "--seed", "7"}));
    ASSERT_OK_AND_ASSIGN(auto c, PtyClient::Open(sim.Link(0)));
    EXPECT_EQ(Final(*c, CmngWrite(1, 0, AmazonPem())), "OK");
    std::vector<std::string> listed = ListTag(*c, 1);
    ASSERT_THAT(listed, SizeIs(1));
    EXPECT_THAT(listed[0], Not(HasSubstr(kAmazonSha)));
  }
  {
    SimProcess sim;
    ASSERT_OK(sim.Start({"--flaky", "1", "--flaky-modes", "silent", "--latency", "50"}));
    ASSERT_OK_AND_ASSIGN(auto c, PtyClient::Open(sim.Link(0)));
    ASSERT_OK(c->Write(CmngWrite(1, 0, AmazonPem())));
    // No answer ever comes for it; the next command is answered normally
    // (after the latency).
    absl::Time start = absl::Now();
    ASSERT_OK_AND_ASSIGN(AtAnswer at, c->Command("AT\r\n"));
    EXPECT_EQ(at.final, "OK");
    EXPECT_GE(absl::Now() - start, absl::Milliseconds(50));
    EXPECT_THAT(ListTag(*c, 1), ElementsAre(absl::StrCat("%CMNG: 1,0,\"", kAmazonSha, "\"")));
  }
}

TEST(SimIntegrationTest, ImeisDependOnTheLinkDirOrTheBase) {
  SimProcess a;
  SimProcess b;
  ASSERT_OK(a.Start({"--count", "2"}));
  ASSERT_OK(b.Start({"--count", "2"}));
  std::string ia = OneShotLines(a.Link(0), "AT+CGSN\r\n").at(0);
  std::string ib = OneShotLines(b.Link(0), "AT+CGSN\r\n").at(0);
  EXPECT_NE(ia, ib);
  SimProcess c;
  ASSERT_OK(c.Start({"--imei-base", "35000000000001"}));
  EXPECT_THAT(OneShotLines(c.Link(0), "AT+CGSN\r\n"), ElementsAre("350000000000014"));
}

TEST(SimIntegrationTest, BadFlagsAndHelp) {
  ::atbridge::testing::TempDir dir;
  auto help =
      ::atbridge::testing::RunCommand({::atbridge::testing::BinaryPath("atbridge-sim"), "--help"});
  ASSERT_OK(help.status());
  EXPECT_EQ(help->exit_code, 0);
  EXPECT_THAT(help->output, HasSubstr("--link-dir"));
  auto bad = ::atbridge::testing::RunCommand(
      {::atbridge::testing::BinaryPath("atbridge-sim"), "--link-dir", dir.path(), "--cfun", "3"});
  ASSERT_OK(bad.status());
  EXPECT_NE(bad->exit_code, 0);
  EXPECT_THAT(bad->output, HasSubstr("--cfun"));
}

TEST(SimIntegrationTest, ThousandModems) {
  SimProcess sim;
  ASSERT_OK(sim.Start({"--count", "1000"}, absl::Seconds(20)));
  std::set<std::string> imeis;
  absl::Time start = absl::Now();
  for (int k = 0; k < 1000; ++k) {
    auto a = OneShot(sim.Link(k), "AT+CGSN\r\n");
    ASSERT_OK(a.status()) << "modem" << k;
    ASSERT_EQ(a->final, "OK") << "modem" << k;
    ASSERT_THAT(a->lines, SizeIs(1));
    ASSERT_TRUE(LuhnOk(a->lines[0])) << a->lines[0];
    imeis.insert(a->lines[0]);
  }
  EXPECT_EQ(imeis.size(), 1000u);
  std::cerr << "1000 modems: ready after " << sim.startup_time() << ", all answered AT+CGSN in "
            << absl::Now() - start << "\n";
  ASSERT_OK_AND_ASSIGN(int code, sim.Stop());
  EXPECT_EQ(code, 0);
}

// 1,000 modems need 2,000+ descriptors: started under a soft limit of 1,024
// (as many shells and CI runners set it), the simulator raises its own soft
// limit up to the hard one and every modem works, first, middle and last.
TEST(SimIntegrationTest, ThousandModemsUnderALowSoftFileLimit) {
  const char* prlimit = "/usr/bin/prlimit";
  if (access(prlimit, X_OK) != 0) GTEST_SKIP() << "no prlimit (util-linux)";
  struct rlimit lim;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &lim), 0);
  const rlim_t hard = lim.rlim_max == RLIM_INFINITY ? 1048576 : lim.rlim_max;
  if (hard < 2200) GTEST_SKIP() << "hard RLIMIT_NOFILE " << hard << " is too low for 1000 modems";
  SimProcess sim;
  ASSERT_OK(sim.Start({"--count", "1000"}, absl::Seconds(30),
                      {prlimit, absl::StrCat("--nofile=1024:", hard)}));
  const std::string limits = ReadFileOrDie(absl::StrCat("/proc/", sim.process().pid(), "/limits"));
  // /proc/<pid>/limits: "Max open files  <soft>  <hard>  files".
  uint64_t soft = 0;
  for (absl::string_view line : absl::StrSplit(limits, '\n')) {
    if (!absl::StartsWith(line, "Max open files")) continue;
    std::vector<absl::string_view> fields =
        absl::StrSplit(line.substr(strlen("Max open files")), ' ', absl::SkipEmpty());
    ASSERT_FALSE(fields.empty());
    ASSERT_TRUE(absl::SimpleAtoi(fields[0], &soft)) << line;
  }
  EXPECT_GE(soft, 2 * 1000u + 64) << "started at 1024, raised by the simulator";
  std::set<std::string> imeis;
  for (int k : {0, 499, 999}) {
    ASSERT_OK_AND_ASSIGN(auto c, PtyClient::Open(sim.Link(k)));
    ASSERT_OK_AND_ASSIGN(AtAnswer imei, c->Command("AT+CGSN\r\n"));
    ASSERT_EQ(imei.final, "OK") << "modem" << k;
    ASSERT_THAT(imei.lines, SizeIs(1));
    EXPECT_TRUE(LuhnOk(imei.lines[0]));
    imeis.insert(imei.lines[0]);
    EXPECT_EQ(Final(*c, CmngWrite(k, 0, AmazonPem())), "OK") << "modem" << k;
    EXPECT_THAT(ListTag(*c, k), ElementsAre(absl::StrCat("%CMNG: ", k, ",0,\"", kAmazonSha, "\"")));
  }
  EXPECT_EQ(imeis.size(), 3u);
  ASSERT_OK_AND_ASSIGN(int code, sim.Stop());
  EXPECT_EQ(code, 0);
}

}  // namespace
}  // namespace atbridge::sim::testing
