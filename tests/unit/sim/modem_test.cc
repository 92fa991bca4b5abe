// The modem logic without a pty: answers, error codes, keys, attestation,
// faults.
#include "sim/modem.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/at/modem_responses.h"
#include "common/pki/pki.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/unit/sim/cose_verify.h"

namespace atbridge::sim {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

constexpr char kImei[] = "350000000000014";

std::string AmazonPem() {
  std::string pem = testing::ReadFileOrDie(testing::TestDataPath("pem/AmazonRootCA1.pem"));
  while (!pem.empty() && pem.back() == '\n') pem.pop_back();
  return pem;
}

class ModemTest : public ::testing::Test {
 protected:
  std::string Run(absl::string_view line) { return modem_.HandleCommandLine(line).bytes; }
  // The information lines of an OK answer.
  std::vector<std::string> Info(absl::string_view line) {
    std::string out = Run(line);
    EXPECT_TRUE(absl::EndsWith(out, "OK\r\n")) << line << " -> " << out;
    std::vector<std::string> lines = absl::StrSplit(out, "\r\n");
    lines.resize(lines.size() - 2);  // "OK", "".
    return lines;
  }

  ModemConfig config_;
  Modem modem_{config_, kImei, 1};
};

TEST_F(ModemTest, AnswersLikeAnNrf91AtHost) {
  EXPECT_EQ(Run("AT"), "OK\r\n");
  EXPECT_EQ(Run("at"), "OK\r\n");
  EXPECT_EQ(Run("AT+CGSN"), absl::StrCat(kImei, "\r\nOK\r\n"));
  EXPECT_EQ(Run("AT+CGSN=1"), absl::StrCat("+CGSN: \"", kImei, "\"\r\nOK\r\n"));
  EXPECT_EQ(Run("AT+CGMI"), "Nordic Semiconductor ASA\r\nOK\r\n");
  EXPECT_EQ(Run("AT+CGMM"), "nRF9151-LACA\r\nOK\r\n");
  EXPECT_EQ(Run("AT+CGMR"), "mfw_nrf91x1_2.0.2\r\nOK\r\n");
  EXPECT_EQ(Run("AT%SHORTSWVER"), "%SHORTSWVER: nrf91x1_2.0.2\r\nOK\r\n");
  EXPECT_EQ(Run("AT+CFUN?"), "+CFUN: 4\r\nOK\r\n");
  EXPECT_EQ(Run("AT+CMEE?"), "+CMEE: 0\r\nOK\r\n");
  EXPECT_EQ(Run("AT+CGSN=9"), "ERROR\r\n");
  EXPECT_EQ(Run("AT+NOPE"), "ERROR\r\n");
  EXPECT_EQ(Run("XYZ"), "ERROR\r\n");
  EXPECT_EQ(modem_.HandleOverflow().bytes, "ERROR\r\n");
}

TEST_F(ModemTest, CfunValuesAndChains) {
  for (int mode : {0, 1, 2, 4, 20, 21, 30, 31, 40, 41, 44}) {
    EXPECT_EQ(Run(absl::StrCat("AT+CFUN=", mode)), "OK\r\n") << mode;
  }
  for (const char* bad : {"AT+CFUN=3", "AT+CFUN=5", "AT+CFUN=-1", "AT+CFUN=\"4\"", "AT+CFUN"}) {
    EXPECT_EQ(Run(bad), "ERROR\r\n") << bad;
  }
  EXPECT_EQ(Run("AT+CFUN=4;+CFUN?"), "+CFUN: 4\r\nOK\r\n");
  EXPECT_EQ(Run("AT+CFUN=?"), "+CFUN: (0,1,2,4,20,21,30,31,40,41,44)\r\nOK\r\n");
  EXPECT_EQ(Run("AT+CFUN=0;+CFUN=3;+CFUN=1"), "ERROR\r\n");
  EXPECT_EQ(modem_.state().cfun, 0) << "a chain runs in order up to its first error";
  Modem::Reply r = modem_.HandleCommandLine("AT+CFUN=4");
  EXPECT_TRUE(r.state_changed);
  EXPECT_FALSE(modem_.HandleCommandLine("AT+CFUN?").state_changed);
}

// LTE, GNSS and the UICC are switched one at a time; +CFUN? reports the
// resulting mode, and credentials can be changed only while neither LTE nor
// GNSS is active. (The sim once reported the last value set: after 21 then
// 31 it said 31 and let writes through with LTE on.)
TEST_F(ModemTest, CfunSubModesAndWhenCredentialsCanChange) {
  ASSERT_EQ(Run("AT+CMEE=1"), "OK\r\n");
  const std::string write = absl::StrCat("AT%CMNG=0,5,0,\"", AmazonPem(), "\"");
  struct Step {
    const char* set;
    int reported;
    bool writable;
  };
  for (const Step& step : std::vector<Step>{{"AT+CFUN=21", 1, false},
                                            {"AT+CFUN=31", 1, false},
                                            {"AT+CFUN=20", 1, false},  // GNSS still on.
                                            {"AT+CFUN=30", 44, true},  // UICC still on.
                                            {"AT+CFUN=40", 4, true},
                                            {"AT+CFUN=31", 1, false},
                                            {"AT+CFUN=4", 4, true},
                                            {"AT+CFUN=2", 2, false},
                                            {"AT+CFUN=44", 44, true},
                                            {"AT+CFUN=1", 1, false},
                                            {"AT+CFUN=0", 0, true},
                                            {"AT+CFUN=41", 44, true},
                                            {"AT+CFUN=21", 1, false},
                                            {"AT+CFUN=20", 44, true}}) {
    ASSERT_EQ(Run(step.set), "OK\r\n") << step.set;
    EXPECT_EQ(Run("AT+CFUN?"), absl::StrCat("+CFUN: ", step.reported, "\r\nOK\r\n")) << step.set;
    EXPECT_EQ(modem_.state().cfun, step.reported) << step.set;
    const char* expected = step.writable ? "OK\r\n" : "+CME ERROR: 518\r\n";
    EXPECT_EQ(Run(write), expected) << step.set;
    EXPECT_EQ(Run(step.writable ? "AT%CMNG=3,5,0" : "AT%CMNG=3,1,0"),
              step.writable ? "OK\r\n" : "+CME ERROR: 518\r\n")
        << step.set;
    EXPECT_EQ(Run("AT%KEYGEN=6,2,1").substr(0, 3), step.writable ? "%KE" : "+CM") << step.set;
  }
  // A persisted mode comes back as the same mode.
  for (int mode : {0, 1, 2, 4, 44}) {
    ModemState state;
    state.cfun = mode;
    Modem restored(config_, kImei, 2);
    restored.RestoreState(state);
    EXPECT_EQ(restored.HandleCommandLine("AT+CFUN?").bytes,
              absl::StrCat("+CFUN: ", mode, "\r\nOK\r\n"));
  }
  // --cfun 21 at first boot: LTE on from offline.
  ModemConfig lte_on;
  lte_on.initial_cfun = 21;
  Modem booted(lte_on, kImei, 3);
  EXPECT_EQ(booted.HandleCommandLine("AT+CFUN?").bytes, "+CFUN: 1\r\nOK\r\n");
}

TEST_F(ModemTest, CmeeSelectsTheErrorForm) {
  EXPECT_EQ(Run("AT+CFUN=1"), "OK\r\n");
  const std::string write = absl::StrCat("AT%CMNG=0,1,0,\"", AmazonPem(), "\"");
  EXPECT_EQ(Run(write), "ERROR\r\n");
  EXPECT_EQ(Run("AT+CMEE=1"), "OK\r\n");
  EXPECT_EQ(Run(write), "+CME ERROR: 518\r\n");
  EXPECT_EQ(Run("AT+CMEE=2"), "ERROR\r\n");
  modem_.Reboot();
  EXPECT_EQ(modem_.cmee(), 0);
}

TEST_F(ModemTest, CmngRules) {
  ASSERT_EQ(Run("AT+CMEE=1"), "OK\r\n");
  const std::string pem = AmazonPem();
  // 527: what the modem refuses for certificates. CRLF is accepted by
  // default and hashed as sent.
  EXPECT_EQ(Run("AT%CMNG=0,1,0,\"HONKHONK\""), "+CME ERROR: 527\r\n");
  std::string crlf = absl::StrReplaceAll(pem, {{"\n", "\r\n"}});
  EXPECT_EQ(Run(absl::StrCat("AT%CMNG=0,1,1,\"", crlf, "\"")), "OK\r\n");
  EXPECT_EQ(Info("AT%CMNG=1,1,1"),
            std::vector<std::string>{absl::StrCat("%CMNG: 1,1,\"", pki::Sha256Hex(crlf), "\"")});
  EXPECT_EQ(Run("AT%CMNG=3,1,1"), "OK\r\n");
  // Well-formed, but a key the modem's TLS stack does not support.
  auto ca = pki::CreateCa({});
  ASSERT_TRUE(ca.ok());
  pki::IssueOptions ed{.common_name = "ed"};
  ed.key_type = pki::KeyType::kEd25519;
  auto ed_cert = pki::IssueCertificate(*ca, ed);
  ASSERT_TRUE(ed_cert.ok());
  std::string ed_pem(absl::StripSuffix(ed_cert->cert_pem, "\n"));
  EXPECT_EQ(Run(absl::StrCat("AT%CMNG=0,2,0,\"", ed_pem, "\"")), "+CME ERROR: 527\r\n");
  pki::IssueOptions rsa{.common_name = "rsa"};
  rsa.key_type = pki::KeyType::kRsa2048;
  auto rsa_cert = pki::IssueCertificate(*ca, rsa);
  ASSERT_TRUE(rsa_cert.ok());
  std::string rsa_pem(absl::StripSuffix(rsa_cert->cert_pem, "\n"));
  EXPECT_EQ(Run(absl::StrCat("AT%CMNG=0,2,1,\"", rsa_pem, "\"")), "OK\r\n");
  EXPECT_EQ(Run("AT%CMNG=3,2,1"), "OK\r\n");
  // Types 2..4 are not validated; 5+ and reserved tags are refused.
  EXPECT_EQ(Run("AT%CMNG=0,1,3,\"0011\""), "OK\r\n");
  EXPECT_EQ(Run("AT%CMNG=0,1,6,\"x\""), "+CME ERROR: 514\r\n");
  EXPECT_EQ(Run("AT%CMNG=0,4294967292,0,\"x\""), "+CME ERROR: 514\r\n");
  // Syntax: ERROR.
  EXPECT_EQ(Run("AT%CMNG=0,1,0"), "ERROR\r\n");
  EXPECT_EQ(Run("AT%CMNG=0,1,0,\"\""), "ERROR\r\n");
  EXPECT_EQ(Run("AT%CMNG=0,1,12,\"x\""), "ERROR\r\n");
  EXPECT_EQ(Run("AT%CMNG=4"), "ERROR\r\n");
  EXPECT_EQ(Run("AT%CMNG=0,4294967296,0,\"x\""), "ERROR\r\n");
  // Byte-exact storage and read.
  EXPECT_EQ(Run(absl::StrCat("AT%CMNG=0,1,0,\"", pem, "\"")), "OK\r\n");
  EXPECT_EQ(Run("AT%CMNG=2,1,0"),
            absl::StrCat("%CMNG: 1,0,\"", pki::Sha256Hex(pem), "\",\"", pem, "\"\r\nOK\r\n"));
  EXPECT_EQ(Run("AT%CMNG=2,1,3"), "+CME ERROR: 514\r\n");
  EXPECT_EQ(Run("AT%CMNG=2,1,1"), "+CME ERROR: 513\r\n");
  // List filters.
  EXPECT_EQ(Info("AT%CMNG=1").size(), 2u);
  EXPECT_EQ(Info("AT%CMNG=1,1,3"),
            std::vector<std::string>{absl::StrCat("%CMNG: 1,3,\"", pki::Sha256Hex("0011"), "\"")});
  EXPECT_TRUE(Info("AT%CMNG=1,2").empty());
  // Delete.
  EXPECT_EQ(Run("AT%CMNG=3,1,3"), "OK\r\n");
  EXPECT_EQ(Run("AT%CMNG=3,1,3"), "+CME ERROR: 513\r\n");
  EXPECT_EQ(Run("AT%CMNG=3,2147483648,0"), "+CME ERROR: 514\r\n");
}

TEST(ModemCapacityTest, RejectCrlfModelsTheFieldReport) {
  ModemConfig config;
  config.accept_crlf = false;
  Modem modem(config, kImei, 1);
  ASSERT_EQ(modem.HandleCommandLine("AT+CMEE=1").bytes, "OK\r\n");
  std::string crlf = absl::StrReplaceAll(AmazonPem(), {{"\n", "\r\n"}});
  EXPECT_EQ(modem.HandleCommandLine(absl::StrCat("AT%CMNG=0,1,0,\"", crlf, "\"")).bytes,
            "+CME ERROR: 527\r\n");
  EXPECT_EQ(modem.HandleCommandLine(absl::StrCat("AT%CMNG=0,1,0,\"", AmazonPem(), "\"")).bytes,
            "OK\r\n");
}

TEST(ModemCapacityTest, FullStore) {
  ModemConfig config;
  config.capacity = 1;
  Modem modem(config, kImei, 1);
  ASSERT_EQ(modem.HandleCommandLine("AT+CMEE=1").bytes, "OK\r\n");
  std::string crlf = absl::StrReplaceAll(AmazonPem(), {{"\n", "\r\n"}});
  EXPECT_EQ(modem.HandleCommandLine(absl::StrCat("AT%CMNG=0,1,0,\"", crlf, "\"")).bytes, "OK\r\n");
  EXPECT_EQ(modem.HandleCommandLine("AT%CMNG=0,2,4,\"id\"").bytes, "+CME ERROR: 515\r\n");
  EXPECT_EQ(modem.HandleCommandLine("AT%KEYGEN=2,2,0").bytes, "+CME ERROR: 515\r\n");
  EXPECT_EQ(modem.HandleCommandLine(absl::StrCat("AT%CMNG=0,1,0,\"", crlf, "\"")).bytes, "OK\r\n");
}

TEST_F(ModemTest, KeygenCsrAndCose) {
  ASSERT_EQ(Run("AT+CMEE=1"), "OK\r\n");
  std::vector<std::string> lines = Info("AT%KEYGEN=16842753,2,0,\"CN=dev1,O=Lab\",\"101010000\"");
  ASSERT_OK_AND_ASSIGN(at::SignedBlob blob, at::ParseKeygen(lines));
  ASSERT_OK_AND_ASSIGN(std::string subject, pki::CsrSubject(blob.body));
  EXPECT_THAT(subject, HasSubstr("CN=dev1"));
  EXPECT_THAT(subject, HasSubstr("O=Lab"));

  CoseParts cose = SplitCose(blob.cose);
  ASSERT_TRUE(cose.ok);
  EXPECT_FALSE(cose.detached);
  EXPECT_TRUE(
      VerifyEs256(modem_.IdentityPublicKeyDer(), CoseSigStructure(cose.payload), cose.signature));
  // Payload: 55799([9, uuid, bstr(sec_tag), sha256(body), nonce]).
  std::string digest = Sha256Raw(blob.body);
  EXPECT_THAT(cose.payload, StartsWith(absl::string_view("\xd9\xd9\xf7\x85\x09\x50", 6)));
  EXPECT_THAT(cose.payload, HasSubstr(absl::StrCat(absl::string_view("\x58\x20", 2), digest)));
  EXPECT_THAT(cose.payload,
              HasSubstr(absl::string_view("\x45\x1a\x01\x01\x00\x01", 6)));  // bstr(16842753)

  // The key stays inside: listed as type 2, never readable.
  auto it = modem_.state().credentials.find({16842753u, 2});
  ASSERT_NE(it, modem_.state().credentials.end());
  EXPECT_THAT(it->second, StartsWith("-----BEGIN PRIVATE KEY-----"));
  EXPECT_EQ(Run("AT%CMNG=2,16842753,2"), "+CME ERROR: 514\r\n");
  EXPECT_THAT(Info("AT%CMNG=1,16842753"),
              ::testing::ElementsAre(MatchesRegex("%CMNG: 16842753,2,\"[0-9A-F]{64}\"")));

  // Errors.
  EXPECT_EQ(Run("AT%KEYGEN=1,2,0,\"XX=1\""), "ERROR\r\n");
  EXPECT_EQ(Run("AT%KEYGEN=1,2,0,\"CN=a\",\"12\""), "ERROR\r\n");
  EXPECT_EQ(Run("AT%KEYGEN=1,3,0"), "ERROR\r\n");
  EXPECT_EQ(Run("AT%KEYGEN=1,8,0"), "+CME ERROR: 514\r\n");
  EXPECT_EQ(Run("AT%KEYGEN=2147483648,2,0"), "+CME ERROR: 514\r\n");
  ASSERT_EQ(Run("AT+CFUN=21"), "OK\r\n");
  EXPECT_EQ(Run("AT%KEYGEN=1,2,0"), "+CME ERROR: 518\r\n");
}

TEST_F(ModemTest, AttestationTokenIsStableAndSigned) {
  std::vector<std::string> a = Info("AT%ATTESTTOKEN");
  ASSERT_OK_AND_ASSIGN(at::SignedBlob blob, at::ParseAttestToken(a));
  // 55799([1, uuid(16), 6 (nRF9151 LACA), fw uuid(16), 16 bytes]).
  EXPECT_THAT(blob.body, StartsWith(absl::string_view("\xd9\xd9\xf7\x85\x01\x50", 6)));
  EXPECT_EQ(blob.body.size(), 3u + 1 + 1 + 17 + 1 + 17 + 17);
  EXPECT_EQ(blob.body[22], '\x06');
  CoseParts cose = SplitCose(blob.cose);
  ASSERT_TRUE(cose.ok);
  EXPECT_TRUE(cose.detached);
  EXPECT_TRUE(
      VerifyEs256(modem_.IdentityPublicKeyDer(), CoseSigStructure(blob.body), cose.signature));

  // Same IMEI (e.g. after a restart): the same token. Another IMEI: another.
  Modem again(config_, kImei, 99);
  EXPECT_EQ(again.HandleCommandLine("AT%ATTESTTOKEN").bytes, Run("AT%ATTESTTOKEN"));
  Modem other(config_, "350000000000022", 1);
  EXPECT_NE(other.HandleCommandLine("AT%ATTESTTOKEN").bytes, Run("AT%ATTESTTOKEN"));
  EXPECT_NE(other.device_uuid(), modem_.device_uuid());
  EXPECT_THAT(modem_.device_uuid(),
              MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"));
}

TEST(ModemFaultTest, FaultsAreReproducibleWithASeed) {
  ModemConfig config;
  config.flaky = 0.5;
  config.flaky_modes = {FlakyMode::kBusy, FlakyMode::kSilent, FlakyMode::kCorrupt};
  auto run = [&](uint64_t seed) {
    Modem m(config, kImei, seed);
    std::string trace;
    for (int i = 0; i < 40; ++i) {
      Modem::Reply r = m.HandleCommandLine(absl::StrCat("AT%CMNG=0,", i, ",4,\"identity\""));
      trace += r.answered ? r.bytes : "<silent>";
      trace += m.HandleCommandLine(absl::StrCat("AT%CMNG=1,", i)).bytes;
    }
    return trace;
  };
  std::string a = run(5);
  EXPECT_EQ(a, run(5));
  EXPECT_NE(a, run(6));
  EXPECT_THAT(a, HasSubstr("<silent>"));
  EXPECT_THAT(a, HasSubstr("ERROR"));  // 528 with CMEE=0
  EXPECT_THAT(a, HasSubstr(pki::Sha256Hex("identity")));
}

TEST(ModemFaultTest, CorruptKeygenGivesACsrThatDoesNotVerify) {
  ModemConfig config;
  config.flaky = 1.0;
  config.flaky_modes = {FlakyMode::kCorrupt};
  Modem m(config, kImei, 1);
  Modem::Reply r = m.HandleCommandLine("AT%KEYGEN=3,2,0");
  ASSERT_TRUE(r.answered);
  std::vector<std::string> lines = absl::StrSplit(r.bytes, "\r\n");
  ASSERT_GE(lines.size(), 2u);
  ASSERT_OK_AND_ASSIGN(at::SignedBlob blob, at::ParseKeygen({lines[0]}));
  EXPECT_THAT(pki::CsrSubject(blob.body), ::testing::Not(testing::IsOk()));
}

}  // namespace
}  // namespace atbridge::sim
