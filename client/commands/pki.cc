// pki init | issue: a dev CA and certificates for every role, so mTLS works
// for a new user in one command.
#include "common/pki/pki.h"

#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "client/commands/common.h"
#include "common/status/status_macros.h"
#include "common/tls/identity.h"

namespace atbridge::client {

namespace {

bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 64 || name[0] == '.' || name[0] == '-') return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.' &&
        c != '@') {
      return false;
    }
  }
  return true;
}

bool Exists(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

std::string DefaultPkiDir(CommandContext& ctx) { return DefaultConfigDir(ctx.env()) + "/pki"; }

std::string DefaultUser(CommandContext& ctx) {
  auto user = ctx.env()("USER");
  if (user && ValidName(*user)) return *user;
  return "admin";
}

absl::Status WriteKeyAndCert(const std::string& dir, const std::string& name,
                             const pki::KeyAndCert& kc, bool overwrite) {
  RETURN_IF_ERROR(
      WriteFileAtomically(absl::StrCat(dir, "/", name, ".key"), kc.key_pem, 0600, overwrite));
  return WriteFileAtomically(absl::StrCat(dir, "/", name, ".pem"), kc.cert_pem, 0644, overwrite);
}

struct IssueOptions {
  std::string role;
  std::string name;
  std::vector<std::string> dns;
  std::vector<std::string> ips;
  uint32_t days = 365;
  std::string dir;
  std::string out;
  bool force = false;
};

absl::StatusOr<pki::KeyAndCert> Issue(const pki::KeyAndCert& ca, const IssueOptions& o,
                                      std::vector<std::string>* dns,
                                      std::vector<std::string>* ips) {
  v1::Role role = tls::RoleFromName(o.role);
  if (role == v1::ROLE_UNSPECIFIED) {
    return UsageError(absl::StrCat(
        "--role '", o.role, "' is not admin, operator, automation, viewer, agent or server"));
  }
  if (!ValidName(o.name)) {
    return UsageError(absl::StrCat("--name '", o.name,
                                   "' must be 1-64 letters, digits, '-', '_', '.', '@' (it becomes "
                                   "the certificate CN and the file name)"));
  }
  if (o.days == 0 || o.days > 3650) return UsageError("--days must be 1..3650");
  pki::IssueOptions io;
  io.common_name = o.name;
  io.role = o.role;
  *dns = o.dns;
  *ips = o.ips;
  const bool endpoint = role == v1::ROLE_SERVER || role == v1::ROLE_AGENT;
  if (endpoint && dns->empty() && ips->empty()) {
    // A dev endpoint reachable by its name and on this machine.
    dns->push_back(o.name);
    dns->push_back("localhost");
    ips->push_back("127.0.0.1");
  }
  io.dns_names = *dns;
  io.ip_addresses = *ips;
  io.server_auth = endpoint;
  io.client_auth = true;
  io.not_before = absl::Now() - absl::Hours(1);
  io.not_after = absl::Now() + absl::Hours(24) * static_cast<int64_t>(o.days);
  auto kc = pki::IssueCertificate(ca, io);
  if (!kc.ok()) return WithWhat(kc.status(), absl::StrCat("issue a certificate for ", o.name));
  return kc;
}

absl::StatusOr<pki::KeyAndCert> LoadCa(const std::string& dir) {
  auto cert = ReadFile(dir + "/ca.pem");
  auto key = ReadFile(dir + "/ca.key");
  if (!cert.ok() || !key.ok()) {
    return WithHint(absl::NotFoundError(absl::StrCat("no CA in ", dir, " (ca.pem and ca.key)")),
                    "create one with 'atbridgectl pki init', or point --dir at it");
  }
  return pki::KeyAndCert{*std::move(key), *std::move(cert)};
}

absl::Status RunIssue(CommandContext& ctx, const IssueOptions& o_in) {
  IssueOptions o = o_in;
  if (o.dir.empty()) o.dir = DefaultPkiDir(ctx);
  if (o.out.empty()) o.out = o.dir;
  auto ca = LoadCa(o.dir);
  if (!ca.ok()) return WithWhat(ca.status(), "pki issue");
  std::vector<std::string> dns, ips;
  auto kc = Issue(*ca, o, &dns, &ips);
  if (!kc.ok()) return kc.status();
  absl::Status s = MakeDirs(o.out);
  if (s.ok()) s = WriteKeyAndCert(o.out, o.name, *kc, o.force);
  if (!s.ok()) {
    return WithHint(WithWhat(s, absl::StrCat("write the certificate of ", o.name)),
                    "pass --force to replace it");
  }
  ctx.out() << "issued " << o.role << " certificate for " << o.name << ": " << o.out << "/"
            << o.name << ".pem (key " << o.out << "/" << o.name << ".key, mode 0600)\n";
  if (!dns.empty() || !ips.empty()) {
    ctx.out() << "  names: " << absl::StrJoin(dns, ", ") << (dns.empty() || ips.empty() ? "" : ", ")
              << absl::StrJoin(ips, ", ") << "\n";
  }
  ctx.out() << "  CA: " << o.dir << "/ca.pem\n";
  return absl::OkStatus();
}

struct InitOptions {
  std::string dir;
  std::string name;
  std::string role = "admin";
  uint32_t days = 365;
  bool force = false;
};

absl::Status RunInit(CommandContext& ctx, const InitOptions& o_in) {
  InitOptions o = o_in;
  if (o.dir.empty()) o.dir = DefaultPkiDir(ctx);
  if (o.name.empty()) o.name = DefaultUser(ctx);
  const std::string config_path = ctx.ConfigPath();
  const std::string what = "pki init";
  if (!o.force) {
    for (const std::string& p : {o.dir + "/ca.pem", o.dir + "/ca.key", config_path}) {
      if (Exists(p)) {
        return WithHint(
            WithWhat(absl::AlreadyExistsError(absl::StrCat(p, " already exists")), what),
            "pass --force to start over (old certificates stop working), or use "
            "'atbridgectl pki issue' to add certificates");
      }
    }
  }
  pki::CaOptions ca_options;
  auto ca = pki::CreateCa(ca_options);
  if (!ca.ok()) return WithWhat(ca.status(), what);
  IssueOptions io;
  io.role = o.role;
  io.name = o.name;
  io.days = o.days;
  std::vector<std::string> dns, ips;
  auto user = Issue(*ca, io, &dns, &ips);
  if (!user.ok()) return user.status();
  absl::Status s = MakeDirs(o.dir);
  if (s.ok()) s = WriteFileAtomically(o.dir + "/ca.key", ca->key_pem, 0600, true);
  if (s.ok()) s = WriteFileAtomically(o.dir + "/ca.pem", ca->cert_pem, 0644, true);
  if (s.ok()) s = WriteKeyAndCert(o.dir, o.name, *user, true);
  if (!s.ok()) return WithWhat(s, what);

  ConnectionSettings settings;
  const GlobalFlags& f = ctx.flags();
  settings.server = f.server;
  settings.agent = f.agent;
  settings.server_name = f.server_name;
  settings.ca = o.dir + "/ca.pem";
  settings.cert = absl::StrCat(o.dir, "/", o.name, ".pem");
  settings.key = absl::StrCat(o.dir, "/", o.name, ".key");
  const std::string config_dir = config_path.substr(0, config_path.rfind('/'));
  if (config_path.find('/') != std::string::npos) s = MakeDirs(config_dir);
  if (s.ok()) s = WriteFileAtomically(config_path, RenderConfigYaml(settings), 0600, true);
  if (!s.ok()) return WithWhat(s, what);

  ctx.out() << "created a dev CA: " << o.dir << "/ca.pem (key ca.key, mode 0600)\n"
            << "issued " << o.role << " certificate for " << o.name << ": " << settings.cert
            << " (key " << settings.key << ", mode 0600)\n"
            << "wrote " << config_path << "\n";
  if (settings.server.empty() && settings.agent.empty()) {
    ctx.out() << "next: add 'server: HOST:PORT' to " << config_path
              << " (or pass --server), and issue the server's certificate:\n"
              << "  atbridgectl pki issue --role server --name atbridge-server --dns HOST\n";
  }
  return absl::OkStatus();
}

}  // namespace

void AddPkiCommands(CLI::App& app, CommandContext& ctx) {
  CLI::App* pki = app.add_subcommand("pki", "a dev CA and certificates for every role");
  pki->require_subcommand(1);

  auto init = std::make_shared<InitOptions>();
  CLI::App* i = pki->add_subcommand(
      "init",
      "create a CA and a certificate for you, and write the config file pointing at them "
      "(--server/--agent given here go into it too)");
  i->add_option("--dir", init->dir, "where the CA and certificates go (default <config dir>/pki)");
  i->add_option("--name", init->name, "your principal, the certificate CN (default $USER)");
  i->add_option("--role", init->role, "your role (default admin)");
  i->add_option("--days", init->days, "validity of your certificate (default 365)");
  i->add_flag("--force", init->force, "replace an existing CA and config file");
  i->callback([&ctx, init] { ctx.SetAction([&ctx, init] { return RunInit(ctx, *init); }); });

  auto issue = std::make_shared<IssueOptions>();
  CLI::App* s = pki->add_subcommand(
      "issue",
      "issue a certificate signed by the dev CA: users (admin, operator, automation, viewer), "
      "agents and the server (with --dns/--ip names; default NAME, localhost, 127.0.0.1)");
  s->add_option("--role", issue->role, "admin, operator, automation, viewer, agent or server")
      ->required();
  s->add_option("--name", issue->name, "principal (CN); an agent's name, the server's name")
      ->required();
  s->add_option("--dns", issue->dns, "DNS name the peer dials (server/agent; repeatable)");
  s->add_option("--ip", issue->ips, "IP address the peer dials (server/agent; repeatable)");
  s->add_option("--days", issue->days, "validity (default 365)");
  s->add_option("--dir", issue->dir, "the CA's directory (default <config dir>/pki)");
  s->add_option("--out", issue->out, "where NAME.pem and NAME.key go (default --dir)");
  s->add_flag("--force", issue->force, "replace existing files");
  s->callback([&ctx, issue] { ctx.SetAction([&ctx, issue] { return RunIssue(ctx, *issue); }); });
}

}  // namespace atbridge::client
