#include "common/at/modem_responses.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/testing/status_matchers.h"

namespace atbridge::at {
namespace {

using ::atbridge::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;
constexpr char kSha[] = "AD6FB002E6B34C0559FA8F93A3794FF12C4E3F119BD77290C52525123FB9EA74";

TEST(ParseCmngLineTest, ListLine) {
  ASSERT_OK_AND_ASSIGN(CmngEntry entry,
                       ParseCmngLine(absl::StrCat("%CMNG: 16842753,0,\"", kSha, "\"")));
  EXPECT_EQ(entry.sec_tag, 16842753u);
  EXPECT_EQ(entry.type, 0);
  EXPECT_EQ(entry.sha256, kSha);
  EXPECT_FALSE(entry.content.has_value());
}

TEST(ParseCmngLineTest, ModemTagsKeptAsListed) {
  ASSERT_OK_AND_ASSIGN(CmngEntry entry,
                       ParseCmngLine(absl::StrCat("%CMNG: 4294967292,11,\"", kSha, "\"")));
  EXPECT_EQ(entry.sec_tag, 4294967292u);
  EXPECT_EQ(entry.type, 11);
}

TEST(ParseCmngLineTest, ReadLineContentByteExact) {
  const std::string content =
      "-----BEGIN CERTIFICATE-----\nMIIB,x\r\n\nOK\n-----END CERTIFICATE-----\n";
  ASSERT_OK_AND_ASSIGN(CmngEntry entry, ParseCmngLine(absl::StrCat("%CMNG:20, 1 ,\"", kSha, "\",\"",
                                                                   content, "\"")));
  EXPECT_EQ(entry.sec_tag, 20u);
  EXPECT_EQ(entry.type, 1);
  ASSERT_TRUE(entry.content.has_value());
  EXPECT_EQ(*entry.content, content);

  ASSERT_OK_AND_ASSIGN(entry, ParseCmngLine(absl::StrCat("%CMNG: 20,4,\"", kSha, "\",\"\"")));
  ASSERT_TRUE(entry.content.has_value());
  EXPECT_EQ(*entry.content, "");
}

TEST(ParseCmngLineTest, Malformed) {
  const std::string sha = kSha;
  const std::string bad[] = {
      "",
      "+CMNG: 1,0,\"" + sha + "\"",
      "%CMNG: ,0,\"" + sha + "\"",
      "%CMNG: 4294967296,0,\"" + sha + "\"",
      "%CMNG: 1,\"" + sha + "\"",
      "%CMNG: 1,0," + sha,
      "%CMNG: 1,0,\"" + sha.substr(1) + "\"",
      "%CMNG: 1,0,\"" + std::string(63, 'A') + "G\"",
      "%CMNG: 1,0,\"" + sha + "\"x",
      "%CMNG: 1,0,\"" + sha + "\",\"abc",
      "%CMNG: 1,0,\"" + sha + "\",\"a\"b\"",
      "%CMNG: 1,0,\"" + sha + "\",abc",
  };
  for (const std::string& line : bad) {
    EXPECT_THAT(ParseCmngLine(line), StatusIs(kInvalid)) << line;
  }
  // The message names the line, shortened.
  absl::StatusOr<CmngEntry> entry = ParseCmngLine(absl::StrCat("%CMNG: x", std::string(500, 'y')));
  ASSERT_FALSE(entry.ok());
  EXPECT_THAT(std::string(entry.status().message()), HasSubstr("\"%CMNG: xyyy"));
  EXPECT_LT(entry.status().message().size(), 200u);
}

TEST(ParseCmngListTest, AllLinesMustBeCmng) {
  ASSERT_OK_AND_ASSIGN(std::vector<CmngEntry> entries, ParseCmngList({}));
  EXPECT_THAT(entries, IsEmpty());
  ASSERT_OK_AND_ASSIGN(entries, ParseCmngList({absl::StrCat("%CMNG: 1,0,\"", kSha, "\""),
                                               absl::StrCat("%CMNG: 1,1,\"", kSha, "\"")}));
  EXPECT_EQ(entries.size(), 2u);
  EXPECT_THAT(ParseCmngList({absl::StrCat("%CMNG: 1,0,\"", kSha, "\""), "+CEREG: 1"}),
              StatusIs(kInvalid));
}

TEST(ParseCfunTest, Modes) {
  EXPECT_EQ(*ParseCfun({"+CFUN: 4"}), 4);
  EXPECT_EQ(*ParseCfun({"+CFUN:21"}), 21);
  EXPECT_THAT(ParseCfun({}), StatusIs(kInvalid, HasSubstr("+CFUN:")));
  EXPECT_THAT(ParseCfun({"+CFUN: x"}), StatusIs(kInvalid));
  EXPECT_THAT(ParseCfun({"+CFUN: 4,1"}), StatusIs(kInvalid));
  EXPECT_THAT(ParseCfun({"+CFUN: 4", "+CFUN: 1"}), StatusIs(kInvalid));
}

TEST(ParseImeiTest, BareAndCgsn) {
  EXPECT_EQ(*ParseImei({"352656100123456"}), "352656100123456");
  EXPECT_EQ(*ParseImei({"+CGSN: \"352656100123456\""}), "352656100123456");
  EXPECT_THAT(ParseImei({"35265610012345"}), StatusIs(kInvalid));
  EXPECT_THAT(ParseImei({"+CGSN: \"3526561001234567\""}), StatusIs(kInvalid));
  EXPECT_THAT(ParseImei({"+CGSN: \"35265610012345x\""}), StatusIs(kInvalid));
  EXPECT_THAT(ParseImei({}), StatusIs(kInvalid));
}

TEST(ParseSingleLineTest, ExactlyOne) {
  EXPECT_EQ(*ParseSingleLine({"mfw_nrf9160_1.3.5"}), "mfw_nrf9160_1.3.5");
  EXPECT_THAT(ParseSingleLine({}), StatusIs(kInvalid));
  EXPECT_THAT(ParseSingleLine({"a", "b"}), StatusIs(kInvalid));
}

TEST(ParseKeygenTest, DecodesBodyAndCose) {
  const std::string body("\x30\x82\x01\x0a\x00\xff", 6);
  const std::string cose("\xd2\x84\x43\xa1\x01\x26", 6);
  const std::string line =
      absl::StrCat("%KEYGEN: \"", Base64UrlEncode(body), ".", Base64UrlEncode(cose), "\"");
  ASSERT_OK_AND_ASSIGN(SignedBlob blob, ParseKeygen({line}));
  EXPECT_EQ(blob.body, body);
  EXPECT_EQ(blob.cose, cose);

  const std::string token = absl::StrCat("%ATTESTTOKEN: \"", Base64UrlEncode("token-body"), ".",
                                         Base64UrlEncode("cose"), "\"");
  ASSERT_OK_AND_ASSIGN(blob, ParseAttestToken({token}));
  EXPECT_EQ(blob.body, "token-body");
  EXPECT_EQ(blob.cose, "cose");
  EXPECT_THAT(ParseKeygen({token}), StatusIs(kInvalid));
}

TEST(ParseKeygenTest, Malformed) {
  EXPECT_THAT(ParseKeygen({}), StatusIs(kInvalid));
  EXPECT_THAT(ParseKeygen({"%KEYGEN: abc.def"}), StatusIs(kInvalid, HasSubstr("quoted")));
  EXPECT_THAT(ParseKeygen({"%KEYGEN: \"abcd\""}), StatusIs(kInvalid, HasSubstr("'.'")));
  EXPECT_THAT(ParseKeygen({"%KEYGEN: \"ab.cd.ef\""}), StatusIs(kInvalid));
  EXPECT_THAT(ParseKeygen({"%KEYGEN: \"a+bc.def0\""}), StatusIs(kInvalid, HasSubstr("body")));
  EXPECT_THAT(ParseKeygen({"%KEYGEN: \".abcd\""}), StatusIs(kInvalid, HasSubstr("empty")));
  EXPECT_THAT(ParseKeygen({"%KEYGEN: \"abcd.\""}), StatusIs(kInvalid, HasSubstr("empty")));
  EXPECT_THAT(ParseKeygen({"%KEYGEN: \"abcd.abcd\" x"}), StatusIs(kInvalid));
}

TEST(Base64UrlTest, RoundTripsAllLengths) {
  std::mt19937 rng(7);
  for (size_t len = 0; len < 70; ++len) {
    std::string bytes(len, '\0');
    for (char& c : bytes) c = static_cast<char>(rng() & 0xff);
    const std::string encoded = Base64UrlEncode(bytes);
    EXPECT_EQ(encoded.find_first_of("+/="), std::string::npos);
    ASSERT_OK_AND_ASSIGN(std::string decoded, Base64UrlDecode(encoded));
    EXPECT_EQ(decoded, bytes) << len;
  }
  EXPECT_EQ(Base64UrlEncode("\xfb\xff"), "-_8");
}

TEST(Base64UrlTest, DecodeRefusals) {
  EXPECT_EQ(*Base64UrlDecode("-_8"), "\xfb\xff");
  EXPECT_EQ(*Base64UrlDecode("-_8="), "\xfb\xff");  // Correct padding tolerated.
  EXPECT_THAT(Base64UrlDecode("abcde"), StatusIs(kInvalid, HasSubstr("truncated")));
  EXPECT_THAT(Base64UrlDecode("ab+d"), StatusIs(kInvalid, HasSubstr("character 2")));
  EXPECT_THAT(Base64UrlDecode("ab/d"), StatusIs(kInvalid));
  EXPECT_THAT(Base64UrlDecode("ab=d"), StatusIs(kInvalid));
  EXPECT_THAT(Base64UrlDecode("-_9"), StatusIs(kInvalid, HasSubstr("padding bits")));
}

TEST(IsActiveCfunTest, Modes) {
  for (int mode : {1, 2, 21}) EXPECT_TRUE(IsActiveCfun(mode)) << mode;
  for (int mode : {0, 4, 20, 30, 31, 40, 41, 44}) EXPECT_FALSE(IsActiveCfun(mode)) << mode;
}

}  // namespace
}  // namespace atbridge::at
