// One grammar for both sides: Build -> Frame -> Parse gives back what was
// built, and FormatResponse -> ResponseParser::Feed gives back the response.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/at/cme.h"
#include "common/at/command_builder.h"
#include "common/at/command_parser.h"
#include "common/at/modem_responses.h"
#include "common/at/pem.h"
#include "common/at/response_parser.h"
#include "common/pki/pki.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/unit/at/replay.h"

namespace atbridge::at {
namespace {

using ::atbridge::at::testing::AllSplits;
using ::atbridge::at::testing::Chunks;
using ::atbridge::at::testing::Split;
using ::atbridge::testing::ReadFileOrDie;
using ::atbridge::testing::StatusIs;
using ::atbridge::testing::TestDataPath;
using ::testing::ElementsAre;

// Frames `command` + terminator with every split, checks that each way gives
// exactly one identical command line, and parses it.
std::vector<AtCommand> FrameAndParse(const std::string& command, const std::string& terminator) {
  std::vector<AtCommand> parsed;
  for (const Split& split : AllSplits()) {
    CommandFramer framer;
    std::mt19937 rng(split.seed);
    std::vector<FramerEvent> events;
    for (const std::string& chunk : Chunks(command + terminator, split, &rng)) {
      framer.Feed(chunk, &events);
    }
    EXPECT_EQ(framer.pending_bytes(), 0u) << split.Name();
    if (events.size() != 1 || events[0].type != FramerEvent::Type::kCommand) {
      ADD_FAILURE() << "expected one command with split " << split.Name();
      return {};
    }
    EXPECT_EQ(events[0].command, command) << split.Name();
    absl::StatusOr<std::vector<AtCommand>> commands = ParseCommandLine(events[0].command);
    if (!commands.ok()) {
      ADD_FAILURE() << commands.status();
      return {};
    }
    parsed = *std::move(commands);
  }
  return parsed;
}

std::string CanonicalAmazonPem() {
  std::string pem = ReadFileOrDie(TestDataPath("pem/AmazonRootCA1.pem"));
  pem.pop_back();  // The trailing newline.
  return pem;
}

TEST(BuildFrameParseTest, CmngWriteWithRealPem) {
  const std::string pem = CanonicalAmazonPem();
  for (const char* terminator : {"\r\n", "\r", "\n"}) {
    ASSERT_OK_AND_ASSIGN(std::string command, CmngWrite(16842753, 0, pem));
    std::vector<AtCommand> parsed = FrameAndParse(command, terminator);
    ASSERT_EQ(parsed.size(), 1u);
    EXPECT_EQ(parsed[0].name, "%CMNG");
    EXPECT_EQ(parsed[0].type, AtCommand::Type::kSet);
    ASSERT_EQ(parsed[0].params.size(), 4u);
    EXPECT_EQ(parsed[0].params[0].number, kCmngWrite);
    EXPECT_EQ(parsed[0].params[1].number, 16842753);
    EXPECT_EQ(parsed[0].params[2].number, 0);
    ASSERT_EQ(parsed[0].params[3].kind, AtParam::Kind::kString);
    EXPECT_EQ(parsed[0].params[3].text, pem);
    // What the simulator hashes is what the agent would hash.
    EXPECT_EQ(pki::Sha256Hex(parsed[0].params[3].text),
              "AD6FB002E6B34C0559FA8F93A3794FF12C4E3F119BD77290C52525123FB9EA74");
    EXPECT_TRUE(ModemAcceptsCertificatePem(parsed[0].params[3].text));
  }
}

TEST(BuildFrameParseTest, OtherCommands) {
  std::vector<AtCommand> parsed = FrameAndParse(CmngList(16842753u, 1), "\r\n");
  ASSERT_EQ(parsed.size(), 1u);
  EXPECT_EQ(parsed[0].name, "%CMNG");
  ASSERT_EQ(parsed[0].params.size(), 3u);
  EXPECT_EQ(parsed[0].params[0].number, kCmngList);
  EXPECT_EQ(parsed[0].params[2].number, 1);

  parsed = FrameAndParse(CmngRead(5, 4), "\r");
  ASSERT_EQ(parsed.size(), 1u);
  EXPECT_EQ(parsed[0].params[0].number, kCmngRead);

  parsed = FrameAndParse(CmngDelete(5, 2), "\r");
  ASSERT_EQ(parsed.size(), 1u);
  EXPECT_EQ(parsed[0].params[0].number, kCmngDelete);

  parsed = FrameAndParse(CfunRead(), "\r\n");
  ASSERT_EQ(parsed.size(), 1u);
  EXPECT_EQ(parsed[0].name, "+CFUN");
  EXPECT_EQ(parsed[0].type, AtCommand::Type::kRead);

  parsed = FrameAndParse(CfunSet(4), "\r\n");
  ASSERT_EQ(parsed.size(), 1u);
  EXPECT_EQ(parsed[0].type, AtCommand::Type::kSet);
  EXPECT_EQ(parsed[0].params[0].number, 4);

  ASSERT_OK_AND_ASSIGN(std::string keygen, Keygen(9, 2, 0, "CN=a,O=b;c", "101010000"));
  parsed = FrameAndParse(keygen, "\r\n");
  ASSERT_EQ(parsed.size(), 1u);
  EXPECT_EQ(parsed[0].name, "%KEYGEN");
  ASSERT_EQ(parsed[0].params.size(), 5u);
  EXPECT_EQ(parsed[0].params[3].text, "CN=a,O=b;c");
  EXPECT_EQ(parsed[0].params[4].text, "101010000");

  ASSERT_OK_AND_ASSIGN(std::string generic, CommandBuilder("#XAPN")
                                                .Int(-3)
                                                .Empty()
                                                .Quoted("x;AT+CFUN=1")
                                                .QuotedPayload("l1\nl2,\n")
                                                .Set());
  parsed = FrameAndParse(generic, "\r\n");
  ASSERT_EQ(parsed.size(), 1u);
  ASSERT_EQ(parsed[0].params.size(), 4u);
  EXPECT_EQ(parsed[0].params[0].number, -3);
  EXPECT_EQ(parsed[0].params[1].kind, AtParam::Kind::kEmpty);
  EXPECT_EQ(parsed[0].params[2].text, "x;AT+CFUN=1");
  EXPECT_EQ(parsed[0].params[3].text, "l1\nl2,\n");

  ASSERT_OK_AND_ASSIGN(std::string action, CommandBuilder("+CGSN").Action());
  parsed = FrameAndParse(action, "\r\n");
  ASSERT_EQ(parsed.size(), 1u);
  EXPECT_EQ(parsed[0].type, AtCommand::Type::kAction);
  ASSERT_OK_AND_ASSIGN(std::string test, CommandBuilder("+CFUN").Test());
  parsed = FrameAndParse(test, "\r\n");
  ASSERT_EQ(parsed.size(), 1u);
  EXPECT_EQ(parsed[0].type, AtCommand::Type::kTest);
}

// Feeds a DCE response (with every split) into a parser with the given
// expectation and returns the single completed response.
Response FeedResponse(const std::string& bytes, const CommandExpectation& expectation) {
  Response result;
  bool first = true;
  for (const Split& split : AllSplits()) {
    ResponseParser parser;
    parser.BeginCommand(expectation);
    std::mt19937 rng(split.seed);
    std::vector<ParserEvent> events;
    for (const std::string& chunk : Chunks(bytes, split, &rng)) parser.Feed(chunk, &events);
    if (events.size() != 1 || events[0].type != ParserEvent::Type::kComplete) {
      ADD_FAILURE() << "expected one kComplete with split " << split.Name();
      return {};
    }
    if (!first) {
      EXPECT_EQ(events[0].response.lines, result.lines) << split.Name();
      EXPECT_EQ(events[0].response.final.line, result.final.line) << split.Name();
    }
    result = events[0].response;
    first = false;
  }
  return result;
}

TEST(FormatFeedTest, CmngReadOfARealPem) {
  const std::string pem = CanonicalAmazonPem();
  const std::string sha = pki::Sha256Hex(pem);
  const std::string line = absl::StrCat("%CMNG: 16842753,0,\"", sha, "\",\"", pem, "\"");
  CommandExpectation e;
  e.info_prefixes = {"%CMNG:"};
  Response response = FeedResponse(FormatResponse({line}, "OK"), e);
  EXPECT_TRUE(response.final.ok());
  ASSERT_THAT(response.lines, ElementsAre(line));
  ASSERT_OK_AND_ASSIGN(CmngEntry entry, ParseCmngLine(response.lines[0]));
  EXPECT_EQ(entry.sha256, sha);
  ASSERT_TRUE(entry.content.has_value());
  EXPECT_EQ(*entry.content, pem);
}

TEST(FormatFeedTest, ListCfunImeiAndErrors) {
  CommandExpectation list;
  list.info_prefixes = {"%CMNG:"};
  const std::string sha(64, 'A');
  Response response =
      FeedResponse(FormatResponse({absl::StrCat("%CMNG: 1,0,\"", sha, "\""),
                                   absl::StrCat("%CMNG: 4294967292,10,\"", sha, "\"")},
                                  "OK"),
                   list);
  ASSERT_OK_AND_ASSIGN(std::vector<CmngEntry> entries, ParseCmngList(response.lines));
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[1].sec_tag, 4294967292u);

  CommandExpectation cfun;
  cfun.info_prefixes = {"+CFUN:"};
  response = FeedResponse(FormatResponse({"+CFUN: 4"}, "OK"), cfun);
  ASSERT_OK_AND_ASSIGN(int mode, ParseCfun(response.lines));
  EXPECT_EQ(mode, 4);

  response = FeedResponse(FormatResponse({"352656100123456"}, "OK"), {});
  ASSERT_OK_AND_ASSIGN(std::string imei, ParseImei(response.lines));
  EXPECT_EQ(imei, "352656100123456");

  response = FeedResponse(FormatResponse({}, "+CME ERROR: 527"), {});
  EXPECT_EQ(response.final.kind, FinalKind::kCmeError);
  EXPECT_EQ(response.final.code, 527);
  EXPECT_THAT(StatusFromFinal(response.final, "write"),
              StatusIs(absl::StatusCode::kInvalidArgument));

  response = FeedResponse(FormatResponse({}, "ERROR"), {});
  EXPECT_EQ(response.final.kind, FinalKind::kError);
}

}  // namespace
}  // namespace atbridge::at
