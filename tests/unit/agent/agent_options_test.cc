#include "agent/config/agent_options.h"

#include <gtest/gtest.h>

#include "tests/testing/status_matchers.h"

namespace atbridge::agent {
namespace {

using ::atbridge::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kConfig[] = R"(
name: lab1
listen: 0.0.0.0:7444
tls: {ca: /etc/atbridge/ca.pem, cert: /etc/atbridge/lab1.pem, key: /etc/atbridge/lab1.key}
server: {address: atbridge.example:7443, server_name: atbridge-server}
lease_ttl: 15m
transcript_dir: /var/log/atbridge
ports:
  - name: dk0
    device: /dev/ttyACM0
    baud: 115200
    flow_control: rtscts
    labels: {board: nrf9160dk, rack: "3"}
  - name: thingy
    device: /dev/ttyACM2
    flow_control: none
    terminator: cr
    command_timeout: 20s
    max_command_bytes: 2048
  - name: slow
    device: /dev/ttyUSB0
    baud: 9600
    pacing: {chunk_bytes: 16, gap: 20ms}
)";

TEST(AgentOptionsTest, ParsesAFullConfig) {
  ASSERT_OK_AND_ASSIGN(AgentOptions o, ParseAgentOptionsYaml(kConfig));
  ASSERT_OK(FinalizeAndValidate(&o));
  EXPECT_EQ(o.name, "lab1");
  EXPECT_EQ(o.listen, "0.0.0.0:7444");
  EXPECT_EQ(o.tls.key_file, "/etc/atbridge/lab1.key");
  EXPECT_EQ(o.server, "atbridge.example:7443");
  EXPECT_EQ(o.server_name_override, "atbridge-server");
  EXPECT_EQ(o.lease_ttl, absl::Minutes(15));
  ASSERT_EQ(o.ports.size(), 3u);
  EXPECT_TRUE(o.ports[0].serial.rtscts);
  EXPECT_EQ(o.ports[0].pacing.chunk_bytes, 0u);  // RTS/CTS: no pacing.
  EXPECT_EQ(o.ports[0].labels.at("rack"), "3");
  EXPECT_EQ(o.ports[0].transcript_file, "/var/log/atbridge/dk0.log");
  EXPECT_FALSE(o.ports[1].serial.rtscts);
  EXPECT_EQ(o.ports[1].terminator, "\r");
  EXPECT_EQ(o.ports[1].command_timeout, absl::Seconds(20));
  EXPECT_EQ(o.ports[1].max_command_bytes, 2048u);
  // Auto pacing at 115200: 32-byte chunks 1.1 x their 2.78 ms line time apart.
  EXPECT_EQ(o.ports[1].pacing.chunk_bytes, kAutoPacingChunkBytes);
  EXPECT_EQ(o.ports[1].pacing.gap, absl::Microseconds(3055));
  EXPECT_EQ(o.ports[2].pacing.chunk_bytes, 16u);
  EXPECT_EQ(o.ports[2].pacing.gap, absl::Milliseconds(20));
}

TEST(AgentOptionsTest, UnknownKeysAreErrorsWithTheLine) {
  EXPECT_THAT(ParseAgentOptionsYaml("name: a\nports:\n  - name: p\n    devcie: /dev/x\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       ::testing::AllOf(HasSubstr("devcie"), HasSubstr("line 4"))));
  EXPECT_THAT(ParseAgentOptionsYaml("nmae: a\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("nmae")));
  EXPECT_THAT(ParseAgentOptionsYaml("name: [unclosed\n"),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(AgentOptionsTest, ValidationNamesTheProblem) {
  AgentOptions o;
  o.name = "lab1";
  o.tls = {.ca_file = "c", .cert_file = "c", .key_file = "k"};
  o.ports.push_back({.name = "p", .device = "/dev/x"});
  o.ports.push_back({.name = "p", .device = "/dev/y"});
  EXPECT_THAT(FinalizeAndValidate(&o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("twice")));
  o.ports.pop_back();
  o.ports[0].serial.data_bits = 9;
  EXPECT_THAT(FinalizeAndValidate(&o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("data_bits")));
  o.ports[0].serial.data_bits = 8;
  o.name = "bad name";
  EXPECT_THAT(FinalizeAndValidate(&o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("agent name")));
  o.name = "lab1";
  o.tls.key_file.clear();
  EXPECT_THAT(FinalizeAndValidate(&o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("tls")));
}

TEST(AgentOptionsTest, PortFlag) {
  PortOptions p;
  ASSERT_OK(
      ParsePortFlag("dk0=/dev/ttyACM0,baud=9600,flow=rtscts,label.board=nrf9151dk,timeout=5s", &p));
  EXPECT_EQ(p.name, "dk0");
  EXPECT_EQ(p.device, "/dev/ttyACM0");
  EXPECT_EQ(p.serial.baud, 9600u);
  EXPECT_TRUE(p.serial.rtscts);
  EXPECT_EQ(p.labels.at("board"), "nrf9151dk");
  EXPECT_EQ(p.command_timeout, absl::Seconds(5));
  PortOptions q;
  ASSERT_OK(ParsePortFlag("x=/dev/y,pacing=32:3ms", &q));
  EXPECT_FALSE(q.pacing_auto);
  EXPECT_EQ(q.pacing.chunk_bytes, 32u);
  EXPECT_EQ(q.pacing.gap, absl::Milliseconds(3));
  EXPECT_THAT(ParsePortFlag("nodevice", &q), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParsePortFlag("a=/dev/b,colour=blue", &q),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("colour")));
}

TEST(AgentOptionsTest, Durations) {
  EXPECT_EQ(*ParseDurationFlag("250ms"), absl::Milliseconds(250));
  EXPECT_EQ(*ParseDurationFlag("7"), absl::Seconds(7));
  EXPECT_FALSE(ParseDurationFlag("soon").ok());
}

}  // namespace
}  // namespace atbridge::agent
