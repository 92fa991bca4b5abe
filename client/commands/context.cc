#include "client/commands/context.h"

#include "absl/strings/str_cat.h"
#include "client/rpc/connection.h"

namespace atbridge::client {

CommandContext::CommandContext(EnvLookup env, Io io) : env_(std::move(env)), io_(io) {}

std::string CommandContext::ConfigPath() const {
  if (!flags_.config.empty()) return flags_.config;
  return DefaultConfigPath(env_);
}

absl::StatusOr<const ResolvedConfig*> CommandContext::Config() {
  if (config_) return &*config_;
  ConnectionSettings flag_settings;
  flag_settings.server = flags_.server;
  flag_settings.agent = flags_.agent;
  flag_settings.ca = flags_.ca;
  flag_settings.cert = flags_.cert;
  flag_settings.key = flags_.key;
  flag_settings.server_name = flags_.server_name;
  if (!flags_.timeout.empty()) {
    auto d = ParsePositiveDuration(flags_.timeout);
    if (!d.ok()) return UsageError(absl::StrCat("--timeout: ", d.status().message()));
    flag_settings.timeout = *d;
  }
  auto env_settings = SettingsFromEnv(env_);
  if (!env_settings.ok()) return UsageError(env_settings.status().message());
  const std::string path = ConfigPath();
  ConnectionSettings file_settings;
  bool loaded = false;
  auto file = LoadConfigFile(path, env_("HOME").value_or(""));
  if (file.ok()) {
    file_settings = *std::move(file);
    loaded = true;
  } else if (file.status().code() != absl::StatusCode::kNotFound || !flags_.config.empty()) {
    // A missing default file is fine; a missing --config file or a bad file is not.
    return WithHint(UsageError(file.status().message()),
                    "fix the file or point --config / ATBRIDGE_CONFIG elsewhere");
  }
  auto resolved = Resolve(flag_settings, *env_settings, file_settings);
  if (!resolved.ok()) return UsageError(resolved.status().message());
  resolved->config_path = path;
  resolved->config_loaded = loaded;
  config_ = *std::move(resolved);
  error_context_.mode = config_->mode == Mode::kServer  ? "server"
                        : config_->mode == Mode::kAgent ? "agent"
                                                        : "";
  error_context_.address = config_->address;
  error_context_.timeout = FormatDurationShort(config_->timeout);
  error_context_.identity = IdentityText(config_->cert);
  return &*config_;
}

absl::StatusOr<Backend*> CommandContext::backend() {
  if (backend_) return backend_.get();
  auto config = Config();
  if (!config.ok()) return config.status();
  auto b = CreateBackend(**config);
  if (!b.ok()) return b.status();
  backend_ = *std::move(b);
  return backend_.get();
}

}  // namespace atbridge::client
