#include "common/pki/pki.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "common/tls/identity.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace atbridge::pki {
namespace {

using ::atbridge::testing::StatusIs;
using ::testing::Contains;
using ::testing::HasSubstr;

TEST(PkiTest, CaIsSelfSignedCa) {
  ASSERT_OK_AND_ASSIGN(KeyAndCert ca, CreateCa({.common_name = "lab CA"}));
  ASSERT_OK_AND_ASSIGN(CertificateInfo info, ParseCertificate(ca.cert_pem));
  EXPECT_TRUE(info.is_ca);
  EXPECT_EQ(info.common_name, "lab CA");
  EXPECT_EQ(info.subject, info.issuer);
  EXPECT_OK(VerifyCertificate(ca.cert_pem, ca.cert_pem, absl::Now()));
}

TEST(PkiTest, IssuedCertificateCarriesRoleAndNames) {
  ASSERT_OK_AND_ASSIGN(KeyAndCert ca, CreateCa({}));
  IssueOptions o;
  o.common_name = "alice";
  o.role = "operator";
  o.dns_names = {"localhost"};
  o.ip_addresses = {"127.0.0.1"};
  ASSERT_OK_AND_ASSIGN(KeyAndCert cert, IssueCertificate(ca, o));
  ASSERT_OK_AND_ASSIGN(CertificateInfo info, ParseCertificate(cert.cert_pem));
  EXPECT_EQ(info.common_name, "alice");
  EXPECT_THAT(info.organizational_units, Contains("operator"));
  EXPECT_THAT(info.uris, Contains("urn:atbridge:role:operator"));
  EXPECT_THAT(info.dns_names, Contains("localhost"));
  EXPECT_FALSE(info.is_ca);
  EXPECT_OK(VerifyCertificate(ca.cert_pem, cert.cert_pem, absl::Now()));
}

TEST(PkiTest, ForeignAndExpiredCertificatesDoNotVerify) {
  ASSERT_OK_AND_ASSIGN(KeyAndCert ca, CreateCa({}));
  ASSERT_OK_AND_ASSIGN(KeyAndCert other, CreateCa({.common_name = "other"}));
  ASSERT_OK_AND_ASSIGN(KeyAndCert foreign, IssueCertificate(other, {.common_name = "mallory"}));
  EXPECT_THAT(VerifyCertificate(ca.cert_pem, foreign.cert_pem, absl::Now()),
              StatusIs(absl::StatusCode::kInvalidArgument));
  IssueOptions o{.common_name = "old"};
  o.not_before = absl::Now() - absl::Hours(48);
  o.not_after = absl::Now() - absl::Hours(24);
  ASSERT_OK_AND_ASSIGN(KeyAndCert expired, IssueCertificate(ca, o));
  EXPECT_THAT(VerifyCertificate(ca.cert_pem, expired.cert_pem, absl::Now()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expired")));
}

TEST(PkiTest, IssueNeedsCommonName) {
  ASSERT_OK_AND_ASSIGN(KeyAndCert ca, CreateCa({}));
  EXPECT_THAT(IssueCertificate(ca, {}), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(PkiTest, Sha256HexIsUppercaseOfExactBytes) {
  EXPECT_EQ(Sha256Hex(""), "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855");
  std::string pem = testing::ReadFileOrDie(testing::TestDataPath("pem/AmazonRootCA1.pem"));
  ASSERT_EQ(pem.back(), '\n');
  pem.pop_back();  // The modem stores the bytes between the quotes.
  EXPECT_EQ(Sha256Hex(pem), "AD6FB002E6B34C0559FA8F93A3794FF12C4E3F119BD77290C52525123FB9EA74");
}

TEST(PkiTest, ParsesRealRootCertificate) {
  std::string pem = testing::ReadFileOrDie(testing::TestDataPath("pem/AmazonRootCA1.pem"));
  ASSERT_OK_AND_ASSIGN(CertificateInfo info, ParseCertificate(pem));
  EXPECT_EQ(info.common_name, "Amazon Root CA 1");
  EXPECT_EQ(absl::FormatTime("%Y-%m-%d", info.not_after, absl::UTCTimeZone()), "2038-01-17");
}

TEST(PkiTest, RejectsGarbage) {
  EXPECT_THAT(ParseCertificate("hello"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CsrSubject("nope"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace atbridge::pki

namespace atbridge::pki {
namespace {

TEST(PkiKeyTypesTest, IssuesRsaAndEd25519Certificates) {
  ASSERT_OK_AND_ASSIGN(KeyAndCert ca, CreateCa({}));
  for (KeyType t : {KeyType::kRsa2048, KeyType::kEd25519}) {
    IssueOptions o{.common_name = "k"};
    o.key_type = t;
    ASSERT_OK_AND_ASSIGN(KeyAndCert kc, IssueCertificate(ca, o));
    EXPECT_OK(VerifyCertificate(ca.cert_pem, kc.cert_pem, absl::Now()));
  }
}

}  // namespace
}  // namespace atbridge::pki

namespace atbridge::pki {
namespace {

TEST(SignCsrTest, ACsrAskingForAnAdminRoleGetsACertificateWithNoRole) {
  ASSERT_OK_AND_ASSIGN(KeyAndCert ca, CreateCa({}));
  const std::string csr = testing::MakeTestCsr({{"CN", "eve"}, {"OU", "admin"}, {"O", "evil"}},
                                               "urn:atbridge:role:admin");
  ASSERT_OK_AND_ASSIGN(std::string cert, SignCsr(ca, csr, {}));
  ASSERT_OK_AND_ASSIGN(CertificateInfo info, ParseCertificate(cert));
  EXPECT_EQ(info.subject, "CN=eve") << "CN only: no OU, no O";
  EXPECT_TRUE(info.organizational_units.empty());
  EXPECT_TRUE(info.uris.empty()) << "requested extensions are never copied";
  EXPECT_FALSE(info.is_ca);
  EXPECT_OK(VerifyCertificate(ca.cert_pem, cert, absl::Now()));
  // The signed certificate is no admin: identity refuses it (no role).
  EXPECT_THAT(tls::IdentityFromCertificate(cert),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("no atbridge role")));
}

TEST(SignCsrTest, TheSignerNamesTheSubject) {
  ASSERT_OK_AND_ASSIGN(KeyAndCert ca, CreateCa({}));
  SignCsrOptions o;
  o.common_name = "351234567890123";
  ASSERT_OK_AND_ASSIGN(std::string cert,
                       SignCsr(ca, testing::MakeTestCsr({{"CN", "admin"}, {"OU", "admin"}}), o));
  ASSERT_OK_AND_ASSIGN(CertificateInfo info, ParseCertificate(cert));
  EXPECT_EQ(info.subject, "CN=351234567890123");
  EXPECT_THAT(tls::IdentityFromCertificate(cert), StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST(SignCsrTest, DeviceCertificateExtensions) {
  ASSERT_OK_AND_ASSIGN(KeyAndCert ca, CreateCa({}));
  ASSERT_OK_AND_ASSIGN(std::string pem, SignCsr(ca, testing::MakeTestCsr({{"CN", "dev1"}}), {}));
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  ASSERT_NE(cert, nullptr);
  EXPECT_EQ(X509_check_ca(cert), 0);
  EXPECT_EQ(X509_get_key_usage(cert), static_cast<uint32_t>(KU_DIGITAL_SIGNATURE));
  EXPECT_EQ(X509_get_extended_key_usage(cert), static_cast<uint32_t>(XKU_SSL_CLIENT));
  BASIC_CONSTRAINTS* bc = static_cast<BASIC_CONSTRAINTS*>(
      X509_get_ext_d2i(cert, NID_basic_constraints, nullptr, nullptr));
  ASSERT_NE(bc, nullptr);
  EXPECT_EQ(bc->ca, 0);
  BASIC_CONSTRAINTS_free(bc);
  X509_free(cert);
}

TEST(SignCsrTest, RefusesKeysAModemWouldNotMakeAndBadNames) {
  ASSERT_OK_AND_ASSIGN(KeyAndCert ca, CreateCa({}));
  EXPECT_THAT(SignCsr(ca, testing::MakeTestCsr({{"CN", "dev"}}, "", "P-384"), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("P-256")));
  EXPECT_THAT(SignCsr(ca, testing::MakeTestCsr({{"CN", "dev"}}, "", "RSA"), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("P-256")));
  EXPECT_THAT(SignCsr(ca, testing::MakeTestCsr({{"O", "no cn"}}), {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("common name")));
  SignCsrOptions long_name;
  long_name.common_name = std::string(65, 'x');
  EXPECT_THAT(SignCsr(ca, testing::MakeTestCsr({{"CN", "dev"}}), long_name),
              StatusIs(absl::StatusCode::kInvalidArgument));
  // A CSR whose self-signature does not verify.
  std::string csr = testing::MakeTestCsr({{"CN", "dev"}});
  csr[csr.size() - 5] ^= 0x55;
  EXPECT_THAT(SignCsr(ca, csr, {}), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace atbridge::pki
