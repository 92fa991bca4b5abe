// The DTE-side corpus (at-engine-anchors.md §7, cases 1-17) and the parser's
// contract: every case is replayed whole, byte by byte and with seeded random
// splits, and must give identical events every way.
#include "common/at/response_parser.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/at/modem_responses.h"
#include "tests/unit/at/replay.h"

namespace atbridge::at {
namespace {

using ::atbridge::at::testing::AllSplits;
using ::atbridge::at::testing::Chunks;
using ::atbridge::at::testing::Describe;
using ::atbridge::at::testing::Split;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

// One step of a scripted exchange.
struct Step {
  enum class Kind { kBegin, kAbandon, kReset, kFeed };
  Kind kind;
  std::string bytes;               // kFeed
  CommandExpectation expectation;  // kBegin
};

Step Begin(CommandExpectation expectation = {}) {
  return {Step::Kind::kBegin, "", std::move(expectation)};
}
Step BeginWithPrefix(std::string prefix) {
  CommandExpectation e;
  e.info_prefixes = {std::move(prefix)};
  return Begin(std::move(e));
}
Step Abandon() { return {Step::Kind::kAbandon, "", {}}; }
// A string literal with embedded NULs.
template <size_t N>
std::string Bytes(const char (&literal)[N]) {
  return std::string(literal, N - 1);
}

Step Feed(std::string bytes) { return {Step::Kind::kFeed, std::move(bytes), {}}; }

struct CorpusCase {
  std::string name;
  std::vector<Step> steps;
  std::vector<std::string> expected;
  size_t max_line_bytes = 16 * 1024;
};

std::vector<std::string> Replay(const CorpusCase& c, const Split& split) {
  ResponseParserOptions options;
  options.max_line_bytes = c.max_line_bytes;
  ResponseParser parser(options);
  std::mt19937 rng(split.seed);
  std::vector<std::string> described;
  for (const Step& step : c.steps) {
    switch (step.kind) {
      case Step::Kind::kBegin:
        parser.BeginCommand(step.expectation);
        break;
      case Step::Kind::kAbandon:
        parser.Abandon();
        break;
      case Step::Kind::kReset:
        parser.Reset();
        break;
      case Step::Kind::kFeed:
        for (const std::string& chunk : Chunks(step.bytes, split, &rng)) {
          std::vector<ParserEvent> events;
          parser.Feed(chunk, &events);
          for (const ParserEvent& event : events) described.push_back(Describe(event));
        }
        break;
    }
  }
  return described;
}

constexpr char kSha[] = "AD6FB002E6B34C0559FA8F93A3794FF12C4E3F119BD77290C52525123FB9EA74";
constexpr char kPemWithOkLine[] =
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\nOK\nERROR\n+CEREG: 1\n"
    "-----END CERTIFICATE-----\n";

std::vector<CorpusCase> Corpus() {
  std::vector<CorpusCase> cases;
  // 1: plain OK.
  cases.push_back({"01_ok", {Begin(), Feed("\r\nOK\r\n")}, {"COMPLETE OK []"}});
  // 2: AT+CFUN? with a URC interleaved.
  cases.push_back({"02_info_urc_ok",
                   {BeginWithPrefix("+CFUN:"), Feed("\r\n+CFUN: 4\r\n\r\n+CEREG: 2\r\n\r\nOK\r\n")},
                   {"URC +CEREG: 2", "COMPLETE OK [+CFUN: 4]"}});
  // 3: +CEREG: belongs to AT+CEREG? but is a URC when idle.
  cases.push_back({"03a_shared_prefix_in_flight",
                   {BeginWithPrefix("+CEREG:"), Feed("\r\n+CEREG: 5,\"76C1\"\r\n\r\nOK\r\n")},
                   {"COMPLETE OK [+CEREG: 5,\"76C1\"]"}});
  cases.push_back({"03b_shared_prefix_idle",
                   {Feed("\r\n+CEREG: 5,\"76C1\"\r\n\r\nOK\r\n")},
                   {"URC +CEREG: 5,\"76C1\"", "GARBAGE 2 OK"}});
  // 4: the final and a URC in one chunk.
  cases.push_back({"04_complete_then_urc",
                   {Begin(), Feed("\r\nOK\r\n\r\n+CMTI: \"ME\",1\r\n")},
                   {"COMPLETE OK []", "URC +CMTI: \"ME\",1"}});
  // 5: OK\r then \n in a later chunk (all 1-byte splits come from the
  // byte-by-byte replay of every case).
  cases.push_back({"05_cr_then_lf", {Begin(), Feed("\r\nOK\r"), Feed("\n")}, {"COMPLETE OK []"}});
  // 6: typed errors.
  cases.push_back(
      {"06a_cme_527", {Begin(), Feed("\r\n+CME ERROR: 527\r\n")}, {"COMPLETE CME 527 []"}});
  cases.push_back({"06b_error", {Begin(), Feed("\r\nERROR\r\n")}, {"COMPLETE ERROR []"}});
  cases.push_back(
      {"06c_cme_text", {Begin(), Feed("\r\n+CME ERROR: invalid\r\n")}, {"COMPLETE CME_TEXT []"}});
  // 7: "+CME ERROR:" with nothing after it is a final error (policy), CMS.
  cases.push_back(
      {"07a_cme_empty", {Begin(), Feed("\r\n+CME ERROR:\r\n")}, {"COMPLETE CME_TEXT []"}});
  cases.push_back(
      {"07b_cms_500", {Begin(), Feed("\r\n+CMS ERROR: 500\r\n")}, {"COMPLETE CMS 500 []"}});
  // 8: E1 echo dropped, E0 the same result.
  {
    CommandExpectation e;
    e.echo = "AT+CFUN?";
    e.info_prefixes = {"+CFUN:"};
    cases.push_back({"08a_echo_e1",
                     {Begin(e), Feed("AT+CFUN?\r\r\n+CFUN: 1\r\n\r\nOK\r\n")},
                     {"COMPLETE OK [+CFUN: 1]"}});
    cases.push_back({"08b_echo_e0",
                     {Begin(e), Feed("\r\n+CFUN: 1\r\n\r\nOK\r\n")},
                     {"COMPLETE OK [+CFUN: 1]"}});
  }
  // 9: %CMNG read with a PEM carrying LF and an "OK" line inside quotes.
  cases.push_back(
      {"09_cmng_read_pem",
       {BeginWithPrefix("%CMNG:"), Feed(absl::StrCat("\r\n%CMNG: 16842753,0,\"", kSha, "\",\"",
                                                     kPemWithOkLine, "\"\r\n\r\nOK\r\n"))},
       {absl::StrCat("COMPLETE OK [%CMNG: 16842753,0,\"", kSha, "\",\"",
                     testing::Escape(kPemWithOkLine), "\"]")}});
  // 10: empty lines ignored.
  cases.push_back({"10_empty_lines", {Begin(), Feed("\r\n\r\n\r\nOK\r\n")}, {"COMPLETE OK []"}});
  // 11: NUL bytes counted as garbage, never ending a line.
  cases.push_back({"11a_nul_before_ok",
                   {Begin(), Feed(Bytes("\0\0\r\nOK\r\n"))},
                   {"GARBAGE 2", "COMPLETE OK []"}});
  cases.push_back({"11b_nul_inside_info",
                   {BeginWithPrefix("+CFUN:"), Feed(Bytes("\r\n+CFUN:\0 4\r\n\r\nOK\r\n"))},
                   {"GARBAGE 1", "COMPLETE OK [+CFUN: 4]"}});
  // 12: a line over the cap, then OK (the parser reports; the caller decides).
  cases.push_back({"12a_overflow_then_ok",
                   {Begin(), Feed(absl::StrCat("\r\n", std::string(100, 'A'), "\r\n\r\nOK\r\n"))},
                   {"OVERFLOW 100", "COMPLETE OK []"},
                   32});
  cases.push_back({"12b_overflow_abandon",
                   {Begin(), Feed(absl::StrCat("\r\n+CMNG: \"", std::string(100, 'A'), "\r\n")),
                    Abandon(), Feed("\r\nOK\r\n"), Begin(), Feed("\r\nOK\r\n")},
                   {"OVERFLOW 108", "STALE OK", "COMPLETE OK []"},
                   32});
  // 13: lenient line endings.
  cases.push_back({"13a_lf_only", {Begin(), Feed("\nOK\n")}, {"COMPLETE OK []"}});
  cases.push_back({"13b_cr_only", {Begin(), Feed("\rOK\r")}, {"COMPLETE OK []"}});
  cases.push_back({"13c_no_leading_crlf", {Begin(), Feed("OK\r\n")}, {"COMPLETE OK []"}});
  // 14: garbage before a URC.
  cases.push_back({"14_garbage_then_urc",
                   {Feed("aaaa\r\n+CEREG: 1\r\n")},
                   {"GARBAGE 4 aaaa", "URC +CEREG: 1"}});
  // 14 with a command in flight (AT+CGMR, whose answer is a bare line): the
  // agreed policy (CommandExpectation::info_prefixes) is that a line which
  // is not a known URC belongs to the command, so "aaaa" is an information
  // line, not garbage; the +CEREG: URC is still routed as a URC.
  cases.push_back({"14b_bare_line_in_flight_is_information",
                   {Begin(), Feed("aaaa\r\n+CEREG: 1\r\n\r\nOK\r\n")},
                   {"URC +CEREG: 1", "COMPLETE OK [aaaa]"}});
  {
    CommandExpectation cgmr;
    cgmr.echo = "AT+CGMR";
    cases.push_back({"14c_cgmr_answer_then_garbage_line",
                     {Begin(cgmr), Feed("aaaa\r\nmfw_nrf91x1_2.0.2\r\n+CEREG: 1\r\nOK\r\n")},
                     {"URC +CEREG: 1", "COMPLETE OK [aaaa|mfw_nrf91x1_2.0.2]"}});
  }
  // 15: an odd quote runs to the cap, is reported once, and the parser
  // recovers at the next terminator.
  cases.push_back({"15_odd_quote",
                   {Begin(), Feed(absl::StrCat("\r\n+X: \"abc\r\nOK\r\n", std::string(80, 'B'),
                                               "\r\n\r\nOK\r\n"))},
                   {"OVERFLOW 94", "COMPLETE OK []"},
                   64});
  // 16: a prompt only when expected.
  {
    CommandExpectation e;
    e.expect_prompt = true;
    cases.push_back({"16a_prompt_expected", {Begin(e), Feed("\r\n> ")}, {"PROMPT"}});
    cases.push_back({"16b_prompt_not_expected", {Begin(), Feed("\r\n> ")}, {}});
    cases.push_back({"16c_prompt_then_ok",
                     {Begin(e), Feed("\r\n> "), Feed("\r\n+CMGS: 3\r\n\r\nOK\r\n")},
                     {"PROMPT", "COMPLETE OK [+CMGS: 3]"}});
  }
  // 17: an OK after a timeout is not given to the next command.
  cases.push_back({"17_late_ok_after_abandon",
                   {Begin(), Feed("\r\n+CGSN: \"35"), Abandon(), BeginWithPrefix("+CFUN:"),
                    Feed("1234567890123\"\r\n\r\nOK\r\n\r\n+CFUN: 4\r\n\r\nOK\r\n")},
                   {"STALE +CGSN: \"351234567890123\"", "STALE OK", "COMPLETE OK [+CFUN: 4]"}});
  return cases;
}

class CorpusTest : public ::testing::TestWithParam<CorpusCase> {};

TEST_P(CorpusTest, SameEventsWholeByteByByteAndRandomSplits) {
  const CorpusCase& c = GetParam();
  for (const Split& split : AllSplits()) {
    EXPECT_EQ(Replay(c, split), c.expected) << "split: " << split.Name();
  }
}

INSTANTIATE_TEST_SUITE_P(AnchorsCorpus, CorpusTest, ::testing::ValuesIn(Corpus()),
                         [](const ::testing::TestParamInfo<CorpusCase>& param_info) {
                           return "case" + param_info.param.name;
                         });

// Case 5 in detail: OK is complete at its CR already.
TEST(ResponseParserTest, CompletesAtCrBeforeLf) {
  ResponseParser parser;
  parser.BeginCommand({});
  std::vector<ParserEvent> events;
  parser.Feed("\r\nOK\r", &events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, ParserEvent::Type::kComplete);
  EXPECT_FALSE(parser.command_in_flight());
  events.clear();
  parser.Feed("\n", &events);
  EXPECT_THAT(events, IsEmpty());
}

TEST(ResponseParserTest, FinalLineKeptExactly) {
  ResponseParser parser;
  parser.BeginCommand({});
  std::vector<ParserEvent> events;
  parser.Feed("\r\n+CME ERROR: 518\r\n", &events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].response.final.kind, FinalKind::kCmeError);
  EXPECT_EQ(events[0].response.final.code, 518);
  EXPECT_EQ(events[0].response.final.line, "+CME ERROR: 518");
  EXPECT_FALSE(events[0].response.final.ok());
}

TEST(ResponseParserTest, CmngReadContentSurvivesByteExact) {
  ResponseParser parser;
  CommandExpectation e;
  e.info_prefixes = {"%CMNG:"};
  parser.BeginCommand(e);
  std::vector<ParserEvent> events;
  parser.Feed(
      absl::StrCat("\r\n%CMNG: 16842753,0,\"", kSha, "\",\"", kPemWithOkLine, "\"\r\n\r\nOK\r\n"),
      &events);
  ASSERT_EQ(events.size(), 1u);
  ASSERT_EQ(events[0].response.lines.size(), 1u);
  absl::StatusOr<CmngEntry> entry = ParseCmngLine(events[0].response.lines[0]);
  ASSERT_TRUE(entry.ok()) << entry.status();
  EXPECT_EQ(entry->sec_tag, 16842753u);
  EXPECT_EQ(entry->sha256, kSha);
  ASSERT_TRUE(entry->content.has_value());
  EXPECT_EQ(*entry->content, kPemWithOkLine);
}

TEST(ResponseParserTest, NeverSubstringMatchesFinals) {
  for (const char* line :
       {"OKAY", "NOT OK", "ERRORS", " OK", "OK ", "+CME ERROR 5", "ok", "CONNECT OK", "xERROR"}) {
    EXPECT_EQ(ParseFinalResult(line).kind, FinalKind::kNone) << line;
  }
  EXPECT_EQ(ParseFinalResult("OK").kind, FinalKind::kOk);
  EXPECT_EQ(ParseFinalResult("ERROR").kind, FinalKind::kError);
  EXPECT_EQ(ParseFinalResult("+CME ERROR: 513").code, 513);
  EXPECT_EQ(ParseFinalResult("+CME ERROR:  514 ").code, 514);
  EXPECT_EQ(ParseFinalResult("+CME ERROR: 99999999999").kind, FinalKind::kCmeText);
  EXPECT_EQ(ParseFinalResult("+CME ERROR: -1").kind, FinalKind::kCmeText);
  EXPECT_EQ(ParseFinalResult("+CMS ERROR: 301").kind, FinalKind::kCmsError);
  EXPECT_EQ(ParseFinalResult("+CMS ERROR: 301").code, 301);
}

TEST(ResponseParserTest, IdleUrcLookingLinesAreUrcsOthersGarbage) {
  ResponseParser parser;
  std::vector<ParserEvent> events;
  parser.Feed("\r\n%XFOO: 1\r\n#XBAR: 2\r\n+ZZZ: 3\r\nReady\r\nhello\r\n+nocolon\r\n", &events);
  std::vector<std::string> described = testing::DescribeAll(events);
  EXPECT_THAT(described, ElementsAre("URC %XFOO: 1", "URC #XBAR: 2", "URC +ZZZ: 3", "URC Ready",
                                     "GARBAGE 5 hello", "GARBAGE 8 +nocolon"));
}

TEST(ResponseParserTest, InFlightNonUrcLinesBelongToTheCommand) {
  // A bare IMEI and an unlisted "+XYZ:" line belong to the command; only
  // listed URC prefixes are routed away.
  ResponseParser parser;
  CommandExpectation e;
  e.info_prefixes = {"+CGSN:"};
  parser.BeginCommand(e);
  std::vector<ParserEvent> events;
  parser.Feed("\r\n352656100123456\r\n+XYZ: 1\r\n%XTIME: 1\r\n\r\nOK\r\n", &events);
  std::vector<std::string> described = testing::DescribeAll(events);
  EXPECT_THAT(described, ElementsAre("URC %XTIME: 1", "COMPLETE OK [352656100123456|+XYZ: 1]"));
}

TEST(ResponseParserTest, EchoDroppedOnlyWhenItMatchesTheCommand) {
  ResponseParser parser;
  CommandExpectation e;
  e.echo = "AT+CGMR";
  parser.BeginCommand(e);
  std::vector<ParserEvent> events;
  // An echo of some other command is not stripped; neither is a second copy.
  parser.Feed("AT+CGMM\r\nmfw_nrf9160_1.3.5\r\nAT+CGMR\r\nOK\r\n", &events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(events[0].response.lines, ElementsAre("AT+CGMM", "mfw_nrf9160_1.3.5", "AT+CGMR"));

  parser.BeginCommand(e);
  events.clear();
  parser.Feed("AT+CGMR\r\r\nmfw_nrf9160_1.3.5\r\n\r\nOK\r\n", &events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_THAT(events[0].response.lines, ElementsAre("mfw_nrf9160_1.3.5"));
}

TEST(ResponseParserTest, AbandonedCommandOwnsItsReplyAcrossBeginCommand) {
  ResponseParser parser;
  parser.BeginCommand({});
  parser.Abandon();
  EXPECT_TRUE(parser.draining());
  EXPECT_FALSE(parser.command_in_flight());
  parser.BeginCommand({});
  EXPECT_TRUE(parser.command_in_flight());
  std::vector<ParserEvent> events;
  parser.Feed("\r\n+CEREG: 1\r\nlate info\r\n\r\nERROR\r\n", &events);
  std::vector<std::string> described = testing::DescribeAll(events);
  EXPECT_THAT(described, ElementsAre("URC +CEREG: 1", "STALE late info", "STALE ERROR"));
  EXPECT_FALSE(parser.draining());
  EXPECT_TRUE(parser.command_in_flight());
  events.clear();
  parser.Feed("\r\nOK\r\n", &events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, ParserEvent::Type::kComplete);
}

TEST(ResponseParserTest, TwoAbandonedCommandsDrainInOrder) {
  ResponseParser parser;
  parser.BeginCommand({});
  parser.Abandon();
  parser.BeginCommand({});
  parser.Abandon();
  std::vector<ParserEvent> events;
  parser.Feed("\r\nOK\r\n", &events);
  EXPECT_TRUE(parser.draining());
  parser.Feed("\r\nOK\r\n", &events);
  EXPECT_FALSE(parser.draining());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, ParserEvent::Type::kStale);
  EXPECT_EQ(events[1].type, ParserEvent::Type::kStale);
}

TEST(ResponseParserTest, ResetForgetsAbandonedAndPartialLine) {
  ResponseParser parser;
  parser.BeginCommand({});
  std::vector<ParserEvent> events;
  parser.Feed("\r\n+CFUN: \"half", &events);
  parser.Abandon();
  parser.Reset();
  EXPECT_FALSE(parser.draining());
  EXPECT_FALSE(parser.command_in_flight());
  parser.BeginCommand({});
  parser.Feed("\r\nOK\r\n", &events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, ParserEvent::Type::kComplete);
}

TEST(ResponseParserTest, AbandonWithoutCommandIsNoOp) {
  ResponseParser parser;
  parser.Abandon();
  EXPECT_FALSE(parser.draining());
  std::vector<ParserEvent> events;
  parser.Feed("\r\nOK\r\n", &events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, ParserEvent::Type::kGarbage);
}

TEST(ResponseParserTest, LineExactlyAtCapIsAccepted) {
  ResponseParserOptions options;
  options.max_line_bytes = 16;
  ResponseParser parser(options);
  parser.BeginCommand({});
  std::vector<ParserEvent> events;
  parser.Feed(
      absl::StrCat("\r\n", std::string(16, 'x'), "\r\n", std::string(17, 'y'), "\r\nOK\r\n"),
      &events);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(Describe(events[0]), "OVERFLOW 17");
  EXPECT_EQ(events[0].line, std::string(16, 'y'));
  EXPECT_EQ(Describe(events[1]), absl::StrCat("COMPLETE OK [", std::string(16, 'x'), "]"));
}

TEST(ResponseParserTest, OverflowHeadIsAtMost64Bytes) {
  ResponseParserOptions options;
  options.max_line_bytes = 200;
  ResponseParser parser(options);
  std::vector<ParserEvent> events;
  parser.Feed(absl::StrCat(std::string(500, 'z'), "\n"), &events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type, ParserEvent::Type::kOverflow);
  EXPECT_EQ(events[0].line.size(), 64u);
  EXPECT_EQ(events[0].bytes, 500u);
}

TEST(ResponseParserTest, PromptOnlyOncePerCommand) {
  ResponseParser parser;
  CommandExpectation e;
  e.expect_prompt = true;
  parser.BeginCommand(e);
  std::vector<ParserEvent> events;
  parser.Feed("\r\n> ", &events);
  parser.Feed("\r\n> ", &events);
  parser.Feed("\r\nOK\r\n", &events);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].type, ParserEvent::Type::kPrompt);
  EXPECT_EQ(Describe(events[1]), "COMPLETE OK [> ]");
}

}  // namespace
}  // namespace atbridge::at
