// PEM normalization and the modem-side check, against the fixtures of
// tests/testdata/pem and generated certificates and keys.
#include "common/at/pem.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/pki/pki.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace atbridge::at {
namespace {

using ::atbridge::testing::ReadFileOrDie;
using ::atbridge::testing::StatusIs;
using ::atbridge::testing::TestDataPath;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::UnorderedElementsAre;

constexpr absl::StatusCode kInvalid = absl::StatusCode::kInvalidArgument;
constexpr char kAmazonSha[] = "AD6FB002E6B34C0559FA8F93A3794FF12C4E3F119BD77290C52525123FB9EA74";

std::string Fixture(const std::string& name) { return ReadFileOrDie(TestDataPath("pem/" + name)); }

// AmazonRootCA1.pem without its trailing newline: the canonical content.
std::string Canonical() {
  std::string pem = Fixture("AmazonRootCA1.pem");
  pem.pop_back();
  return pem;
}

std::vector<std::string> Lines(const std::string& text) { return absl::StrSplit(text, '\n'); }

// A second, generated certificate (canonical form) and its key.
struct Generated {
  std::string cert;  // canonical (no trailing newline)
  std::string key;   // PKCS#8 "PRIVATE KEY" PEM as written by OpenSSL
};

const Generated& Gen() {
  static const Generated* generated = [] {
    pki::CaOptions options;
    options.common_name = "pem test CA";
    absl::StatusOr<pki::KeyAndCert> ca = pki::CreateCa(options);
    if (!ca.ok()) std::abort();
    auto* g = new Generated;
    g->cert = ca->cert_pem;
    while (!g->cert.empty() && g->cert.back() == '\n') g->cert.pop_back();
    g->key = ca->key_pem;
    return g;
  }();
  return *generated;
}

// The key of Gen() in OpenSSL's traditional "EC PRIVATE KEY" form.
std::string TraditionalKey() {
  BIO* in = BIO_new_mem_buf(Gen().key.data(), static_cast<int>(Gen().key.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(in, nullptr, nullptr, nullptr);
  BIO_free(in);
  if (key == nullptr) return "";
  BIO* out = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey_traditional(out, key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long size = BIO_get_mem_data(out, &data);  // NOLINT(google-runtime-int)
  std::string pem(data, static_cast<size_t>(size));
  BIO_free(out);
  EVP_PKEY_free(key);
  return pem;
}

TEST(NormalizePemTest, CanonicalFixtureOnlyLosesTrailingNewline) {
  ASSERT_OK_AND_ASSIGN(NormalizedPem pem,
                       NormalizePem(Fixture("AmazonRootCA1.pem"), PemKind::kCertificates));
  EXPECT_EQ(pem.content, Canonical());
  EXPECT_EQ(pki::Sha256Hex(pem.content), kAmazonSha);
  EXPECT_THAT(pem.repairs, ElementsAre("removed trailing newline"));
  EXPECT_EQ(pem.blocks, 1);
}

TEST(NormalizePemTest, AlreadyCanonicalHasNoRepairs) {
  ASSERT_OK_AND_ASSIGN(NormalizedPem pem, NormalizePem(Canonical(), PemKind::kCertificates));
  EXPECT_EQ(pem.content, Canonical());
  EXPECT_THAT(pem.repairs, IsEmpty());
}

TEST(NormalizePemTest, SeedSpacesInsteadOfNewlines) {
  ASSERT_OK_AND_ASSIGN(
      NormalizedPem pem,
      NormalizePem(Fixture("seed-spaces-instead-of-newlines.txt"), PemKind::kCertificates));
  EXPECT_EQ(pem.content, Canonical());
  EXPECT_EQ(pki::Sha256Hex(pem.content), kAmazonSha);
  EXPECT_THAT(pem.repairs,
              UnorderedElementsAre("removed leading spaces",
                                   "restored newlines that had been replaced by spaces",
                                   "removed trailing newline"));
}

TEST(NormalizePemTest, SeedLiteralBackslashN) {
  ASSERT_OK_AND_ASSIGN(NormalizedPem pem, NormalizePem(Fixture("seed-literal-backslash-n.txt"),
                                                       PemKind::kCertificates));
  EXPECT_EQ(pem.content, Canonical());
  EXPECT_EQ(pki::Sha256Hex(pem.content), kAmazonSha);
  EXPECT_THAT(pem.repairs,
              UnorderedElementsAre("replaced literal \\n sequences with newlines",
                                   "removed leading spaces", "removed trailing newline"));
}

TEST(NormalizePemTest, CrlfInput) {
  const std::string crlf = absl::StrReplaceAll(Fixture("AmazonRootCA1.pem"), {{"\n", "\r\n"}});
  ASSERT_OK_AND_ASSIGN(NormalizedPem pem, NormalizePem(crlf, PemKind::kCertificates));
  EXPECT_EQ(pem.content, Canonical());
  EXPECT_THAT(pem.repairs,
              ElementsAre("converted CRLF line endings to LF", "removed trailing newline"));
}

TEST(NormalizePemTest, IndentedLinesAndTrailingSpaces) {
  std::vector<std::string> lines = Lines(Canonical());
  for (std::string& line : lines) line = absl::StrCat("    ", line, " \t");
  ASSERT_OK_AND_ASSIGN(NormalizedPem pem,
                       NormalizePem(absl::StrJoin(lines, "\n"), PemKind::kCertificates));
  EXPECT_EQ(pem.content, Canonical());
  EXPECT_THAT(pem.repairs, ElementsAre("removed leading spaces", "removed trailing spaces"));
}

TEST(NormalizePemTest, RewrapsAt64Columns) {
  // The same certificate wrapped at 76 columns (MIME style).
  std::vector<std::string> lines = Lines(Canonical());
  std::string b64;
  for (size_t i = 1; i + 1 < lines.size(); ++i) b64 += lines[i];
  std::string wrapped = lines.front() + "\n";
  for (size_t i = 0; i < b64.size(); i += 76) absl::StrAppend(&wrapped, b64.substr(i, 76), "\n");
  absl::StrAppend(&wrapped, lines.back(), "\n");
  ASSERT_OK_AND_ASSIGN(NormalizedPem pem, NormalizePem(wrapped, PemKind::kCertificates));
  EXPECT_EQ(pem.content, Canonical());
  EXPECT_THAT(pem.repairs,
              ElementsAre("re-wrapped base64 at 64 columns", "removed trailing newline"));
  // A well-formed PEM however it is wrapped: the modem takes it as it is
  // (the agent's normalizer still re-wraps at 64).
  EXPECT_TRUE(ModemAcceptsCertificatePem(wrapped));

  // And all on one line with no spaces at all.
  const std::string one_line = absl::StrCat(lines.front(), "\n", b64, "\n", lines.back());
  ASSERT_OK_AND_ASSIGN(pem, NormalizePem(one_line, PemKind::kCertificates));
  EXPECT_EQ(pem.content, Canonical());
  EXPECT_THAT(pem.repairs, ElementsAre("re-wrapped base64 at 64 columns"));
  EXPECT_TRUE(ModemAcceptsCertificatePem(one_line));
  // Uneven widths are well-formed too; spaces where the newlines were are not.
  std::string uneven = lines.front() + "\n";
  for (size_t i = 0, w = 10; i < b64.size(); i += w, w = w == 10 ? 70 : 10) {
    absl::StrAppend(&uneven, b64.substr(i, w), "\n");
  }
  absl::StrAppend(&uneven, lines.back());
  EXPECT_TRUE(ModemAcceptsCertificatePem(uneven));
  EXPECT_FALSE(ModemAcceptsCertificatePem(absl::StrReplaceAll(wrapped, {{"\n", " "}})));
  EXPECT_FALSE(
      ModemAcceptsCertificatePem(absl::StrReplaceAll(wrapped, {{"\n", "\n "}})));  // Indented.
}

TEST(NormalizePemTest, StraySpacesInsideBase64) {
  std::vector<std::string> lines = Lines(Canonical());
  lines[3].insert(10, " ");
  lines[5].insert(20, "  ");
  ASSERT_OK_AND_ASSIGN(NormalizedPem pem,
                       NormalizePem(absl::StrJoin(lines, "\n"), PemKind::kCertificates));
  EXPECT_EQ(pem.content, Canonical());
  EXPECT_THAT(pem.repairs, ElementsAre("removed stray spaces inside base64"));
}

TEST(NormalizePemTest, TwoCertificatesJoinedWithBlankLine) {
  const std::string input = absl::StrCat(Fixture("AmazonRootCA1.pem"), "\n", Gen().cert, "\n\n");
  ASSERT_OK_AND_ASSIGN(NormalizedPem pem, NormalizePem(input, PemKind::kCertificates));
  EXPECT_EQ(pem.blocks, 2);
  EXPECT_EQ(pem.content, absl::StrCat(Canonical(), "\n", Gen().cert));
  EXPECT_THAT(pem.repairs,
              ElementsAre("removed blank lines", "removed trailing blank lines and whitespace"));
  // The modem takes one blank line between certificates (nrfcloud-utils
  // writes CA bundles that way) and the canonical join.
  EXPECT_TRUE(ModemAcceptsCertificatePem(absl::StrCat(Canonical(), "\n\n", Gen().cert)));
  EXPECT_TRUE(ModemAcceptsCertificatePem(pem.content));
  EXPECT_FALSE(ModemAcceptsCertificatePem(absl::StrCat(Canonical(), "\n\n\n", Gen().cert)));
}

TEST(NormalizePemTest, PrivateKeyBlocks) {
  ASSERT_OK_AND_ASSIGN(NormalizedPem pem, NormalizePem(Gen().key, PemKind::kPrivateKey));
  EXPECT_EQ(pem.blocks, 1);
  EXPECT_TRUE(absl::StartsWith(pem.content, "-----BEGIN PRIVATE KEY-----\n"));
  EXPECT_THAT(pem.repairs, ElementsAre("removed trailing newline"));

  const std::string traditional = TraditionalKey();
  ASSERT_TRUE(absl::StartsWith(traditional, "-----BEGIN EC PRIVATE KEY-----"));
  ASSERT_OK_AND_ASSIGN(pem, NormalizePem(traditional, PemKind::kPrivateKey));
  EXPECT_EQ(pem.blocks, 1);

  // Kinds do not mix.
  EXPECT_THAT(NormalizePem(Gen().key, PemKind::kCertificates),
              StatusIs(kInvalid, HasSubstr("expected a CERTIFICATE block, found PRIVATE KEY")));
  EXPECT_THAT(NormalizePem(Canonical(), PemKind::kPrivateKey),
              StatusIs(kInvalid, HasSubstr("expected a private key block")));
  EXPECT_THAT(NormalizePem(Gen().key + Gen().key, PemKind::kPrivateKey),
              StatusIs(kInvalid, HasSubstr("exactly one block")));
}

TEST(NormalizePemTest, KeyErrorsNeverQuoteKeyMaterial) {
  std::vector<std::string> lines = Lines(Gen().key);
  ASSERT_GE(lines.size(), 4u);
  const std::string body_line = lines[1];
  auto expect_no_material = [&](const absl::Status& status) {
    ASSERT_FALSE(status.ok());
    const std::string message(status.message());
    for (size_t i = 0; i + 8 <= body_line.size(); ++i) {
      ASSERT_THAT(message, Not(HasSubstr(body_line.substr(i, 8)))) << message;
    }
  };
  // Corrupted DER (a flipped base64 digit keeps the text valid base64).
  std::vector<std::string> corrupted = lines;
  corrupted[1][5] = corrupted[1][5] == 'A' ? 'B' : 'A';
  corrupted[1][6] = corrupted[1][6] == 'A' ? 'B' : 'A';
  absl::StatusOr<NormalizedPem> result =
      NormalizePem(absl::StrJoin(corrupted, "\n"), PemKind::kPrivateKey);
  if (!result.ok()) expect_no_material(result.status());
  // An invalid character inside the key: the line is named, the byte is not.
  std::vector<std::string> bad_char = lines;
  bad_char[1][10] = '!';
  result = NormalizePem(absl::StrJoin(bad_char, "\n"), PemKind::kPrivateKey);
  EXPECT_THAT(result, StatusIs(kInvalid, AllOf(HasSubstr("PEM line 2"), Not(HasSubstr("'!'")))));
  expect_no_material(result.status());
  // Truncated key.
  std::vector<std::string> truncated = lines;
  truncated.erase(truncated.begin() + 1);
  result = NormalizePem(absl::StrJoin(truncated, "\n"), PemKind::kPrivateKey);
  EXPECT_THAT(result, StatusIs(kInvalid));
  expect_no_material(result.status());
}

TEST(NormalizePemTest, RefusalsNameTheLine) {
  std::vector<std::string> lines = Lines(Canonical());
  ASSERT_EQ(lines.size(), 20u);

  std::vector<std::string> bad = lines;
  bad[4][7] = '!';
  EXPECT_THAT(NormalizePem(absl::StrJoin(bad, "\n"), PemKind::kCertificates),
              StatusIs(kInvalid,
                       AllOf(HasSubstr("PEM line 5"), HasSubstr("invalid base64 character '!'"))));

  bad = lines;
  bad.pop_back();  // No END line.
  EXPECT_THAT(
      NormalizePem(absl::StrJoin(bad, "\n"), PemKind::kCertificates),
      StatusIs(kInvalid, AllOf(HasSubstr("PEM line 1"), HasSubstr("no matching -----END"))));

  bad = lines;
  bad.erase(bad.begin() + 8);  // Truncated: a whole line of base64 missing.
  EXPECT_THAT(NormalizePem(absl::StrJoin(bad, "\n"), PemKind::kCertificates),
              StatusIs(kInvalid, HasSubstr("PEM line 1")));

  bad = lines;
  bad[10].pop_back();  // Truncated mid-line: the length is no longer a multiple of 4.
  EXPECT_THAT(NormalizePem(absl::StrJoin(bad, "\n"), PemKind::kCertificates),
              StatusIs(kInvalid, HasSubstr("truncated")));

  EXPECT_THAT(NormalizePem(absl::StrCat(Canonical(), "\nhello\n"), PemKind::kCertificates),
              StatusIs(kInvalid, AllOf(HasSubstr("PEM line 21"), HasSubstr("trailing garbage"))));

  bad = lines;
  bad[2] = "\"" + bad[2];
  EXPECT_THAT(NormalizePem(absl::StrJoin(bad, "\n"), PemKind::kCertificates),
              StatusIs(kInvalid, AllOf(HasSubstr("PEM line 3"), HasSubstr("'\"'"))));

  bad = lines;
  bad.back() = "-----END PRIVATE KEY-----";
  EXPECT_THAT(NormalizePem(absl::StrJoin(bad, "\n"), PemKind::kCertificates),
              StatusIs(kInvalid, AllOf(HasSubstr("PEM line 20"), HasSubstr("does not match"))));

  EXPECT_THAT(NormalizePem("", PemKind::kCertificates),
              StatusIs(kInvalid, HasSubstr("no -----BEGIN")));
  EXPECT_THAT(NormalizePem("hello world", PemKind::kCertificates),
              StatusIs(kInvalid, HasSubstr("no -----BEGIN")));
  EXPECT_THAT(NormalizePem(absl::StrCat("subject=CN=x\n", Canonical()), PemKind::kCertificates),
              StatusIs(kInvalid, AllOf(HasSubstr("PEM line 1"), HasSubstr("before the first"))));
  EXPECT_THAT(NormalizePem(absl::StrCat("x\xc3\xa9\n", Canonical()), PemKind::kCertificates),
              StatusIs(kInvalid, HasSubstr("non-ASCII")));
  EXPECT_THAT(NormalizePem("a\\tb", PemKind::kCertificates),
              StatusIs(kInvalid, HasSubstr("unexpected '\\'")));
  EXPECT_THAT(NormalizePem("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----",
                           PemKind::kCertificates),
              StatusIs(kInvalid, HasSubstr("empty")));
  EXPECT_THAT(NormalizePem("-----BEGIN CERTIFICATE-----\nTUlJ\n-----END CERTIFICATE-----",
                           PemKind::kCertificates),
              StatusIs(kInvalid, HasSubstr("does not parse as X.509")));
}

TEST(NormalizePemTest, OutputIsAFixedPoint) {
  for (const char* name : {"AmazonRootCA1.pem", "seed-spaces-instead-of-newlines.txt",
                           "seed-literal-backslash-n.txt"}) {
    ASSERT_OK_AND_ASSIGN(NormalizedPem first, NormalizePem(Fixture(name), PemKind::kCertificates));
    ASSERT_OK_AND_ASSIGN(NormalizedPem second, NormalizePem(first.content, PemKind::kCertificates));
    EXPECT_EQ(second.content, first.content) << name;
    EXPECT_THAT(second.repairs, IsEmpty()) << name;
    EXPECT_TRUE(ModemAcceptsCertificatePem(first.content)) << name;
  }
}

TEST(ModemAcceptsCertificatePemTest, WhatAnNrf91Takes) {
  const std::string canonical = Canonical();
  EXPECT_TRUE(ModemAcceptsCertificatePem(canonical));
  EXPECT_TRUE(ModemAcceptsCertificatePem(canonical + "\n"));
  EXPECT_FALSE(ModemAcceptsCertificatePem(canonical + "\n\n"));

  // CRLF: accepted by default (nrfcloud-utils sends it and its SHA check
  // passes on real modems); refused when modelling the field report.
  const std::string crlf = absl::StrReplaceAll(canonical, {{"\n", "\r\n"}});
  EXPECT_TRUE(ModemAcceptsCertificatePem(crlf));
  EXPECT_TRUE(ModemAcceptsCertificatePem(crlf + "\r\n"));
  EXPECT_FALSE(ModemAcceptsCertificatePem(crlf + "\r"));
  EXPECT_FALSE(ModemAcceptsCertificatePem(absl::StrReplaceAll(canonical, {{"\n", "\r"}})));
  EXPECT_FALSE(ModemAcceptsCertificatePem(crlf, {.accept_crlf = false}));
  EXPECT_FALSE(ModemAcceptsCertificatePem(crlf + "\r\n", {.accept_crlf = false}));

  EXPECT_FALSE(ModemAcceptsCertificatePem(Fixture("seed-spaces-instead-of-newlines.txt")));
  EXPECT_FALSE(ModemAcceptsCertificatePem(Fixture("seed-literal-backslash-n.txt")));
  EXPECT_FALSE(ModemAcceptsCertificatePem(" " + canonical));
  EXPECT_FALSE(ModemAcceptsCertificatePem(absl::StrReplaceAll(canonical, {{"\n", "\n  "}})));
  EXPECT_FALSE(ModemAcceptsCertificatePem(absl::StrReplaceAll(canonical, {{"\n", "\\n"}})));
  EXPECT_FALSE(ModemAcceptsCertificatePem(""));
  EXPECT_FALSE(ModemAcceptsCertificatePem("HONKHONK"));
  EXPECT_FALSE(ModemAcceptsCertificatePem(Gen().key));
  // A line longer than 64 base64 characters is still well-formed.
  std::vector<std::string> lines = Lines(canonical);
  lines[1] += lines[2];
  lines.erase(lines.begin() + 2);
  EXPECT_TRUE(ModemAcceptsCertificatePem(absl::StrJoin(lines, "\n")));
  // The END line must be a line of its own.
  std::vector<std::string> joined = Lines(canonical);
  joined[joined.size() - 2] += joined.back();
  joined.pop_back();
  EXPECT_FALSE(ModemAcceptsCertificatePem(absl::StrJoin(joined, "\n")));
  // Trailing spaces and blank lines inside are refused.
  EXPECT_FALSE(ModemAcceptsCertificatePem(absl::StrReplaceAll(canonical, {{"\n", " \n"}})));
  EXPECT_FALSE(ModemAcceptsCertificatePem(absl::StrReplaceAll(canonical, {{"\n", "\n\n"}})));
  // Garbage after the certificate.
  EXPECT_FALSE(ModemAcceptsCertificatePem(canonical + "\nx"));
}

TEST(SummarizeCertificatePemTest, AmazonRootCa) {
  PemCertSummary summary;
  ASSERT_TRUE(SummarizeCertificatePem(Fixture("AmazonRootCA1.pem"), &summary));
  EXPECT_EQ(summary.subject, "CN=Amazon Root CA 1,O=Amazon,C=US");
  EXPECT_EQ(summary.issuer, "CN=Amazon Root CA 1,O=Amazon,C=US");
  EXPECT_EQ(summary.not_after_unix, 2147299200);  // 2038-01-17T00:00:00Z

  PemCertSummary repaired;
  ASSERT_TRUE(SummarizeCertificatePem(Fixture("seed-literal-backslash-n.txt"), &repaired));
  EXPECT_EQ(repaired.subject, summary.subject);

  PemCertSummary none;
  EXPECT_FALSE(SummarizeCertificatePem("garbage", &none));
  EXPECT_FALSE(SummarizeCertificatePem(Gen().key, &none));
}

}  // namespace
}  // namespace atbridge::at
