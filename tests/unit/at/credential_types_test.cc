#include "common/at/credential_types.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "common/at/command_builder.h"
#include "common/pki/pki.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace atbridge::at {
namespace {

using ::atbridge::testing::IsOk;
using ::atbridge::testing::ReadFileOrDie;
using ::atbridge::testing::StatusIs;
using ::atbridge::testing::TestDataPath;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;

TEST(CredentialTypesTest, NamesAndClasses) {
  EXPECT_EQ(CredentialTypeName(0), "root CA certificate");
  EXPECT_EQ(CredentialTypeName(1), "client certificate");
  EXPECT_EQ(CredentialTypeName(2), "client private key");
  EXPECT_EQ(CredentialTypeName(3), "PSK");
  EXPECT_EQ(CredentialTypeName(4), "PSK identity");
  EXPECT_EQ(CredentialTypeName(7), "type 7");
  EXPECT_EQ(CredentialTypeName(42), "type 42");
  for (int type = 0; type <= kMaxCredentialType; ++type) {
    EXPECT_EQ(IsSecretType(type), type == 2 || type == 3) << type;
    EXPECT_EQ(IsCertificateType(type), type == 0 || type == 1) << type;
    EXPECT_EQ(IsReadableType(type), type == 0 || type == 1 || type == 4) << type;
  }
}

TEST(ValidateContentShapeTest, Certificates) {
  const std::string pem = ReadFileOrDie(TestDataPath("pem/AmazonRootCA1.pem"));
  EXPECT_THAT(ValidateContentShape(0, pem), IsOk());
  EXPECT_THAT(ValidateContentShape(1, pem), IsOk());
  // Repairable content has a valid shape; NormalizePem does the repair.
  EXPECT_THAT(ValidateContentShape(
                  0, ReadFileOrDie(TestDataPath("pem/seed-spaces-instead-of-newlines.txt"))),
              IsOk());
  EXPECT_THAT(ValidateContentShape(0, "HONKHONK"),
              StatusIs(kInvalid, HasSubstr("root CA certificate")));
  EXPECT_THAT(ValidateContentShape(0, ""), StatusIs(kInvalid, HasSubstr("empty")));
}

TEST(ValidateContentShapeTest, PrivateKey) {
  absl::StatusOr<pki::KeyAndCert> ca = pki::CreateCa({});
  ASSERT_TRUE(ca.ok());
  EXPECT_THAT(ValidateContentShape(2, ca->key_pem), IsOk());
  EXPECT_THAT(ValidateContentShape(2, ca->cert_pem), StatusIs(kInvalid));
  std::string broken = ca->key_pem;
  broken[40] = '*';
  absl::Status status = ValidateContentShape(2, broken);
  EXPECT_THAT(status, StatusIs(kInvalid, HasSubstr("client private key")));
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr(ca->key_pem.substr(30, 8))));
}

TEST(ValidateContentShapeTest, Psk) {
  EXPECT_THAT(ValidateContentShape(3, "00"), IsOk());
  EXPECT_THAT(ValidateContentShape(3, "0123456789abcdefABCDEF"), IsOk());
  EXPECT_THAT(ValidateContentShape(3, std::string(128, 'a')), IsOk());
  EXPECT_THAT(ValidateContentShape(3, std::string(130, 'a')), StatusIs(kInvalid));
  EXPECT_THAT(ValidateContentShape(3, "abc"), StatusIs(kInvalid, HasSubstr("even")));
  absl::Status status = ValidateContentShape(3, "0zsecret");
  EXPECT_THAT(status, StatusIs(kInvalid, HasSubstr("PSK character 1 is not a hex digit")));
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr("secret")));
}

TEST(ValidateContentShapeTest, PskIdentityAndOthers) {
  EXPECT_THAT(ValidateContentShape(4, "device-1@example"), IsOk());
  EXPECT_THAT(ValidateContentShape(4, std::string(256, 'i')), IsOk());
  EXPECT_THAT(ValidateContentShape(4, std::string(257, 'i')), StatusIs(kInvalid));
  EXPECT_THAT(ValidateContentShape(4, "a\"b"), StatusIs(kInvalid, HasSubstr("byte 1 is '\"'")));
  EXPECT_THAT(ValidateContentShape(4, "a\nb"), StatusIs(kInvalid, HasSubstr("LF")));
  EXPECT_THAT(ValidateContentShape(5, "-----BEGIN PUBLIC KEY-----\nabc\n"), IsOk());
  EXPECT_THAT(ValidateContentShape(5, "a\rb"), StatusIs(kInvalid, HasSubstr("CR")));
  EXPECT_THAT(ValidateContentShape(12, "x"), StatusIs(kInvalid, HasSubstr("out of range")));
  EXPECT_THAT(ValidateContentShape(-1, "x"), StatusIs(kInvalid));
}

TEST(RedactSecretsTest, PrivateKeyWriteWithNewlinesInsideQuotes) {
  absl::StatusOr<pki::KeyAndCert> ca = pki::CreateCa({});
  ASSERT_TRUE(ca.ok());
  std::string key = ca->key_pem;
  key.pop_back();
  absl::StatusOr<std::string> command = CmngWrite(7, 2, key);
  ASSERT_TRUE(command.ok());
  EXPECT_EQ(RedactSecrets(*command),
            absl::StrCat("AT%CMNG=0,7,2,\"<redacted ", key.size(), " bytes>\""));
  // Also inside a transcript with the terminator and the modem's answer.
  const std::string transcript = absl::StrCat("> ", *command, "\r\n< OK\r\n");
  const std::string redacted = RedactSecrets(transcript);
  EXPECT_EQ(redacted,
            absl::StrCat("> AT%CMNG=0,7,2,\"<redacted ", key.size(), " bytes>\"\r\n< OK\r\n"));
  EXPECT_THAT(redacted, AllOf(Not(HasSubstr("BEGIN")), Not(HasSubstr(key.substr(40, 10)))));
}

TEST(RedactSecretsTest, PskAndPassword) {
  EXPECT_EQ(RedactSecrets("AT%CMNG=0,16842753,3,\"0011223344556677\""),
            "AT%CMNG=0,16842753,3,\"<redacted 16 bytes>\"");
  EXPECT_EQ(RedactSecrets("at%cmng = 0 , 1 , 3 , \"abcd\""),
            "at%cmng = 0 , 1 , 3 , \"<redacted 4 bytes>\"");
  EXPECT_EQ(RedactSecrets("AT%CMNG=0,1,3,abcdef"), "AT%CMNG=0,1,3,<redacted 6 bytes>");
  EXPECT_EQ(RedactSecrets("AT%CMNG=0,1,2,\"key\",\"hunter2\""),
            "AT%CMNG=0,1,2,\"<redacted 3 bytes>\",\"<redacted 7 bytes>\"");
  // Everything after the content, up to the end of the command.
  EXPECT_EQ(
      RedactSecrets("AT%CMNG=0,1,2,\"key\",pw,\"more\";+CFUN?"),
      "AT%CMNG=0,1,2,\"<redacted 3 bytes>\",<redacted 2 bytes>,\"<redacted 4 bytes>\";+CFUN?");
  // An unterminated quote is redacted to the end (fail closed).
  EXPECT_EQ(RedactSecrets("AT%CMNG=0,1,2,\"-----BEGIN PRIVATE KEY-----\nMIGH"),
            "AT%CMNG=0,1,2,\"<redacted 32 bytes>");
  // A malformed type is treated as secret.
  EXPECT_EQ(RedactSecrets("AT%CMNG=0,1,x,\"abc\""), "AT%CMNG=0,1,x,\"<redacted 3 bytes>\"");
  // Chained and repeated commands.
  EXPECT_EQ(RedactSecrets("AT+CFUN=4;%CMNG=0,1,3,\"aa\"\nAT%CMNG=0,2,3,\"bbbb\""),
            "AT+CFUN=4;%CMNG=0,1,3,\"<redacted 2 bytes>\"\nAT%CMNG=0,2,3,\"<redacted 4 bytes>\"");
}

TEST(RedactSecretsTest, FailsClosedOnOddSpellings) {
  // Signs, as ParseCommandLine reads numbers.
  EXPECT_EQ(RedactSecrets("AT%CMNG=+0,1,+2,\"key\""), "AT%CMNG=+0,1,+2,\"<redacted 3 bytes>\"");
  // An opcode that is not a number could still be a write.
  EXPECT_EQ(RedactSecrets("AT%CMNG=x,1,2,\"key\""), "AT%CMNG=x,1,2,\"<redacted 3 bytes>\"");
  // "%CMNG" inside a quoted string is not a command; the real one after it is.
  EXPECT_EQ(RedactSecrets("AT+X=\"%CMNG=0,1,2,\";%CMNG=0,1,2,\"SECRET\""),
            "AT+X=\"%CMNG=0,1,2,\";%CMNG=0,1,2,\"<redacted 6 bytes>\"");
  // A line with an odd quote does not hide the next line's command.
  EXPECT_EQ(RedactSecrets("AT+X=\"abc\r\nAT%CMNG=0,1,3,\"0011\""),
            "AT+X=\"abc\r\nAT%CMNG=0,1,3,\"<redacted 4 bytes>\"");
}

TEST(RedactSecretsTest, LeavesOtherTextAlone) {
  const std::string pem = ReadFileOrDie(TestDataPath("pem/AmazonRootCA1.pem"));
  for (const std::string& text :
       {absl::StrCat("AT%CMNG=0,16842753,0,\"", pem, "\""),
        absl::StrCat("AT%CMNG=0,16842753,1,\"", pem, "\""), std::string("AT%CMNG=1,16842753,2"),
        std::string("AT%CMNG=3,16842753,2"), std::string("AT%CMNG=2,16842753,3"),
        std::string("%CMNG: 16842753,2,\"") + std::string(64, 'A') + "\"",
        std::string("AT%CMNG=0,1,4,\"identity\""), std::string("AT+CFUN?"), std::string(""),
        std::string("%CMNG"), std::string("AT%CMNG=0,1,")}) {
    EXPECT_EQ(RedactSecrets(text), text) << text;
  }
}

}  // namespace
}  // namespace atbridge::at
