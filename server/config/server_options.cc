#include "server/config/server_options.h"

#include <yaml-cpp/yaml.h>

#include <exception>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status/errors.h"

namespace atbridge::server {

namespace {

class ConfigReader {
 public:
  explicit ConfigReader(std::string origin) : origin_(std::move(origin)) {}

  absl::Status Error(const std::string& key, const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat(origin_, ": ", key, ": ", what));
  }

  absl::Status CheckKeys(const YAML::Node& node, const std::string& where,
                         const std::set<std::string>& allowed) const {
    if (!node.IsMap()) return Error(where.empty() ? "(top level)" : where, "must be a mapping");
    for (const auto& kv : node) {
      const std::string key = kv.first.as<std::string>();
      if (allowed.count(key) == 0) {
        return Error(where.empty() ? key : absl::StrCat(where, ".", key), "unknown key");
      }
    }
    return absl::OkStatus();
  }

  absl::Status String(const YAML::Node& node, const std::string& key, std::string* out) const {
    if (!node) return absl::OkStatus();
    if (!node.IsScalar()) return Error(key, "must be a string");
    *out = node.as<std::string>();
    return absl::OkStatus();
  }

  absl::Status Int(const YAML::Node& node, const std::string& key, int64_t* out) const {
    if (!node) return absl::OkStatus();
    if (!node.IsScalar() || !absl::SimpleAtoi(node.as<std::string>(), out)) {
      return Error(key, "must be an integer");
    }
    return absl::OkStatus();
  }

  absl::Status Duration(const YAML::Node& node, const std::string& key, absl::Duration* out) const {
    if (!node) return absl::OkStatus();
    if (!node.IsScalar() || !absl::ParseDuration(node.as<std::string>(), out)) {
      return Error(key, "must be a duration such as 30s, 2m or 1h30m");
    }
    return absl::OkStatus();
  }

 private:
  std::string origin_;
};

absl::Status Parse(const YAML::Node& root, const ConfigReader& r, ServerOptions* o) {
  if (!root || root.IsNull()) return absl::OkStatus();
  absl::Status s =
      r.CheckKeys(root, "",
                  {"listen", "tls", "state_dir", "store", "signing_ca", "log_level", "workers",
                   "relay_timeout", "jobs", "expiry_audit", "metrics_listen"});
  if (!s.ok()) return s;
  if (!(s = r.String(root["listen"], "listen", &o->listen)).ok()) return s;
  if (root["tls"]) {
    const YAML::Node t = root["tls"];
    if (!(s = r.CheckKeys(t, "tls", {"cert", "key", "ca"})).ok()) return s;
    if (!(s = r.String(t["cert"], "tls.cert", &o->tls.cert_file)).ok()) return s;
    if (!(s = r.String(t["key"], "tls.key", &o->tls.key_file)).ok()) return s;
    if (!(s = r.String(t["ca"], "tls.ca", &o->tls.ca_file)).ok()) return s;
  }
  if (!(s = r.String(root["state_dir"], "state_dir", &o->state_dir)).ok()) return s;
  if (!(s = r.String(root["store"], "store", &o->store_url)).ok()) return s;
  if (root["signing_ca"]) {
    const YAML::Node c = root["signing_ca"];
    if (!(s = r.CheckKeys(c, "signing_ca", {"cert", "key"})).ok()) return s;
    if (!(s = r.String(c["cert"], "signing_ca.cert", &o->signing_ca_cert_file)).ok()) return s;
    if (!(s = r.String(c["key"], "signing_ca.key", &o->signing_ca_key_file)).ok()) return s;
  }
  if (!(s = r.String(root["log_level"], "log_level", &o->log_level)).ok()) return s;
  int64_t workers = o->workers;
  if (!(s = r.Int(root["workers"], "workers", &workers)).ok()) return s;
  o->workers = static_cast<int>(workers);
  if (!(s = r.Duration(root["relay_timeout"], "relay_timeout", &o->relay_timeout)).ok()) return s;
  if (root["expiry_audit"]) {
    const YAML::Node e = root["expiry_audit"];
    if (!(s = r.CheckKeys(e, "expiry_audit", {"interval", "within_days"})).ok()) return s;
    if (!(s = r.Duration(e["interval"], "expiry_audit.interval", &o->expiry_audit_interval)).ok()) {
      return s;
    }
    int64_t days = o->expiry_within_days;
    if (!(s = r.Int(e["within_days"], "expiry_audit.within_days", &days)).ok()) return s;
    o->expiry_within_days = static_cast<int>(days);
  }
  if (!(s = r.String(root["metrics_listen"], "metrics_listen", &o->metrics_listen)).ok()) {
    return s;
  }
  if (root["jobs"]) {
    const YAML::Node j = root["jobs"];
    if (!(s = r.CheckKeys(j, "jobs",
                          {"max_concurrency", "max_attempts", "initial_backoff", "max_backoff",
                           "multiplier", "execution_timeout"}))
             .ok()) {
      return s;
    }
    jobs::JobDefaults& d = o->job_defaults;
    int64_t v = d.max_concurrency;
    if (!(s = r.Int(j["max_concurrency"], "jobs.max_concurrency", &v)).ok()) return s;
    d.max_concurrency = static_cast<uint32_t>(v);
    v = d.max_attempts;
    if (!(s = r.Int(j["max_attempts"], "jobs.max_attempts", &v)).ok()) return s;
    d.max_attempts = static_cast<uint32_t>(v);
    if (!(s = r.Duration(j["initial_backoff"], "jobs.initial_backoff", &d.initial_backoff)).ok()) {
      return s;
    }
    if (!(s = r.Duration(j["max_backoff"], "jobs.max_backoff", &d.max_backoff)).ok()) return s;
    if (j["multiplier"]) {
      if (!j["multiplier"].IsScalar() ||
          !absl::SimpleAtod(j["multiplier"].as<std::string>(), &d.multiplier)) {
        return r.Error("jobs.multiplier", "must be a number");
      }
    }
    if (!(s = r.Duration(j["execution_timeout"], "jobs.execution_timeout", &d.execution_timeout))
             .ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ParseServerConfig(const std::string& yaml, const std::string& origin,
                               ServerOptions* options) {
  ConfigReader reader(origin);
  try {
    YAML::Node root = YAML::Load(yaml);
    return Parse(root, reader, options);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": not valid YAML: ", e.what()));
  }
}

absl::Status LoadServerConfig(const std::string& path, ServerOptions* options) {
  std::ifstream in(path);
  if (!in) return PosixError(errno, absl::StrCat("open config file ", path));
  std::stringstream buf;
  buf << in.rdbuf();
  return ParseServerConfig(buf.str(), path, options);
}

absl::Status ValidateServerOptions(ServerOptions* o) {
  const size_t colon = o->listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(o->listen.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen \"", o->listen, "\" must be host:port (port 0 picks one)"));
  }
  if (o->tls.cert_file.empty() || o->tls.key_file.empty() || o->tls.ca_file.empty()) {
    return absl::InvalidArgumentError(
        "tls: the server certificate, key and CA files are all required (mTLS only)");
  }
  if (o->state_dir.empty()) return absl::InvalidArgumentError("state_dir is required");
  if (o->store_url.empty()) o->store_url = absl::StrCat("sqlite:", o->state_dir, "/atbridge.db");
  if (o->signing_ca_cert_file.empty() != o->signing_ca_key_file.empty()) {
    return absl::InvalidArgumentError(
        "signing_ca: give both the CA certificate and its key, or neither");
  }
  log::Level level;
  if (!log::ParseLevel(o->log_level, &level)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "log_level \"", o->log_level, "\" must be debug, info, warning, error or off"));
  }
  if (o->workers < 1 || o->workers > 64) {
    return absl::InvalidArgumentError("workers must be within 1..64");
  }
  if (o->relay_timeout <= absl::ZeroDuration() || o->relay_timeout > absl::Hours(1)) {
    return absl::InvalidArgumentError("relay_timeout must be within (0, 1h]");
  }
  const jobs::JobDefaults& d = o->job_defaults;
  if (d.max_concurrency < 1 || d.max_concurrency > jobs::kMaxConcurrencyLimit) {
    return absl::InvalidArgumentError("jobs.max_concurrency must be within 1..1000");
  }
  if (d.max_attempts < 1 || d.max_attempts > jobs::kMaxAttemptsLimit) {
    return absl::InvalidArgumentError("jobs.max_attempts must be within 1..20");
  }
  if (d.initial_backoff < absl::ZeroDuration() || d.max_backoff < d.initial_backoff) {
    return absl::InvalidArgumentError(
        "jobs: initial_backoff must be >= 0 and max_backoff >= initial_backoff");
  }
  if (d.multiplier < 1 || d.multiplier > 10) {
    return absl::InvalidArgumentError("jobs.multiplier must be within 1..10");
  }
  if (d.execution_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("jobs.execution_timeout must be positive");
  }
  if (o->expiry_audit_interval != absl::ZeroDuration() &&
      o->expiry_audit_interval < absl::Minutes(1)) {
    return absl::InvalidArgumentError("expiry_audit.interval must be 0 (off) or at least 1m");
  }
  if (o->expiry_within_days < 1 || o->expiry_within_days > 3650) {
    return absl::InvalidArgumentError("expiry_audit.within_days must be within 1..3650");
  }
  if (!o->metrics_listen.empty()) {
    const size_t mcolon = o->metrics_listen.rfind(':');
    int mport = -1;
    const std::string host = mcolon == std::string::npos ? "" : o->metrics_listen.substr(0, mcolon);
    if (mcolon == std::string::npos ||
        !absl::SimpleAtoi(o->metrics_listen.substr(mcolon + 1), &mport) || mport < 0 ||
        mport > 65535 ||
        !(absl::StartsWith(host, "127.") || host == "[::1]" || host == "localhost")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "metrics_listen \"", o->metrics_listen,
          "\" must be a loopback host:port (127.0.0.1:9464, [::1]:9464): the endpoint has no TLS"));
    }
  }
  return absl::OkStatus();
}

}  // namespace atbridge::server
