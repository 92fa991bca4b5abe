#include "tests/e2e/client/lab.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"

extern char** environ;

namespace atbridge::client::e2e {

using testing::BinaryPath;

CtlResult RunCapture(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                     const std::string& stdin_data, absl::Duration timeout) {
  CtlResult result;
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
    ADD_FAILURE() << "pipe: " << std::strerror(errno);
    return result;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  std::vector<std::string> env_store;
  for (char** e = environ; *e != nullptr; ++e) {
    if (absl::StartsWith(*e, "ATBRIDGE_") || absl::StartsWith(*e, "XDG_CONFIG_HOME=")) continue;
    env_store.emplace_back(*e);
  }
  env_store.insert(env_store.end(), env.begin(), env.end());
  std::vector<char*> envp, args;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args_store = argv;
  for (auto& a : args_store) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, args[0], &fa, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  close(err[1]);
  if (rc != 0) {
    ADD_FAILURE() << "spawn " << argv[0] << ": " << std::strerror(rc);
    close(in[1]);
    close(out[0]);
    close(err[0]);
    return result;
  }
  // Small inputs fit the pipe; write, then close so the child sees EOF.
  size_t off = 0;
  while (off < stdin_data.size()) {
    ssize_t n = write(in[1], stdin_data.data() + off, stdin_data.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  close(in[1]);
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout));
  struct pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* sinks[2] = {&result.out, &result.err};
  int open_fds = 2;
  while (open_fds > 0) {
    int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    deadline - std::chrono::steady_clock::now())
                                    .count());
    if (left <= 0) {
      kill(pid, SIGKILL);
      ADD_FAILURE() << argv[1] << " did not finish in time; output so far:\n"
                    << result.out << result.err;
      break;
    }
    int r = poll(fds, 2, left);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[8192];
      ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        sinks[i]->append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  for (auto& f : fds) {
    if (f.fd >= 0) close(f.fd);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

std::vector<std::string> Lab::Env() const {
  std::vector<std::string> env = {absl::StrCat("XDG_CONFIG_HOME=", dir_.File("config")),
                                  absl::StrCat("HOME=", dir_.path()), "USER=alice"};
  if (!server_addr_.empty()) env.push_back(absl::StrCat("ATBRIDGE_SERVER=", server_addr_));
  return env;
}

CtlResult Lab::Ctl(std::vector<std::string> args, const std::string& stdin_data) {
  args.insert(args.begin(), BinaryPath("atbridgectl"));
  return RunCapture(args, Env(), stdin_data);
}

CtlResult Lab::CtlAs(const std::string& who, std::vector<std::string> args,
                     const std::string& stdin_data) {
  args.insert(args.begin(), {"--cert", absl::StrCat(pki_dir_, "/", who, ".pem"), "--key",
                             absl::StrCat(pki_dir_, "/", who, ".key")});
  return Ctl(std::move(args), stdin_data);
}

std::vector<std::string> Lab::ServerFlags(const std::string& who) const {
  return {"--server", server_addr_,
          "--ca",     pki_dir_ + "/ca.pem",
          "--cert",   absl::StrCat(pki_dir_, "/", who, ".pem"),
          "--key",    absl::StrCat(pki_dir_, "/", who, ".key")};
}

std::vector<std::string> Lab::AgentFlags(const std::string& who) const {
  return {"--agent", agent_addr_,
          "--ca",    pki_dir_ + "/ca.pem",
          "--cert",  absl::StrCat(pki_dir_, "/", who, ".pem"),
          "--key",   absl::StrCat(pki_dir_, "/", who, ".key")};
}

absl::Status Lab::Start() {
  pki_dir_ = dir_.File("config/atbridge/pki");
  // The PKI, made the way a new user would.
  const std::vector<std::vector<std::string>> pki_steps = {
      {"pki", "init", "--name", "alice"},
      {"pki", "issue", "--role", "server", "--name", "atbridge-server"},
      {"pki", "issue", "--role", "agent", "--name", "bench1"},
      {"pki", "issue", "--role", "operator", "--name", "olga"},
      {"pki", "issue", "--role", "viewer", "--name", "vera"},
      {"pki", "issue", "--role", "automation", "--name", "otto"},
  };
  for (const auto& step : pki_steps) {
    CtlResult r = Ctl(step);
    if (r.code != 0) {
      return absl::InternalError(
          absl::StrCat("atbridgectl ", step[0], " ", step[1], ": ", r.Both()));
    }
  }

  sim_ = std::make_unique<testing::Subprocess>();
  std::vector<std::string> sim_argv = {BinaryPath("atbridge-sim"), "--count",
                                       absl::StrCat(options_.modems), "--link-dir",
                                       dir_.File("sim")};
  sim_argv.insert(sim_argv.end(), options_.sim_args.begin(), options_.sim_args.end());
  RETURN_IF_ERROR(sim_->Start(sim_argv));
  auto sim_ready =
      sim_->WaitForLine(absl::StrCat("atbridge-sim ready: ", options_.modems, " modems"));
  if (!sim_ready.ok()) return sim_ready.status();

  if (options_.server) {
    server_ = std::make_unique<testing::Subprocess>();
    absl::Status s = server_->Start(
        {BinaryPath("atbridge-server"), "--listen", "127.0.0.1:0", "--tls-cert",
         pki_dir_ + "/atbridge-server.pem", "--tls-key", pki_dir_ + "/atbridge-server.key",
         "--tls-ca", pki_dir_ + "/ca.pem", "--state-dir", dir_.File("state"), "--signing-ca-cert",
         pki_dir_ + "/ca.pem", "--signing-ca-key", pki_dir_ + "/ca.key"});
    if (!s.ok()) return s;
    auto line = server_->WaitForLine("atbridge-server ready on ");
    if (!line.ok()) return line.status();
    server_addr_ = line->substr(std::string("atbridge-server ready on ").size());
  }

  std::vector<std::string> agent_args = {BinaryPath("atbridge-agent"),
                                         "--name",
                                         "bench1",
                                         "--listen",
                                         "127.0.0.1:0",
                                         "--ca",
                                         pki_dir_ + "/ca.pem",
                                         "--cert",
                                         pki_dir_ + "/bench1.pem",
                                         "--key",
                                         pki_dir_ + "/bench1.key"};
  if (options_.server) agent_args.insert(agent_args.end(), {"--server", server_addr_});
  if (!options_.agent_lease_ttl.empty()) {
    // Only the config file sets it; flags give the rest.
    agent_args.insert(
        agent_args.end(),
        {"--config", dir_.WriteFile("agent.yaml",
                                    absl::StrCat("lease_ttl: ", options_.agent_lease_ttl, "\n"))});
  }
  const char* slots = "abcdefghij";
  for (int i = 0; i < options_.modems; ++i) {
    agent_args.push_back("--port");
    agent_args.push_back(absl::StrCat("modem", i, "=", dir_.File(absl::StrCat("sim/modem", i)),
                                      ",flow=rtscts,label.slot=", std::string(1, slots[i % 10])));
  }
  agent_ = std::make_unique<testing::Subprocess>();
  RETURN_IF_ERROR(agent_->Start(agent_args));
  auto agent_ready = agent_->WaitForLine("atbridge-agent ready on ");
  if (!agent_ready.ok()) return agent_ready.status();
  agent_addr_ = agent_ready->substr(std::string("atbridge-agent ready on ").size());
  if (options_.server) {
    // The server lists the modems once it has logged the agent's hello.
    auto connected = server_->WaitForLineMatching(
        [](const std::string& l) { return absl::StrContains(l, "agent bench1 connected from"); },
        absl::Seconds(30));
    if (!connected.ok()) return connected.status();
  }

  CtlResult ports = Ctl({"--agent", agent_addr_, "devices", "list", "--json"});
  if (ports.code != 0) return absl::InternalError(absl::StrCat("devices list: ", ports.Both()));
  nlohmann::json j = nlohmann::json::parse(ports.out);
  imeis_.assign(static_cast<size_t>(options_.modems), "");
  for (const auto& d : j["devices"]) {
    std::string port = d["port"];
    int n = std::stoi(port.substr(5));
    imeis_.at(static_cast<size_t>(n)) = d["imei"];
  }
  return absl::OkStatus();
}

}  // namespace atbridge::client::e2e
