#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "common/pki/pki.h"
#include "sim/crypto.h"
#include "sim/identity.h"
#include "sim/sim_options.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/sim/cose_verify.h"

namespace atbridge::sim {
namespace {

using ::atbridge::testing::StatusIs;
using ::testing::HasSubstr;

TEST(IdentityTest, Luhn) {
  EXPECT_EQ(LuhnCheckDigit("49015420323751"), '8');  // 490154203237518
  EXPECT_TRUE(IsValidImei("490154203237518"));
  EXPECT_FALSE(IsValidImei("490154203237519"));
  EXPECT_FALSE(IsValidImei("49015420323751"));
  EXPECT_FALSE(IsValidImei("49015420323751a"));
  for (uint64_t i = 0; i < 200; ++i) EXPECT_TRUE(IsValidImei(ImeiFor(35000000000000ULL, i)));
}

TEST(IdentityTest, ImeiBase) {
  ASSERT_OK_AND_ASSIGN(uint64_t base, ParseImeiBase("35000000000001"));
  EXPECT_EQ(base, 35000000000001ULL);
  ASSERT_OK_AND_ASSIGN(uint64_t from_imei, ParseImeiBase("490154203237518"));
  EXPECT_EQ(from_imei, 49015420323751ULL);
  EXPECT_THAT(ParseImeiBase("490154203237519"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseImeiBase("123"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_EQ(ImeiFor(35000000000001ULL, 0), "350000000000014");

  uint64_t a = DeriveImeiBase("/tmp/lab-a");
  EXPECT_EQ(a, DeriveImeiBase("/tmp/lab-a"));
  EXPECT_NE(a, DeriveImeiBase("/tmp/lab-b"));
  EXPECT_EQ(a % kModemsPerDerivedBase, 0u);
  EXPECT_EQ(ImeiFor(a, 0).substr(0, 2), "35");
}

TEST(IdentityTest, Uuid) {
  auto u = DerivedUuid("device uuid", "350000000000014");
  EXPECT_EQ(u, DerivedUuid("device uuid", "350000000000014"));
  EXPECT_NE(u, DerivedUuid("device uuid", "350000000000022"));
  EXPECT_THAT(FormatUuid(u), ::testing::MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-"
                                                     "[89ab][0-9a-f]{3}-[0-9a-f]{12}"));
}

TEST(CborTest, EncodingsFromRfc8949) {
  auto hex = [](const CborWriter& w) { return absl::BytesToHexString(w.data()); };
  EXPECT_EQ(hex(CborWriter().Uint(0)), "00");
  EXPECT_EQ(hex(CborWriter().Uint(23)), "17");
  EXPECT_EQ(hex(CborWriter().Uint(24)), "1818");
  EXPECT_EQ(hex(CborWriter().Uint(1000)), "1903e8");
  EXPECT_EQ(hex(CborWriter().Uint(1000000)), "1a000f4240");
  EXPECT_EQ(hex(CborWriter().Uint(1000000000000ULL)), "1b000000e8d4a51000");
  EXPECT_EQ(hex(CborWriter().Int(-1)), "20");
  EXPECT_EQ(hex(CborWriter().Int(-7)), "26");
  EXPECT_EQ(hex(CborWriter().Int(-1000)), "3903e7");
  EXPECT_EQ(hex(CborWriter().Bytes("")), "40");
  EXPECT_EQ(hex(CborWriter().Text("a")), "6161");
  EXPECT_EQ(hex(CborWriter().Tag(55799)), "d9d9f7");
  EXPECT_EQ(hex(CborWriter().ArrayHeader(2).Uint(1).Null()), "8201f6");
  EXPECT_EQ(hex(CborWriter().MapHeader(1).Uint(1).Int(-7)), "a10126");
}

TEST(IdentityKeyTest, DeterministicAndVerifiable) {
  ASSERT_OK_AND_ASSIGN(auto k1, IdentityKey::Derive("seed-1"));
  ASSERT_OK_AND_ASSIGN(auto k1b, IdentityKey::Derive("seed-1"));
  ASSERT_OK_AND_ASSIGN(auto k2, IdentityKey::Derive("seed-2"));
  EXPECT_EQ(k1->public_key_der(), k1b->public_key_der());
  EXPECT_NE(k1->public_key_der(), k2->public_key_der());
  EXPECT_EQ(k1->public_key_der().size(), 91u);

  ASSERT_OK_AND_ASSIGN(std::string cose, CoseSign1(*k1, "hello", /*detached=*/false));
  ASSERT_OK_AND_ASSIGN(std::string again, CoseSign1(*k1b, "hello", /*detached=*/false));
  EXPECT_EQ(cose, again) << "deterministic signatures";
  CoseParts parts = SplitCose(cose);
  ASSERT_TRUE(parts.ok);
  EXPECT_EQ(parts.payload, "hello");
  EXPECT_TRUE(VerifyEs256(k1->public_key_der(), CoseSigStructure("hello"), parts.signature));
  EXPECT_FALSE(VerifyEs256(k2->public_key_der(), CoseSigStructure("hello"), parts.signature));
  EXPECT_FALSE(VerifyEs256(k1->public_key_der(), CoseSigStructure("hellO"), parts.signature));
}

TEST(ClientKeyTest, CsrAndPublicKey) {
  ASSERT_OK_AND_ASSIGN(auto key, ClientKey::Generate());
  ASSERT_OK_AND_ASSIGN(std::string csr, key->CsrDer({{"CN", "dev1"}, {"O", "Lab"}}, "101010000"));
  ASSERT_OK_AND_ASSIGN(std::string subject, pki::CsrSubject(csr));
  EXPECT_THAT(subject, HasSubstr("CN=dev1"));
  ASSERT_OK_AND_ASSIGN(std::string spki, key->PublicKeyDer());
  EXPECT_EQ(spki.size(), 91u);
  EXPECT_NE(csr.find(spki), std::string::npos) << "the CSR carries the public key";
  ASSERT_OK_AND_ASSIGN(std::string pem, key->PrivateKeyPem());
  EXPECT_THAT(pem, HasSubstr("BEGIN PRIVATE KEY"));
}

TEST(ClientKeyTest, SubjectAttributes) {
  ASSERT_OK_AND_ASSIGN(auto parsed,
                       ParseSubjectAttributes("O=Nordic Semiconductor,L=Trondheim,C=no,CN=mydev"));
  ASSERT_EQ(parsed.size(), 4u);
  EXPECT_EQ(parsed[3], std::make_pair(std::string("CN"), std::string("mydev")));
  EXPECT_FALSE(ParseSubjectAttributes("CN").ok());
  EXPECT_FALSE(ParseSubjectAttributes("XX=1").ok());
  EXPECT_FALSE(ParseSubjectAttributes("C=NOR").ok());
  EXPECT_FALSE(ParseSubjectAttributes("CN=").ok());
}

TEST(SimOptionsTest, Validation) {
  SimOptions o;
  o.link_dir = "/tmp/x";
  EXPECT_OK(ValidateSimOptions(o));
  auto bad = [&](auto mutate) {
    SimOptions c = o;
    mutate(c);
    return ValidateSimOptions(c);
  };
  EXPECT_THAT(bad([](SimOptions& c) { c.count = 0; }),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--count")));
  EXPECT_THAT(bad([](SimOptions& c) { c.link_dir.clear(); }),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--link-dir")));
  EXPECT_THAT(bad([](SimOptions& c) { c.initial_cfun = 3; }),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--cfun")));
  EXPECT_THAT(bad([](SimOptions& c) { c.flaky = 1.5; }),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--flaky")));
  EXPECT_THAT(bad([](SimOptions& c) { c.baud = 12; }),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--baud")));
  EXPECT_THAT(bad([](SimOptions& c) { c.model = "a\"b"; }),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--model")));
  EXPECT_THAT(bad([](SimOptions& c) {
                c.imei_base = "99999999999999";
                c.count = 2;
              }),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--imei-base")));
  ASSERT_OK_AND_ASSIGN(auto modes, ParseFlakyModes("busy, silent"));
  EXPECT_EQ(modes, (std::set<FlakyMode>{FlakyMode::kBusy, FlakyMode::kSilent}));
  EXPECT_FALSE(ParseFlakyModes("busy,late").ok());
}

}  // namespace
}  // namespace atbridge::sim
