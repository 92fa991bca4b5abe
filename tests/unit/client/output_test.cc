#include "client/core/output.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace atbridge::client {
namespace {

TEST(CtlTableTest, ColumnsAlignAndEmptyCellsShowADash) {
  Table t({"IMEI", "DEVICE", "STATE"});
  t.AddRow({"356187266000004", "bench1/modem0", "online"});
  t.AddRow({"", "bench1/m1", ""});
  EXPECT_EQ(t.Render(),
            "IMEI             DEVICE         STATE\n"
            "356187266000004  bench1/modem0  online\n"
            "-                bench1/m1      -\n");
  EXPECT_EQ(t.rows(), 2u);
}

TEST(CtlTableTest, ShortRowsArePadded) {
  Table t({"A", "B"});
  t.AddRow({"x"});
  EXPECT_EQ(t.Render(), "A  B\nx  -\n");
}

TEST(CtlCsvTest, QuotesOnlyWhatNeedsQuoting) {
  EXPECT_EQ(CsvField("plain"), "plain");
  EXPECT_EQ(CsvField("a,b"), "\"a,b\"");
  EXPECT_EQ(CsvField("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(CsvField("two\nlines"), "\"two\nlines\"");
  Table t({"IMEI", "STATUS"});
  t.AddRow({"1", "FAILED: a, b"});
  EXPECT_EQ(t.RenderCsv(), "IMEI,STATUS\r\n1,\"FAILED: a, b\"\r\n");
}

TEST(CtlJsonTest, ProtoFieldNamesEveryFieldAndEnumNames) {
  v1::Device d;
  d.set_imei("356187266000004");
  d.set_agent("bench1");
  (*d.mutable_labels())["slot"] = "a";
  auto* c = d.add_credentials();
  c->set_sec_tag(42);
  c->set_type(v1::CLIENT_CERT);
  nlohmann::json j = nlohmann::json::parse(ToJson(d));
  EXPECT_EQ(j["imei"], "356187266000004");
  EXPECT_EQ(j["agent"], "bench1");
  EXPECT_EQ(j["labels"]["slot"], "a");
  // Defaults are present, so consumers can rely on the field set.
  EXPECT_EQ(j["online"], false);
  EXPECT_EQ(j["alias"], "");
  EXPECT_EQ(j["credentials"][0]["sec_tag"], 42);
  EXPECT_EQ(j["credentials"][0]["type"], "CLIENT_CERT");
  EXPECT_TRUE(j["credentials"][0].contains("sha256"));
  EXPECT_FALSE(j.contains("lastSeen"));  // snake_case, not lowerCamelCase.
  EXPECT_EQ(ToJson(d).back(), '\n');
}

TEST(CtlFormatTest, TimesDurationsLabelsAndStates) {
  google::protobuf::Timestamp ts;
  EXPECT_EQ(FormatTimestamp(ts), "");
  ts.set_seconds(1795694400);  // 2026-11-26T12:00:00Z
  EXPECT_EQ(FormatTimestamp(ts), "2026-11-26T12:00:00Z");
  google::protobuf::Duration d;
  EXPECT_EQ(FormatProtoDuration(d), "");
  d.set_seconds(1);
  d.set_nanos(234567891);
  EXPECT_EQ(FormatProtoDuration(d), "1.23s");
  d.set_seconds(0);
  d.set_nanos(415295000);
  EXPECT_EQ(FormatProtoDuration(d), "415ms");
  d.set_nanos(166526);
  EXPECT_EQ(FormatProtoDuration(d), "166us");
  EXPECT_EQ(FormatLabels(std::map<std::string, std::string>{{"b", "2"}, {"a", "1"}}), "a=1,b=2");
  EXPECT_EQ(ExecutionStateName(v1::ROLLED_BACK), "rolled-back");
  EXPECT_EQ(JobStateName(v1::JOB_IN_PROGRESS), "in-progress");
  EXPECT_EQ(PortStateName(v1::PORT_STATE_READY), "ready");
  EXPECT_EQ(RoleName(v1::ROLE_OPERATOR), "operator");
  EXPECT_EQ(PortText("bench1", "modem0"), "bench1/modem0");
  EXPECT_EQ(PortText("", "modem0"), "modem0");
}

TEST(CtlCountsTest, DoneAndFailed) {
  v1::JobCounts c;
  c.set_succeeded(3);
  c.set_skipped(1);
  c.set_failed(1);
  c.set_timed_out(1);
  c.set_rolled_back(1);
  c.set_canceled(1);
  c.set_in_progress(2);
  c.set_queued(5);
  EXPECT_EQ(DoneCount(c), 8u);
  EXPECT_EQ(FailedCount(c), 4u);
}

}  // namespace
}  // namespace atbridge::client
