// lease list | acquire | renew | release
#include <CLI/CLI.hpp>
#include <memory>

#include "absl/strings/str_cat.h"
#include "client/commands/common.h"
#include "client/core/output.h"
#include "client/core/parse.h"

namespace atbridge::client {

namespace {

struct LeaseOptions {
  std::string device;
  std::string reason;
  std::string ttl;
  std::string lease_id;
  bool force = false;
  bool json = false;
};

absl::StatusOr<absl::Duration> TtlOf(const LeaseOptions& o) {
  if (o.ttl.empty()) return absl::ZeroDuration();
  auto d = ParsePositiveDuration(o.ttl);
  if (!d.ok()) return UsageError(absl::StrCat("--ttl: ", d.status().message()));
  return *d;
}

void PrintLease(CommandContext& ctx, const char* verb, const v1::Lease& lease, bool json) {
  if (json) {
    PrintJson(ctx, lease);
    return;
  }
  ctx.out() << verb << " " << PortText(lease.agent(), lease.port());
  if (!lease.imei().empty()) ctx.out() << " (" << lease.imei() << ")";
  if (lease.has_expires_at()) ctx.out() << " until " << FormatTimestamp(lease.expires_at());
  if (!lease.lease_id().empty()) ctx.out() << "; lease id " << lease.lease_id();
  ctx.out() << "\n";
}

absl::Status RunList(CommandContext& ctx, bool json) {
  ctx.RequireRole("viewer");
  auto backend = ctx.backend();
  if (!backend.ok()) return backend.status();
  auto r = (*backend)->ListLeases();
  if (!r.ok()) return WithWhat(r.status(), absl::StrCat("list leases on ", (*backend)->Describe()));
  if (json) {
    PrintJson(ctx, *r);
    return absl::OkStatus();
  }
  Table t({"DEVICE", "IMEI", "OWNER", "REASON", "ACQUIRED", "EXPIRES"});
  for (const auto& l : r->leases()) {
    t.AddRow({PortText(l.agent(), l.port()), l.imei(), l.owner(), l.reason(),
              FormatTimestamp(l.acquired_at()), FormatTimestamp(l.expires_at())});
  }
  if (t.rows() == 0) {
    ctx.err() << "no leases\n";
  } else {
    ctx.out() << t.Render();
  }
  return absl::OkStatus();
}

absl::Status RunAcquire(CommandContext& ctx, const LeaseOptions& o) {
  ctx.RequireRole("operator");
  auto ref = ParseDeviceRef(o.device);
  if (!ref.ok()) return ref.status();
  auto ttl = TtlOf(o);
  if (!ttl.ok()) return ttl.status();
  auto backend = ctx.backend();
  if (!backend.ok()) return backend.status();
  auto lease = (*backend)->AcquireLease(*ref, o.reason, *ttl);
  if (!lease.ok()) return WithWhat(lease.status(), absl::StrCat("lease ", o.device));
  PrintLease(ctx, "leased", *lease, o.json);
  return absl::OkStatus();
}

absl::Status RunRenew(CommandContext& ctx, const LeaseOptions& o) {
  ctx.RequireRole("operator");
  auto ref = ParseDeviceRef(o.device);
  if (!ref.ok()) return ref.status();
  auto ttl = TtlOf(o);
  if (!ttl.ok()) return ttl.status();
  auto backend = ctx.backend();
  if (!backend.ok()) return backend.status();
  std::string id = o.lease_id;
  if (id.empty()) {
    // Our own lease on that device: its id is in the lease list.
    auto dev = (*backend)->GetDevice(*ref);
    if (!dev.ok()) return WithWhat(dev.status(), absl::StrCat("renew the lease on ", o.device));
    id = dev->lease().lease_id();
    if (id.empty()) {
      return WithWhat(absl::FailedPreconditionError("no lease id known for this device; pass "
                                                    "--lease-id (printed by 'lease acquire')"),
                      absl::StrCat("renew the lease on ", o.device));
    }
  }
  auto lease = (*backend)->RenewLease(*ref, id, *ttl);
  if (!lease.ok()) return WithWhat(lease.status(), absl::StrCat("renew the lease on ", o.device));
  PrintLease(ctx, "renewed", *lease, o.json);
  return absl::OkStatus();
}

absl::Status RunRelease(CommandContext& ctx, const LeaseOptions& o) {
  ctx.RequireRole(o.force ? "admin" : "operator");
  auto ref = ParseDeviceRef(o.device);
  if (!ref.ok()) return ref.status();
  auto backend = ctx.backend();
  if (!backend.ok()) return backend.status();
  auto r = (*backend)->ReleaseLease(*ref, o.lease_id, o.force);
  if (!r.ok()) return WithWhat(r.status(), absl::StrCat("release the lease on ", o.device));
  if (o.json) {
    PrintJson(ctx, *r);
    return absl::OkStatus();
  }
  ctx.out() << "released " << PortText(r->lease().agent(), r->lease().port());
  if (!r->lease().owner().empty()) ctx.out() << " (held by " << r->lease().owner() << ")";
  ctx.out() << "\n";
  return absl::OkStatus();
}

}  // namespace

void AddLeaseCommands(CLI::App& app, CommandContext& ctx) {
  CLI::App* lease = app.add_subcommand(
      "lease", "exclusive write leases on device ports: who holds what, take, renew, release");
  lease->require_subcommand(1);

  auto list_json = std::make_shared<bool>(false);
  CLI::App* l = lease->add_subcommand("list", "list current leases");
  l->add_flag("--json", *list_json, "print JSON (ListLeasesResponse)");
  l->callback(
      [&ctx, list_json] { ctx.SetAction([&ctx, list_json] { return RunList(ctx, *list_json); }); });

  auto acquire = std::make_shared<LeaseOptions>();
  CLI::App* a = lease->add_subcommand("acquire", "take the write lease on a device's port");
  a->add_option("DEVICE", acquire->device, "IMEI, agent/port or alias")->required();
  a->add_option("--reason", acquire->reason, "why, shown to others");
  a->add_option("--ttl", acquire->ttl, "duration, e.g. 30m (default: the agent's, 10m)");
  a->add_flag("--json", acquire->json, "print JSON (Lease)");
  a->callback(
      [&ctx, acquire] { ctx.SetAction([&ctx, acquire] { return RunAcquire(ctx, *acquire); }); });

  auto renew = std::make_shared<LeaseOptions>();
  CLI::App* rn = lease->add_subcommand("renew", "extend your lease on a device's port");
  rn->add_option("DEVICE", renew->device, "IMEI, agent/port or alias")->required();
  rn->add_option("--lease-id", renew->lease_id, "lease id (default: your lease on DEVICE)");
  rn->add_option("--ttl", renew->ttl, "new duration from now (default: the agent's)");
  rn->add_flag("--json", renew->json, "print JSON (Lease)");
  rn->callback([&ctx, renew] { ctx.SetAction([&ctx, renew] { return RunRenew(ctx, *renew); }); });

  auto release = std::make_shared<LeaseOptions>();
  CLI::App* r = lease->add_subcommand("release", "release your lease (admins: --force anyone's)");
  r->add_option("DEVICE", release->device, "IMEI, agent/port or alias")->required();
  r->add_option("--lease-id", release->lease_id, "lease id (default: your lease on DEVICE)");
  r->add_flag("--force", release->force, "release someone else's lease (admin)");
  r->add_flag("--json", release->json, "print JSON (ReleaseLeaseResponse)");
  r->callback(
      [&ctx, release] { ctx.SetAction([&ctx, release] { return RunRelease(ctx, *release); }); });
}

}  // namespace atbridge::client
