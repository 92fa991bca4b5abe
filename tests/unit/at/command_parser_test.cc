// DCE side: CommandFramer (nRF91 AT host framing) and ParseCommandLine,
// including corpus cases 18 and 19 of at-engine-anchors.md §7.
#include "common/at/command_parser.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/testing/status_matchers.h"
#include "tests/unit/at/replay.h"

namespace atbridge::at {
namespace {

using ::atbridge::at::testing::AllSplits;
using ::atbridge::at::testing::Chunks;
using ::atbridge::at::testing::Describe;
using ::atbridge::at::testing::Escape;
using ::atbridge::at::testing::Split;
using ::atbridge::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::vector<std::string> Frame(absl::string_view bytes, const Split& split,
                               CommandFramerOptions options = {}) {
  CommandFramer framer(options);
  std::mt19937 rng(split.seed);
  std::vector<std::string> described;
  for (const std::string& chunk : Chunks(bytes, split, &rng)) {
    std::vector<FramerEvent> events;
    framer.Feed(chunk, &events);
    for (const FramerEvent& event : events) described.push_back(Describe(event));
  }
  return described;
}

struct FramerCase {
  std::string name;
  std::string bytes;
  std::vector<std::string> expected;
  size_t max_command_bytes = 4096;
};

constexpr char kPem[] =
    "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ,x;y\r\nOK\n-----END CERTIFICATE-----\n";

std::vector<FramerCase> FramerCases() {
  std::vector<FramerCase> cases;
  // 18: a %CMNG write with a PEM: one command, LF (and CR) inside quotes kept.
  cases.push_back({"18_cmng_write_pem",
                   absl::StrCat("AT%CMNG=0,1,0,\"", kPem, "\"\r"),
                   {absl::StrCat("COMMAND AT%CMNG=0,1,0,\"", Escape(kPem), "\"")}});
  // 19: chain, test command, backspace editing.
  cases.push_back({"19a_chain", "AT+CFUN=4;+CFUN?\r", {"COMMAND AT+CFUN=4;+CFUN?"}});
  cases.push_back({"19b_test", "AT+CFUN=?\r", {"COMMAND AT+CFUN=?"}});
  cases.push_back({"19c_backspace", "AT+CFUM\bN=4\r", {"COMMAND AT+CFUN=4"}});
  cases.push_back({"19d_del", "AT+CFUN=44\x7f\r", {"COMMAND AT+CFUN=4"}});
  cases.push_back({"19e_backspace_inside_quotes", "AT+X=\"ab\bc\"\r", {"COMMAND AT+X=\"ac\""}});
  // sdk-nrf lib/at_host/at_host.c uart_rx_handler(): "case 0x08: ... case
  // 0x7F: if (at_cmd_len > 0) at_cmd_len--; return;" -- the quote state is
  // not touched, so after erasing a '"' the host is still inside quotes: the
  // CR is kept and the command ends only after the next '"'.
  cases.push_back({"19f_backspace_keeps_quote_state", "AT+X=\"\b1\r\"\r", {"COMMAND AT+X=1\\r\""}});
  // ... and after erasing a closing '"' it is still outside: the CR ends
  // the command although its quotes no longer pair up.
  cases.push_back({"19g_backspace_after_closing_quote", "AT+X=\"a\"\b\r", {"COMMAND AT+X=\"a"}});
  // at_host.c: NUL outside quotes is "Ignored null; would terminate string
  // early."; inside quotes it is stored and the command, sent with "%s",
  // ends there.
  cases.push_back({"nul_outside_quotes_ignored", std::string("A\0T\0\r", 5), {"COMMAND AT"}});
  cases.push_back({"nul_inside_quotes_ends_the_command",
                   std::string("AT+X=\"a\0b\"\r", 11),
                   {"COMMAND AT+X=\"a"}});
  cases.push_back({"only_nuls_no_answer", std::string("\0\0\r", 3), {}});
  // at_host.c counts any byte above ' ' (unsigned on ARM) as printable.
  cases.push_back({"high_bytes_are_printable", "\xff\r", {"COMMAND \xff"}});
  // Terminators: CR, LF, CRLF once; empty and blank lines give no event.
  cases.push_back({"crlf_counts_once",
                   "AT\r\nAT+CGSN\n\r\nAT+CGMR\r\r",
                   {"COMMAND AT", "COMMAND AT+CGSN", "COMMAND AT+CGMR"}});
  cases.push_back({"nothing_printable", "\r\n   \r\n\b\b\r\x01\n", {}});
  // 12 (DCE side): an over-long command is reported once, at the cap, and
  // discarded up to its terminator; the next command is framed normally.
  cases.push_back({"overflow_then_ok",
                   absl::StrCat("AT+X=", std::string(30, '1'), "\r\nAT\r\n"),
                   {"OVERFLOW 17", "COMMAND AT"},
                   16});
  // Lesson 8: a quoted over-long command (a PEM) keeps its quote state while
  // it is discarded: its own newlines do not end it, its closing quote does
  // not open a new one, and what follows is one normal command. The framer
  // used to reset the quote state at the cap, so every PEM line became a
  // command of its own and the closing '"' swallowed the next one.
  cases.push_back(
      {"overflow_inside_quotes_discards_to_the_closing_quote",
       absl::StrCat("AT%CMNG=0,1,0,\"", std::string(20, 'q'), "\nLINE2\nLINE3\r\n", "\"\r\nAT\r\n"),
       {"OVERFLOW 17", "COMMAND AT"},
       16});
  // 15, exactly as given (odd quote): the cap turns it into one error, no
  // hang; nothing else comes out while the quote stays open.
  cases.push_back({"15_odd_quote_hits_the_cap", "\r\n+X: \"abc\r\nOK\r\n", {"OVERFLOW 9"}, 8});
  cases.push_back({"15_odd_quote_then_closed",
                   "\r\n+X: \"abc\r\nOK\r\nAT\r\n\"\r\nAT\r\n",
                   {"OVERFLOW 9", "COMMAND AT"},
                   8});
  cases.push_back({"exactly_at_cap", "AT+CFUN=4\r", {"COMMAND AT+CFUN=4"}, 9});
  return cases;
}

class FramerCorpusTest : public ::testing::TestWithParam<FramerCase> {};

TEST_P(FramerCorpusTest, SameEventsWholeByteByByteAndRandomSplits) {
  const FramerCase& c = GetParam();
  CommandFramerOptions options;
  options.max_command_bytes = c.max_command_bytes;
  for (const Split& split : AllSplits()) {
    EXPECT_EQ(Frame(c.bytes, split, options), c.expected) << "split: " << split.Name();
  }
}

INSTANTIATE_TEST_SUITE_P(AnchorsCorpus, FramerCorpusTest, ::testing::ValuesIn(FramerCases()),
                         [](const ::testing::TestParamInfo<FramerCase>& param_info) {
                           return "case" + param_info.param.name;
                         });

TEST(CommandFramerTest, PendingBytesAndReset) {
  CommandFramer framer;
  std::vector<FramerEvent> events;
  framer.Feed("AT+CFUN=\"", &events);
  EXPECT_EQ(framer.pending_bytes(), 9u);
  framer.Feed("\r\n", &events);  // Inside quotes: kept.
  EXPECT_THAT(events, IsEmpty());
  EXPECT_EQ(framer.pending_bytes(), 11u);
  framer.Reset();
  EXPECT_EQ(framer.pending_bytes(), 0u);
  framer.Feed("AT\r", &events);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].command, "AT");
}

// Case 18 parsed: the PEM comes back byte-exact.
TEST(ParseCommandLineTest, CmngWriteWithPem) {
  ASSERT_OK_AND_ASSIGN(std::vector<AtCommand> commands,
                       ParseCommandLine(absl::StrCat("AT%CMNG=0,1,0,\"", kPem, "\"")));
  ASSERT_EQ(commands.size(), 1u);
  const AtCommand& c = commands[0];
  EXPECT_EQ(c.name, "%CMNG");
  EXPECT_EQ(c.type, AtCommand::Type::kSet);
  ASSERT_EQ(c.params.size(), 4u);
  EXPECT_EQ(c.params[0].kind, AtParam::Kind::kNumber);
  EXPECT_EQ(c.params[0].number, 0);
  EXPECT_EQ(c.params[1].number, 1);
  EXPECT_EQ(c.params[2].number, 0);
  EXPECT_EQ(c.params[3].kind, AtParam::Kind::kString);
  EXPECT_EQ(c.params[3].text, kPem);
}

// Case 19 parsed.
TEST(ParseCommandLineTest, ChainReadTestSetAction) {
  ASSERT_OK_AND_ASSIGN(std::vector<AtCommand> commands, ParseCommandLine("AT+CFUN=4;+CFUN?"));
  ASSERT_EQ(commands.size(), 2u);
  EXPECT_EQ(commands[0].name, "+CFUN");
  EXPECT_EQ(commands[0].type, AtCommand::Type::kSet);
  ASSERT_EQ(commands[0].params.size(), 1u);
  EXPECT_EQ(commands[0].params[0].number, 4);
  EXPECT_EQ(commands[1].name, "+CFUN");
  EXPECT_EQ(commands[1].type, AtCommand::Type::kRead);
  EXPECT_THAT(commands[1].params, IsEmpty());

  ASSERT_OK_AND_ASSIGN(commands, ParseCommandLine("AT+CFUN=?"));
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands[0].type, AtCommand::Type::kTest);

  ASSERT_OK_AND_ASSIGN(commands, ParseCommandLine("at+cgsn"));
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands[0].name, "+CGSN");
  EXPECT_EQ(commands[0].type, AtCommand::Type::kAction);

  ASSERT_OK_AND_ASSIGN(commands, ParseCommandLine("AT"));
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands[0].name, "");
  EXPECT_EQ(commands[0].type, AtCommand::Type::kAction);

  ASSERT_OK_AND_ASSIGN(commands, ParseCommandLine("  aT#xsleep=1 \r\n"));
  ASSERT_EQ(commands.size(), 1u);
  EXPECT_EQ(commands[0].name, "#XSLEEP");
}

TEST(ParseCommandLineTest, EmptyRawAndNumberParams) {
  ASSERT_OK_AND_ASSIGN(std::vector<AtCommand> commands, ParseCommandLine("AT%CMNG=1,,"));
  ASSERT_EQ(commands.size(), 1u);
  ASSERT_EQ(commands[0].params.size(), 3u);
  EXPECT_EQ(commands[0].params[0].kind, AtParam::Kind::kNumber);
  EXPECT_EQ(commands[0].params[1].kind, AtParam::Kind::kEmpty);
  EXPECT_EQ(commands[0].params[2].kind, AtParam::Kind::kEmpty);

  ASSERT_OK_AND_ASSIGN(commands, ParseCommandLine("AT+X= -5 , abc ,\"q,\r\n;\" ,4294967295,,1a"));
  ASSERT_EQ(commands[0].params.size(), 6u);
  EXPECT_EQ(commands[0].params[0].number, -5);
  EXPECT_EQ(commands[0].params[1].kind, AtParam::Kind::kRaw);
  EXPECT_EQ(commands[0].params[1].text, "abc");
  EXPECT_EQ(commands[0].params[2].kind, AtParam::Kind::kString);
  EXPECT_EQ(commands[0].params[2].text, "q,\r\n;");
  EXPECT_EQ(commands[0].params[3].number, 4294967295);
  EXPECT_EQ(commands[0].params[4].kind, AtParam::Kind::kEmpty);
  EXPECT_EQ(commands[0].params[5].kind, AtParam::Kind::kRaw);
  EXPECT_EQ(commands[0].params[5].text, "1a");

  ASSERT_OK_AND_ASSIGN(commands, ParseCommandLine("AT+X="));
  EXPECT_THAT(commands[0].params, IsEmpty());
  EXPECT_EQ(commands[0].type, AtCommand::Type::kSet);

  ASSERT_OK_AND_ASSIGN(commands, ParseCommandLine("AT+X=\"\""));
  ASSERT_EQ(commands[0].params.size(), 1u);
  EXPECT_EQ(commands[0].params[0].kind, AtParam::Kind::kString);
  EXPECT_EQ(commands[0].params[0].text, "");

  ASSERT_OK_AND_ASSIGN(commands, ParseCommandLine("AT+X=-9223372036854775808"));
  EXPECT_EQ(commands[0].params[0].number, INT64_MIN);
}

TEST(ParseCommandLineTest, BasicCommands) {
  ASSERT_OK_AND_ASSIGN(std::vector<AtCommand> commands, ParseCommandLine("ATE0V1&F;+CMEE=1"));
  ASSERT_EQ(commands.size(), 4u);
  EXPECT_EQ(commands[0].name, "E");
  EXPECT_EQ(commands[0].type, AtCommand::Type::kSet);
  EXPECT_EQ(commands[0].params[0].number, 0);
  EXPECT_EQ(commands[1].name, "V");
  EXPECT_EQ(commands[2].name, "&F");
  EXPECT_EQ(commands[2].type, AtCommand::Type::kAction);
  EXPECT_EQ(commands[3].name, "+CMEE");

  ASSERT_OK_AND_ASSIGN(commands, ParseCommandLine("ATS3?"));
  EXPECT_EQ(commands[0].name, "S3");
  EXPECT_EQ(commands[0].type, AtCommand::Type::kRead);
}

TEST(ParseCommandLineTest, Refusals) {
  EXPECT_THAT(ParseCommandLine("+CFUN?"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("start with \"AT\"")));
  EXPECT_THAT(ParseCommandLine(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseCommandLine("A"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseCommandLine("AT+X=\"abc"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unterminated")));
  EXPECT_THAT(ParseCommandLine("AT+"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("name")));
  EXPECT_THAT(ParseCommandLine("AT+CFUN?x"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseCommandLine("AT+CFUN=?1"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseCommandLine("AT+X=\"a\"b"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("after quoted string")));
  EXPECT_THAT(ParseCommandLine("AT+X=a\"b\""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseCommandLine("AT+X=99999999999999999999"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("out of range")));
  EXPECT_THAT(ParseCommandLine("AT+X=a\x01"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseCommandLine("AT+CFUN=4;;"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseCommandLine("AT*X"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseCommandLine("AT+CGSN+CGMR"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(FormatResponseTest, InfoLinesThenFinal) {
  EXPECT_EQ(FormatResponse({"+CFUN: 4"}, "OK"), "+CFUN: 4\r\nOK\r\n");
  EXPECT_EQ(FormatResponse({}, "ERROR"), "ERROR\r\n");
  EXPECT_EQ(FormatResponse({"a", "b"}, "+CME ERROR: 527"), "a\r\nb\r\n+CME ERROR: 527\r\n");
}

}  // namespace
}  // namespace atbridge::at
