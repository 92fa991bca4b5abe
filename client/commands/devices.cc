// devices list | show | label
#include <CLI/CLI.hpp>
#include <memory>

#include "absl/strings/str_cat.h"
#include "client/commands/common.h"
#include "client/core/output.h"
#include "client/core/parse.h"
#include "client/rpc/connection.h"
#include "common/grpc_status.h"

namespace atbridge::client {

namespace {

struct ListOptions {
  std::vector<std::string> labels;
  std::vector<std::string> agents;
  std::vector<std::string> imeis;
  bool online = false;
  bool json = false;
};

absl::Status RunList(CommandContext& ctx, const ListOptions& o) {
  ctx.RequireRole("viewer");
  auto labels = ParseLabels(o.labels);
  if (!labels.ok()) return labels.status();
  v1::ListDevicesRequest req;
  for (const auto& [k, v] : *labels) (*req.mutable_selector()->mutable_labels())[k] = v;
  for (const auto& a : o.agents) req.mutable_selector()->add_agents(a);
  for (const auto& i : o.imeis) req.mutable_selector()->add_imeis(i);
  req.set_connected_only(o.online);
  auto backend = ctx.backend();
  if (!backend.ok()) return backend.status();
  auto resp = (*backend)->ListDevices(req);
  if (!resp.ok()) {
    return WithWhat(resp.status(), absl::StrCat("list devices on ", (*backend)->Describe()));
  }
  if (o.json) {
    PrintJson(ctx, *resp);
    return absl::OkStatus();
  }
  Table t({"IMEI", "DEVICE", "MODEL", "FIRMWARE", "STATE", "LEASE", "ALIAS", "LABELS"});
  for (const auto& d : resp->devices()) {
    t.AddRow({d.imei(), PortText(d.agent(), d.port()), d.model(), d.firmware(),
              d.online() ? "online" : "offline", d.lease().owner(), d.alias(),
              FormatLabels(d.labels())});
  }
  if (t.rows() == 0) {
    ctx.err() << "no devices\n";
  } else {
    ctx.out() << t.Render();
  }
  return absl::OkStatus();
}

absl::Status RunShow(CommandContext& ctx, const std::string& device, bool json) {
  ctx.RequireRole("viewer");
  auto ref = ParseDeviceRef(device);
  if (!ref.ok()) return ref.status();
  auto backend = ctx.backend();
  if (!backend.ok()) return backend.status();
  auto d = (*backend)->GetDevice(*ref);
  if (!d.ok()) return WithWhat(d.status(), absl::StrCat("show device ", device));
  if (json) {
    PrintJson(ctx, *d);
    return absl::OkStatus();
  }
  ctx.out() << KeyValues({{"imei", d->imei()},
                          {"device", PortText(d->agent(), d->port())},
                          {"alias", d->alias()},
                          {"model", d->model()},
                          {"firmware", d->firmware()},
                          {"manufacturer", d->manufacturer()},
                          {"state", d->online() ? "online" : "offline"},
                          {"last seen", FormatTimestamp(d->last_seen())},
                          {"labels", FormatLabels(d->labels())},
                          {"lease", LeaseText(d->lease())}});
  ctx.out() << "credentials:\n";
  if (d->credentials_size() == 0) {
    ctx.out() << "  (none)\n";
  } else {
    ctx.out() << CredentialsTable(d->credentials());
  }
  return absl::OkStatus();
}

struct LabelOptions {
  std::string device;
  std::vector<std::string> set;
  std::vector<std::string> remove;
  std::string alias;
  bool clear_alias = false;
  bool json = false;
};

absl::Status RunLabel(CommandContext& ctx, const LabelOptions& o, bool alias_given) {
  ctx.RequireRole("operator");
  auto ref = ParseDeviceRef(o.device);
  if (!ref.ok()) return ref.status();
  auto labels = ParseLabels(o.set);
  if (!labels.ok()) return labels.status();
  if (labels->empty() && o.remove.empty() && !alias_given && !o.clear_alias) {
    return UsageError(
        "nothing to change: give KEY=VALUE labels, --remove KEY, --alias or --clear-alias");
  }
  auto backend = ctx.backend();
  if (!backend.ok()) return backend.status();
  auto stub = (*backend)->Server("devices label");
  if (!stub.ok()) return stub.status();
  v1::UpdateDeviceRequest req;
  *req.mutable_device() = *ref;
  for (const auto& [k, v] : *labels) (*req.mutable_set_labels())[k] = v;
  for (const auto& k : o.remove) req.add_remove_labels(k);
  if (alias_given || o.clear_alias) {
    req.set_has_alias(true);
    req.set_alias(o.clear_alias ? "" : o.alias);
  }
  grpc::ClientContext call;
  SetDeadline(&call, (*backend)->timeout());
  v1::Device d;
  grpc::Status s = (*stub)->UpdateDevice(&call, req, &d);
  if (!s.ok()) return WithWhat(FromGrpcStatus(s), absl::StrCat("update device ", o.device));
  if (o.json) {
    PrintJson(ctx, d);
    return absl::OkStatus();
  }
  ctx.out() << "updated " << d.imei() << " (" << PortText(d.agent(), d.port()) << "): alias "
            << (d.alias().empty() ? "-" : d.alias()) << ", labels "
            << (d.labels().empty() ? "-" : FormatLabels(d.labels())) << "\n";
  return absl::OkStatus();
}

}  // namespace

void AddDevicesCommands(CLI::App& app, CommandContext& ctx) {
  CLI::App* devices = app.add_subcommand("devices", "list and inspect devices (modems)");
  devices->require_subcommand(1);

  auto list = std::make_shared<ListOptions>();
  CLI::App* l = devices->add_subcommand("list", "list devices (server: inventory; --agent: ports)");
  l->add_option("--label", list->labels, "only devices with this label KEY=VALUE (repeatable)");
  l->add_option("--agent-name", list->agents, "only devices on this agent (repeatable)");
  l->add_option("--imei", list->imeis, "only these IMEIs (repeatable)");
  l->add_flag("--online", list->online, "only devices that are online now");
  l->add_flag("--json", list->json, "print JSON (ListDevicesResponse)");
  l->callback([&ctx, list] { ctx.SetAction([&ctx, list] { return RunList(ctx, *list); }); });

  auto show_device = std::make_shared<std::string>();
  auto show_json = std::make_shared<bool>(false);
  CLI::App* s =
      devices->add_subcommand("show",
                              "show one device: identity, state, lease, labels and credentials "
                              "(server: as last listed; --agent: live from the modem)");
  s->add_option("DEVICE", *show_device, "IMEI, agent/port or alias")->required();
  s->add_flag("--json", *show_json, "print JSON (Device)");
  s->callback([&ctx, show_device, show_json] {
    ctx.SetAction(
        [&ctx, show_device, show_json] { return RunShow(ctx, *show_device, *show_json); });
  });

  auto label = std::make_shared<LabelOptions>();
  CLI::App* lb = devices->add_subcommand(
      "label", "set or remove server-side labels and the alias of a device (server only)");
  lb->add_option("DEVICE", label->device, "IMEI, agent/port or alias")->required();
  lb->add_option("LABELS", label->set, "KEY=VALUE labels to set");
  lb->add_option("--remove", label->remove, "label keys to remove (repeatable)");
  CLI::Option* alias_opt = lb->add_option("--alias", label->alias, "set the alias");
  lb->add_flag("--clear-alias", label->clear_alias, "remove the alias");
  lb->add_flag("--json", label->json, "print JSON (Device)");
  lb->callback([&ctx, label, alias_opt] {
    bool alias_given = alias_opt->count() > 0;
    ctx.SetAction([&ctx, label, alias_given] { return RunLabel(ctx, *label, alias_given); });
  });
}

}  // namespace atbridge::client
