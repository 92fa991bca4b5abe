// Everything atbridge-server is configured with. Filled from an optional
// YAML file (LoadServerConfig), then overridden by command-line flags (in
// main.cc only), then validated (ValidateServerOptions). Libraries take the
// validated struct, never flags.
#ifndef ATBRIDGE_SERVER_CONFIG_SERVER_OPTIONS_H_
#define ATBRIDGE_SERVER_CONFIG_SERVER_OPTIONS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/tls/credentials.h"
#include "server/jobs/job_spec.h"

namespace atbridge::server {

struct ServerOptions {
  // host:port to serve on; port 0 picks a free port (read back after start).
  std::string listen = "127.0.0.1:7443";
  // The server's mTLS identity and the CA its clients and agents chain to.
  tls::TlsFiles tls;
  // Directory for the database and other state; created if missing.
  std::string state_dir;
  // Store URL; empty means "sqlite:<state_dir>/atbridge.db".
  std::string store_url;
  // CA certificate and key that sign modem CSRs (optional; both or neither).
  std::string signing_ca_cert_file;
  std::string signing_ca_key_file;
  // debug, info, warning, error, off.
  std::string log_level = "info";
  // Worker threads (store, inventory, job engine, relays).
  int workers = 2;
  // Deadline of relayed device calls when the client sets none.
  absl::Duration relay_timeout = absl::Seconds(120);
  // Job defaults for spec fields left 0.
  jobs::JobDefaults job_defaults;
  // Expiry audit: at start and then every `expiry_audit_interval` (0: off)
  // the server lists inventory certificates that expire within
  // `expiry_within_days` days, logs a warning and records each in the audit
  // log (action "ExpiringCredential").
  absl::Duration expiry_audit_interval = absl::ZeroDuration();
  int expiry_within_days = 30;
  // Prometheus text endpoint (plain HTTP, GET /metrics) on a loopback
  // host:port; empty: off; port 0 picks one.
  std::string metrics_listen;
};

// Reads a YAML config file into `options` (fields present in the file
// replace the current values). INVALID_ARGUMENT naming the file and key for
// unknown keys or bad values; NOT_FOUND if the file is missing.
absl::Status LoadServerConfig(const std::string& path, ServerOptions* options);

// Same, from YAML text (for tests); `origin` names it in errors.
absl::Status ParseServerConfig(const std::string& yaml, const std::string& origin,
                               ServerOptions* options);

// Checks the options and fills derived defaults (store_url). INVALID_ARGUMENT
// naming the option that is wrong.
absl::Status ValidateServerOptions(ServerOptions* options);

}  // namespace atbridge::server

#endif  // ATBRIDGE_SERVER_CONFIG_SERVER_OPTIONS_H_
