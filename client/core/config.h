// Where atbridgectl connects and with which mTLS files.
//
// Three sources, highest first: command-line flags, environment variables
// (ATBRIDGE_SERVER, ATBRIDGE_AGENT, ATBRIDGE_CA, ATBRIDGE_CERT, ATBRIDGE_KEY,
// ATBRIDGE_SERVER_NAME, ATBRIDGE_TIMEOUT), and the config file
// ($ATBRIDGE_CONFIG, else $XDG_CONFIG_HOME/atbridge/ctl.yaml, else
// ~/.config/atbridge/ctl.yaml). Each setting is taken from the highest source
// that sets it, except the endpoint: the highest source that names a server
// or an agent decides the mode (a source that names both means the server).
//
// Pure functions (the environment is passed in); thread-compatible.
#ifndef ATBRIDGE_CLIENT_CORE_CONFIG_H_
#define ATBRIDGE_CLIENT_CORE_CONFIG_H_

#include <functional>
#include <map>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace atbridge::client {

// Reads an environment variable (nullopt when unset or empty).
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
// The process environment.
EnvLookup ProcessEnv();

// One source's settings; empty strings / nullopt mean "not set here".
struct ConnectionSettings {
  std::string server;                     // host:port of atbridge-server.
  std::string agent;                      // host:port of one atbridge-agent (direct mode).
  std::string ca;                         // CA certificate file (PEM).
  std::string cert;                       // Our certificate file (PEM).
  std::string key;                        // Our private key file (PEM). Secret content.
  std::string server_name;                // TLS name expected in the peer certificate.
  std::optional<absl::Duration> timeout;  // Deadline of unary calls.
};

// Where a resolved setting came from.
enum class Source { kUnset, kDefault, kConfigFile, kEnvironment, kFlag };
const char* SourceName(Source source);

enum class Mode { kNone, kServer, kAgent };

// The settings in effect.
struct ResolvedConfig {
  Mode mode = Mode::kNone;
  std::string address;  // Of the server or the agent.
  std::string ca;
  std::string cert;
  std::string key;
  std::string server_name;
  absl::Duration timeout = absl::Seconds(30);
  bool timeout_explicit = false;  // Set by a flag, the environment or the file.
  std::string config_path;        // The file consulted (may not exist).
  bool config_loaded = false;     // Whether it existed and was read.
  // "endpoint", "ca", "cert", "key", "server_name", "timeout" -> source.
  std::map<std::string, Source> sources;
};

inline constexpr absl::Duration kDefaultTimeout = absl::Seconds(30);

// $XDG_CONFIG_HOME/atbridge, else $HOME/.config/atbridge.
std::string DefaultConfigDir(const EnvLookup& env);
// $ATBRIDGE_CONFIG, else DefaultConfigDir()/ctl.yaml.
std::string DefaultConfigPath(const EnvLookup& env);

// Settings from ATBRIDGE_* variables. INVALID_ARGUMENT for a bad
// ATBRIDGE_TIMEOUT.
absl::StatusOr<ConnectionSettings> SettingsFromEnv(const EnvLookup& env);

// Parses ctl.yaml text. Keys: server, agent, ca, cert, key, server_name,
// timeout. Unknown keys are errors (a typo must not be ignored). File paths
// starting with "~/" are under `home` (when given); other relative ones are
// resolved against `base_dir`. Errors name `origin`.
absl::StatusOr<ConnectionSettings> ParseConfigYaml(const std::string& text,
                                                   const std::string& base_dir,
                                                   const std::string& origin,
                                                   const std::string& home = "");

// Reads `path` (see ParseConfigYaml for `home`). NOT_FOUND when it does not
// exist; INVALID_ARGUMENT when it is malformed.
absl::StatusOr<ConnectionSettings> LoadConfigFile(const std::string& path,
                                                  const std::string& home = "");

// Renders settings as ctl.yaml (what `pki init` writes).
std::string RenderConfigYaml(const ConnectionSettings& settings);

// Combines the three sources. INVALID_ARGUMENT when flags name both a server
// and an agent.
absl::StatusOr<ResolvedConfig> Resolve(const ConnectionSettings& flags,
                                       const ConnectionSettings& env,
                                       const ConnectionSettings& file);

// Parses "500ms", "30s", "2m", "1h30m" (positive).
absl::StatusOr<absl::Duration> ParsePositiveDuration(const std::string& text);

// "30s", "1m30s", "250ms".
std::string FormatDurationShort(absl::Duration d);

}  // namespace atbridge::client

#endif  // ATBRIDGE_CLIENT_CORE_CONFIG_H_
