#include "common/at/transcript_text.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace atbridge::at {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPsk[] = "c0ffee5ec2e7a11ce0ddba11deadbeef";
constexpr char kKey[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSECRETSECRETSECR\n"
    "ETSECRETSECRETSECRETSECRETSECREThRANDOMRANDOMRANDOMRANDOMRANDOM\n"
    "-----END PRIVATE KEY-----";

// Feeds `text` split at `cut` (and once whole) and returns all output.
std::string FeedSplit(absl::string_view text, size_t cut) {
  StreamRedactor r;
  std::string out = r.Feed(text.substr(0, cut));
  out += r.Feed(text.substr(cut));
  out += r.Flush();
  return out;
}

TEST(StreamRedactorTest, AnEchoedSecretWriteIsRedactedWhereverTheChunksSplit) {
  const std::string echo = absl::StrCat("AT%CMNG=0,7,3,\"", kPsk, "\"\r\nOK\r\n+CEREG: 1\r\n");
  for (size_t cut = 0; cut <= echo.size(); ++cut) {
    std::string out = FeedSplit(echo, cut);
    EXPECT_THAT(out, Not(HasSubstr("c0ffee"))) << "cut at " << cut << ": " << out;
    EXPECT_THAT(out, HasSubstr("AT%CMNG=0,7,3,\"<redacted 32 bytes>\"\r\n"));
    EXPECT_THAT(out, HasSubstr("OK\r\n+CEREG: 1\r\n"));
  }
}

TEST(StreamRedactorTest, APrivateKeyWithNewlinesInsideQuotesIsHeldToTheEndOfTheCommand) {
  const std::string echo =
      "at%cmng=0,9,2,\"-----BEGIN PRIVATE KEY-----\nSECRETBODY\n-----END PRIVATE KEY-----\"\r\n";
  StreamRedactor r;
  std::string out;
  for (char c : echo) out += r.Feed(std::string(1, c));
  EXPECT_THAT(out, Not(HasSubstr("SECRETBODY"))) << out;
  EXPECT_THAT(out, HasSubstr("redacted"));
}

TEST(StreamRedactorTest, OrdinaryOutputPassesAtOnceAndUnchanged) {
  const std::string text =
      "+CGSN: \"352656100000017\"\r\nOK\r\n%XSIM: 1\r\n%CMNG: 16842753,0,\"ABCD\"\r\n100% sure\r\n";
  StreamRedactor r;
  // Bytes up to a '%' are released as they come.
  EXPECT_EQ(r.Feed("+CGSN: 1\r\n"), "+CGSN: 1\r\n");
  EXPECT_EQ(r.Feed("%XS"), "%XS");
  EXPECT_EQ(r.Flush(), "");
  for (size_t cut = 0; cut <= text.size(); ++cut) EXPECT_EQ(FeedSplit(text, cut), text);
}

TEST(StreamRedactorTest, AnUnterminatedSecretIsRedactedOnFlush) {
  StreamRedactor r;
  std::string out = r.Feed(absl::StrCat("AT%CMNG=0,7,3,\"", kPsk));
  out += r.Flush();
  EXPECT_THAT(out, Not(HasSubstr("c0ffee"))) << out;
  EXPECT_THAT(out, HasSubstr("redacted"));
}

TEST(StreamRedactorTest, AnOverlongHeldLineLeaksNothing) {
  StreamRedactor r(/*max_hold=*/24);
  std::string out = r.Feed(absl::StrCat("AT%CMNG=0,7,3,\"", kPsk, "\"\r\n"));
  EXPECT_THAT(out, Not(HasSubstr("c0ffee"))) << out;
  EXPECT_THAT(out, HasSubstr("withheld"));
  EXPECT_TRUE(absl::EndsWith(out, "\r\n"));
}

// What a tool sends a modem (the simulator's transcript): the same rules.
TEST(StreamRedactorTest, AWrittenKeyIsRedactedHoweverTheBytesArrive) {
  const std::string command = absl::StrCat("AT%CMNG=0,7,2,\"", kKey, "\"\r\nAT+CGSN\r\n");
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{64}, command.size()}) {
    StreamRedactor r(4096 + 64);
    std::string recorded;
    for (size_t off = 0; off < command.size(); off += chunk) {
      recorded += r.Feed(absl::string_view(command).substr(off, chunk));
    }
    recorded += r.Flush();
    EXPECT_THAT(recorded, HasSubstr("AT%CMNG=0,7,2,")) << chunk;
    EXPECT_THAT(recorded, Not(HasSubstr("SECRET"))) << chunk;
    EXPECT_THAT(recorded, Not(HasSubstr("RANDOM"))) << chunk;
    EXPECT_THAT(recorded, HasSubstr("\r\nAT+CGSN\r\n")) << chunk;
  }
}

TEST(StreamRedactorTest, AChainedWriteIsCaughtAfterTheSemicolon) {
  StreamRedactor r;
  std::string out = r.Feed(absl::StrCat("AT+CFUN=4;%CMNG=0,7,3,\"", kPsk, "\"\r\n"));
  EXPECT_THAT(out, Not(HasSubstr("c0ffee"))) << out;
  EXPECT_THAT(out, HasSubstr("AT+CFUN=4;%CMNG=0,7,3,"));
}

// A tool that edits the line (picocom, a human typing) sends what the modem's
// framer turns into %CMNG: caught as the framer sees it.
TEST(StreamRedactorTest, ACommandNameFixedWithBackspaceOrNulIsStillCaught) {
  for (const std::string& typed :
       {std::string("AT%CMX\bNG=0,7,3,\""), std::string("AT%CMX\x7fNG=0,7,3,\""),
        std::string("AT%CM\0NG=0,7,3,\"", 17), std::string("AT%CMNGXYZ\b\b\b=0,7,3,\""),
        std::string("AT%QQQQ\b\b\b\bCMNG=0,7,3,\"")}) {
    for (size_t cut = 0; cut <= typed.size(); ++cut) {
      std::string out = FeedSplit(absl::StrCat(typed, kPsk, "\"\r\nOK\r\n"), cut);
      EXPECT_THAT(out, Not(HasSubstr("c0ffee"))) << EscapeBytes(typed) << " cut " << cut;
      EXPECT_THAT(out, HasSubstr("\r\nOK\r\n"));
    }
  }
}

TEST(StreamRedactorTest, EditingInsideAHeldWriteWithholdsTheWholeLine) {
  StreamRedactor r;
  std::string out = r.Feed(absl::StrCat("AT%CMNG=0,7,4\b3,\"", kPsk, "\"\r\nOK\r\n"));
  EXPECT_THAT(out, Not(HasSubstr("c0ffee"))) << EscapeBytes(out);
  EXPECT_THAT(out, HasSubstr("AT<redacted"));
  EXPECT_THAT(out, HasSubstr("edited line>\r\nOK\r\n"));
}

// After a flush (port lost mid-quote) the next line starts outside quotes:
// a stale quote must not hide the next write's "%CMNG".
TEST(StreamRedactorTest, AFlushStartsTheNextLineOutsideQuotes) {
  StreamRedactor r;
  std::string out = r.Feed("AT+X=\"half a string");
  out += r.Flush();
  out += r.Feed(absl::StrCat("AT%CMNG=0,7,3,\"", kPsk, "\"\r\n"));
  EXPECT_THAT(out, Not(HasSubstr("c0ffee"))) << EscapeBytes(out);
}

TEST(EscapeBytesTest, OneLineWhateverTheBytes) {
  EXPECT_EQ(EscapeBytes("AT\r\n"), "AT\\r\\n");
  EXPECT_EQ(EscapeBytes(std::string("a\"b\\c\t\x01\xff", 8)), "a\\\"b\\\\c\\t\\x01\\xff");
}

}  // namespace
}  // namespace atbridge::at
