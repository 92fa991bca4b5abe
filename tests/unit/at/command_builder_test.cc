// Builders: injection-safe, fail closed, messages that name the argument and
// the byte but never echo content. Includes corpus case 20.
#include "common/at/command_builder.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "tests/testing/status_matchers.h"

namespace atbridge::at {
namespace {

using ::atbridge::testing::IsOk;
using ::atbridge::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;

// Case 20: a PEM with '"' or CR, and an APN that tries to inject a second
// argument and a second command, are refused and nothing is produced.
TEST(CommandBuilderTest, Corpus20InjectionRefused) {
  const std::string pem_with_quote =
      "-----BEGIN CERTIFICATE-----\nMIIB\"\n-----END CERTIFICATE-----";
  EXPECT_THAT(CmngWrite(20, 0, pem_with_quote),
              StatusIs(kInvalid, HasSubstr("content byte 32 is '\"'")));
  const std::string pem_with_cr =
      "-----BEGIN CERTIFICATE-----\r\nMIIB\r\n-----END CERTIFICATE-----";
  EXPECT_THAT(CmngWrite(20, 0, pem_with_cr),
              StatusIs(kInvalid, HasSubstr("content byte 27 is CR (0x0D)")));
  absl::StatusOr<std::string> apn =
      CommandBuilder("+CGDCONT").Int(1).Quoted("IP", "pdp_type").Quoted("a\",1\r", "apn").Set();
  EXPECT_THAT(apn, StatusIs(kInvalid, HasSubstr("apn byte 1 is '\"'")));
}

TEST(CommandBuilderTest, EveryBadByteClassIsRefused) {
  struct Case {
    std::string value;
    std::string message;
  };
  const Case cases[] = {
      {"ab\"c", "byte 2 is '\"'"},
      {"ab\rc", "byte 2 is CR (0x0D)"},
      {"ab\nc", "byte 2 is LF (0x0A)"},
      {std::string("ab\0c", 4), "byte 2 is NUL (0x00)"},
      {"ab\tc", "byte 2 is TAB (0x09)"},
      {"ab\x1b"
       "c",
       "byte 2 is control byte 0x1B"},
      {"ab\x7f"
       "c",
       "byte 2 is control byte 0x7F"},
      {"ab\xc3\xa9", "byte 2 is non-ASCII byte 0xC3"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(CommandBuilder("+X").Quoted(c.value, "name").Set(),
                StatusIs(kInvalid, HasSubstr(absl::StrCat("name ", c.message))))
        << c.message;
    if (c.value[2] != '\n') {
      EXPECT_THAT(CommandBuilder("+X").QuotedPayload(c.value).Set(),
                  StatusIs(kInvalid, HasSubstr(absl::StrCat("content ", c.message))))
          << c.message;
    }
  }
  // LF is the one byte a payload may hold.
  EXPECT_THAT(CommandBuilder("+X").QuotedPayload("a\nb").Set(), IsOk());
}

TEST(CommandBuilderTest, MessagesNeverEchoContent) {
  const std::string secret = "-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYBYTES\"";
  absl::StatusOr<std::string> result = CmngWrite(5, 2, secret);
  ASSERT_FALSE(result.ok());
  EXPECT_THAT(std::string(result.status().message()),
              AllOf(Not(HasSubstr("TOPSECRET")), Not(HasSubstr("BEGIN"))));
}

TEST(CommandBuilderTest, Forms) {
  EXPECT_EQ(*CommandBuilder("+CFUN").Int(4).Set(), "AT+CFUN=4");
  EXPECT_EQ(*CommandBuilder("+CFUN").Read(), "AT+CFUN?");
  EXPECT_EQ(*CommandBuilder("+CFUN").Test(), "AT+CFUN=?");
  EXPECT_EQ(*CommandBuilder("+CGSN").Action(), "AT+CGSN");
  EXPECT_EQ(*CommandBuilder("").Action(), "AT");
  EXPECT_EQ(*CommandBuilder("%CMNG").Int(1).Empty().Empty().Set(), "AT%CMNG=1,,");
  EXPECT_EQ(*CommandBuilder("#XSLEEP").Int(-1).Quoted("a b,c;d").Set(), "AT#XSLEEP=-1,\"a b,c;d\"");
  EXPECT_THAT(CommandBuilder("+CFUN").Int(1).Read(), StatusIs(kInvalid));
  EXPECT_THAT(CommandBuilder("+CFUN").Int(1).Test(), StatusIs(kInvalid));
  EXPECT_THAT(CommandBuilder("+CFUN").Int(1).Action(), StatusIs(kInvalid));
  EXPECT_THAT(CommandBuilder("").Set(), StatusIs(kInvalid));
  EXPECT_THAT(CommandBuilder("").Read(), StatusIs(kInvalid));
}

TEST(CommandBuilderTest, NameMustBeWellFormed) {
  for (const char* name : {"CFUN", "+cfun", "+", "+CFUN;", "+CFUN=", "+CF UN", "AT+CFUN", "%"}) {
    EXPECT_THAT(CommandBuilder(name).Action(), StatusIs(kInvalid, HasSubstr("command name")))
        << name;
  }
  EXPECT_THAT(CommandBuilder("%XMODEMUUID").Action(), IsOk());
}

TEST(CommandBuilderTest, FirstErrorWins) {
  absl::StatusOr<std::string> result =
      CommandBuilder("+X").Quoted("a\"", "first").Quoted("b\r", "second").Set();
  EXPECT_THAT(result, StatusIs(kInvalid, HasSubstr("first byte 1")));
}

TEST(CmngTest, WriteTagAndTypeRanges) {
  EXPECT_EQ(*CmngWrite(0, 0, "x"), "AT%CMNG=0,0,0,\"x\"");
  EXPECT_EQ(*CmngWrite(kMaxUserSecTag, 11, "a\nb"), "AT%CMNG=0,2147483647,11,\"a\nb\"");
  EXPECT_THAT(CmngWrite(kMaxUserSecTag + 1, 0, "x"),
              StatusIs(kInvalid, HasSubstr("sec_tag 2147483648 is out of range")));
  EXPECT_THAT(CmngWrite(4294967295u, 0, "x"), StatusIs(kInvalid));
  EXPECT_THAT(CmngWrite(1, -1, "x"), StatusIs(kInvalid, HasSubstr("type -1")));
  EXPECT_THAT(CmngWrite(1, 12, "x"), StatusIs(kInvalid, HasSubstr("type 12")));
  EXPECT_THAT(CmngWrite(1, 0, ""), StatusIs(kInvalid, HasSubstr("empty")));
}

TEST(CmngTest, ListReadDelete) {
  EXPECT_EQ(CmngList(), "AT%CMNG=1");
  EXPECT_EQ(CmngList(16842753u), "AT%CMNG=1,16842753");
  EXPECT_EQ(CmngList(16842753u, 0), "AT%CMNG=1,16842753,0");
  EXPECT_EQ(CmngList(std::nullopt, 0), "AT%CMNG=1");  // A type needs a tag.
  EXPECT_EQ(CmngRead(20, 1), "AT%CMNG=2,20,1");
  EXPECT_EQ(CmngDelete(20, 2), "AT%CMNG=3,20,2");
  EXPECT_EQ(CfunSet(4), "AT+CFUN=4");
  EXPECT_EQ(CfunRead(), "AT+CFUN?");
}

TEST(KeygenTest, Forms) {
  EXPECT_EQ(*Keygen(16842753, 2, 0), "AT%KEYGEN=16842753,2,0");
  EXPECT_EQ(*Keygen(16842753, 2, 1, "CN=device-1"), "AT%KEYGEN=16842753,2,1,\"CN=device-1\"");
  EXPECT_EQ(*Keygen(7, 2, 0, "O=Nordic Semiconductor,L=Trondheim,C=no,CN=mydevice", "101010000"),
            "AT%KEYGEN=7,2,0,\"O=Nordic Semiconductor,L=Trondheim,C=no,CN=mydevice\","
            "\"101010000\"");
  EXPECT_EQ(*Keygen(7, 2, 0, "", "101010000"), "AT%KEYGEN=7,2,0,,\"101010000\"");
  EXPECT_THAT(Keygen(kMaxUserSecTag + 1, 2, 0), StatusIs(kInvalid));
  EXPECT_THAT(Keygen(7, 3, 0), StatusIs(kInvalid, HasSubstr("key_type 3")));
  EXPECT_THAT(Keygen(7, 2, 2), StatusIs(kInvalid, HasSubstr("format 2")));
  EXPECT_THAT(Keygen(7, 2, 0, "CN=\"x\""), StatusIs(kInvalid, HasSubstr("attributes byte 3")));
  EXPECT_THAT(Keygen(7, 2, 0, "CN=x", "10101"), StatusIs(kInvalid, HasSubstr("key_usage")));
  EXPECT_THAT(Keygen(7, 2, 0, "CN=x", "10101000x"),
              StatusIs(kInvalid, HasSubstr("key_usage byte 8")));
}

TEST(ValidateRawCommandTest, AcceptsOneCommandLine) {
  EXPECT_THAT(ValidateRawCommand("AT+CFUN?"), IsOk());
  EXPECT_THAT(ValidateRawCommand("at+cgsn=1"), IsOk());
  EXPECT_THAT(ValidateRawCommand("AT"), IsOk());
  EXPECT_THAT(ValidateRawCommand("AT%CMNG=1,16842753;+CFUN?"), IsOk());
  EXPECT_THAT(ValidateRawCommand("AT%XSYSTEMMODE=1,0,1,0"), IsOk());
  EXPECT_THAT(ValidateRawCommand("AT+CGDCONT=1,\"IP\",\"apn\""), IsOk());
}

TEST(ValidateRawCommandTest, Refusals) {
  EXPECT_THAT(ValidateRawCommand(""), StatusIs(kInvalid, HasSubstr("empty")));
  EXPECT_THAT(ValidateRawCommand("+CFUN?"), StatusIs(kInvalid, HasSubstr("start with")));
  EXPECT_THAT(ValidateRawCommand("A"), StatusIs(kInvalid));
  EXPECT_THAT(ValidateRawCommand("AT+CFUN=4\rAT+CFUN=1"),
              StatusIs(kInvalid, HasSubstr("byte 9 is CR (0x0D)")));
  EXPECT_THAT(ValidateRawCommand("AT\n"), StatusIs(kInvalid, HasSubstr("byte 2 is LF")));
  EXPECT_THAT(ValidateRawCommand(std::string("AT\0", 3)), StatusIs(kInvalid, HasSubstr("NUL")));
  EXPECT_THAT(ValidateRawCommand("AT\x1b"), StatusIs(kInvalid, HasSubstr("control byte")));
  EXPECT_THAT(ValidateRawCommand("AT+X=\"\xc3\xa9\""), StatusIs(kInvalid, HasSubstr("non-ASCII")));
  EXPECT_THAT(ValidateRawCommand("AT+X=\"a"), StatusIs(kInvalid, HasSubstr("unbalanced quote")));
  EXPECT_THAT(ValidateRawCommand(absl::StrCat("AT+X=", std::string(10, '1')), 10),
              StatusIs(kInvalid, HasSubstr("limit of 10")));
  EXPECT_THAT(ValidateRawCommand(absl::StrCat("AT", std::string(4094, 'A'))), IsOk());
  EXPECT_THAT(ValidateRawCommand(absl::StrCat("AT", std::string(4095, 'A'))), StatusIs(kInvalid));
}

}  // namespace
}  // namespace atbridge::at
