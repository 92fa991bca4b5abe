#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "sim/state_file.h"
#include "sim/transcript.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace atbridge::sim {
namespace {

using ::atbridge::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kKey[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgSECRETSECRETSECR\n"
    "ETSECRETSECRETSECRETSECRETSECREThRANDOMRANDOMRANDOMRANDOMRANDOM\n"
    "-----END PRIVATE KEY-----";

TEST(TranscriptTest, Escaping) {
  EXPECT_EQ(EscapeBytes("AT\r\n"), "AT\\r\\n");
  EXPECT_EQ(EscapeBytes(std::string("a\"b\\c\t\x01\xff", 8)), "a\\\"b\\\\c\\t\\x01\\xff");
}

TEST(TranscriptTest, SecretsAreRedactedHoweverTheBytesArrive) {
  const std::string command = absl::StrCat("AT%CMNG=0,7,2,\"", kKey, "\"\r\n");
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{64}, command.size()}) {
    TranscriptRxFilter filter(4096);
    std::string recorded;
    for (size_t off = 0; off < command.size(); off += chunk) {
      recorded += filter.Append(absl::string_view(command).substr(off, chunk));
    }
    recorded += filter.Flush();
    EXPECT_THAT(recorded, HasSubstr("AT%CMNG=0,7,2,")) << chunk;
    EXPECT_THAT(recorded, Not(HasSubstr("SECRET"))) << chunk;
    EXPECT_THAT(recorded, Not(HasSubstr("RANDOM"))) << chunk;
  }
  // A PSK (type 3) carries no PEM marker: at::RedactSecrets itself must catch it.
  TranscriptRxFilter psk(4096);
  std::string rec = psk.Append("AT%CMNG=0,9,3,\"00112233445566778899AABBCCDDEEFF\"\r\n");
  EXPECT_THAT(rec, HasSubstr("AT%CMNG=0,9,3,"));
  EXPECT_THAT(rec, Not(HasSubstr("00112233445566778899")));
  // Ordinary commands pass unchanged.
  TranscriptRxFilter filter(4096);
  EXPECT_EQ(filter.Append("AT+CGSN\r\nAT"), "AT+CGSN\r\n");
  EXPECT_EQ(filter.Append("\r\n"), "AT\r\n");
}

TEST(TranscriptTest, UnterminatedAndOverlongLinesWithholdSecrets) {
  TranscriptRxFilter filter(64);
  std::string recorded = filter.Append(absl::StrCat("AT%CMNG=0,7,2,\"", kKey));
  recorded += filter.Append("\"\r\nAT\r\n");
  EXPECT_THAT(recorded, Not(HasSubstr("SECRET")));
  EXPECT_THAT(recorded, HasSubstr("withheld"));
  EXPECT_THAT(recorded, HasSubstr("AT\r\n"));

  TranscriptRxFilter filter2(4096);
  EXPECT_EQ(filter2.Append(absl::StrCat("AT%CMNG=0,7,3,\"", "SECRETHEX")), "");
  std::string flushed = filter2.Flush();
  EXPECT_THAT(flushed, Not(HasSubstr("SECRETHEX")));
  EXPECT_THAT(flushed, HasSubstr("AT%CMNG=0,7,3,"));
}

TEST(TranscriptTest, FileRecords) {
  testing::TempDir dir;
  std::string path = dir.File("t.txt");
  {
    ASSERT_OK_AND_ASSIGN(auto t, Transcript::Open(path));
    t->Record(3, "rx", "AT\r\n");
  }
  {
    ASSERT_OK_AND_ASSIGN(auto t, Transcript::Open(path));
    t->Record(3, "tx", "OK\r\n");
  }
  std::string text = testing::ReadFileOrDie(path);
  EXPECT_THAT(
      text, ::testing::MatchesRegex("[0-9T:.-]+Z modem3 rx \"AT\\\\r\\\\n\"\n[0-9T:.-]+Z modem3 tx "
                                    "\"OK\\\\r\\\\n\"\n"));
  EXPECT_THAT(Transcript::Open(dir.File("no/such/dir/t.txt")),
              StatusIs(absl::StatusCode::kNotFound));
}

TEST(StateFileTest, RoundTripByteExact) {
  testing::TempDir dir;
  std::string path = dir.File("nvm.json");
  ModemState s;
  s.cfun = 0;
  s.credentials[{16842753u, 0}] = "-----BEGIN CERTIFICATE-----\r\nabc\n\"";
  s.credentials[{1u, 2}] = std::string("\x00\xff\x80 bin", 7);
  ModemState other;
  other.cfun = 1;
  {
    ASSERT_OK_AND_ASSIGN(auto file, StateFile::Open(path));
    EXPECT_EQ(file->size(), 0u);
    EXPECT_FALSE(file->Get("350000000000014").has_value());
    ASSERT_OK(file->Put("350000000000014", s));
    ASSERT_OK(file->Put("350000000000022", other));
  }
  {
    ASSERT_OK_AND_ASSIGN(auto file, StateFile::Open(path));
    ASSERT_EQ(file->size(), 2u);
    EXPECT_EQ(file->Get("350000000000014")->cfun, 0);
    EXPECT_EQ(file->Get("350000000000014")->credentials, s.credentials);
    // An update keeps the others (cached text) intact.
    other.cfun = 44;
    ASSERT_OK(file->Put("350000000000022", other));
  }
  ASSERT_OK_AND_ASSIGN(auto file, StateFile::Open(path));
  EXPECT_EQ(file->Get("350000000000014")->credentials, s.credentials);
  EXPECT_EQ(file->Get("350000000000022")->cfun, 44);

  std::string bad = dir.WriteFile("bad.json", "{not json");
  EXPECT_THAT(StateFile::Open(bad), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(bad)));
  std::string wrong = dir.WriteFile("wrong.json", "{\"version\": 2, \"modems\": {}}");
  EXPECT_THAT(StateFile::Open(wrong), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace atbridge::sim
