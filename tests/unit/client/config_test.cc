#include "client/core/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace atbridge::client {
namespace {

using ::testing::HasSubstr;

EnvLookup FakeEnv(const std::map<std::string, std::string>& vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
}

TEST(CtlConfigPathTest, HonoursXdgConfigHomeThenHome) {
  EXPECT_EQ(DefaultConfigPath(FakeEnv({{"XDG_CONFIG_HOME", "/x"}, {"HOME", "/home/u"}})),
            "/x/atbridge/ctl.yaml");
  EXPECT_EQ(DefaultConfigPath(FakeEnv({{"HOME", "/home/u"}})), "/home/u/.config/atbridge/ctl.yaml");
  EXPECT_EQ(DefaultConfigPath(FakeEnv({{"ATBRIDGE_CONFIG", "/etc/ctl.yaml"}, {"HOME", "/h"}})),
            "/etc/ctl.yaml");
  EXPECT_EQ(DefaultConfigDir(FakeEnv({{"XDG_CONFIG_HOME", "/x"}})), "/x/atbridge");
}

TEST(CtlConfigYamlTest, ParsesEveryKeyAndResolvesRelativePaths) {
  ASSERT_OK_AND_ASSIGN(ConnectionSettings s,
                       ParseConfigYaml("server: lab:7443\nca: pki/ca.pem\ncert: /abs/me.pem\n"
                                       "key: pki/me.key\nserver_name: atbridge.lab\n"
                                       "timeout: 45s\n",
                                       "/home/u/.config/atbridge", "ctl.yaml"));
  EXPECT_EQ(s.server, "lab:7443");
  EXPECT_EQ(s.ca, "/home/u/.config/atbridge/pki/ca.pem");
  EXPECT_EQ(s.cert, "/abs/me.pem");
  EXPECT_EQ(s.key, "/home/u/.config/atbridge/pki/me.key");
  EXPECT_EQ(s.server_name, "atbridge.lab");
  ASSERT_TRUE(s.timeout.has_value());
  EXPECT_EQ(*s.timeout, absl::Seconds(45));
}

TEST(CtlConfigYamlTest, ExpandsTildeToHome) {
  ASSERT_OK_AND_ASSIGN(ConnectionSettings s,
                       ParseConfigYaml("ca: ~/pki/ca.pem\ncert: ~user/me.pem\nkey: pki/me.key\n",
                                       "/etc/atbridge", "ctl.yaml", "/home/u"));
  EXPECT_EQ(s.ca, "/home/u/pki/ca.pem");
  EXPECT_EQ(s.cert, "/etc/atbridge/~user/me.pem") << "only ~/ is expanded";
  EXPECT_EQ(s.key, "/etc/atbridge/pki/me.key");
}

TEST(CtlConfigYamlTest, UnknownKeysAndBadValuesNameTheLine) {
  EXPECT_THAT(ParseConfigYaml("server: a:1\nsevrer: b:2\n", "/d", "ctl.yaml"),
              testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                HasSubstr("ctl.yaml:2: unknown key 'sevrer'")));
  EXPECT_THAT(ParseConfigYaml("timeout: soon\n", "/d", "ctl.yaml"),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("timeout")));
  EXPECT_THAT(ParseConfigYaml("- a\n- b\n", "/d", "ctl.yaml"),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("mapping")));
  EXPECT_THAT(ParseConfigYaml("server: [a, b]\n", "/d", "ctl.yaml"),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("string")));
  EXPECT_THAT(ParseConfigYaml("server: [a, b\n", "/d", "ctl.yaml"),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ctl.yaml")));
  ASSERT_OK_AND_ASSIGN(ConnectionSettings empty, ParseConfigYaml("", "/d", "ctl.yaml"));
  EXPECT_TRUE(empty.server.empty());
}

TEST(CtlConfigYamlTest, RenderedConfigParsesBack) {
  ConnectionSettings s;
  s.server = "127.0.0.1:7443";
  s.ca = "/p/ca.pem";
  s.cert = "/p/alice.pem";
  s.key = "/p/alice.key";
  s.timeout = absl::Seconds(10);
  ASSERT_OK_AND_ASSIGN(ConnectionSettings back, ParseConfigYaml(RenderConfigYaml(s), "/d", "x"));
  EXPECT_EQ(back.server, s.server);
  EXPECT_EQ(back.ca, s.ca);
  EXPECT_EQ(back.cert, s.cert);
  EXPECT_EQ(back.key, s.key);
  EXPECT_TRUE(back.agent.empty());
  EXPECT_EQ(back.timeout, s.timeout);
}

TEST(CtlConfigFileTest, MissingFileIsNotFound) {
  testing::TempDir dir;
  EXPECT_THAT(LoadConfigFile(dir.File("nope.yaml")),
              testing::StatusIs(absl::StatusCode::kNotFound));
  std::string path = dir.WriteFile("ctl.yaml", "ca: ca.pem\n");
  ASSERT_OK_AND_ASSIGN(ConnectionSettings s, LoadConfigFile(path));
  EXPECT_EQ(s.ca, dir.File("ca.pem"));
}

TEST(CtlEnvTest, ReadsEveryVariable) {
  ASSERT_OK_AND_ASSIGN(ConnectionSettings s,
                       SettingsFromEnv(FakeEnv({{"ATBRIDGE_SERVER", "s:1"},
                                                {"ATBRIDGE_AGENT", "a:2"},
                                                {"ATBRIDGE_CA", "~/ca.pem"},
                                                {"ATBRIDGE_CERT", "/c.pem"},
                                                {"ATBRIDGE_KEY", "/c.key"},
                                                {"ATBRIDGE_SERVER_NAME", "name"},
                                                {"ATBRIDGE_TIMEOUT", "2m"},
                                                {"HOME", "/home/u"}})));
  EXPECT_EQ(s.server, "s:1");
  EXPECT_EQ(s.agent, "a:2");
  EXPECT_EQ(s.ca, "/home/u/ca.pem");
  EXPECT_EQ(s.cert, "/c.pem");
  EXPECT_EQ(s.key, "/c.key");
  EXPECT_EQ(s.server_name, "name");
  EXPECT_EQ(s.timeout, absl::Minutes(2));
  EXPECT_THAT(SettingsFromEnv(FakeEnv({{"ATBRIDGE_TIMEOUT", "-1s"}})),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ATBRIDGE_TIMEOUT")));
}

TEST(CtlResolveTest, FlagsBeatEnvironmentBeatFile) {
  ConnectionSettings flags, env, file;
  file.server = "file:1";
  file.ca = "/file/ca.pem";
  file.cert = "/file/c.pem";
  file.key = "/file/c.key";
  file.timeout = absl::Seconds(5);
  env.cert = "/env/c.pem";
  env.server = "env:1";
  flags.key = "/flag/c.key";
  ASSERT_OK_AND_ASSIGN(ResolvedConfig r, Resolve(flags, env, file));
  EXPECT_EQ(r.mode, Mode::kServer);
  EXPECT_EQ(r.address, "env:1");
  EXPECT_EQ(r.ca, "/file/ca.pem");
  EXPECT_EQ(r.cert, "/env/c.pem");
  EXPECT_EQ(r.key, "/flag/c.key");
  EXPECT_EQ(r.timeout, absl::Seconds(5));
  EXPECT_TRUE(r.timeout_explicit);
  EXPECT_EQ(r.sources["endpoint"], Source::kEnvironment);
  EXPECT_EQ(r.sources["ca"], Source::kConfigFile);
  EXPECT_EQ(r.sources["cert"], Source::kEnvironment);
  EXPECT_EQ(r.sources["key"], Source::kFlag);
  EXPECT_EQ(r.sources["timeout"], Source::kConfigFile);
  EXPECT_EQ(r.sources["server_name"], Source::kUnset);
}

TEST(CtlResolveTest, TheHighestSourceNamingAnEndpointDecidesTheMode) {
  ConnectionSettings flags, env, file;
  file.server = "file:1";
  env.agent = "agent:2";
  ASSERT_OK_AND_ASSIGN(ResolvedConfig r, Resolve(flags, env, file));
  EXPECT_EQ(r.mode, Mode::kAgent);
  EXPECT_EQ(r.address, "agent:2");

  flags.server = "flag:3";
  ASSERT_OK_AND_ASSIGN(r, Resolve(flags, env, file));
  EXPECT_EQ(r.mode, Mode::kServer);
  EXPECT_EQ(r.address, "flag:3");
  EXPECT_EQ(r.sources["endpoint"], Source::kFlag);

  // One source naming both means the server.
  ConnectionSettings none;
  file.agent = "fileagent:4";
  ASSERT_OK_AND_ASSIGN(r, Resolve(none, none, file));
  EXPECT_EQ(r.mode, Mode::kServer);
  EXPECT_EQ(r.address, "file:1");

  // Both on the command line is a mistake.
  flags.agent = "flagagent:5";
  EXPECT_THAT(Resolve(flags, none, none),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--agent")));
}

TEST(CtlResolveTest, NothingConfiguredMeansNoModeAndTheDefaultTimeout) {
  ConnectionSettings none;
  ASSERT_OK_AND_ASSIGN(ResolvedConfig r, Resolve(none, none, none));
  EXPECT_EQ(r.mode, Mode::kNone);
  EXPECT_EQ(r.timeout, kDefaultTimeout);
  EXPECT_FALSE(r.timeout_explicit);
  EXPECT_EQ(r.sources["timeout"], Source::kDefault);
}

TEST(CtlDurationTest, ParsesPositiveDurations) {
  EXPECT_EQ(*ParsePositiveDuration("500ms"), absl::Milliseconds(500));
  EXPECT_EQ(*ParsePositiveDuration("1h30m"), absl::Minutes(90));
  EXPECT_FALSE(ParsePositiveDuration("0s").ok());
  EXPECT_FALSE(ParsePositiveDuration("10").ok());
  EXPECT_FALSE(ParsePositiveDuration("inf").ok());
  EXPECT_EQ(FormatDurationShort(absl::Seconds(30)), "30s");
}

}  // namespace
}  // namespace atbridge::client
