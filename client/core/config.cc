#include "client/core/config.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <exception>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace atbridge::client {

namespace {

std::string Resolved(const std::string& path, const std::string& base_dir,
                     const std::string& home) {
  if (path.empty() || path[0] == '/') return path;
  if (path == "~" || absl::StartsWith(path, "~/")) {
    return home.empty() ? path : absl::StrCat(home, path.substr(1));
  }
  if (base_dir.empty()) return path;
  return absl::StrCat(base_dir, "/", path);
}

std::string ExpandHome(const std::string& path, const EnvLookup& env) {
  if (path.size() >= 2 && path[0] == '~' && path[1] == '/') {
    auto home = env("HOME");
    if (home) return absl::StrCat(*home, path.substr(1));
  }
  return path;
}

}  // namespace

EnvLookup ProcessEnv() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
}

const char* SourceName(Source source) {
  switch (source) {
    case Source::kUnset:
      return "unset";
    case Source::kDefault:
      return "default";
    case Source::kConfigFile:
      return "config file";
    case Source::kEnvironment:
      return "environment";
    case Source::kFlag:
      return "flag";
  }
  return "?";
}

std::string DefaultConfigDir(const EnvLookup& env) {
  if (auto xdg = env("XDG_CONFIG_HOME")) return absl::StrCat(*xdg, "/atbridge");
  if (auto home = env("HOME")) return absl::StrCat(*home, "/.config/atbridge");
  return ".config/atbridge";
}

std::string DefaultConfigPath(const EnvLookup& env) {
  if (auto explicit_path = env("ATBRIDGE_CONFIG")) return *explicit_path;
  return absl::StrCat(DefaultConfigDir(env), "/ctl.yaml");
}

absl::StatusOr<absl::Duration> ParsePositiveDuration(const std::string& text) {
  absl::Duration d;
  if (!absl::ParseDuration(text, &d) || d <= absl::ZeroDuration() ||
      d == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "' is not a positive duration (e.g. 500ms, 30s, 2m, 1h)"));
  }
  return d;
}

std::string FormatDurationShort(absl::Duration d) { return absl::FormatDuration(d); }

absl::StatusOr<ConnectionSettings> SettingsFromEnv(const EnvLookup& env) {
  ConnectionSettings s;
  auto get = [&](const char* name, std::string* out) {
    if (auto v = env(name)) *out = ExpandHome(*v, env);
  };
  get("ATBRIDGE_SERVER", &s.server);
  get("ATBRIDGE_AGENT", &s.agent);
  get("ATBRIDGE_CA", &s.ca);
  get("ATBRIDGE_CERT", &s.cert);
  get("ATBRIDGE_KEY", &s.key);
  get("ATBRIDGE_SERVER_NAME", &s.server_name);
  if (auto t = env("ATBRIDGE_TIMEOUT")) {
    auto d = ParsePositiveDuration(*t);
    if (!d.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("ATBRIDGE_TIMEOUT: ", d.status().message()));
    }
    s.timeout = *d;
  }
  return s;
}

absl::StatusOr<ConnectionSettings> ParseConfigYaml(const std::string& text,
                                                   const std::string& base_dir,
                                                   const std::string& origin,
                                                   const std::string& home) {
  ConnectionSettings s;
  try {
    YAML::Node root = YAML::Load(text);
    if (root.IsNull()) return s;  // An empty file sets nothing.
    if (!root.IsMap()) {
      return absl::InvalidArgumentError(absl::StrCat(origin, ": expected a mapping of settings"));
    }
    static const std::set<std::string> known_keys = {"server", "agent",       "ca",     "cert",
                                                     "key",    "server_name", "timeout"};
    for (const auto& kv : root) {
      const std::string key = kv.first.as<std::string>();
      if (known_keys.count(key) == 0) {
        return absl::InvalidArgumentError(
            absl::StrCat(origin, ":", kv.first.Mark().line + 1, ": unknown key '", key,
                         "' (known: server, agent, ca, cert, key, server_name, timeout)"));
      }
      if (!kv.second.IsScalar()) {
        return absl::InvalidArgumentError(
            absl::StrCat(origin, ":", kv.second.Mark().line + 1, ": '", key, "' must be a string"));
      }
      const std::string value = kv.second.as<std::string>();
      if (key == "server") s.server = value;
      if (key == "agent") s.agent = value;
      if (key == "ca") s.ca = Resolved(value, base_dir, home);
      if (key == "cert") s.cert = Resolved(value, base_dir, home);
      if (key == "key") s.key = Resolved(value, base_dir, home);
      if (key == "server_name") s.server_name = value;
      if (key == "timeout") {
        auto d = ParsePositiveDuration(value);
        if (!d.ok()) {
          return absl::InvalidArgumentError(absl::StrCat(origin, ":", kv.second.Mark().line + 1,
                                                         ": timeout: ", d.status().message()));
        }
        s.timeout = *d;
      }
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": ", e.what()));
  }
  return s;
}

absl::StatusOr<ConnectionSettings> LoadConfigFile(const std::string& path,
                                                  const std::string& home) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("config file ", path, " does not exist"));
  std::stringstream buf;
  buf << in.rdbuf();
  std::string dir;
  if (size_t slash = path.rfind('/'); slash != std::string::npos) dir = path.substr(0, slash);
  return ParseConfigYaml(buf.str(), dir.empty() ? "." : dir, path, home);
}

std::string RenderConfigYaml(const ConnectionSettings& s) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  auto put = [&](const char* key, const std::string& value) {
    if (!value.empty()) out << YAML::Key << key << YAML::Value << value;
  };
  put("server", s.server);
  put("agent", s.agent);
  put("ca", s.ca);
  put("cert", s.cert);
  put("key", s.key);
  put("server_name", s.server_name);
  if (s.timeout) put("timeout", FormatDurationShort(*s.timeout));
  out << YAML::EndMap;
  return absl::StrCat(
      "# atbridgectl config (see docs/cli.md); flags and ATBRIDGE_* variables "
      "override it.\n",
      out.c_str(), "\n");
}

absl::StatusOr<ResolvedConfig> Resolve(const ConnectionSettings& flags,
                                       const ConnectionSettings& env,
                                       const ConnectionSettings& file) {
  if (!flags.server.empty() && !flags.agent.empty()) {
    return absl::InvalidArgumentError(
        "--server and --agent were both given: use the server, or one agent directly, not both");
  }
  ResolvedConfig r;
  struct Layer {
    const ConnectionSettings* s;
    Source source;
  };
  const Layer layers[] = {
      {&flags, Source::kFlag}, {&env, Source::kEnvironment}, {&file, Source::kConfigFile}};
  r.sources["endpoint"] = Source::kUnset;
  for (const Layer& l : layers) {
    if (!l.s->server.empty()) {
      r.mode = Mode::kServer;
      r.address = l.s->server;
    } else if (!l.s->agent.empty()) {
      r.mode = Mode::kAgent;
      r.address = l.s->agent;
    } else {
      continue;
    }
    r.sources["endpoint"] = l.source;
    break;
  }
  auto pick = [&](const char* name, std::string ConnectionSettings::*field, std::string* out) {
    (*out).clear();
    r.sources[name] = Source::kUnset;
    for (const Layer& l : layers) {
      if (!(l.s->*field).empty()) {
        *out = l.s->*field;
        r.sources[name] = l.source;
        return;
      }
    }
  };
  pick("ca", &ConnectionSettings::ca, &r.ca);
  pick("cert", &ConnectionSettings::cert, &r.cert);
  pick("key", &ConnectionSettings::key, &r.key);
  pick("server_name", &ConnectionSettings::server_name, &r.server_name);
  r.timeout = kDefaultTimeout;
  r.sources["timeout"] = Source::kDefault;
  for (const Layer& l : layers) {
    if (l.s->timeout) {
      r.timeout = *l.s->timeout;
      r.timeout_explicit = true;
      r.sources["timeout"] = l.source;
      break;
    }
  }
  return r;
}

}  // namespace atbridge::client
