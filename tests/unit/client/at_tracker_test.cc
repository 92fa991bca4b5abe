#include "client/console/at_tracker.h"

#include <gtest/gtest.h>

namespace atbridge::client {
namespace {

TEST(CtlAtTrackerTest, CountsCommandLinesAndTheirFinalResults) {
  AtTracker t;
  t.Sent("AT+CGSN\r\nAT+CGMR\r");
  EXPECT_EQ(t.pending(), 2);
  t.Sent("\n\r\n");  // Empty lines are no commands.
  EXPECT_EQ(t.pending(), 2);
  // Both answers in one chunk, split oddly.
  t.Received("351234567890123\r\nO");
  EXPECT_EQ(t.pending(), 2);
  t.Received("K\r\nmfw_nrf91x1_2.0.2\r\nOK");
  EXPECT_EQ(t.pending(), 1);
  t.Received("\r\n");
  EXPECT_EQ(t.pending(), 0);
}

TEST(CtlAtTrackerTest, AQuotedMultiLinePemIsOneCommandAndErrorsAreFinal) {
  AtTracker t;
  t.Sent("AT%CMNG=0,42,0,\"-----BEGIN CERTIFICATE-----\nMIIB\r\n-----END CERTIFICATE-----\"\r\n");
  EXPECT_EQ(t.pending(), 1);
  t.Sent("AT%CMNG=2,42,9\r\nAT+NOSUCH\r\n");
  EXPECT_EQ(t.pending(), 3);
  t.Received("+CME ERROR: 527\r\n");
  EXPECT_EQ(t.pending(), 2);
  // A URC in between ends nothing.
  t.Received("+CEREG: 2\r\n");
  EXPECT_EQ(t.pending(), 2);
  t.Received("+CME ERROR: 513\r\nERROR\r\n");
  EXPECT_EQ(t.pending(), 0);
  // Output with nothing pending never goes negative.
  t.Received("OK\r\n");
  EXPECT_EQ(t.pending(), 0);
}

TEST(CtlAtTrackerTest, AQuotedPemReadBackEndsAtTheFinalResultOutsideQuotes) {
  AtTracker t;
  t.Sent("AT%CMNG=2,42,0\r\n");
  t.Received("%CMNG: 42,0,\"AB\",\"-----BEGIN\r\nOK\r\n-----END\"\r\n");
  EXPECT_EQ(t.pending(), 1) << "an OK inside quotes is content";
  t.Received("OK\r\n");
  EXPECT_EQ(t.pending(), 0);
}

}  // namespace
}  // namespace atbridge::client
