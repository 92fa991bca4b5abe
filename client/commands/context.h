// What every command gets: the global flags, the resolved configuration,
// the backend (dialled on first use), output streams and the error context
// used for hints. Commands register themselves on the CLI11 app and set the
// action to run after a successful parse (parsing never dials).
//
// Thread-compatible: used from main's thread.
#ifndef ATBRIDGE_CLIENT_COMMANDS_CONTEXT_H_
#define ATBRIDGE_CLIENT_COMMANDS_CONTEXT_H_

#include <functional>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "client/core/config.h"
#include "client/core/errors.h"
#include "client/rpc/backend.h"

namespace CLI {
class App;
}  // namespace CLI

namespace atbridge::client {

// Global flag values as typed (empty = not given).
struct GlobalFlags {
  std::string config;
  std::string server;
  std::string agent;
  std::string ca;
  std::string cert;
  std::string key;
  std::string server_name;
  std::string timeout;
  bool verbose = false;
};

class CommandContext {
 public:
  struct Io {
    std::istream* in;
    std::ostream* out;
    std::ostream* err;
    bool stdin_tty = false;
    bool stdout_tty = false;
    bool stderr_tty = false;
  };

  CommandContext(EnvLookup env, Io io);

  GlobalFlags& flags() { return flags_; }
  const EnvLookup& env() const { return env_; }
  std::istream& in() { return *io_.in; }
  std::ostream& out() { return *io_.out; }
  std::ostream& err() { return *io_.err; }
  bool stdin_tty() const { return io_.stdin_tty; }
  bool stdout_tty() const { return io_.stdout_tty; }
  bool stderr_tty() const { return io_.stderr_tty; }
  ErrorContext& error_context() { return error_context_; }

  // The config file path in effect (--config, $ATBRIDGE_CONFIG, default).
  std::string ConfigPath() const;
  // Flags > environment > config file, resolved once.
  absl::StatusOr<const ResolvedConfig*> Config();
  // The backend for the resolved config, dialled once.
  absl::StatusOr<Backend*> backend();
  // Records the role a command needs, for the PERMISSION_DENIED hint.
  void RequireRole(const std::string& role) { error_context_.required_role = role; }

  // The action selected by the command line; run after parsing.
  void SetAction(std::function<absl::Status()> action) { action_ = std::move(action); }
  const std::function<absl::Status()>& action() const { return action_; }

 private:
  EnvLookup env_;
  Io io_;
  GlobalFlags flags_;
  ErrorContext error_context_;
  std::optional<ResolvedConfig> config_;
  std::unique_ptr<Backend> backend_;
  std::function<absl::Status()> action_;
};

// Registration, one function per command family (commands/*.cc).
void AddConfigCommands(CLI::App& app, CommandContext& ctx);
void AddDevicesCommands(CLI::App& app, CommandContext& ctx);
void AddAtCommand(CLI::App& app, CommandContext& ctx);
void AddConsoleCommand(CLI::App& app, CommandContext& ctx);
void AddAttachCommand(CLI::App& app, CommandContext& ctx);
void AddCredsCommands(CLI::App& app, CommandContext& ctx);
void AddJobCommands(CLI::App& app, CommandContext& ctx);  // push, rotate, jobs
void AddLeaseCommands(CLI::App& app, CommandContext& ctx);
void AddAuditCommand(CLI::App& app, CommandContext& ctx);
void AddPkiCommands(CLI::App& app, CommandContext& ctx);
void AddCompletionCommand(CLI::App& app, CommandContext& ctx);

}  // namespace atbridge::client

#endif  // ATBRIDGE_CLIENT_COMMANDS_CONTEXT_H_
