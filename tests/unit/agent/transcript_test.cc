#include "agent/modem/transcript.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace atbridge::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPsk[] = "c0ffee5ec2e7a11ce0ddba11deadbeef";

// Feeds `text` split at `cut` (and once whole) and returns all output.
std::string FeedSplit(absl::string_view text, size_t cut) {
  RxRedactor r;
  std::string out = r.Feed(text.substr(0, cut));
  out += r.Feed(text.substr(cut));
  out += r.Flush();
  return out;
}

TEST(RxRedactorTest, AnEchoedSecretWriteIsRedactedWhereverTheChunksSplit) {
  const std::string echo = absl::StrCat("AT%CMNG=0,7,3,\"", kPsk, "\"\r\nOK\r\n+CEREG: 1\r\n");
  for (size_t cut = 0; cut <= echo.size(); ++cut) {
    std::string out = FeedSplit(echo, cut);
    EXPECT_THAT(out, Not(HasSubstr("c0ffee"))) << "cut at " << cut << ": " << out;
    EXPECT_THAT(out, HasSubstr("AT%CMNG=0,7,3,\"<redacted 32 bytes>\"\r\n"));
    EXPECT_THAT(out, HasSubstr("OK\r\n+CEREG: 1\r\n"));
  }
}

TEST(RxRedactorTest, APrivateKeyWithNewlinesInsideQuotesIsHeldToTheEndOfTheCommand) {
  const std::string echo =
      "at%cmng=0,9,2,\"-----BEGIN PRIVATE KEY-----\nSECRETBODY\n-----END PRIVATE KEY-----\"\r\n";
  RxRedactor r;
  std::string out;
  for (char c : echo) out += r.Feed(std::string(1, c));
  EXPECT_THAT(out, Not(HasSubstr("SECRETBODY"))) << out;
  EXPECT_THAT(out, HasSubstr("redacted"));
}

TEST(RxRedactorTest, OrdinaryOutputPassesAtOnceAndUnchanged) {
  const std::string text =
      "+CGSN: \"352656100000017\"\r\nOK\r\n%XSIM: 1\r\n%CMNG: 16842753,0,\"ABCD\"\r\n100% sure\r\n";
  RxRedactor r;
  // Bytes up to a '%' are released as they come.
  EXPECT_EQ(r.Feed("+CGSN: 1\r\n"), "+CGSN: 1\r\n");
  EXPECT_EQ(r.Feed("%XS"), "%XS");
  EXPECT_EQ(r.Flush(), "");
  for (size_t cut = 0; cut <= text.size(); ++cut) EXPECT_EQ(FeedSplit(text, cut), text);
}

TEST(RxRedactorTest, AnUnterminatedSecretIsRedactedOnFlush) {
  RxRedactor r;
  std::string out = r.Feed(absl::StrCat("AT%CMNG=0,7,3,\"", kPsk));
  out += r.Flush();
  EXPECT_THAT(out, Not(HasSubstr("c0ffee"))) << out;
  EXPECT_THAT(out, HasSubstr("redacted"));
}

TEST(RxRedactorTest, AnOverlongHeldLineLeaksNothing) {
  RxRedactor r(/*max_hold=*/24);
  std::string out = r.Feed(absl::StrCat("AT%CMNG=0,7,3,\"", kPsk, "\"\r\n"));
  EXPECT_THAT(out, Not(HasSubstr("c0ffee"))) << out;
  EXPECT_THAT(out, HasSubstr("withheld"));
  EXPECT_TRUE(absl::EndsWith(out, "\r\n"));
}

}  // namespace
}  // namespace atbridge::agent
