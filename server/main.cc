// atbridge-server: flags -> ServerOptions -> Server. Prints
// "atbridge-server ready on <host>:<port>" when serving; SIGINT/SIGTERM shut
// it down cleanly.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>

#include "absl/time/time.h"
#include "common/log.h"
#include "server/config/server_options.h"
#include "server/server.h"

namespace {

int Run(int argc, char** argv) {
  using atbridge::server::ServerOptions;
  CLI::App app{"atbridge-server: inventory, jobs and reports for nRF91 modems behind agents"};
  std::string config;
  std::string listen, cert, key, ca, state_dir, store, signing_cert, signing_key, log_level;
  std::string metrics_listen;
  int workers = 0;
  app.add_option("--config", config, "YAML config file (flags override it)");
  app.add_option("--listen", listen,
                 "host:port to serve on (default 127.0.0.1:7443; port 0 picks one)");
  app.add_option("--tls-cert", cert, "server certificate (PEM)");
  app.add_option("--tls-key", key, "server private key (PEM)");
  app.add_option("--tls-ca", ca, "CA that signs client and agent certificates (PEM)");
  app.add_option("--state-dir", state_dir, "state directory (created if missing)");
  app.add_option("--store", store, "store URL (default sqlite:<state-dir>/atbridge.db)");
  app.add_option("--signing-ca-cert", signing_cert, "CA certificate that signs modem CSRs");
  app.add_option("--signing-ca-key", signing_key, "key of that CA");
  app.add_option("--log-level", log_level, "debug, info, warning, error or off (default info)");
  app.add_option("--workers", workers, "worker threads (default 2)");
  app.add_option("--metrics-listen", metrics_listen,
                 "loopback host:port of the Prometheus text endpoint (default off)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  ServerOptions options;
  if (!config.empty()) {
    absl::Status s = atbridge::server::LoadServerConfig(config, &options);
    if (!s.ok()) {
      std::cerr << "atbridge-server: " << s.message() << "\n";
      return 2;
    }
  }
  if (!listen.empty()) options.listen = listen;
  if (!cert.empty()) options.tls.cert_file = cert;
  if (!key.empty()) options.tls.key_file = key;
  if (!ca.empty()) options.tls.ca_file = ca;
  if (!state_dir.empty()) options.state_dir = state_dir;
  if (!store.empty()) options.store_url = store;
  if (!signing_cert.empty()) options.signing_ca_cert_file = signing_cert;
  if (!signing_key.empty()) options.signing_ca_key_file = signing_key;
  if (!log_level.empty()) options.log_level = log_level;
  if (workers != 0) options.workers = workers;
  if (!metrics_listen.empty()) options.metrics_listen = metrics_listen;
  absl::Status valid = atbridge::server::ValidateServerOptions(&options);
  if (!valid.ok()) {
    std::cerr << "atbridge-server: " << valid.message() << "\n";
    return 2;
  }
  atbridge::log::Level level;
  atbridge::log::ParseLevel(options.log_level, &level);
  atbridge::log::SetLevel(level);

  // Block the signals in every thread; this one waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  auto server = atbridge::server::Server::Create(options);
  if (!server.ok()) {
    std::cerr << "atbridge-server: " << server.status().message() << "\n";
    return 1;
  }
  absl::Status started = (*server)->Start();
  if (!started.ok()) {
    std::cerr << "atbridge-server: " << started.message() << "\n";
    return 1;
  }
  std::printf("atbridge-server ready on %s\n", (*server)->address().c_str());
  std::fflush(stdout);

  int sig = 0;
  sigwait(&signals, &sig);
  ATB_LOG(INFO) << "signal " << sig << ": shutting down";
  (*server)->Shutdown();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "atbridge-server: fatal: " << e.what() << "\n";
    return 1;
  }
}
