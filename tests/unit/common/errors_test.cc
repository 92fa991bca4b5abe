#include "common/status/errors.h"

#include <gtest/gtest.h>

#include <cerrno>

#include "tests/testing/status_matchers.h"

namespace atbridge {
namespace {

using ::atbridge::testing::StatusIs;
using ::testing::HasSubstr;

TEST(ErrorsTest, ErrnoMapsToRetryContractCodes) {
  EXPECT_OK(PosixError(0, "x"));
  EXPECT_THAT(PosixError(ENOENT, "open /dev/ttyACM9"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("open /dev/ttyACM9")));
  EXPECT_THAT(PosixError(EIO, "read"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(PosixError(ENXIO, "open"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(PosixError(EACCES, "open"), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(PosixError(ETIMEDOUT, "x"), StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(PosixError(EINVAL, "x"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(ErrorsTest, ErrnoMessageNamesWhatFailed) {
  absl::Status s = PosixError(EIO, "read /dev/ttyACM0");
  EXPECT_EQ(s.message(), "read /dev/ttyACM0: Input/output error");
}

TEST(ErrorsTest, FromErrorCodeUsesErrnoForSystemCategory) {
  std::error_code ec(EIO, std::system_category());
  EXPECT_THAT(FromErrorCode(ec, "write"), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_OK(FromErrorCode(std::error_code(), "write"));
}

TEST(ErrorsTest, AnnotatePrefixesAndKeepsCode) {
  absl::Status s = Annotate(absl::DataLossError("hash mismatch"), "modem0");
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss, "modem0: hash mismatch"));
  EXPECT_OK(Annotate(absl::OkStatus(), "x"));
}

}  // namespace
}  // namespace atbridge
