#include "agent/config/agent_options.h"

#include <yaml-cpp/yaml.h>

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status/status_macros.h"

namespace atbridge::agent {

namespace {

bool ValidName(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

absl::Status KeyError(const YAML::Node& node, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("config line ", node.Mark().line + 1, ": ", what));
}

// Visits the keys of a map node, rejecting unknown ones.
absl::Status CheckKeys(const YAML::Node& node, absl::string_view where,
                       const std::set<std::string>& allowed) {
  if (!node.IsMap()) return KeyError(node, absl::StrCat(where, " must be a mapping"));
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>();
    if (!allowed.count(key)) {
      return KeyError(kv.first, absl::StrCat("unknown key '", key, "' in ", where));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Duration> DurationNode(const YAML::Node& node, absl::string_view key) {
  auto d = ParseDurationFlag(node.as<std::string>());
  if (!d.ok()) return KeyError(node, absl::StrCat(key, ": ", d.status().message()));
  return *d;
}

absl::Status ApplyFlowControl(const std::string& value, PortOptions* port) {
  std::string v = absl::AsciiStrToLower(value);
  if (v == "rtscts" || v == "hardware") {
    port->serial.rtscts = true;
  } else if (v == "none" || v == "off") {
    port->serial.rtscts = false;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("flow control '", value, "' is not one of rtscts, none"));
  }
  return absl::OkStatus();
}

absl::Status ApplyParity(const std::string& value, PortOptions* port) {
  std::string v = absl::AsciiStrToLower(value);
  if (v == "none" || v == "n") {
    port->serial.parity = Parity::kNone;
  } else if (v == "odd" || v == "o") {
    port->serial.parity = Parity::kOdd;
  } else if (v == "even" || v == "e") {
    port->serial.parity = Parity::kEven;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("parity '", value, "' is not none/odd/even"));
  }
  return absl::OkStatus();
}

absl::Status ApplyTerminator(const std::string& value, PortOptions* port) {
  std::string v = absl::AsciiStrToLower(value);
  if (v == "cr") {
    port->terminator = "\r";
  } else if (v == "lf") {
    port->terminator = "\n";
  } else if (v == "crlf") {
    port->terminator = "\r\n";
  } else {
    return absl::InvalidArgumentError(absl::StrCat("terminator '", value, "' is not cr/lf/crlf"));
  }
  return absl::OkStatus();
}

template <typename T>
absl::StatusOr<T> Number(const std::string& text, absl::string_view key) {
  T v;
  if (!absl::SimpleAtoi(text, &v)) {
    return absl::InvalidArgumentError(absl::StrCat(key, ": '", text, "' is not a number"));
  }
  return v;
}

absl::Status ParsePortNode(const YAML::Node& node, PortOptions* port) {
  RETURN_IF_ERROR(CheckKeys(
      node, "port",
      {"name", "device", "baud", "data_bits", "parity", "stop_bits", "flow_control", "pacing",
       "terminator", "labels", "command_timeout", "max_command_bytes", "transcript"}));
  for (const auto& kv : node) {
    std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    absl::Status s;
    if (key == "name") {
      port->name = v.as<std::string>();
    } else if (key == "device") {
      port->device = v.as<std::string>();
    } else if (key == "baud") {
      ASSIGN_OR_RETURN(port->serial.baud, Number<uint32_t>(v.as<std::string>(), key));
    } else if (key == "data_bits") {
      ASSIGN_OR_RETURN(port->serial.data_bits, Number<int>(v.as<std::string>(), key));
    } else if (key == "stop_bits") {
      ASSIGN_OR_RETURN(port->serial.stop_bits, Number<int>(v.as<std::string>(), key));
    } else if (key == "parity") {
      s = ApplyParity(v.as<std::string>(), port);
    } else if (key == "flow_control") {
      s = ApplyFlowControl(v.as<std::string>(), port);
    } else if (key == "terminator") {
      s = ApplyTerminator(v.as<std::string>(), port);
    } else if (key == "command_timeout") {
      ASSIGN_OR_RETURN(port->command_timeout, DurationNode(v, key));
    } else if (key == "max_command_bytes") {
      ASSIGN_OR_RETURN(port->max_command_bytes, Number<size_t>(v.as<std::string>(), key));
    } else if (key == "transcript") {
      port->transcript_file = v.as<std::string>();
    } else if (key == "labels") {
      if (!v.IsMap()) return KeyError(v, "labels must be a mapping");
      for (const auto& l : v) port->labels[l.first.as<std::string>()] = l.second.as<std::string>();
    } else if (key == "pacing") {
      if (v.IsScalar()) {
        std::string p = absl::AsciiStrToLower(v.as<std::string>());
        if (p == "auto") {
          port->pacing_auto = true;
        } else if (p == "off" || p == "none") {
          port->pacing_auto = false;
          port->pacing = Pacing{};
        } else {
          return KeyError(v, "pacing must be auto, off, or {chunk_bytes, gap}");
        }
      } else {
        RETURN_IF_ERROR(CheckKeys(v, "pacing", {"chunk_bytes", "gap"}));
        port->pacing_auto = false;
        if (v["chunk_bytes"]) {
          ASSIGN_OR_RETURN(port->pacing.chunk_bytes,
                           Number<size_t>(v["chunk_bytes"].as<std::string>(), "chunk_bytes"));
        }
        if (v["gap"]) {
          ASSIGN_OR_RETURN(port->pacing.gap, DurationNode(v["gap"], "gap"));
        }
      }
    }
    if (!s.ok()) return KeyError(v, s.message());
  }
  return absl::OkStatus();
}

absl::StatusOr<AgentOptions> ParseRoot(const YAML::Node& root) {
  AgentOptions o;
  if (!root || root.IsNull()) return o;
  RETURN_IF_ERROR(CheckKeys(root, "top level",
                            {"name", "listen", "tls", "server", "lease_ttl", "max_lease_ttl",
                             "transcript_dir", "ports", "startup_identify_timeout"}));
  if (root["name"]) o.name = root["name"].as<std::string>();
  if (root["listen"]) o.listen = root["listen"].as<std::string>();
  if (root["transcript_dir"]) o.transcript_dir = root["transcript_dir"].as<std::string>();
  if (root["lease_ttl"]) {
    ASSIGN_OR_RETURN(o.lease_ttl, DurationNode(root["lease_ttl"], "lease_ttl"));
  }
  if (root["max_lease_ttl"]) {
    ASSIGN_OR_RETURN(o.max_lease_ttl, DurationNode(root["max_lease_ttl"], "max_lease_ttl"));
  }
  if (root["startup_identify_timeout"]) {
    ASSIGN_OR_RETURN(o.startup_identify_timeout,
                     DurationNode(root["startup_identify_timeout"], "startup_identify_timeout"));
  }
  if (const YAML::Node& t = root["tls"]) {
    RETURN_IF_ERROR(CheckKeys(t, "tls", {"ca", "cert", "key"}));
    if (t["ca"]) o.tls.ca_file = t["ca"].as<std::string>();
    if (t["cert"]) o.tls.cert_file = t["cert"].as<std::string>();
    if (t["key"]) o.tls.key_file = t["key"].as<std::string>();
  }
  if (const YAML::Node& s = root["server"]) {
    if (s.IsScalar()) {
      o.server = s.as<std::string>();
    } else {
      RETURN_IF_ERROR(CheckKeys(s, "server", {"address", "server_name"}));
      if (s["address"]) o.server = s["address"].as<std::string>();
      if (s["server_name"]) o.server_name_override = s["server_name"].as<std::string>();
    }
  }
  if (const YAML::Node& ports = root["ports"]) {
    if (!ports.IsSequence()) return KeyError(ports, "ports must be a list");
    for (const auto& p : ports) {
      PortOptions port;
      RETURN_IF_ERROR(ParsePortNode(p, &port));
      o.ports.push_back(std::move(port));
    }
  }
  return o;
}

}  // namespace

absl::StatusOr<absl::Duration> ParseDurationFlag(const std::string& text) {
  absl::Duration d;
  if (absl::ParseDuration(text, &d) && d >= absl::ZeroDuration()) return d;
  int64_t seconds;
  if (absl::SimpleAtoi(text, &seconds) && seconds >= 0) return absl::Seconds(seconds);
  return absl::InvalidArgumentError(
      absl::StrCat("'", text, "' is not a duration (e.g. 500ms, 10s, 2m)"));
}

absl::StatusOr<AgentOptions> ParseAgentOptionsYaml(const std::string& yaml_text) {
  try {
    return ParseRoot(YAML::Load(yaml_text));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config: ", e.what()));
  }
}

absl::StatusOr<AgentOptions> LoadAgentOptionsFile(const std::string& path) {
  try {
    auto o = ParseRoot(YAML::LoadFile(path));
    if (!o.ok()) {
      return absl::Status(o.status().code(), absl::StrCat(path, ": ", o.status().message()));
    }
    return o;
  } catch (const YAML::BadFile&) {
    return absl::NotFoundError(absl::StrCat("cannot read config file ", path));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": ", e.what()));
  }
}

absl::Status ParsePortFlag(const std::string& spec, PortOptions* out) {
  std::vector<std::string> parts = absl::StrSplit(spec, ',');
  std::pair<std::string, std::string> head = absl::StrSplit(parts[0], absl::MaxSplits('=', 1));
  if (head.first.empty() || head.second.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--port '", spec, "': expected NAME=DEVICE[,key=value...]"));
  }
  out->name = head.first;
  out->device = head.second;
  for (size_t i = 1; i < parts.size(); ++i) {
    std::pair<std::string, std::string> kv = absl::StrSplit(parts[i], absl::MaxSplits('=', 1));
    const std::string& k = kv.first;
    const std::string& v = kv.second;
    absl::Status s;
    if (k == "baud") {
      ASSIGN_OR_RETURN(out->serial.baud, Number<uint32_t>(v, k));
    } else if (k == "flow" || k == "flow_control") {
      s = ApplyFlowControl(v, out);
    } else if (k == "parity") {
      s = ApplyParity(v, out);
    } else if (k == "terminator") {
      s = ApplyTerminator(v, out);
    } else if (k == "timeout") {
      ASSIGN_OR_RETURN(out->command_timeout, ParseDurationFlag(v));
    } else if (k == "max_command_bytes") {
      ASSIGN_OR_RETURN(out->max_command_bytes, Number<size_t>(v, k));
    } else if (k == "pacing") {
      if (v == "auto") {
        out->pacing_auto = true;
      } else if (v == "off") {
        out->pacing_auto = false;
        out->pacing = Pacing{};
      } else {
        // chunk:gap, e.g. 32:3ms
        std::pair<std::string, std::string> cg = absl::StrSplit(v, absl::MaxSplits(':', 1));
        out->pacing_auto = false;
        ASSIGN_OR_RETURN(out->pacing.chunk_bytes, Number<size_t>(cg.first, "pacing chunk"));
        ASSIGN_OR_RETURN(out->pacing.gap, ParseDurationFlag(cg.second));
      }
    } else if (absl::StartsWith(k, "label.")) {
      out->labels[k.substr(6)] = v;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--port '", spec, "': unknown key '", k, "'"));
    }
    if (!s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--port '", spec, "': ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::Status FinalizeAndValidate(AgentOptions* o) {
  if (!ValidName(o->name)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "agent name '", o->name,
        "' must be 1-64 characters of [A-Za-z0-9_.-] (and match the CN of its certificate)"));
  }
  if (o->listen.empty() || o->listen.find(':') == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address '", o->listen, "' must be host:port"));
  }
  if (o->tls.ca_file.empty() || o->tls.cert_file.empty() || o->tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        "mTLS needs tls.ca, tls.cert and tls.key (or --ca/--cert/--key)");
  }
  if (o->lease_ttl <= absl::ZeroDuration() || o->lease_ttl > o->max_lease_ttl) {
    return absl::InvalidArgumentError("lease_ttl must be positive and at most max_lease_ttl");
  }
  std::set<std::string> names;
  for (PortOptions& p : o->ports) {
    if (!ValidName(p.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("port name '", p.name, "' must be 1-64 characters of [A-Za-z0-9_.-]"));
    }
    if (!names.insert(p.name).second) {
      return absl::InvalidArgumentError(absl::StrCat("port name '", p.name, "' is used twice"));
    }
    if (p.device.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("port ", p.name, ": no device"));
    }
    if (p.serial.baud == 0 || p.serial.baud > 4000000) {
      return absl::InvalidArgumentError(
          absl::StrCat("port ", p.name, ": baud ", p.serial.baud, " out of range"));
    }
    if (p.serial.data_bits < 5 || p.serial.data_bits > 8) {
      return absl::InvalidArgumentError(absl::StrCat("port ", p.name, ": data_bits must be 5..8"));
    }
    if (p.serial.stop_bits != 1 && p.serial.stop_bits != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("port ", p.name, ": stop_bits must be 1 or 2"));
    }
    if (p.command_timeout <= absl::ZeroDuration()) {
      return absl::InvalidArgumentError(
          absl::StrCat("port ", p.name, ": command_timeout must be positive"));
    }
    if (p.max_command_bytes < 64 || p.max_command_bytes > 1 << 20) {
      return absl::InvalidArgumentError(
          absl::StrCat("port ", p.name, ": max_command_bytes must be 64..1048576"));
    }
    if (p.pacing_auto) {
      if (p.serial.rtscts) {
        p.pacing = Pacing{};
      } else {
        // Small bursts (a modem's receive buffer may be no larger) at 1.1x
        // the line rate: 10 bits per byte, gap = 1.1 x the chunk's line time.
        p.pacing.chunk_bytes = kAutoPacingChunkBytes;
        p.pacing.gap = absl::Microseconds(static_cast<int64_t>(
            kAutoPacingChunkBytes * 10.0 * 1.1 * 1e6 / static_cast<double>(p.serial.baud)));
      }
    }
    if (p.transcript_file.empty() && !o->transcript_dir.empty()) {
      p.transcript_file = absl::StrCat(o->transcript_dir, "/", p.name, ".log");
    }
  }
  return absl::OkStatus();
}

}  // namespace atbridge::agent
