#include "common/at/cme.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "common/status/retry.h"
#include "tests/testing/status_matchers.h"

namespace atbridge::at {
namespace {

using ::atbridge::testing::IsOk;
using ::atbridge::testing::StatusIs;
using ::testing::HasSubstr;
using Code = absl::StatusCode;

FinalResult Cme(int code) {
  FinalResult final;
  final.kind = FinalKind::kCmeError;
  final.code = code;
  final.line = "+CME ERROR: " + std::to_string(code);
  return final;
}

TEST(CmeTableTest, CoversDocumentedCodes) {
  std::vector<int> codes = {0, 23, 50, 51, 60};
  for (int code = 513; code <= 529; ++code) codes.push_back(code);
  for (int code : codes) {
    const CmeInfo* info = LookupCme(code);
    ASSERT_NE(info, nullptr) << code;
    EXPECT_EQ(info->code, code);
    EXPECT_GT(std::string(info->name).size(), 3u) << code;
    EXPECT_GT(std::string(info->explanation).size(), 30u) << code;
    EXPECT_NE(info->status, Code::kOk) << code;
  }
  EXPECT_EQ(LookupCme(1), nullptr);
  EXPECT_EQ(LookupCme(512), nullptr);
  EXPECT_EQ(LookupCme(530), nullptr);
  EXPECT_EQ(LookupCme(-1), nullptr);
}

TEST(CmeTableTest, StatusCodesAreTheRetryContract) {
  const std::pair<int, Code> expected[] = {
      {513, Code::kNotFound},           {514, Code::kPermissionDenied},
      {515, Code::kResourceExhausted},  {516, Code::kFailedPrecondition},
      {517, Code::kFailedPrecondition}, {518, Code::kFailedPrecondition},
      {519, Code::kAlreadyExists},      {520, Code::kPermissionDenied},
      {523, Code::kInternal},           {527, Code::kInvalidArgument},
      {528, Code::kUnavailable},        {50, Code::kInvalidArgument},
  };
  for (const auto& [code, status] : expected) {
    ASSERT_NE(LookupCme(code), nullptr);
    EXPECT_EQ(LookupCme(code)->status, status) << code;
  }
  EXPECT_TRUE(IsRetryable(LookupCme(528)->status));
  EXPECT_FALSE(IsRetryable(LookupCme(518)->status));
  EXPECT_FALSE(IsRetryable(LookupCme(527)->status));
}

TEST(StatusFromFinalTest, MessageFormat) {
  EXPECT_THAT(StatusFromFinal(Cme(518), "write sec_tag 20 type 0 on modem0"),
              StatusIs(Code::kFailedPrecondition,
                       "write sec_tag 20 type 0 on modem0: +CME ERROR: 518 (not allowed in active "
                       "state): The modem is active; credentials can only be written or deleted "
                       "in CFUN=4 or 0. Send AT+CFUN=4 first and restore the mode afterwards."));
  EXPECT_THAT(StatusFromFinal(Cme(527), "write sec_tag 20 type 0 on modem0"),
              StatusIs(Code::kInvalidArgument,
                       HasSubstr(": +CME ERROR: 527 (invalid content): The modem rejected the "
                                 "content; check PEM newlines and indentation")));
  EXPECT_THAT(StatusFromFinal(Cme(528), "x"),
              StatusIs(Code::kUnavailable, HasSubstr("power-off warning")));
  EXPECT_THAT(StatusFromFinal(Cme(777), "list on modem0"),
              StatusIs(Code::kUnknown, "list on modem0: +CME ERROR: 777 (unknown code)"));
}

TEST(StatusFromFinalTest, OtherFinals) {
  FinalResult ok;
  ok.kind = FinalKind::kOk;
  EXPECT_THAT(StatusFromFinal(ok, "x"), IsOk());

  FinalResult error;
  error.kind = FinalKind::kError;
  error.line = "ERROR";
  EXPECT_THAT(
      StatusFromFinal(error, "read"),
      StatusIs(Code::kUnknown, "read: modem answered ERROR; enable AT+CMEE=1 for a reason"));

  FinalResult text;
  text.kind = FinalKind::kCmeText;
  text.line = "+CME ERROR: invalid";
  EXPECT_THAT(StatusFromFinal(text, "op"), StatusIs(Code::kUnknown, "op: +CME ERROR: invalid"));

  FinalResult cms;
  cms.kind = FinalKind::kCmsError;
  cms.code = 500;
  cms.line = "+CMS ERROR: 500";
  EXPECT_THAT(StatusFromFinal(cms, "op"), StatusIs(Code::kUnknown, "op: +CMS ERROR: 500"));

  FinalResult none;
  EXPECT_FALSE(StatusFromFinal(none, "op").ok());
  EXPECT_THAT(StatusFromFinal(Cme(513), ""),
              StatusIs(Code::kNotFound, HasSubstr("+CME ERROR: 513")));
}

}  // namespace
}  // namespace atbridge::at
