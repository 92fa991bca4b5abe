#include "client/cli.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "client/core/errors.h"

namespace atbridge::client {

namespace {

constexpr char kFooter[] =
    "\nDEVICE is an IMEI (15 digits), agent/port (bench1/modem0), or an alias: a server-side\n"
    "alias or a key=value label matching one device; with --agent, a port name.\n"
    "\n"
    "Connection (flags > environment > config file):\n"
    "  --server / ATBRIDGE_SERVER        atbridge-server host:port\n"
    "  --agent / ATBRIDGE_AGENT          one atbridge-agent host:port (direct mode)\n"
    "  --ca, --cert, --key / ATBRIDGE_CA, ATBRIDGE_CERT, ATBRIDGE_KEY   mTLS files (PEM)\n"
    "  --server-name / ATBRIDGE_SERVER_NAME   TLS name expected in the peer certificate\n"
    "  --timeout / ATBRIDGE_TIMEOUT      deadline of each call (default 30s)\n"
    "  --config / ATBRIDGE_CONFIG        config file (default $XDG_CONFIG_HOME/atbridge/ctl.yaml,\n"
    "                                    else ~/.config/atbridge/ctl.yaml)\n"
    "Start with 'atbridgectl pki init' (a dev CA, certificates for you, the server and an agent,\n"
    "and ctl.yaml).\n"
    "\n";

// The deepest subcommand that was parsed, for "see --help" hints.
std::string ParsedCommandPath(const CLI::App& app) {
  std::string path = app.get_name();
  const CLI::App* cur = &app;
  while (true) {
    const CLI::App* next = nullptr;
    for (const CLI::App* sub : cur->get_subcommands({})) {
      if (sub->parsed()) next = sub;
    }
    if (next == nullptr) break;
    absl::StrAppend(&path, " ", next->get_name());
    cur = next;
  }
  return path;
}

}  // namespace

std::unique_ptr<CLI::App> BuildApp(CommandContext& ctx) {
  auto app = std::make_unique<CLI::App>(
      "atbridgectl: provision nRF91 modems on lab boards through atbridge-server, or one "
      "atbridge-agent directly.",
      "atbridgectl");
  app->footer(absl::StrCat(kFooter, kExitCodesHelp));
  app->set_version_flag("--version", std::string("atbridgectl ") + ATBRIDGE_VERSION);
  app->require_subcommand(1);
  app->fallthrough();  // Global flags may follow the subcommand.
  GlobalFlags& f = ctx.flags();
  const std::string group = "Connection";
  app->add_option("--server", f.server, "atbridge-server host:port")->group(group);
  app->add_option("--agent", f.agent, "talk to one atbridge-agent host:port directly")
      ->group(group);
  app->add_option("--ca", f.ca, "CA certificate (PEM) that signs the peers")->group(group);
  app->add_option("--cert", f.cert, "your certificate (PEM)")->group(group);
  app->add_option("--key", f.key, "your private key (PEM)")->group(group);
  app->add_option("--server-name", f.server_name, "TLS name expected in the peer certificate")
      ->group(group);
  app->add_option("--timeout", f.timeout, "deadline of each call, e.g. 10s (default 30s)")
      ->group(group);
  app->add_option("--config", f.config, "config file (default: see below)")->group(group);

  AddDevicesCommands(*app, ctx);
  AddAtCommand(*app, ctx);
  AddConsoleCommand(*app, ctx);
  AddAttachCommand(*app, ctx);
  AddCredsCommands(*app, ctx);
  AddJobCommands(*app, ctx);
  AddLeaseCommands(*app, ctx);
  AddAuditCommand(*app, ctx);
  AddPkiCommands(*app, ctx);
  AddConfigCommands(*app, ctx);
  AddCompletionCommand(*app, ctx);
  return app;
}

int RunCli(int argc, const char* const* argv, CommandContext& ctx) {
  std::unique_ptr<CLI::App> app = BuildApp(ctx);
  try {
    app->parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app->exit(e, ctx.out(), ctx.err());
  } catch (const CLI::CallForAllHelp& e) {
    return app->exit(e, ctx.out(), ctx.err());
  } catch (const CLI::CallForVersion& e) {
    return app->exit(e, ctx.out(), ctx.err());
  } catch (const CLI::ParseError& e) {
    absl::Status s =
        WithHint(UsageError(e.what()), absl::StrCat("see '", ParsedCommandPath(*app), " --help'"));
    ctx.err() << FormatError(WithWhat(s, "command line"), ctx.error_context());
    return kExitUsage;
  }
  if (!ctx.action()) {
    ctx.err() << FormatError(WithWhat(UsageError("no command given"), "command line"),
                             ctx.error_context());
    return kExitUsage;
  }
  absl::Status s = ctx.action()();
  ctx.out().flush();
  // Errors that did not say what failed name the command.
  std::string path = ParsedCommandPath(*app);
  if (size_t sp = path.find(' '); sp != std::string::npos) path = path.substr(sp + 1);
  s = WithWhat(std::move(s), path);
  if (!s.ok()) {
    ctx.err() << FormatError(s, ctx.error_context());
    ctx.err().flush();
  }
  return ExitCodeFor(s);
}

int Main(int argc, char** argv) {
  // gRPC's own log lines (e.g. "Handshake failed") would break the one-line
  // error format; our error says what failed. An explicit setting wins.
  setenv("GRPC_VERBOSITY", "NONE", /*overwrite=*/0);
  CommandContext::Io io{&std::cin,      &std::cout,     &std::cerr,
                        isatty(0) == 1, isatty(1) == 1, isatty(2) == 1};
  CommandContext ctx(ProcessEnv(), io);
  return RunCli(argc, argv, ctx);
}

}  // namespace atbridge::client
