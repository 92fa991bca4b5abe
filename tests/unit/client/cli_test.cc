// The command line as a whole, without any server: --help everywhere,
// usage errors and their exit code, config/env/flag precedence through
// `config show`, commands that need a server in direct mode, `pki`, and the
// completion script.
#include "client/cli.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "client/core/errors.h"
#include "common/pki/pki.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace atbridge::client {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

struct Result {
  int code;
  std::string out;
  std::string err;
};

class CtlCliTest : public ::testing::Test {
 protected:
  Result Run(std::vector<std::string> args, const std::string& stdin_data = "") {
    std::istringstream in(stdin_data);
    std::ostringstream out, err;
    auto vars = env_;
    EnvLookup env = [vars](const std::string& name) -> std::optional<std::string> {
      auto it = vars.find(name);
      if (it == vars.end()) return std::nullopt;
      return it->second;
    };
    CommandContext ctx(env, {&in, &out, &err, false, false, false});
    args.insert(args.begin(), "atbridgectl");
    std::vector<const char*> argv;
    argv.reserve(args.size());
    for (const auto& a : args) argv.push_back(a.c_str());
    int code = RunCli(static_cast<int>(argv.size()), argv.data(), ctx);
    return {code, out.str(), err.str()};
  }

  testing::TempDir dir_;
  std::map<std::string, std::string> env_ = {
      {"XDG_CONFIG_HOME", dir_.File("config")}, {"HOME", dir_.path()}, {"USER", "tester"}};
};

void CollectPaths(const CLI::App& app, const std::vector<std::string>& prefix,
                  std::vector<std::vector<std::string>>* out) {
  out->push_back(prefix);
  for (const CLI::App* sub : app.get_subcommands({})) {
    auto p = prefix;
    p.push_back(sub->get_name());
    CollectPaths(*sub, p, out);
  }
}

TEST_F(CtlCliTest, EveryCommandHasHelp) {
  std::istringstream in;
  std::ostringstream out, err;
  CommandContext ctx(ProcessEnv(), {&in, &out, &err});
  auto app = BuildApp(ctx);
  std::vector<std::vector<std::string>> paths;
  CollectPaths(*app, {}, &paths);
  EXPECT_GT(paths.size(), 30u);
  for (auto path : paths) {
    path.push_back("--help");
    Result r = Run(path);
    std::string joined = ::testing::PrintToString(path);
    EXPECT_EQ(r.code, 0) << joined << r.err;
    EXPECT_THAT(r.out, HasSubstr("Usage:")) << joined;
    EXPECT_THAT(r.out, HasSubstr("--help")) << joined;
  }
  // The top-level help documents exit codes and the environment.
  Result top = Run({"--help"});
  EXPECT_THAT(top.out, HasSubstr("Exit codes:"));
  EXPECT_THAT(top.out, HasSubstr("ATBRIDGE_SERVER"));
  EXPECT_THAT(top.out, HasSubstr("XDG_CONFIG_HOME"));
  EXPECT_EQ(Run({"--version"}).code, 0);
}

TEST_F(CtlCliTest, UsageErrorsAreOneLineWithAHintAndExitTwo) {
  Result r = Run({"devices", "list", "--bogus"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, StartsWith("error: command line (usage): "));
  EXPECT_THAT(r.err, HasSubstr("hint: see 'atbridgectl devices list --help'"));

  r = Run({"creds", "write", "bench1/modem0", "42"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("TYPE"));

  r = Run({});
  EXPECT_EQ(r.code, kExitUsage);

  r = Run({"completion", "fish"});
  EXPECT_EQ(r.code, kExitUsage);
}

TEST_F(CtlCliTest, NoEndpointSaysHowToConfigureOne) {
  Result r = Run({"devices", "list"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, StartsWith("error: devices list (usage): no server or agent to talk to\n"));
  EXPECT_THAT(r.err, HasSubstr("hint: pass --server HOST:PORT"));
}

TEST_F(CtlCliTest, BadDeviceAndTagAreUsageErrorsBeforeAnyCall) {
  Result r = Run({"--server", "127.0.0.1:1", "at", "a/b/c", "AT"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("agent/port"));
  r = Run({"--server", "127.0.0.1:1", "creds", "read", "x", "99999999999", "0"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("security tag"));
  r = Run({"--server", "127.0.0.1:1", "creds", "read", "x", "1", "bogus"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("unknown credential type 'bogus'"));
}

TEST_F(CtlCliTest, ConfigShowReportsPrecedenceAndSources) {
  testing::TempDir cfgdir;
  const std::string cfg = cfgdir.WriteFile(
      "ctl.yaml", "server: file:1\nca: ca.pem\ncert: me.pem\nkey: me.key\ntimeout: 5s\n");
  env_["ATBRIDGE_CONFIG"] = cfg;
  env_["ATBRIDGE_CERT"] = "/env/me.pem";
  env_["ATBRIDGE_SERVER"] = "env:2";
  Result r = Run({"config", "show", "--json", "--key", "/flag/me.key"});
  ASSERT_EQ(r.code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["config_path"], cfg);
  EXPECT_EQ(j["config_loaded"], true);
  EXPECT_EQ(j["mode"], "server");
  EXPECT_EQ(j["address"], "env:2");
  EXPECT_EQ(j["ca"], cfgdir.File("ca.pem"));
  EXPECT_EQ(j["cert"], "/env/me.pem");
  EXPECT_EQ(j["key"], "/flag/me.key");
  EXPECT_EQ(j["timeout"], "5s");
  EXPECT_EQ(j["sources"]["endpoint"], "environment");
  EXPECT_EQ(j["sources"]["ca"], "config file");
  EXPECT_EQ(j["sources"]["cert"], "environment");
  EXPECT_EQ(j["sources"]["key"], "flag");

  // A flag naming an agent beats the environment's server; --config beats
  // ATBRIDGE_CONFIG.
  const std::string other = cfgdir.WriteFile("other.yaml", "timeout: 7s\n");
  r = Run({"--agent", "a:3", "--config", other, "config", "show", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["mode"], "agent");
  EXPECT_EQ(j["address"], "a:3");
  EXPECT_EQ(j["timeout"], "7s");
  // Global flags may also follow the subcommand.
  r = Run({"config", "show", "--json", "--timeout", "9s"});
  EXPECT_EQ(nlohmann::json::parse(r.out)["timeout"], "9s");
}

TEST_F(CtlCliTest, ABrokenConfigFileIsAUsageErrorNamingTheKey) {
  env_["ATBRIDGE_CONFIG"] = dir_.WriteFile("bad.yaml", "server: a:1\nservr: b\n");
  Result r = Run({"config", "show"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("unknown key 'servr'"));
  // An explicit --config that does not exist is an error too.
  r = Run({"--config", dir_.File("missing.yaml"), "config", "show"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("missing.yaml"));
  r = Run({"--timeout", "soon", "config", "show"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("--timeout"));
}

TEST_F(CtlCliTest, ServerOnlyCommandsSaySoInDirectMode) {
  testing::TestPki pki;
  auto files = testing::TestPki::WriteFiles(pki.Client("olga", "operator"), dir_.path(), "olga");
  std::vector<std::string> tls = {"--agent", "127.0.0.1:1",   "--ca",  files.ca_file,
                                  "--cert",  files.cert_file, "--key", files.key_file};
  const std::string pem = dir_.WriteFile("ca.pem.in", "x");
  struct Case {
    std::vector<std::string> args;
    std::string name;
  };
  const Case cases[] = {
      {{"push", "1", "root-ca", pem, "--all"}, "push"},
      {{"rotate", "1", "root-ca", pem, "--all"}, "rotate"},
      {{"jobs", "list"}, "jobs list"},
      {{"jobs", "watch", "j1"}, "jobs watch"},
      {{"jobs", "report", "j1", "--format", "csv"}, "jobs report"},
      {{"audit"}, "audit"},
      {{"devices", "label", "modem0", "a=b"}, "devices label"},
  };
  for (const Case& c : cases) {
    auto args = tls;
    args.insert(args.end(), c.args.begin(), c.args.end());
    Result r = Run(args);
    EXPECT_EQ(r.code, kExitUsage) << c.name << r.err;
    EXPECT_THAT(r.err, HasSubstr("'" + c.name + "' needs the server")) << c.name;
    EXPECT_THAT(r.err, HasSubstr("hint: pass --server HOST:PORT")) << c.name;
  }
}

TEST_F(CtlCliTest, PushNeedsTargets) {
  testing::TestPki pki;
  auto files = testing::TestPki::WriteFiles(pki.Client("olga", "operator"), dir_.path(), "olga");
  const std::string pem = dir_.WriteFile("in.pem", "x");
  Result r = Run({"--server", "127.0.0.1:1", "--ca", files.ca_file, "--cert", files.cert_file,
                  "--key", files.key_file, "push", "1", "root-ca", pem});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("choose the target devices"));
}

TEST_F(CtlCliTest, MissingInputFileIsAUsageError) {
  testing::TestPki pki;
  auto files = testing::TestPki::WriteFiles(pki.Client("olga", "operator"), dir_.path(), "olga");
  Result r =
      Run({"--agent", "127.0.0.1:1", "--ca", files.ca_file, "--cert", files.cert_file, "--key",
           files.key_file, "creds", "write", "modem0", "1", "root-ca", dir_.File("nope.pem")});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("cannot read"));
  r = Run({"--agent", "127.0.0.1:1", "--ca", files.ca_file, "--cert", files.cert_file, "--key",
           files.key_file, "creds", "write", "modem0", "1", "root-ca", "-"},
          /*stdin_data=*/"");
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("stdin is empty"));
}

TEST_F(CtlCliTest, PkiInitThenIssue) {
  Result r = Run({"pki", "init", "--server", "lab:7443"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string pki = dir_.File("config/atbridge/pki");
  struct stat st;
  ASSERT_EQ(stat((pki + "/ca.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(stat((pki + "/tester.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // The config points at the new files, and names us as an admin.
  r = Run({"config", "show", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["address"], "lab:7443");
  EXPECT_EQ(j["cert"], pki + "/tester.pem");
  EXPECT_EQ(j["identity"], "tester (admin)");

  // Again: refused, nothing replaced.
  const std::string ca_before = testing::ReadFileOrDie(pki + "/ca.pem");
  r = Run({"pki", "init"});
  EXPECT_EQ(r.code, kExitFailedPrecondition);
  EXPECT_THAT(r.err, HasSubstr("already exists"));
  EXPECT_THAT(r.err, HasSubstr("--force"));
  EXPECT_EQ(testing::ReadFileOrDie(pki + "/ca.pem"), ca_before);

  r = Run({"pki", "issue", "--role", "agent", "--name", "bench1", "--ip", "10.0.0.5"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("10.0.0.5"));
  r = Run({"--cert", pki + "/bench1.pem", "config", "show", "--json"});
  EXPECT_EQ(nlohmann::json::parse(r.out)["identity"], "bench1 (agent)");
  // The same identity again is simply issued again (e.g. with new names);
  // another role under that name is refused without --force.
  r = Run({"pki", "issue", "--role", "agent", "--name", "bench1"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("replaced the previous one"));
  r = Run({"pki", "issue", "--role", "viewer", "--name", "bench1"});
  EXPECT_EQ(r.code, kExitFailedPrecondition);
  EXPECT_THAT(r.err, HasSubstr("--force"));
  r = Run({"pki", "issue", "--role", "viewer", "--name", "bench1", "--force"});
  EXPECT_EQ(r.code, 0) << r.err;
  r = Run({"pki", "issue", "--role", "admin", "--name", "ca"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("would overwrite the CA"));
  r = Run({"pki", "issue", "--role", "pilot", "--name", "x"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("--role 'pilot'"));
  r = Run({"pki", "issue", "--role", "viewer", "--name", "../evil"});
  EXPECT_EQ(r.code, kExitUsage);
  r = Run({"pki", "issue", "--role", "viewer", "--name", "v", "--dir", dir_.File("nowhere")});
  EXPECT_EQ(r.code, kExitNotFound);
  EXPECT_THAT(r.err, HasSubstr("pki init"));
}

TEST_F(CtlCliTest, PkiInitMakesEverythingALabNeeds) {
  Result r = Run({"pki", "init", "--name", "alice"});
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string pki = dir_.File("config/atbridge/pki");
  struct stat st;
  ASSERT_EQ(stat(pki.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  // The CA, you, the server and one agent; every key 0600.
  const std::map<std::string, std::string> identities = {
      {"alice", "alice (admin)"},
      {"atbridge-server", "atbridge-server (server)"},
      {"lab1", "lab1 (agent)"}};
  for (const auto& [name, identity] : identities) {
    ASSERT_EQ(stat((pki + "/" + name + ".key").c_str(), &st), 0) << name;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << name;
    Result show = Run({"--cert", pki + "/" + name + ".pem", "config", "show", "--json"});
    EXPECT_EQ(nlohmann::json::parse(show.out)["identity"], identity) << name;
  }
  ASSERT_OK_AND_ASSIGN(pki::CertificateInfo server,
                       pki::ParseCertificate(testing::ReadFileOrDie(pki + "/atbridge-server.pem")));
  EXPECT_THAT(server.dns_names, ::testing::Contains("localhost"));
  // What to run next, and never key material.
  EXPECT_THAT(r.out, HasSubstr("atbridge-server --listen 127.0.0.1:7443 --tls-ca " + pki +
                               "/ca.pem --tls-cert " + pki + "/atbridge-server.pem"));
  EXPECT_THAT(r.out, HasSubstr("atbridge-agent --name lab1 --server 127.0.0.1:7443"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("PRIVATE KEY")));
  EXPECT_THAT(r.err, ::testing::Not(HasSubstr("PRIVATE KEY")));
  // As scripts/demo does next: issuing the server and agent again works.
  r = Run({"pki", "issue", "--role", "server", "--name", "atbridge-server", "--dns", "localhost",
           "--ip", "127.0.0.1"});
  EXPECT_EQ(r.code, 0) << r.err;
  r = Run({"pki", "issue", "--role", "agent", "--name", "lab1"});
  EXPECT_EQ(r.code, 0) << r.err;
}

TEST_F(CtlCliTest, PkiInitWritesAbsolutePathsForARelativeDir) {
  // Run from a directory other than the config file's.
  testing::TempDir cwd;
  char old[4096];
  ASSERT_NE(getcwd(old, sizeof(old)), nullptr);
  ASSERT_EQ(chdir(cwd.path().c_str()), 0);
  Result r = Run({"pki", "init", "--dir", "mypki", "--name", "bob", "--agent-name", "bench7",
                  "--server-dns", "lab.example"});
  ASSERT_EQ(chdir(old), 0);
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string yaml = testing::ReadFileOrDie(dir_.File("config/atbridge/ctl.yaml"));
  EXPECT_THAT(yaml, HasSubstr("cert: " + cwd.File("mypki/bob.pem")));
  r = Run({"config", "show", "--json"});
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["cert"], cwd.File("mypki/bob.pem"));
  EXPECT_EQ(j["identity"], "bob (admin)");
  ASSERT_OK_AND_ASSIGN(
      pki::CertificateInfo server,
      pki::ParseCertificate(testing::ReadFileOrDie(cwd.File("mypki/atbridge-server.pem"))));
  EXPECT_EQ(server.dns_names, std::vector<std::string>{"lab.example"});
  struct stat st;
  EXPECT_EQ(stat(cwd.File("mypki/bench7.pem").c_str(), &st), 0);
}

TEST_F(CtlCliTest, PkiInitRefusesNamesThatCollide) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"pki", "init", "--name", "ca"},
        {"pki", "init", "--name", "atbridge-server"},
        {"pki", "init", "--name", "lab1"},
        {"pki", "init", "--agent-name", "ca"}}) {
    Result r = Run(args);
    EXPECT_EQ(r.code, kExitUsage) << args[3] << ": " << r.err;
  }
  struct stat st;
  EXPECT_NE(stat(dir_.File("config/atbridge/pki/ca.pem").c_str(), &st), 0);
}

TEST_F(CtlCliTest, ConfigPathsUnderTildeAreUnderHome) {
  testing::TestPki pki;
  testing::TestPki::WriteFiles(pki.Client("olga", "operator"), dir_.path(), "olga");
  dir_.WriteFile("config/atbridge/ctl.yaml",
                 "agent: 127.0.0.1:1\nca: ~/ca.pem\ncert: ~/olga.pem\nkey: ~/olga.key\n");
  Result r = Run({"config", "show", "--json"});
  ASSERT_EQ(r.code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["cert"], dir_.File("olga.pem"));
  EXPECT_EQ(j["identity"], "olga (operator)");
}

TEST_F(CtlCliTest, BashCompletionCoversTheCommandTree) {
  Result r = Run({"completion", "bash"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("complete -o default -F _atbridgectl atbridgectl"));
  for (const char* word : {"devices", "attach", "creds", "push", "rotate", "jobs", "lease", "audit",
                           "pki", "completion", "--server", "atbridgectl/creds/write)"}) {
    EXPECT_THAT(r.out, HasSubstr(word)) << word;
  }
  Result z = Run({"completion", "zsh"});
  EXPECT_THAT(z.out, StartsWith("autoload -U +X bashcompinit"));
}

}  // namespace
}  // namespace atbridge::client
