#include <gtest/gtest.h>

#include "agent/modem/modem_ops.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace atbridge::agent {
namespace {

using ::atbridge::testing::StatusIs;
using ::testing::HasSubstr;

PortOptions Port(size_t max = 4096) {
  PortOptions p;
  p.name = "modem0";
  p.max_command_bytes = max;
  return p;
}

v1::WriteCredentialRequest Req(uint32_t tag, v1::CredentialType type, std::string content) {
  v1::WriteCredentialRequest r;
  r.set_sec_tag(tag);
  r.set_type(type);
  r.set_content(std::move(content));
  return r;
}

TEST(PrepareWriteTest, NormalizesAndHashesTheFixture) {
  std::string seed =
      testing::ReadFileOrDie(testing::TestDataPath("pem/seed-literal-backslash-n.txt"));
  ASSERT_OK_AND_ASSIGN(PreparedWrite w, PrepareWrite(Req(20, v1::ROOT_CA_CERT, seed), Port()));
  EXPECT_EQ(w.sha256, "AD6FB002E6B34C0559FA8F93A3794FF12C4E3F119BD77290C52525123FB9EA74");
  EXPECT_FALSE(w.repairs.empty());
  EXPECT_EQ(w.command.substr(0, 17), "AT%CMNG=0,20,0,\"-");
  EXPECT_EQ(w.command.back(), '"');
}

TEST(PrepareWriteTest, RefusesBadTagsTypesAndContent) {
  EXPECT_THAT(PrepareWrite(Req(2147483648u, v1::ROOT_CA_CERT, "x"), Port()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("reserved")));
  EXPECT_THAT(PrepareWrite(Req(1, v1::ENDORSEMENT_KEY, "x"), Port()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cannot be written")));
  EXPECT_THAT(PrepareWrite(Req(1, v1::ROOT_CA_CERT, ""), Port()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("empty")));
  EXPECT_THAT(PrepareWrite(Req(1, v1::ROOT_CA_CERT, "HONKHONK"), Port()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(PrepareWrite(Req(1, v1::PSK, "not hex\""), Port()),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(PrepareWriteTest, SecretsNeverAppearInErrors) {
  const std::string psk = "00112233445566778899AABBCCDDEEFG";  // One bad digit.
  auto r = PrepareWrite(Req(3, v1::PSK, psk), Port());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(std::string(r.status().message()).find("00112233"), std::string::npos);
}

TEST(PrepareWriteTest, RefusesWhatDoesNotFitTheModemBufferNamingSizes) {
  std::string pem = testing::ReadFileOrDie(testing::TestDataPath("pem/AmazonRootCA1.pem"));
  EXPECT_THAT(PrepareWrite(Req(20, v1::ROOT_CA_CERT, pem), Port(1000)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::AllOf(HasSubstr("1206 bytes"), HasSubstr("holds 1000"),
                                        HasSubstr("at most 981"))));
}

}  // namespace
}  // namespace atbridge::agent
