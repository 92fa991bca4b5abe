// creds list | read | write | delete | keygen
#include <CLI/CLI.hpp>
#include <memory>

#include "absl/strings/str_cat.h"
#include "client/commands/common.h"
#include "client/core/output.h"
#include "client/core/parse.h"

namespace atbridge::client {

namespace {

std::string TypeText(v1::CredentialType type) {
  return absl::StrCat(CredentialTypeShortName(type), " (", static_cast<int>(type), ")");
}

// ---- list ----

struct ListOptions {
  std::string device;
  std::string tag;
  bool json = false;
};

absl::Status RunList(CommandContext& ctx, const ListOptions& o) {
  ctx.RequireRole("viewer");
  auto ref = ParseDeviceRef(o.device);
  if (!ref.ok()) return ref.status();
  v1::ListCredentialsRequest req;
  if (!o.tag.empty()) {
    auto tag = ParseSecTag(o.tag);
    if (!tag.ok()) return tag.status();
    req.set_has_sec_tag(true);
    req.set_sec_tag(*tag);
  }
  auto backend = ctx.backend();
  if (!backend.ok()) return backend.status();
  auto r = (*backend)->ListCredentials(*ref, req);
  if (!r.ok()) return WithWhat(r.status(), absl::StrCat("list credentials on ", o.device));
  if (o.json) {
    PrintJson(ctx, *r);
    return absl::OkStatus();
  }
  if (r->entries().empty()) {
    ctx.err() << "no credentials\n";
  } else {
    ctx.out() << CredentialsTable(r->entries());
  }
  return absl::OkStatus();
}

// ---- read ----

struct ReadOptions {
  std::string device;
  std::string tag;
  std::string type;
  std::string output;
  bool json = false;
};

absl::Status RunRead(CommandContext& ctx, const ReadOptions& o) {
  ctx.RequireRole("viewer");
  auto ref = ParseDeviceRef(o.device);
  if (!ref.ok()) return ref.status();
  auto tag = ParseSecTag(o.tag);
  if (!tag.ok()) return tag.status();
  auto type = ParseCredentialType(o.type);
  if (!type.ok()) return type.status();
  v1::ReadCredentialRequest req;
  req.set_sec_tag(*tag);
  req.set_type(*type);
  auto backend = ctx.backend();
  if (!backend.ok()) return backend.status();
  const std::string what =
      absl::StrCat("read ", TypeText(*type), " at tag ", *tag, " on ", o.device);
  auto r = (*backend)->ReadCredential(*ref, req);
  if (!r.ok()) return WithWhat(r.status(), what);
  if (o.json) {
    PrintJson(ctx, *r);
  } else if (!o.output.empty()) {
    absl::Status s = WriteFileAtomically(o.output, r->content(), 0644, /*overwrite=*/true);
    if (!s.ok()) return WithWhat(s, what);
    ctx.err() << "wrote " << r->content().size() << " bytes (sha256 " << r->entry().sha256()
              << ") to " << o.output << "\n";
  } else {
    ctx.out() << r->content();
    if (!r->content().empty() && r->content().back() != '\n') ctx.out() << "\n";
  }
  return absl::OkStatus();
}

// ---- write ----

struct WriteOptions {
  std::string device;
  std::string tag;
  std::string type;
  std::string file;
  bool strict = false;
  bool force = false;
  bool dry_run = false;
  bool leave_offline = false;
  bool json = false;
};

absl::Status RunWrite(CommandContext& ctx, const WriteOptions& o) {
  ctx.RequireRole("operator");
  auto ref = ParseDeviceRef(o.device);
  if (!ref.ok()) return ref.status();
  auto tag = ParseSecTag(o.tag);
  if (!tag.ok()) return tag.status();
  auto type = ParseCredentialType(o.type);
  if (!type.ok()) return type.status();
  auto content = ReadInput(ctx, o.file);
  if (!content.ok()) return content.status();
  v1::WriteCredentialRequest req;
  req.set_sec_tag(*tag);
  req.set_type(*type);
  req.set_content(*std::move(content));
  req.mutable_options()->set_strict(o.strict);
  req.mutable_options()->set_force(o.force);
  req.mutable_options()->set_dry_run(o.dry_run);
  req.mutable_options()->set_leave_offline(o.leave_offline);
  auto backend = ctx.backend();
  if (!backend.ok()) return backend.status();
  const std::string what =
      absl::StrCat("write ", TypeText(*type), " at tag ", *tag, " on ", o.device);
  auto r = (*backend)->WriteCredential(*ref, std::move(req));
  if (!r.ok()) return WithWhat(r.status(), what);
  if (o.json) {
    PrintJson(ctx, *r);
    return absl::OkStatus();
  }
  std::ostream& out = ctx.out();
  if (o.dry_run) {
    out << "dry run: " << what << " would write " << r->content_bytes() << " bytes";
    if (!r->sha256().empty()) out << " (sha256 " << r->sha256() << ")";
    out << (r->skipped() ? "; already present, nothing would be written\n" : "\n");
  } else if (r->skipped()) {
    out << "already present: " << TypeText(*type) << " at tag " << *tag << " on " << o.device
        << " has sha256 " << r->sha256() << "; nothing written\n";
  } else {
    out << "wrote " << TypeText(*type) << " at tag " << *tag << " on " << o.device << ": "
        << r->content_bytes() << " bytes, verified sha256 " << r->sha256() << "\n";
  }
  if (r->repairs_size() > 0) {
    out << "repaired:\n";
    for (const auto& repair : r->repairs()) out << "  - " << repair << "\n";
  }
  if (r->steps_size() > 0) out << "steps: " << StepsText(r->steps()) << "\n";
  return absl::OkStatus();
}

// ---- delete ----

struct DeleteOptions {
  std::string device;
  std::string tag;
  std::string type;
  bool ignore_missing = false;
  bool json = false;
};

absl::Status RunDelete(CommandContext& ctx, const DeleteOptions& o) {
  ctx.RequireRole("operator");
  auto ref = ParseDeviceRef(o.device);
  if (!ref.ok()) return ref.status();
  auto tag = ParseSecTag(o.tag);
  if (!tag.ok()) return tag.status();
  auto type = ParseCredentialType(o.type);
  if (!type.ok()) return type.status();
  v1::DeleteCredentialRequest req;
  req.set_sec_tag(*tag);
  req.set_type(*type);
  req.set_ignore_missing(o.ignore_missing);
  auto backend = ctx.backend();
  if (!backend.ok()) return backend.status();
  const std::string what =
      absl::StrCat("delete ", TypeText(*type), " at tag ", *tag, " on ", o.device);
  auto r = (*backend)->DeleteCredential(*ref, req);
  if (!r.ok()) return WithWhat(r.status(), what);
  if (o.json) {
    PrintJson(ctx, *r);
    return absl::OkStatus();
  }
  if (r->skipped()) {
    ctx.out() << "nothing to delete: no " << TypeText(*type) << " at tag " << *tag << " on "
              << o.device << "\n";
  } else {
    ctx.out() << "deleted " << TypeText(*type) << " at tag " << *tag << " on " << o.device << "\n";
  }
  return absl::OkStatus();
}

// ---- keygen ----

struct KeygenOptions {
  std::string device;
  std::string tag;
  std::string attributes;
  std::string key_usage;
  bool sign = false;
  uint32_t validity_days = 0;
  std::string output;
  bool json = false;
};

absl::Status RunKeygen(CommandContext& ctx, const KeygenOptions& o) {
  ctx.RequireRole("operator");
  auto ref = ParseDeviceRef(o.device);
  if (!ref.ok()) return ref.status();
  auto tag = ParseSecTag(o.tag);
  if (!tag.ok()) return tag.status();
  if (!o.key_usage.empty() &&
      (o.key_usage.size() != 9 || o.key_usage.find_first_not_of("01") != std::string::npos)) {
    return UsageError("--key-usage must be 9 characters of 0/1, e.g. 101010000");
  }
  v1::DeviceGenerateKeyRequest req;
  req.mutable_request()->set_sec_tag(*tag);
  req.mutable_request()->set_attributes(o.attributes);
  req.mutable_request()->set_key_usage(o.key_usage);
  req.set_sign(o.sign);
  req.set_validity_days(o.validity_days);
  auto backend = ctx.backend();
  if (!backend.ok()) return backend.status();
  const std::string what = absl::StrCat("generate a key at tag ", *tag, " on ", o.device);
  auto r = (*backend)->GenerateKey(*ref, std::move(req));
  if (!r.ok()) return WithWhat(r.status(), what);
  if (o.json) {
    PrintJson(ctx, *r);
    return absl::OkStatus();
  }
  const std::string& pem = o.sign ? r->certificate_pem() : r->csr().csr_pem();
  if (!o.output.empty()) {
    absl::Status s = WriteFileAtomically(o.output, pem, 0644, /*overwrite=*/true);
    if (!s.ok()) return WithWhat(s, what);
    ctx.err() << "wrote the " << (o.sign ? "signed certificate" : "CSR") << " to " << o.output
              << "\n";
  } else {
    ctx.out() << pem;
  }
  ctx.err() << "the private key stays in the modem (client-key at tag " << *tag << ")\n";
  if (o.sign) {
    ctx.err() << "wrote the signed certificate as client-cert at tag " << *tag
              << ", verified sha256 " << r->write().sha256() << "\n";
  }
  return absl::OkStatus();
}

void AddDeviceTagType(CLI::App* cmd, std::string* device, std::string* tag, std::string* type) {
  cmd->add_option("DEVICE", *device, "IMEI, agent/port or alias")->required();
  cmd->add_option("TAG", *tag, "security tag 0..2147483647")->required();
  cmd->add_option("TYPE", *type, absl::StrCat("credential type: ", CredentialTypeHelp(), ", ..."))
      ->required();
}

}  // namespace

void AddCredsCommands(CLI::App& app, CommandContext& ctx) {
  CLI::App* creds =
      app.add_subcommand("creds", "credentials stored in a modem (%CMNG): list, read, write, ...");
  creds->require_subcommand(1);

  auto list = std::make_shared<ListOptions>();
  CLI::App* l =
      creds->add_subcommand("list", "list credentials (tag, type, SHA-256) from the modem");
  l->add_option("DEVICE", list->device, "IMEI, agent/port or alias")->required();
  l->add_option("--tag", list->tag, "only this security tag");
  l->add_flag("--json", list->json, "print JSON (ListCredentialsResponse)");
  l->callback([&ctx, list] { ctx.SetAction([&ctx, list] { return RunList(ctx, *list); }); });

  auto read = std::make_shared<ReadOptions>();
  CLI::App* r = creds->add_subcommand(
      "read", "print a readable credential (root-ca, client-cert, psk-identity) exactly as stored");
  AddDeviceTagType(r, &read->device, &read->tag, &read->type);
  r->add_option("-o,--output", read->output, "write the content to this file instead");
  r->add_flag("--json", read->json, "print JSON (ReadCredentialResponse)");
  r->callback([&ctx, read] { ctx.SetAction([&ctx, read] { return RunRead(ctx, *read); }); });

  auto write = std::make_shared<WriteOptions>();
  CLI::App* w = creds->add_subcommand(
      "write",
      "write a credential from FILE (or - for stdin): validated and repaired first, skipped when "
      "already present, verified by the modem's SHA-256");
  AddDeviceTagType(w, &write->device, &write->tag, &write->type);
  w->add_option("FILE", write->file, "PEM (types 0-2), hex PSK, or text; - reads stdin")
      ->required();
  w->add_flag("--strict", write->strict, "refuse content that needs repair instead of fixing it");
  w->add_flag("--force", write->force, "write even when the same content is already stored");
  w->add_flag("--dry-run", write->dry_run, "validate, repair and compare only; write nothing");
  w->add_flag("--leave-offline", write->leave_offline,
              "do not restore the modem's functional mode (CFUN) afterwards");
  w->add_flag("--json", write->json, "print JSON (WriteReport)");
  w->callback([&ctx, write] { ctx.SetAction([&ctx, write] { return RunWrite(ctx, *write); }); });

  auto del = std::make_shared<DeleteOptions>();
  CLI::App* d = creds->add_subcommand("delete", "delete a credential");
  AddDeviceTagType(d, &del->device, &del->tag, &del->type);
  d->add_flag("--ignore-missing", del->ignore_missing, "succeed when there is nothing to delete");
  d->add_flag("--json", del->json, "print JSON (DeleteCredentialResponse)");
  d->callback([&ctx, del] { ctx.SetAction([&ctx, del] { return RunDelete(ctx, *del); }); });

  auto keygen = std::make_shared<KeygenOptions>();
  CLI::App* k = creds->add_subcommand(
      "keygen",
      "generate a key pair inside the modem (%KEYGEN) and print its CSR; with --sign (server) "
      "the server's CA signs it and the certificate is written back");
  k->add_option("DEVICE", keygen->device, "IMEI, agent/port or alias")->required();
  k->add_option("TAG", keygen->tag, "security tag for the key")->required();
  k->add_option("--attributes", keygen->attributes, "CSR subject, e.g. CN=dev-1,O=Lab");
  k->add_option("--key-usage", keygen->key_usage, "9-character keyUsage bits, e.g. 101010000");
  k->add_flag("--sign", keygen->sign, "have the server's CA sign the CSR and write it back");
  k->add_option("--validity-days", keygen->validity_days, "validity of the signed certificate");
  k->add_option("-o,--output", keygen->output, "write the CSR (or certificate) to this file");
  k->add_flag("--json", keygen->json, "print JSON (DeviceGenerateKeyResponse)");
  k->callback(
      [&ctx, keygen] { ctx.SetAction([&ctx, keygen] { return RunKeygen(ctx, *keygen); }); });
}

}  // namespace atbridge::client
