// audit: who did what to which device (server only).
#include <CLI/CLI.hpp>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/commands/common.h"
#include "client/core/output.h"
#include "client/core/parse.h"
#include "client/rpc/connection.h"
#include "common/grpc_status.h"
#include "common/proto_time.h"

namespace atbridge::client {

namespace {

struct AuditOptions {
  std::string since;
  std::string principal;
  std::string device;
  std::string action;
  uint32_t limit = 0;
  bool json = false;
};

// "1h" (ago) or an RFC 3339 time.
absl::StatusOr<absl::Time> ParseSince(const std::string& text) {
  absl::Duration ago;
  if (absl::ParseDuration(text, &ago) && ago > absl::ZeroDuration()) return absl::Now() - ago;
  absl::Time t;
  std::string err;
  if (absl::ParseTime(absl::RFC3339_full, text, &t, &err)) return t;
  return UsageError(
      absl::StrCat("--since '", text, "' is neither a duration (e.g. 1h) nor an RFC 3339 time"));
}

absl::Status RunAudit(CommandContext& ctx, const AuditOptions& o) {
  ctx.RequireRole("viewer");
  v1::QueryAuditRequest req;
  if (!o.since.empty()) {
    auto t = ParseSince(o.since);
    if (!t.ok()) return t.status();
    *req.mutable_since() = ToProtoTime(*t);
  }
  req.set_principal(o.principal);
  req.set_action(o.action);
  req.set_limit(o.limit);
  auto backend = ctx.backend();
  if (!backend.ok()) return backend.status();
  auto stub = (*backend)->Server("audit");
  if (!stub.ok()) return stub.status();
  if (!o.device.empty()) {
    if (IsImei(o.device)) {
      req.set_imei(o.device);
    } else {
      // Audit records are keyed by IMEI: resolve agent/port or an alias.
      auto ref = ParseDeviceRef(o.device);
      if (!ref.ok()) return ref.status();
      auto d = (*backend)->GetDevice(*ref);
      if (!d.ok()) return WithWhat(d.status(), absl::StrCat("find device ", o.device));
      req.set_imei(d->imei());
    }
  }
  grpc::ClientContext call;
  SetDeadline(&call, (*backend)->timeout());
  v1::QueryAuditResponse resp;
  grpc::Status s = (*stub)->QueryAudit(&call, req, &resp);
  if (!s.ok()) return WithWhat(FromGrpcStatus(s), "query the audit log");
  if (o.json) {
    PrintJson(ctx, resp);
    return absl::OkStatus();
  }
  Table t({"TIME", "PRINCIPAL", "ROLE", "ACTION", "TARGET", "RESULT", "DETAIL"});
  for (const auto& r : resp.records()) {
    t.AddRow({FormatTimestamp(r.at()), r.principal(), RoleName(r.role()), r.action(), r.target(),
              r.result(), r.detail()});
  }
  if (t.rows() == 0) {
    ctx.err() << "no audit records\n";
  } else {
    ctx.out() << t.Render();
  }
  return absl::OkStatus();
}

}  // namespace

void AddAuditCommand(CLI::App& app, CommandContext& ctx) {
  auto o = std::make_shared<AuditOptions>();
  CLI::App* a =
      app.add_subcommand("audit", "query the audit log: who did what, when (server only)");
  a->add_option("--since", o->since, "records newer than this: a duration (1h) or RFC 3339 time");
  a->add_option("--principal", o->principal, "only this principal (certificate CN)");
  a->add_option("--device", o->device, "only this device (IMEI, agent/port or alias)");
  a->add_option("--action", o->action, "only this action, e.g. WriteCredential");
  a->add_option("--limit", o->limit, "at most this many, newest first (default 100)");
  a->add_flag("--json", o->json, "print JSON (QueryAuditResponse)");
  a->callback([&ctx, o] { ctx.SetAction([&ctx, o] { return RunAudit(ctx, *o); }); });
}

}  // namespace atbridge::client
