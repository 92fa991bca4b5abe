// atbridge-agent: serves the modems on this machine's serial ports over gRPC
// with mutual TLS, and optionally keeps an uplink to an atbridge-server.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "agent/config/agent_options.h"
#include "agent/run_agent.h"
#include "common/log.h"

namespace {

int RealMain(int argc, char** argv) {
  using atbridge::agent::AgentOptions;
  CLI::App app{
      "atbridge-agent: serial ports with nRF91 modems, served over gRPC with mutual TLS.\n"
      "Prints 'atbridge-agent ready on HOST:PORT' when serving; SIGINT/SIGTERM stop it."};
  app.set_version_flag("--version", std::string("atbridge-agent ") + ATBRIDGE_VERSION);
  std::string config, name, listen, ca, cert, key, server, server_name, log_level = "info";
  std::string transcript_dir;
  std::vector<std::string> ports;
  app.add_option("-c,--config", config, "YAML config file (flags override it)");
  app.add_option("--name", name, "agent name; must equal the CN of --cert");
  app.add_option("--listen", listen,
                 "host:port to serve on (default 127.0.0.1:7444; port 0 picks one)");
  app.add_option("--ca", ca, "CA certificate (PEM) that signs clients and the server");
  app.add_option("--cert", cert, "this agent's certificate (PEM, role agent)");
  app.add_option("--key", key, "this agent's private key (PEM)");
  app.add_option("--server", server, "atbridge-server host:port to keep an uplink to");
  app.add_option("--server-name", server_name, "TLS name to expect in the server's certificate");
  app.add_option("--port", ports,
                 "a port: NAME=DEVICE[,baud=N][,flow=rtscts|none][,pacing=auto|off|CHUNK:GAP]"
                 "[,terminator=cr|lf|crlf][,timeout=10s][,max_command_bytes=N][,label.K=V]")
      ->take_all();
  app.add_option("--transcript-dir", transcript_dir,
                 "record every byte per port here (secrets redacted)");
  app.add_option("--log-level", log_level, "debug, info, warning, error");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  atbridge::log::Level level;
  if (!atbridge::log::ParseLevel(log_level, &level)) {
    std::fprintf(stderr, "error: --log-level '%s' is not debug/info/warning/error\n",
                 log_level.c_str());
    return 2;
  }
  atbridge::log::SetLevel(level);

  AgentOptions options;
  if (!config.empty()) {
    auto loaded = atbridge::agent::LoadAgentOptionsFile(config);
    if (!loaded.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(loaded.status().message()).c_str());
      return 2;
    }
    options = *std::move(loaded);
  }
  if (!name.empty()) options.name = name;
  if (!listen.empty()) options.listen = listen;
  if (!ca.empty()) options.tls.ca_file = ca;
  if (!cert.empty()) options.tls.cert_file = cert;
  if (!key.empty()) options.tls.key_file = key;
  if (!server.empty()) options.server = server;
  if (!server_name.empty()) options.server_name_override = server_name;
  if (!transcript_dir.empty()) options.transcript_dir = transcript_dir;
  for (const std::string& spec : ports) {
    atbridge::agent::PortOptions port;
    if (auto s = atbridge::agent::ParsePortFlag(spec, &port); !s.ok()) {
      std::fprintf(stderr, "error: %s\n", std::string(s.message()).c_str());
      return 2;
    }
    options.ports.push_back(std::move(port));
  }
  if (auto s = atbridge::agent::FinalizeAndValidate(&options); !s.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(s.message()).c_str());
    return 2;
  }
  if (auto s = atbridge::agent::RunAgent(options); !s.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // The last resort for anything a library throws (CLI11, yaml-cpp).
  try {
    return RealMain(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
