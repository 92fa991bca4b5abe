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
