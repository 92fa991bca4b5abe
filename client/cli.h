// atbridgectl's command line: builds the CLI11 app (every command, --help on
// each), parses, runs the selected command and maps the outcome to an exit
// code (client/core/errors.h).
#ifndef ATBRIDGE_CLIENT_CLI_H_
#define ATBRIDGE_CLIENT_CLI_H_

#include <memory>

#include "client/commands/context.h"

namespace CLI {
class App;
}  // namespace CLI

namespace atbridge::client {

// The app with all commands bound to `ctx` (which must outlive it).
std::unique_ptr<CLI::App> BuildApp(CommandContext& ctx);

// Parses argv, runs the command, prints errors to ctx.err(); returns the
// exit code.
int RunCli(int argc, const char* const* argv, CommandContext& ctx);

// RunCli with the process's streams and environment.
int Main(int argc, char** argv);

}  // namespace atbridge::client

#endif  // ATBRIDGE_CLIENT_CLI_H_
