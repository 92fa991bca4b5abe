#include "common/log.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace atbridge {
namespace {

class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    log::SetSinkForTesting([this](log::Level l, absl::string_view m) {
      messages_.emplace_back(m);
      levels_.push_back(l);
    });
  }
  void TearDown() override {
    log::SetSinkForTesting(nullptr);
    log::SetLevel(log::Level::kInfo);
  }
  std::vector<std::string> messages_;
  std::vector<log::Level> levels_;
};

TEST_F(LogTest, StreamsMessagesAtOrAboveLevel) {
  log::SetLevel(log::Level::kInfo);
  ATB_LOG(DEBUG) << "hidden";
  ATB_LOG(INFO) << "port "
                << "modem0"
                << " ready, " << 3 << " tries";
  ATB_LOG(ERROR) << "boom";
  ASSERT_EQ(messages_.size(), 2u);
  EXPECT_EQ(messages_[0], "port modem0 ready, 3 tries");
  EXPECT_EQ(levels_[1], log::Level::kError);
}

TEST_F(LogTest, DisabledLevelDoesNotEvaluateArguments) {
  log::SetLevel(log::Level::kWarning);
  int evaluated = 0;
  auto side_effect = [&] { return ++evaluated; };
  ATB_LOG(INFO) << side_effect();
  EXPECT_EQ(evaluated, 0);
  ATB_LOG(WARNING) << side_effect();
  EXPECT_EQ(evaluated, 1);
}

TEST_F(LogTest, ParsesLevelNames) {
  log::Level l;
  EXPECT_TRUE(log::ParseLevel("DEBUG", &l));
  EXPECT_EQ(l, log::Level::kDebug);
  EXPECT_TRUE(log::ParseLevel("warn", &l));
  EXPECT_EQ(l, log::Level::kWarning);
  EXPECT_FALSE(log::ParseLevel("loud", &l));
}

}  // namespace
}  // namespace atbridge
