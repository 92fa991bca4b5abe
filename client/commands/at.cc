// at DEVICE CMD...
#include <CLI/CLI.hpp>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/commands/common.h"
#include "client/core/parse.h"
#include "common/at/credential_types.h"
#include "common/proto_time.h"

namespace atbridge::client {

namespace {

struct AtOptions {
  std::string device;
  std::vector<std::string> words;
  std::string command_timeout;
  bool json = false;
};

absl::Status RunAt(CommandContext& ctx, const AtOptions& o) {
  ctx.RequireRole("operator");
  auto ref = ParseDeviceRef(o.device);
  if (!ref.ok()) return ref.status();
  const std::string command = absl::StrJoin(o.words, " ");
  for (char c : command) {
    if (c == '\r' || c == '\n') {
      return UsageError("the command contains CR/LF; write quoted PEMs with 'creds write'");
    }
  }
  v1::ExecuteRequest req;
  req.set_command(command);
  if (!o.command_timeout.empty()) {
    auto d = ParsePositiveDuration(o.command_timeout);
    if (!d.ok()) return UsageError(absl::StrCat("--at-timeout: ", d.status().message()));
    *req.mutable_timeout() = ToProtoDuration(*d);
  }
  auto backend = ctx.backend();
  if (!backend.ok()) return backend.status();
  // Error lines name the command, never a secret written with it (a PSK in
  // AT%CMNG=0,<tag>,3,"...").
  const std::string what = absl::StrCat(at::RedactSecrets(command), " on ", o.device);
  auto r = (*backend)->Execute(*ref, req);
  if (!r.ok()) return WithWhat(r.status(), what);
  if (o.json) {
    PrintJson(ctx, *r);
  } else {
    for (const auto& line : r->lines()) ctx.out() << line << "\n";
    if (r->final() == v1::FINAL_RESULT_OK) ctx.out() << r->final_line() << "\n";
  }
  if (r->final() == v1::FINAL_RESULT_OK) return absl::OkStatus();
  std::string label = r->final_line().empty() ? "no final result" : r->final_line();
  std::string explanation = r->explanation();
  if (explanation.empty()) {
    explanation = r->final() == v1::FINAL_RESULT_ERROR
                      ? "the modem answered ERROR (unknown command or bad syntax; AT+CMEE=1 "
                        "gives numbered errors)"
                      : "the modem refused the command";
  }
  return OperationFailed(what, label, explanation);
}

}  // namespace

void AddAtCommand(CLI::App& app, CommandContext& ctx) {
  auto o = std::make_shared<AtOptions>();
  CLI::App* at = app.add_subcommand("at", "run one AT command on a device and print the answer");
  at->add_option("DEVICE", o->device, "IMEI, agent/port or alias")->required();
  at->add_option("COMMAND", o->words, "the AT command, e.g. AT+CGMR (words are joined by spaces)")
      ->required();
  at->add_option("--at-timeout", o->command_timeout,
                 "deadline for the modem's answer (default: the port's, 10s)");
  at->add_flag("--json", o->json, "print JSON (AtResult)");
  at->footer(
      "\nExits 1 when the modem answers ERROR or +CME ERROR (explained on stderr).\n"
      "Example: atbridgectl at bench1/modem0 'AT%CMNG=1'");
  at->callback([&ctx, o] { ctx.SetAction([&ctx, o] { return RunAt(ctx, *o); }); });
}

}  // namespace atbridge::client
