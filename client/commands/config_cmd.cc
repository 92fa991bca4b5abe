// config show | path: what atbridgectl will connect to, and why.
#include <CLI/CLI.hpp>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "client/commands/common.h"
#include "client/core/output.h"
#include "common/pki/pki.h"

namespace atbridge::client {

namespace {

std::string Src(const ResolvedConfig& c, const char* key) {
  auto it = c.sources.find(key);
  return SourceName(it == c.sources.end() ? Source::kUnset : it->second);
}

absl::Status RunShow(CommandContext& ctx, bool json) {
  auto config = ctx.Config();
  if (!config.ok()) return WithWhat(config.status(), "config show");
  const ResolvedConfig& c = **config;
  const std::string mode = c.mode == Mode::kServer  ? "server"
                           : c.mode == Mode::kAgent ? "agent (direct)"
                                                    : "";
  std::string identity = ctx.error_context().identity;
  std::string cert_expires;
  {
    std::ifstream in(c.cert);
    std::stringstream buf;
    if (in) buf << in.rdbuf();
    auto info = pki::ParseCertificate(buf.str());
    if (info.ok()) {
      cert_expires = absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", info->not_after, absl::UTCTimeZone());
    }
  }
  if (json) {
    nlohmann::json j = {{"config_path", c.config_path},
                        {"config_loaded", c.config_loaded},
                        {"mode", c.mode == Mode::kServer  ? "server"
                                 : c.mode == Mode::kAgent ? "agent"
                                                          : ""},
                        {"address", c.address},
                        {"ca", c.ca},
                        {"cert", c.cert},
                        {"key", c.key},
                        {"server_name", c.server_name},
                        {"timeout", FormatDurationShort(c.timeout)},
                        {"identity", identity},
                        {"cert_not_after", cert_expires},
                        {"sources", nlohmann::json::object()}};
    for (const auto& [k, v] : c.sources) j["sources"][k] = SourceName(v);
    // Paths are not guaranteed UTF-8: replace bad bytes rather than throw.
    ctx.out() << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return absl::OkStatus();
  }
  ctx.out() << KeyValues({
      {"config file", absl::StrCat(c.config_path, c.config_loaded ? "" : " (not found)")},
      {"mode", mode.empty() ? "" : absl::StrCat(mode, "  [", Src(c, "endpoint"), "]")},
      {"address", c.address},
      {"ca", c.ca.empty() ? "" : absl::StrCat(c.ca, "  [", Src(c, "ca"), "]")},
      {"cert", c.cert.empty() ? "" : absl::StrCat(c.cert, "  [", Src(c, "cert"), "]")},
      {"key", c.key.empty() ? "" : absl::StrCat(c.key, "  [", Src(c, "key"), "]")},
      {"server name",
       c.server_name.empty() ? "" : absl::StrCat(c.server_name, "  [", Src(c, "server_name"), "]")},
      {"timeout", absl::StrCat(FormatDurationShort(c.timeout), "  [", Src(c, "timeout"), "]")},
      {"identity", identity},
      {"cert expires", cert_expires},
  });
  return absl::OkStatus();
}

}  // namespace

void AddConfigCommands(CLI::App& app, CommandContext& ctx) {
  CLI::App* config = app.add_subcommand("config", "the connection settings in effect");
  config->require_subcommand(1);
  auto json = std::make_shared<bool>(false);
  CLI::App* show = config->add_subcommand(
      "show", "show the endpoint, mTLS files and timeout in effect, and where each came from");
  show->add_flag("--json", *json, "print JSON");
  show->callback([&ctx, json] { ctx.SetAction([&ctx, json] { return RunShow(ctx, *json); }); });
  CLI::App* path = config->add_subcommand("path", "print the config file path");
  path->callback([&ctx] {
    ctx.SetAction([&ctx] {
      ctx.out() << ctx.ConfigPath() << "\n";
      return absl::OkStatus();
    });
  });
}

}  // namespace atbridge::client
