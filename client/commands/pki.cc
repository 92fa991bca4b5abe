// pki init | issue: a dev CA and certificates for every role, so mTLS works
// for a new user in one command: `pki init` makes the CA, your certificate,
// the server's and one agent's, and the config file pointing at yours.
#include "common/pki/pki.h"

#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
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

// The server certificate's name (CN) that `pki init` issues.
constexpr char kServerName[] = "atbridge-server";

// Names that would overwrite the CA's own files.
bool CollidesWithCa(const std::string& name) { return name == "ca"; }

// `path` made absolute (config files resolve relative paths against their
// own directory, so a relative --dir must not be written into one).
std::string Absolute(const std::string& path) {
  std::error_code ec;
  std::filesystem::path abs = std::filesystem::absolute(path, ec);
  if (ec) return path;
  std::string out = abs.lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
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
  if (CollidesWithCa(o.name)) {
    return UsageError(
        absl::StrCat("--name '", o.name, "' would overwrite the CA's files (ca.pem, ca.key)"));
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

// Whether `cert_path` holds a certificate for the same principal and role,
// signed by `ca`: issuing it again replaces nothing anybody else made (the
// old one stays valid until it expires).
bool SameIdentityFromCa(const pki::KeyAndCert& ca, const std::string& cert_path,
                        const std::string& name, const std::string& role) {
  auto pem = ReadFile(cert_path);
  if (!pem.ok()) return false;
  auto info = pki::ParseCertificate(*pem);
  auto id = tls::IdentityFromCertificate(*pem);
  if (!info.ok() || !id.ok()) return false;
  if (id->principal != name || id->role != tls::RoleFromName(role)) return false;
  // Checked when it was valid: an expired one may be re-issued too.
  return pki::VerifyCertificate(ca.cert_pem, *pem, info->not_before + absl::Seconds(1)).ok();
}

void PrintIssued(CommandContext& ctx, const std::string& out_dir, const IssueOptions& o,
                 const std::vector<std::string>& dns, const std::vector<std::string>& ips,
                 bool replaced) {
  ctx.out() << "issued " << o.role << " certificate for " << o.name << ": " << out_dir << "/"
            << o.name << ".pem (key " << out_dir << "/" << o.name << ".key, mode 0600)"
            << (replaced ? "; replaced the previous one" : "") << "\n";
  if (!dns.empty() || !ips.empty()) {
    ctx.out() << "  names: " << absl::StrJoin(dns, ", ") << (dns.empty() || ips.empty() ? "" : ", ")
              << absl::StrJoin(ips, ", ") << "\n";
  }
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
  // The same identity from the same CA is simply issued again (e.g. with
  // other --dns/--ip names); anything else needs --force.
  const bool replacing =
      !o.force && Exists(absl::StrCat(o.out, "/", o.name, ".pem")) &&
      SameIdentityFromCa(*ca, absl::StrCat(o.out, "/", o.name, ".pem"), o.name, o.role);
  absl::Status s = MakeDirs(o.out);
  if (s.ok()) s = WriteKeyAndCert(o.out, o.name, *kc, o.force || replacing);
  if (!s.ok()) {
    return WithHint(WithWhat(s, absl::StrCat("write the certificate of ", o.name)),
                    "pass --force to replace it");
  }
  PrintIssued(ctx, o.out, o, dns, ips, replacing);
  ctx.out() << "  CA: " << o.dir << "/ca.pem\n";
  return absl::OkStatus();
}

struct InitOptions {
  std::string dir;
  std::string name;
  std::string role = "admin";
  uint32_t days = 365;
  std::string agent_name = "lab1";
  std::vector<std::string> server_dns;
  std::vector<std::string> server_ips;
  bool force = false;
};

absl::Status RunInit(CommandContext& ctx, const InitOptions& o_in) {
  InitOptions o = o_in;
  if (o.dir.empty()) o.dir = DefaultPkiDir(ctx);
  o.dir = Absolute(o.dir);
  if (o.name.empty()) o.name = DefaultUser(ctx);
  const std::string config_path = ctx.ConfigPath();
  const std::string what = "pki init";
  if (o.name == kServerName || o.name == o.agent_name) {
    return UsageError(absl::StrCat("--name '", o.name, "' is also the ",
                                   o.name == kServerName ? "server's" : "agent's",
                                   " certificate name; choose another"));
  }
  if (o.agent_name == kServerName) {
    return UsageError(absl::StrCat("--agent-name '", o.agent_name,
                                   "' is the server's certificate name; choose another"));
  }
  if (CollidesWithCa(o.agent_name)) {
    return UsageError(absl::StrCat("--agent-name '", o.agent_name,
                                   "' would overwrite the CA's files (ca.pem, ca.key)"));
  }
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
  // You, the server and one agent: enough for a working lab.
  struct Made {
    IssueOptions options;
    std::vector<std::string> dns, ips;
    pki::KeyAndCert kc;
  };
  std::vector<Made> made(3);
  made[0].options.role = o.role;
  made[0].options.name = o.name;
  made[1].options.role = "server";
  made[1].options.name = kServerName;
  made[1].options.dns = o.server_dns;
  made[1].options.ips = o.server_ips;
  made[2].options.role = "agent";
  made[2].options.name = o.agent_name;
  for (Made& m : made) {
    m.options.days = o.days;
    auto kc = Issue(*ca, m.options, &m.dns, &m.ips);
    if (!kc.ok()) return kc.status();
    m.kc = *std::move(kc);
  }
  const bool new_dir = !Exists(o.dir);
  absl::Status s = MakeDirs(o.dir);  // New directories are 0700.
  if (s.ok()) s = WriteFileAtomically(o.dir + "/ca.key", ca->key_pem, 0600, true);
  if (s.ok()) s = WriteFileAtomically(o.dir + "/ca.pem", ca->cert_pem, 0644, true);
  for (const Made& m : made) {
    if (s.ok()) s = WriteKeyAndCert(o.dir, m.options.name, m.kc, true);
  }
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

  ctx.out() << "created a dev CA: " << o.dir << "/ca.pem (key " << o.dir << "/ca.key, mode 0600)\n";
  for (const Made& m : made) PrintIssued(ctx, o.dir, m.options, m.dns, m.ips, false);
  ctx.out() << "wrote " << config_path << " (your certificate and key";
  if (!settings.server.empty()) ctx.out() << ", server " << settings.server;
  if (!settings.agent.empty()) ctx.out() << ", agent " << settings.agent;
  ctx.out() << ")\n";
  struct stat st;
  if (!new_dir && stat(o.dir.c_str(), &st) == 0 && (st.st_mode & 0077) != 0) {
    ctx.err() << "note: " << o.dir << " is open to other users (mode "
              << absl::StrCat("0", (st.st_mode >> 6) & 7, (st.st_mode >> 3) & 7, st.st_mode & 7)
              << "); the private keys in it are 0600\n";
  }
  const std::string server_addr = settings.server.empty() ? "127.0.0.1:7443" : settings.server;
  const std::string pki = o.dir;
  ctx.out() << "run the server and an agent with these certificates:\n"
            << "  atbridge-server --listen " << server_addr << " --tls-ca " << pki
            << "/ca.pem --tls-cert " << pki << "/" << kServerName << ".pem --tls-key " << pki << "/"
            << kServerName << ".key --state-dir ~/.local/state/atbridge\n"
            << "  atbridge-agent --name " << o.agent_name << " --server " << server_addr
            << " --listen 127.0.0.1:7444 --ca " << pki << "/ca.pem --cert " << pki << "/"
            << o.agent_name << ".pem --key " << pki << "/" << o.agent_name
            << ".key --port modem0=/dev/ttyACM0,flow=rtscts\n";
  if (settings.server.empty() && settings.agent.empty()) {
    ctx.out() << "then add 'server: " << server_addr << "' to " << config_path
              << " (or pass --server; for other hosts issue the server's certificate again with "
                 "'atbridgectl pki issue --role server --name "
              << kServerName << " --dns HOST')\n";
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
      "create a CA, certificates for you, the server (atbridge-server) and one agent, and the "
      "config file pointing at yours (--server/--agent given here go into it too)");
  i->add_option("--dir", init->dir, "where the CA and certificates go (default <config dir>/pki)");
  i->add_option("--name", init->name, "your principal, the certificate CN (default $USER)");
  i->add_option("--role", init->role, "your role (default admin)");
  i->add_option("--days", init->days, "validity of the certificates (default 365)");
  i->add_option("--agent-name", init->agent_name, "the agent certificate's name (default lab1)");
  i->add_option("--server-dns", init->server_dns,
                "DNS name of the server certificate (repeatable; default atbridge-server, "
                "localhost and 127.0.0.1)");
  i->add_option("--server-ip", init->server_ips,
                "IP address of the server certificate (repeatable)");
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
