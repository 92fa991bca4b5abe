// atbridgectl end to end: every command against the real atbridge-sim,
// atbridge-agent and atbridge-server, in server mode and in direct mode
// (--agent), with certificates made by `atbridgectl pki`. --json outputs
// are parsed back and checked; errors are checked for their one-line form,
// hint and exit code.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/pki/pki.h"
#include "tests/e2e/client/lab.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/temp_dir.h"

namespace atbridge::client::e2e {
namespace {

using testing::BinaryPath;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using testing::Subprocess;

#ifdef ATBRIDGE_HAVE_SERVER
constexpr bool kHaveServer = true;
#else
constexpr bool kHaveServer = false;
#endif

#define REQUIRE_SERVER() \
  if (!kHaveServer) GTEST_SKIP() << "atbridge-server is not built (ATBRIDGE_MODULES)"

// The Amazon root CA as the modem stores it (the agent drops the trailing
// newline).
std::string Pem() {
  std::string pem = testing::ReadFileOrDie(testing::TestDataPath("pem/AmazonRootCA1.pem"));
  while (!pem.empty() && pem.back() == '\n') pem.pop_back();
  return pem;
}

// Another valid certificate, for rotations.
std::string OtherPem() {
  pki::CaOptions o;
  o.common_name = "e2e rotation CA";
  auto ca = pki::CreateCa(o);
  EXPECT_TRUE(ca.ok());
  std::string pem = ca->cert_pem;
  while (!pem.empty() && pem.back() == '\n') pem.pop_back();
  return pem;
}

nlohmann::json Json(const CtlResult& r) {
  EXPECT_EQ(r.code, 0) << r.Both();
  try {
    return nlohmann::json::parse(r.out);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not JSON: " << e.what() << "\n" << r.Both();
    return nlohmann::json::object();
  }
}

std::set<std::string> ImeisOf(const nlohmann::json& devices) {
  std::set<std::string> out;
  for (const auto& d : devices["devices"]) out.insert(d["imei"].get<std::string>());
  return out;
}

// Waits for a line containing `text` in a subprocess's merged output.
absl::StatusOr<std::string> WaitFor(Subprocess& p, const std::string& text) {
  return p.WaitForLineMatching([&](const std::string& l) { return absl::StrContains(l, text); },
                               absl::Seconds(20));
}

std::vector<std::string> Cmd(std::vector<std::string> flags, std::vector<std::string> args) {
  flags.insert(flags.begin(), BinaryPath("atbridgectl"));
  flags.insert(flags.end(), args.begin(), args.end());
  return flags;
}

class ClientE2E : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(lab_.Start()); }

  Lab lab_{Lab::Options{.modems = 3, .server = kHaveServer}};
};

// ---- pki and config ---------------------------------------------------------------

TEST_F(ClientE2E, PkiInitMakesAWorkingIdentityAndConfig) {
  nlohmann::json j = Json(lab_.Ctl({"config", "show", "--json"}));
  EXPECT_EQ(j["identity"], "alice (admin)");
  EXPECT_EQ(j["config_loaded"], true);
  EXPECT_EQ(j["cert"], lab_.pki_dir() + "/alice.pem");
  EXPECT_EQ(j["sources"]["cert"], "config file");
  if (kHaveServer) {
    EXPECT_EQ(j["mode"], "server");
    EXPECT_EQ(j["address"], lab_.server_addr());
    EXPECT_EQ(j["sources"]["endpoint"], "environment");
  }
  for (const char* key : {"ca.key", "alice.key", "bench1.key", "atbridge-server.key"}) {
    struct stat st;
    ASSERT_EQ(stat((lab_.pki_dir() + "/" + key).c_str(), &st), 0) << key;
    EXPECT_EQ(st.st_mode & 0777, 0600u) << key;
  }
  // Human form, and the flag beating the environment.
  CtlResult r = lab_.Ctl({"--agent", lab_.agent_addr(), "config", "show"});
  EXPECT_EQ(r.code, 0) << r.Both();
  EXPECT_THAT(r.out, HasSubstr("agent (direct)  [flag]"));
  EXPECT_THAT(r.out, HasSubstr("alice (admin)"));
}

// ---- devices ---------------------------------------------------------------------------

TEST_F(ClientE2E, DevicesListAndShowInDirectMode) {
  nlohmann::json all = Json(lab_.Ctl({"--agent", lab_.agent_addr(), "devices", "list", "--json"}));
  ASSERT_EQ(all["devices"].size(), 3u);
  EXPECT_EQ(ImeisOf(all), (std::set<std::string>{lab_.imei(0), lab_.imei(1), lab_.imei(2)}));
  for (const auto& d : all["devices"]) {
    EXPECT_EQ(d["agent"], "bench1");
    EXPECT_EQ(d["online"], true);
    EXPECT_EQ(d["model"], "nRF9151-LACA");
  }
  nlohmann::json b = Json(
      lab_.Ctl({"--agent", lab_.agent_addr(), "devices", "list", "--label", "slot=b", "--json"}));
  ASSERT_EQ(b["devices"].size(), 1u);
  EXPECT_EQ(b["devices"][0]["imei"], lab_.imei(1));

  CtlResult table = lab_.Ctl({"--agent", lab_.agent_addr(), "devices", "list"});
  EXPECT_EQ(table.code, 0) << table.Both();
  EXPECT_THAT(table.out, StartsWith("IMEI "));
  EXPECT_THAT(table.out, HasSubstr("bench1/modem2"));

  // DEVICE as a port name, an IMEI, agent/port and a label.
  for (const std::string& device :
       {std::string("modem2"), lab_.imei(2), std::string("bench1/modem2"), std::string("slot=c")}) {
    nlohmann::json d =
        Json(lab_.Ctl({"--agent", lab_.agent_addr(), "devices", "show", device, "--json"}));
    EXPECT_EQ(d["imei"], lab_.imei(2)) << device;
    EXPECT_EQ(d["port"], "modem2") << device;
  }
  CtlResult other = lab_.Ctl({"--agent", lab_.agent_addr(), "devices", "show", "bench9/modem0"});
  EXPECT_EQ(other.code, 5) << other.Both();
  EXPECT_THAT(other.err, HasSubstr("agent 'bench1'"));
  // An unknown port is NOT_FOUND, not a device with blank fields.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"devices", "show", "modem9"},
        {"devices", "show", "modem9", "--json"}}) {
    std::vector<std::string> full = {"--agent", lab_.agent_addr()};
    full.insert(full.end(), args.begin(), args.end());
    CtlResult unknown = lab_.Ctl(full);
    EXPECT_EQ(unknown.code, 5) << unknown.Both();
    EXPECT_EQ(unknown.out, "");
    EXPECT_THAT(unknown.err,
                StartsWith("error: show device modem9 (NOT_FOUND): agent bench1 has no port "
                           "'modem9'\nhint: list devices with 'atbridgectl devices list'"));
  }
}

TEST_F(ClientE2E, DevicesListShowAndLabelThroughTheServer) {
  REQUIRE_SERVER();
  nlohmann::json all = Json(lab_.Ctl({"devices", "list", "--json"}));
  EXPECT_EQ(ImeisOf(all), (std::set<std::string>{lab_.imei(0), lab_.imei(1), lab_.imei(2)}));
  nlohmann::json online = Json(lab_.Ctl(
      {"devices", "list", "--online", "--label", "slot=a", "--agent-name", "bench1", "--json"}));
  ASSERT_EQ(online["devices"].size(), 1u);
  EXPECT_EQ(online["devices"][0]["imei"], lab_.imei(0));

  nlohmann::json d = Json(lab_.Ctl({"devices", "show", lab_.imei(1), "--json"}));
  EXPECT_EQ(d["port"], "modem1");
  EXPECT_EQ(d["agent"], "bench1");
  CtlResult human = lab_.Ctl({"devices", "show", "bench1/modem1"});
  EXPECT_EQ(human.code, 0) << human.Both();
  EXPECT_THAT(human.out, HasSubstr("imei:"));
  EXPECT_THAT(human.out, HasSubstr(lab_.imei(1)));

  // Alias and server labels, then DEVICE by alias and by label.
  nlohmann::json labelled = Json(
      lab_.Ctl({"devices", "label", "bench1/modem0", "rack=7", "--alias", "left-board", "--json"}));
  EXPECT_EQ(labelled["alias"], "left-board");
  EXPECT_EQ(labelled["labels"]["rack"], "7");
  EXPECT_EQ(Json(lab_.Ctl({"devices", "show", "left-board", "--json"}))["imei"], lab_.imei(0));
  EXPECT_EQ(Json(lab_.Ctl({"devices", "show", "rack=7", "--json"}))["imei"], lab_.imei(0));

  CtlResult missing = lab_.Ctl({"devices", "show", "999999999999999"});
  EXPECT_EQ(missing.code, 5) << missing.Both();
  EXPECT_THAT(missing.err, StartsWith("error: show device 999999999999999 (NOT_FOUND): "));
  EXPECT_THAT(missing.err, HasSubstr("hint: list devices with 'atbridgectl devices list'"));
}

// ---- at ------------------------------------------------------------------------------------

void CheckAt(Lab& lab, const std::vector<std::string>& mode, const std::string& device) {
  auto with = [&](std::vector<std::string> args) {
    args.insert(args.begin(), mode.begin(), mode.end());
    return args;
  };
  CtlResult r = lab.Ctl(with({"at", device, "AT+CGMM"}));
  EXPECT_EQ(r.code, 0) << r.Both();
  EXPECT_EQ(r.out, "nRF9151-LACA\nOK\n");
  nlohmann::json j = Json(lab.Ctl(with({"at", device, "AT+CGMR", "--json"})));
  EXPECT_EQ(j["final"], "FINAL_RESULT_OK");
  EXPECT_EQ(j["lines"][0], "mfw_nrf91x1_2.0.2");

  EXPECT_EQ(lab.Ctl(with({"at", device, "AT+CMEE=1"})).code, 0);
  CtlResult cme = lab.Ctl(with({"at", device, "AT%CMNG=2,99,0"}));
  EXPECT_EQ(cme.code, 1) << cme.Both();
  EXPECT_THAT(cme.err,
              StartsWith("error: AT%CMNG=2,99,0 on " + device + " (+CME ERROR: 513): not found"));
  CtlResult error = lab.Ctl(with({"at", device, "AT+NOSUCH"}));
  EXPECT_EQ(error.code, 1) << error.Both();
  EXPECT_THAT(error.err, HasSubstr("(ERROR)"));
  nlohmann::json cj =
      nlohmann::json::parse(lab.Ctl(with({"at", device, "AT%CMNG=2,99,0", "--json"})).out);
  EXPECT_EQ(cj["final"], "FINAL_RESULT_CME_ERROR");
  EXPECT_EQ(cj["code"], 513);
}

TEST_F(ClientE2E, AtInDirectMode) {
  CheckAt(lab_, lab_.Direct(), "modem1");
  // A secret in a failed command never reaches the error line: in CFUN=1
  // the modem refuses credential writes (518).
  auto direct = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--agent", lab_.agent_addr()});
    return lab_.Ctl(args);
  };
  ASSERT_EQ(direct({"at", "modem1", "AT+CFUN=1"}).code, 0);
  const std::string psk = "00112233445566778899AABBCCDDEEFF";
  CtlResult refused = direct({"at", "modem1", "AT%CMNG=0,77,3,\"" + psk + "\""});
  EXPECT_EQ(refused.code, 1) << refused.Both();
  EXPECT_THAT(refused.err, StartsWith("error: AT%CMNG=0,77,3,"));
  EXPECT_THAT(refused.err, HasSubstr("redacted"));
  EXPECT_THAT(refused.err, HasSubstr("(+CME ERROR: 518)"));
  EXPECT_EQ(refused.Both().find(psk), std::string::npos) << refused.Both();
  ASSERT_EQ(direct({"at", "modem1", "AT+CFUN=4"}).code, 0);
}

// `at --at-timeout` gives the modem that long, whatever --timeout says:
// the call's deadline covers the AT timeout plus a margin.
class ClientSlowModemE2E : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(lab_.Start()); }
  Lab lab_{Lab::Options{.modems = 1, .server = false, .sim_args = {"--latency", "400"}}};
};

TEST_F(ClientSlowModemE2E, AtTimeoutOutlastsTheCallTimeout) {
  CtlResult slow = lab_.Ctl({"--agent", lab_.agent_addr(), "--timeout", "200ms", "at", "modem0",
                             "AT", "--at-timeout", "5s"});
  EXPECT_EQ(slow.code, 0) << slow.Both();
  EXPECT_EQ(slow.out, "OK\n");
  // Without it, --timeout is the call's deadline.
  CtlResult cut =
      lab_.Ctl({"--agent", lab_.agent_addr(), "--timeout", "200ms", "at", "modem0", "AT"});
  EXPECT_EQ(cut.code, 3) << cut.Both();
  EXPECT_THAT(cut.err, HasSubstr("(DEADLINE_EXCEEDED)"));
  // The modem's own deadline still applies.
  CtlResult modem = lab_.Ctl(
      {"--agent", lab_.agent_addr(), "at", "modem0", "AT", "--at-timeout", "100ms", "--json"});
  EXPECT_NE(modem.code, 0) << modem.Both();
}

TEST_F(ClientE2E, AtThroughTheServer) {
  REQUIRE_SERVER();
  CheckAt(lab_, {}, "bench1/modem0");
}

// ---- creds -----------------------------------------------------------------------------

void CheckCreds(Lab& lab, const std::vector<std::string>& mode, const std::string& device) {
  auto ctl = [&](std::vector<std::string> args, const std::string& in = "") {
    args.insert(args.begin(), mode.begin(), mode.end());
    return lab.Ctl(std::move(args), in);
  };
  const std::string pem = Pem();
  const std::string sha = pki::Sha256Hex(pem);
  // Pasted from a terminal: CRLF and indentation. Repaired, written, verified.
  std::string messy = "   " + absl::StrReplaceAll(pem, {{"\n", "\r\n   "}}) + "\r\n";
  const std::string messy_file = lab.WriteFile("messy.pem", messy);
  CtlResult w = ctl({"creds", "write", device, "42", "root-ca", messy_file});
  ASSERT_EQ(w.code, 0) << w.Both();
  EXPECT_THAT(w.out, HasSubstr("verified sha256 " + sha));
  EXPECT_THAT(w.out, HasSubstr("repaired:\n  - "));
  // The same again is skipped (idempotent).
  nlohmann::json again = Json(ctl({"creds", "write", device, "42", "0", messy_file, "--json"}));
  EXPECT_EQ(again["skipped"], true);
  EXPECT_EQ(again["sha256"], sha);
  EXPECT_FALSE(again["repairs"].empty());
  // --strict refuses content that needs repair.
  CtlResult strict = ctl({"creds", "write", device, "41", "root-ca", messy_file, "--strict"});
  EXPECT_EQ(strict.code, 6) << strict.Both();
  EXPECT_THAT(strict.err, HasSubstr("(INVALID_ARGUMENT)"));
  // From stdin.
  CtlResult from_stdin = ctl({"creds", "write", device, "43", "ROOT_CA_CERT", "-"}, pem);
  EXPECT_EQ(from_stdin.code, 0) << from_stdin.Both();
  // Not a certificate at all.
  const std::string bad = lab.WriteFile("bad.pem", "HONKHONK\n");
  CtlResult refused = ctl({"creds", "write", device, "44", "root-ca", bad});
  EXPECT_EQ(refused.code, 6) << refused.Both();
  EXPECT_THAT(refused.err, StartsWith("error: write root-ca (0) at tag 44 on " + device +
                                      " (INVALID_ARGUMENT): "));

  nlohmann::json list = Json(ctl({"creds", "list", device, "--json"}));
  std::map<int, std::string> tags;
  for (const auto& e : list["entries"]) tags[e["sec_tag"].get<int>()] = e["sha256"];
  EXPECT_EQ(tags[42], sha);
  EXPECT_EQ(tags[43], sha);
  EXPECT_EQ(tags.count(44), 0u);
  EXPECT_EQ(Json(ctl({"creds", "list", device, "--tag", "42", "--json"}))["entries"].size(), 1u);
  CtlResult table = ctl({"creds", "list", device});
  EXPECT_THAT(table.out, HasSubstr("root-ca"));

  // Read back byte-exact.
  const std::string out_file = lab.File("read.pem");
  CtlResult read = ctl({"creds", "read", device, "42", "root-ca", "-o", out_file});
  ASSERT_EQ(read.code, 0) << read.Both();
  EXPECT_EQ(testing::ReadFileOrDie(out_file), pem);
  nlohmann::json rj = Json(ctl({"creds", "read", device, "43", "0", "--json"}));
  EXPECT_EQ(rj["content"], pem);
  EXPECT_EQ(rj["entry"]["sha256"], sha);

  // --dry-run validates, repairs and compares, and writes nothing.
  CtlResult dry = ctl({"creds", "write", device, "45", "root-ca", messy_file, "--dry-run"});
  ASSERT_EQ(dry.code, 0) << dry.Both();
  EXPECT_THAT(dry.out, StartsWith("dry run: write root-ca (0) at tag 45 on " + device));
  EXPECT_THAT(dry.out, HasSubstr("repaired:"));
  nlohmann::json dry_json =
      Json(ctl({"creds", "write", device, "42", "root-ca", messy_file, "--dry-run", "--json"}));
  EXPECT_EQ(dry_json["skipped"], true) << "tag 42 already holds it";
  EXPECT_EQ(Json(ctl({"creds", "list", device, "--tag", "45", "--json"}))["entries"].size(), 0u);

  CtlResult del = ctl({"creds", "delete", device, "43", "root-ca"});
  EXPECT_EQ(del.code, 0) << del.Both();
  EXPECT_THAT(del.out, StartsWith("deleted root-ca (0) at tag 43"));
  CtlResult gone = ctl({"creds", "delete", device, "43", "root-ca"});
  EXPECT_EQ(gone.code, 5) << gone.Both();
  CtlResult ignore = ctl({"creds", "delete", device, "43", "root-ca", "--ignore-missing"});
  EXPECT_EQ(ignore.code, 0) << ignore.Both();
  EXPECT_THAT(ignore.out, StartsWith("nothing to delete"));
  nlohmann::json del_json =
      Json(ctl({"creds", "delete", device, "43", "root-ca", "--ignore-missing", "--json"}));
  EXPECT_EQ(del_json["skipped"], true);
  EXPECT_TRUE(del_json.contains("steps"));
  nlohmann::json del42 = Json(ctl({"creds", "delete", device, "42", "root-ca", "--json"}));
  EXPECT_EQ(del42["skipped"], false);
  EXPECT_FALSE(del42["steps"].empty());

  // Key generation inside the modem: the CSR comes back, the key stays.
  CtlResult csr = ctl({"creds", "keygen", device, "60", "--attributes", "CN=e2e-device"});
  ASSERT_EQ(csr.code, 0) << csr.Both();
  EXPECT_THAT(csr.out, StartsWith("-----BEGIN CERTIFICATE REQUEST-----"));
  auto subject = pki::CsrSubject(csr.out);
  ASSERT_TRUE(subject.ok()) << subject.status();
  EXPECT_THAT(*subject, HasSubstr("CN=e2e-device"));
  EXPECT_THAT(csr.err, HasSubstr("private key stays in the modem"));
}

TEST_F(ClientE2E, CredsInDirectMode) {
  CheckCreds(lab_, lab_.Direct(), "modem0");
  CtlResult sign =
      lab_.Ctl({"--agent", lab_.agent_addr(), "creds", "keygen", "modem0", "61", "--sign"});
  EXPECT_EQ(sign.code, 2) << sign.Both();
  EXPECT_THAT(sign.err, HasSubstr("needs the server's CA"));
}

TEST_F(ClientE2E, CredsThroughTheServer) {
  REQUIRE_SERVER();
  CheckCreds(lab_, {}, lab_.imei(1));
  // With --sign the server's CA signs the modem's CSR and writes it back.
  nlohmann::json signed_key = Json(lab_.Ctl({"creds", "keygen", lab_.imei(1), "61", "--attributes",
                                             "CN=signed-e2e", "--sign", "--json"}));
  std::string cert = signed_key["certificate_pem"];
  ASSERT_THAT(cert, StartsWith("-----BEGIN CERTIFICATE-----"));
  EXPECT_OK(pki::VerifyCertificate(testing::ReadFileOrDie(lab_.pki_dir() + "/ca.pem"), cert,
                                   absl::Now()));
  nlohmann::json listed = Json(lab_.Ctl({"creds", "list", lab_.imei(1), "--tag", "61", "--json"}));
  std::set<std::string> types;
  for (const auto& e : listed["entries"]) types.insert(e["type"].get<std::string>());
  EXPECT_TRUE(types.count("CLIENT_CERT")) << listed.dump();
  EXPECT_TRUE(types.count("CLIENT_PRIVATE_KEY")) << listed.dump();
}

// ---- leases and roles ----------------------------------------------------------------

TEST_F(ClientE2E, LeasesAndRolesThroughTheServer) {
  REQUIRE_SERVER();
  nlohmann::json lease =
      Json(lab_.Ctl({"lease", "acquire", "bench1/modem2", "--reason", "flashing", "--json"}));
  EXPECT_EQ(lease["owner"], "alice");
  EXPECT_EQ(lease["reason"], "flashing");
  nlohmann::json list = Json(lab_.Ctl({"lease", "list", "--json"}));
  ASSERT_EQ(list["leases"].size(), 1u);
  EXPECT_EQ(list["leases"][0]["port"], "modem2");
  EXPECT_EQ(list["leases"][0]["owner"], "alice");
  CtlResult table = lab_.Ctl({"lease", "list"});
  EXPECT_THAT(table.out, HasSubstr("flashing"));

  // Someone else's lease: FAILED_PRECONDITION naming the holder, exit 7.
  CtlResult blocked = lab_.CtlAs("olga", {"at", "bench1/modem2", "AT"});
  EXPECT_EQ(blocked.code, 7) << blocked.Both();
  EXPECT_THAT(blocked.err, HasSubstr("(FAILED_PRECONDITION)"));
  EXPECT_THAT(blocked.err, HasSubstr("leased by alice"));
  EXPECT_THAT(blocked.err,
              HasSubstr("hint: see who holds which port with 'atbridgectl lease list'"));
  // A viewer may read but not run AT: exit 4 and the role needed.
  EXPECT_EQ(lab_.CtlAs("vera", {"devices", "list"}).code, 0);
  CtlResult denied = lab_.CtlAs("vera", {"at", "bench1/modem0", "AT"});
  EXPECT_EQ(denied.code, 4) << denied.Both();
  EXPECT_THAT(denied.err, HasSubstr("(PERMISSION_DENIED)"));
  EXPECT_THAT(denied.err, HasSubstr("hint: this needs the operator role (you are vera (viewer))"));
  // Automation creates jobs but runs no raw AT.
  EXPECT_EQ(lab_.CtlAs("otto", {"at", "bench1/modem0", "AT"}).code, 4);

  nlohmann::json renewed =
      Json(lab_.Ctl({"lease", "renew", "bench1/modem2", "--lease-id",
                     lease["lease_id"].get<std::string>(), "--ttl", "30m", "--json"}));
  EXPECT_GT(renewed["expires_at"].get<std::string>(), lease["expires_at"].get<std::string>());
  // Only the holder (or an admin with --force) releases.
  EXPECT_NE(lab_.CtlAs("olga", {"lease", "release", "bench1/modem2"}).code, 0);
  CtlResult released = lab_.Ctl({"lease", "release", "bench1/modem2"});
  EXPECT_EQ(released.code, 0) << released.Both();
  EXPECT_THAT(released.out, HasSubstr("released bench1/modem2"));
  CtlResult none = lab_.Ctl({"lease", "list"});
  EXPECT_EQ(none.out, "");
  EXPECT_EQ(none.err, "no leases\n");
  EXPECT_EQ(lab_.CtlAs("olga", {"at", "bench1/modem2", "AT"}).code, 0);

  // An admin forces someone else's lease free.
  ASSERT_EQ(lab_.CtlAs("olga", {"lease", "acquire", "bench1/modem1"}).code, 0);
  CtlResult forced = lab_.Ctl({"lease", "release", "bench1/modem1", "--force"});
  EXPECT_EQ(forced.code, 0) << forced.Both();
  EXPECT_THAT(forced.out, HasSubstr("held by olga"));
}

TEST_F(ClientE2E, LeasesInDirectMode) {
  auto direct = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {"--agent", lab_.agent_addr()});
    return args;
  };
  nlohmann::json lease = Json(lab_.Ctl(direct({"lease", "acquire", "modem1", "--json"})));
  EXPECT_EQ(lease["owner"], "alice");
  EXPECT_EQ(lease["agent"], "bench1");
  EXPECT_EQ(lease["imei"], lab_.imei(1));
  nlohmann::json list = Json(lab_.Ctl(direct({"lease", "list", "--json"})));
  ASSERT_EQ(list["leases"].size(), 1u);
  CtlResult blocked = lab_.CtlAs("olga", direct({"creds", "list", "modem1"}));
  EXPECT_EQ(blocked.code, 0) << "reads are not blocked by a lease: " << blocked.Both();
  CtlResult write_blocked = lab_.CtlAs("olga", direct({"at", "modem1", "AT"}));
  EXPECT_EQ(write_blocked.code, 7) << write_blocked.Both();
  // Renew without --lease-id: our own lease on that port.
  nlohmann::json renewed =
      Json(lab_.Ctl(direct({"lease", "renew", "modem1", "--ttl", "20m", "--json"})));
  EXPECT_EQ(renewed["lease_id"], lease["lease_id"]);
  EXPECT_GT(renewed["expires_at"].get<std::string>(), lease["expires_at"].get<std::string>());
  CtlResult renewed_text = lab_.Ctl(direct({"lease", "renew", "modem1"}));
  EXPECT_EQ(renewed_text.code, 0) << renewed_text.Both();
  EXPECT_THAT(renewed_text.out, StartsWith("renewed bench1/modem1"));
  EXPECT_EQ(lab_.Ctl(direct({"lease", "release", "modem1"})).code, 0);
  EXPECT_EQ(Json(lab_.Ctl(direct({"lease", "list", "--json"})))["leases"].size(), 0u);
}

// ---- jobs --------------------------------------------------------------------------------

TEST_F(ClientE2E, PushWaitReportWatchAndAudit) {
  REQUIRE_SERVER();
  const std::string pem_file = lab_.WriteFile("ca.pem", Pem() + "\n");
  CtlResult push =
      lab_.Ctl({"push", "42", "root-ca", pem_file, "--label", "slot=a", "--wait", "--json"});
  ASSERT_EQ(push.code, 0) << push.Both();
  nlohmann::json job = nlohmann::json::parse(push.out);
  const std::string id = job["id"];
  EXPECT_EQ(job["state"], "JOB_COMPLETED");
  EXPECT_EQ(job["counts"]["total"], 1);
  EXPECT_EQ(job["counts"]["succeeded"], 1);
  EXPECT_EQ(job["executions"][0]["imei"], lab_.imei(0));
  EXPECT_EQ(job["executions"][0]["sha256"], pki::Sha256Hex(Pem()));
  // Progress goes to stderr as plain lines when it is not a terminal.
  EXPECT_THAT(push.err, HasSubstr("job " + id + ": 1/1 done (succeeded 1) completed"));

  // The same push again: already there, skipped (exit 0). By automation.
  CtlResult again =
      lab_.CtlAs("otto", {"push", "42", "root-ca", pem_file, "--label", "slot=a", "--wait"});
  EXPECT_EQ(again.code, 0) << again.Both();
  EXPECT_THAT(again.out, HasSubstr("(skipped 1) completed"));

  // A job whose execution fails exits 1 and points at the report.
  CtlResult failed = lab_.Ctl({"push", "46", "public-key", pem_file, "--imei", lab_.imei(1),
                               "--max-attempts", "1", "--wait"});
  EXPECT_EQ(failed.code, 1) << failed.Both();
  EXPECT_THAT(failed.err, HasSubstr("(1 failed)"));
  EXPECT_THAT(failed.err, HasSubstr(lab_.imei(1) + " bench1/modem1 failed"));
  EXPECT_THAT(failed.err, HasSubstr("hint: see 'atbridgectl jobs report "));

  // Without --wait: the id, then watch.
  nlohmann::json created = Json(lab_.Ctl({"push", "47", "root-ca", pem_file, "--all", "--json"}));
  const std::string id2 = created["id"];
  EXPECT_EQ(created["counts"]["total"], 3);
  CtlResult watch = lab_.Ctl({"jobs", "watch", id2});
  EXPECT_EQ(watch.code, 0) << watch.Both();
  EXPECT_THAT(watch.out, HasSubstr("3/3 done (succeeded 3) completed"));
  nlohmann::json watched = Json(lab_.Ctl({"jobs", "watch", id2, "--json"}));
  EXPECT_EQ(watched["id"], id2);
  EXPECT_EQ(watched["state"], "JOB_COMPLETED");
  EXPECT_EQ(watched["executions"].size(), 3u);

  // --dry-run resolves and validates, touches no device; --max-concurrency
  // goes into the job's rollout.
  nlohmann::json dry = Json(lab_.Ctl({"push", "48", "root-ca", pem_file, "--all", "--dry-run",
                                      "--max-concurrency", "2", "--wait", "--json"}));
  EXPECT_EQ(dry["spec"]["dry_run"], true);
  EXPECT_EQ(dry["spec"]["rollout"]["max_concurrency"], 2);
  EXPECT_EQ(dry["counts"]["total"], 3);
  EXPECT_EQ(dry["state"], "JOB_COMPLETED");
  EXPECT_EQ(Json(lab_.Ctl({"creds", "list", "slot=a", "--tag", "48", "--json"}))["entries"].size(),
            0u);

  nlohmann::json jobs = Json(lab_.Ctl({"jobs", "list", "--json"}));
  std::set<std::string> ids;
  for (const auto& j : jobs["jobs"]) ids.insert(j["id"].get<std::string>());
  EXPECT_TRUE(ids.count(id) && ids.count(id2)) << jobs.dump();
  EXPECT_EQ(
      Json(lab_.Ctl({"jobs", "list", "--state", "completed", "--limit", "1", "--json"}))["jobs"]
          .size(),
      1u);
  CtlResult list_table = lab_.Ctl({"jobs", "list"});
  EXPECT_THAT(list_table.out, HasSubstr("write root-ca@42"));

  nlohmann::json shown = Json(lab_.Ctl({"jobs", "show", id2, "--json"}));
  EXPECT_EQ(shown["executions"].size(), 3u);
  CtlResult shown_table = lab_.Ctl({"jobs", "show", id2});
  EXPECT_THAT(shown_table.out, HasSubstr("executions:"));
  EXPECT_THAT(shown_table.out, HasSubstr(lab_.imei(2)));

  CtlResult csv = lab_.Ctl({"jobs", "report", id2, "--format", "csv"});
  ASSERT_EQ(csv.code, 0) << csv.Both();
  std::vector<std::string> rows = absl::StrSplit(csv.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(rows.size(), 4u) << csv.out;
  EXPECT_THAT(rows[0], HasSubstr("imei"));
  nlohmann::json report = Json(lab_.Ctl({"jobs", "report", id2, "--format", "json"}));
  EXPECT_EQ(report["executions"].size(), 3u);
  CtlResult report_table = lab_.Ctl({"jobs", "report", id2});
  EXPECT_THAT(report_table.out, HasSubstr("succeeded"));
  EXPECT_EQ(lab_.Ctl({"jobs", "report", id2, "--format", "xml"}).code, 2);
  CtlResult missing = lab_.Ctl({"jobs", "show", "no-such-job"});
  EXPECT_EQ(missing.code, 5) << missing.Both();

  // Audit: who did what, never with content.
  nlohmann::json audit = Json(lab_.Ctl({"audit", "--action", "CreateJob", "--json"}));
  ASSERT_GE(audit["records"].size(), 4u);
  std::set<std::string> principals;
  for (const auto& rec : audit["records"]) principals.insert(rec["principal"].get<std::string>());
  EXPECT_EQ(principals, (std::set<std::string>{"alice", "otto"}));
  EXPECT_EQ(audit.dump().find("MIIDQTCCAimgAwIBAgITBmyfz5m"), std::string::npos);
  // Device operations are recorded against the IMEI.
  ASSERT_EQ(lab_.Ctl({"at", "bench1/modem0", "AT"}).code, 0);
  nlohmann::json by_device =
      Json(lab_.Ctl({"audit", "--device", "bench1/modem0", "--since", "1h", "--json"}));
  ASSERT_FALSE(by_device["records"].empty());
  EXPECT_EQ(by_device["records"][0]["action"], "Execute");
  EXPECT_THAT(by_device["records"][0]["target"].get<std::string>(), HasSubstr(lab_.imei(0)));
  CtlResult by_olga = lab_.Ctl({"audit", "--principal", "olga"});
  EXPECT_EQ(by_olga.code, 0);
  EXPECT_EQ(by_olga.err, "no audit records\n");
}

TEST_F(ClientE2E, RotateAndCancel) {
  REQUIRE_SERVER();
  const std::string first = lab_.WriteFile("first.pem", Pem());
  const std::string second_pem = OtherPem();
  const std::string second = lab_.WriteFile("second.pem", second_pem);
  ASSERT_EQ(lab_.Ctl({"push", "50", "root-ca", first, "--all", "--wait"}).code, 0);
  CtlResult rotate = lab_.Ctl({"rotate", "50", "root-ca", second, "--all", "--wait", "--json"});
  ASSERT_EQ(rotate.code, 0) << rotate.Both();
  nlohmann::json job = nlohmann::json::parse(rotate.out);
  EXPECT_EQ(job["counts"]["succeeded"], 3);
  EXPECT_TRUE(job["spec"].contains("rotate"));
  nlohmann::json listed = Json(lab_.Ctl({"creds", "list", "slot=b", "--tag", "50", "--json"}));
  EXPECT_EQ(listed["entries"][0]["sha256"], pki::Sha256Hex(second_pem));

  // One start per minute: the first runs, the rest wait; cancel them.
  nlohmann::json slow =
      Json(lab_.Ctl({"push", "51", "root-ca", first, "--all", "--per-minute", "1", "--json"}));
  const std::string id = slow["id"];
  nlohmann::json canceled = Json(lab_.Ctl({"jobs", "cancel", id, "--reason", "e2e", "--json"}));
  EXPECT_EQ(canceled["state"], "JOB_CANCELED");
  CtlResult watch = lab_.Ctl({"jobs", "watch", id});
  EXPECT_EQ(watch.code, 1) << watch.Both();
  EXPECT_THAT(watch.err, HasSubstr("(canceled)"));
  EXPECT_THAT(watch.err, HasSubstr("e2e"));

  // Ctrl-C during push --wait stops watching, not the job: exit 130, the
  // job id and how to follow it again.
  Subprocess push;
  ASSERT_OK(push.Start(Cmd(lab_.ServerFlags(), {"push", "52", "root-ca", first, "--all",
                                                "--per-minute", "1", "--wait"})));
  ASSERT_OK_AND_ASSIGN(std::string created, push.WaitForLine("created job "));
  const std::string slow_id = std::vector<std::string>(absl::StrSplit(created, ' '))[2];
  push.Signal(SIGINT);
  ASSERT_OK_AND_ASSIGN(int code, push.Wait(absl::Seconds(20)));
  EXPECT_EQ(code, 130) << push.Output();
  EXPECT_THAT(push.Output(), HasSubstr("the job keeps running"));
  EXPECT_THAT(push.Output(),
              HasSubstr("hint: follow it again with 'atbridgectl jobs watch " + slow_id + "'"));
  nlohmann::json still = Json(lab_.Ctl({"jobs", "show", slow_id, "--json"}));
  EXPECT_EQ(still["state"], "JOB_IN_PROGRESS");
  EXPECT_EQ(lab_.Ctl({"jobs", "cancel", slow_id}).code, 0);
}

// ---- console ---------------------------------------------------------------------------

void CheckConsole(Lab& lab, const std::vector<std::string>& flags, const std::string& device,
                  const std::string& imei) {
  Subprocess console;
  Subprocess::Options o;
  o.keep_stdin_open = true;
  ASSERT_OK(console.Start(Cmd(flags, {"console", device}), o));
  ASSERT_OK(WaitFor(console, "console on " + device + ": read-write").status());
  ASSERT_OK(console.WriteStdin("AT+CGSN\r\n"));
  ASSERT_OK(WaitFor(console, imei).status());
  ASSERT_OK(console.WriteStdin("\x1d"));  // Ctrl-]
  ASSERT_OK_AND_ASSIGN(int code, console.Wait(absl::Seconds(20)));
  EXPECT_EQ(code, 0) << console.Output();
}

TEST_F(ClientE2E, ConsoleInDirectMode) {
  CheckConsole(lab_, lab_.AgentFlags("olga"), "modem2", lab_.imei(2));
}

// Piped input: the session ends only once every command has its answer.
TEST_F(ClientE2E, ConsoleFromAPipeWaitsForTheAnswers) {
  for (int i = 0; i < 3; ++i) {
    CtlResult one =
        RunCapture(Cmd(lab_.AgentFlags("olga"), {"console", "modem2"}), {}, "AT+CGSN\r\n");
    EXPECT_EQ(one.code, 0) << one.Both();
    EXPECT_THAT(one.out, HasSubstr(lab_.imei(2) + "\r\nOK\r\n")) << i;
  }
  CtlResult two = RunCapture(Cmd(lab_.AgentFlags("olga"), {"console", "modem2"}), {},
                             "AT+CMEE=1\r\nAT+CGMM\r\nAT%CMNG=2,99,0\r\n");
  EXPECT_EQ(two.code, 0) << two.Both();
  EXPECT_THAT(two.out, HasSubstr("nRF9151-LACA\r\nOK\r\n"));
  EXPECT_THAT(two.out, HasSubstr("+CME ERROR: 513\r\n"));
  // --read-only: input is discarded and nothing is waited for.
  CtlResult watch = RunCapture(Cmd(lab_.AgentFlags("olga"), {"console", "modem2", "--read-only"}),
                               {}, "AT+CFUN=1\r\n");
  EXPECT_EQ(watch.code, 0) << watch.Both();
  EXPECT_THAT(watch.err, HasSubstr("read-only (watching)"));
  EXPECT_THAT(watch.err, HasSubstr("typed input is discarded"));
  nlohmann::json cfun =
      Json(lab_.Ctl({"--agent", lab_.agent_addr(), "at", "modem2", "AT+CFUN?", "--json"}));
  EXPECT_EQ(cfun["lines"][0], "+CFUN: 4");
}

TEST_F(ClientE2E, ConsoleWriterAndWatcherThroughTheServer) {
  REQUIRE_SERVER();
  CheckConsole(lab_, lab_.ServerFlags("olga"), "bench1/modem0", lab_.imei(0));

  // alice holds the lease: olga's console watches and shows alice's traffic.
  ASSERT_EQ(lab_.Ctl({"lease", "acquire", "bench1/modem1", "--reason", "debugging"}).code, 0);
  Subprocess watcher;
  Subprocess::Options o;
  o.keep_stdin_open = true;
  ASSERT_OK(watcher.Start(Cmd(lab_.ServerFlags("olga"), {"console", "bench1/modem1"}), o));
  ASSERT_OK_AND_ASSIGN(std::string banner, WaitFor(watcher, "read-only (watching)"));
  EXPECT_THAT(banner, HasSubstr("leased by alice"));
  ASSERT_OK(watcher.WriteStdin("AT+CFUN=1\r\n"));
  ASSERT_OK(WaitFor(watcher, "typed input is discarded").status());
  ASSERT_EQ(lab_.Ctl({"at", "bench1/modem1", "AT+CGMI"}).code, 0);
  ASSERT_OK(WaitFor(watcher, "Nordic Semiconductor ASA").status());
  ASSERT_OK(watcher.WriteStdin("\x1d"));
  ASSERT_OK_AND_ASSIGN(int code, watcher.Wait(absl::Seconds(20)));
  // Piped input that was discarded is an error a script can see (exit 7).
  EXPECT_EQ(code, 7) << watcher.Output();
  EXPECT_THAT(watcher.Output(), HasSubstr("byte(s) of piped input were not sent"));
  EXPECT_THAT(watcher.Output(), HasSubstr("atbridgectl lease list"));
  // The typed AT+CFUN=1 never reached the modem.
  nlohmann::json cfun = Json(lab_.Ctl({"at", "bench1/modem1", "AT+CFUN?", "--json"}));
  EXPECT_EQ(cfun["lines"][0], "+CFUN: 4");
}

// ---- attach -------------------------------------------------------------------------

// The exact bytes a serial tool sees for a %CMNG write/list/read/delete
// cycle through the attach pty. With `flush` false the tool does not flush
// its input when it opens the port: nothing stale may be waiting there.
void CheckSerialToolCycles(const std::string& link, int cycles, bool flush = true) {
  const std::string pem = Pem();
  const std::string sha = pki::Sha256Hex(pem);
  for (int i = 0; i < cycles; ++i) {
    const std::string tag = absl::StrCat(100 + i);
    std::vector<std::string> argv = {ATBRIDGE_SERIAL_TOOL};
    if (!flush) argv.push_back("--no-flush");
    argv.insert(argv.end(),
                {link, "AT+CMEE=1", absl::StrCat("AT%CMNG=0,", tag, ",0,\"", pem, "\""),
                 absl::StrCat("AT%CMNG=1,", tag), absl::StrCat("AT%CMNG=2,", tag, ",0"),
                 absl::StrCat("AT%CMNG=3,", tag, ",0"), absl::StrCat("AT%CMNG=3,", tag, ",0")});
    CtlResult r = RunCapture(argv, {}, "", absl::Seconds(30));
    ASSERT_EQ(r.code, 0) << "cycle " << i << ": " << r.Both();
    std::vector<std::string> answers = absl::StrSplit(r.out, '\n', absl::SkipEmpty());
    ASSERT_EQ(answers.size(), 6u) << r.out;
    std::vector<std::string> got;
    for (const auto& a : answers) {
      std::string raw;
      ASSERT_TRUE(absl::CUnescape(a, &raw)) << a;
      got.push_back(raw);
    }
    EXPECT_EQ(got[0], "OK\r\n") << i;
    EXPECT_EQ(got[1], "OK\r\n") << i;
    EXPECT_EQ(got[2], absl::StrCat("%CMNG: ", tag, ",0,\"", sha, "\"\r\nOK\r\n")) << i;
    EXPECT_EQ(got[3], absl::StrCat("%CMNG: ", tag, ",0,\"", sha, "\",\"", pem, "\"\r\nOK\r\n"))
        << i;
    EXPECT_EQ(got[4], "OK\r\n") << i;
    EXPECT_EQ(got[5], "+CME ERROR: 513\r\n") << i;
  }
}

TEST_F(ClientE2E, AttachThroughTheServerServesTenSuccessiveSerialTools) {
  REQUIRE_SERVER();
  const std::string link = lab_.File("ttyNRF0");
  Subprocess attach;
  ASSERT_OK(
      attach.Start(Cmd(lab_.ServerFlags("olga"), {"attach", "bench1/modem0", "--link", link})));
  ASSERT_OK(attach.WaitForLine("attached bench1/modem0 at " + link).status());

  CheckSerialToolCycles(link, 10);

  // The session holds the lease: others cannot write meanwhile.
  CtlResult blocked = lab_.Ctl({"at", "bench1/modem0", "AT"});
  EXPECT_EQ(blocked.code, 7) << blocked.Both();
  EXPECT_THAT(blocked.err, HasSubstr("leased by olga"));

  attach.Signal(SIGINT);
  ASSERT_OK_AND_ASSIGN(int code, attach.Wait(absl::Seconds(20)));
  EXPECT_EQ(code, 0) << attach.Output();
  struct stat st;
  EXPECT_NE(lstat(link.c_str(), &st), 0) << "the link must be removed on exit";
}

TEST_F(ClientE2E, AttachInDirectModeStopsOnSigtermAndReleasesTheLease) {
  const std::string link = lab_.File("ttyNRF1");
  Subprocess attach;
  ASSERT_OK(attach.Start(Cmd(lab_.AgentFlags("olga"), {"attach", "modem1", "--link", link})));
  ASSERT_OK(attach.WaitForLine("attached modem1 at " + link).status());
  // Ten successive tool processes that never flush: every one gets exactly
  // its own answers.
  CheckSerialToolCycles(link, 10, /*flush=*/false);
  nlohmann::json leases = Json(lab_.Ctl({"--agent", lab_.agent_addr(), "lease", "list", "--json"}));
  ASSERT_EQ(leases["leases"].size(), 1u);
  EXPECT_EQ(leases["leases"][0]["owner"], "olga");
  EXPECT_THAT(leases["leases"][0]["reason"].get<std::string>(), HasSubstr(link));

  // A second attach to the same port is refused: someone holds the lease.
  CtlResult second = RunCapture(
      Cmd(lab_.AgentFlags("alice"), {"attach", "modem1", "--link", lab_.File("ttyNRF1b")}), {});
  EXPECT_EQ(second.code, 7) << second.Both();
  EXPECT_THAT(second.err, HasSubstr("leased by olga"));
  struct stat st;
  EXPECT_NE(lstat(lab_.File("ttyNRF1b").c_str(), &st), 0) << "a refused attach links nothing";
  // A second attach on the same path is refused, for the same port or a
  // free one, and the first one's link keeps working.
  for (const char* port : {"modem1", "modem2"}) {
    CtlResult same_path =
        RunCapture(Cmd(lab_.AgentFlags("alice"), {"attach", port, "--link", link}), {});
    EXPECT_EQ(same_path.code, 7) << same_path.Both();
    EXPECT_THAT(same_path.err, HasSubstr("in use by another running atbridgectl attach"));
    EXPECT_THAT(same_path.err, HasSubstr("hint: "));
  }
  CheckSerialToolCycles(link, 1);
  // A path that is not a symlink is never replaced (and no lease is taken).
  const std::string regular = lab_.WriteFile("not-a-tty", "data");
  CtlResult file =
      RunCapture(Cmd(lab_.AgentFlags("alice"), {"attach", "modem2", "--link", regular}), {});
  EXPECT_EQ(file.code, 7) << file.Both();
  EXPECT_THAT(file.err, HasSubstr("is not a symlink"));
  EXPECT_EQ(testing::ReadFileOrDie(regular), "data");

  attach.Signal(SIGTERM);
  ASSERT_OK_AND_ASSIGN(int code, attach.Wait(absl::Seconds(20)));
  EXPECT_EQ(code, 0) << attach.Output();
  EXPECT_NE(lstat(link.c_str(), &st), 0);
  EXPECT_EQ(
      Json(lab_.Ctl({"--agent", lab_.agent_addr(), "lease", "list", "--json"}))["leases"].size(),
      0u);
}

// A tool that leaves echo and canonical mode on and closes without reading
// does not poison the port: what the modem says while nobody has it open is
// dropped (not echoed back to the modem), and the next tool, which does not
// flush, gets a fresh line with exactly its own answers. The tool also sees
// modem-line ioctls refused, as on any pty, and carries on.
TEST_F(ClientE2E, AttachGivesEachToolAFreshLineAsARealPortWould) {
  const std::string link = lab_.File("ttyNRF2");
  Subprocess attach;
  ASSERT_OK(attach.Start(Cmd(lab_.AgentFlags("olga"), {"attach", "modem2", "--link", link})));
  ASSERT_OK(attach.WaitForLine("attached modem2 at " + link).status());
  for (int round = 0; round < 2; ++round) {
    CtlResult sloppy = RunCapture({ATBRIDGE_SERIAL_TOOL, "--sloppy", link}, {});
    ASSERT_EQ(sloppy.code, 0) << sloppy.Both();
    // Modem output while no tool has the port open (olga's own lease lets
    // her run `at` meanwhile; the console relays its answer to attach).
    CtlResult at = lab_.CtlAs("olga", {"--agent", lab_.agent_addr(), "at", "modem2", "AT"});
    ASSERT_EQ(at.code, 0) << at.Both();
    // Once per idle period: this round's notice is the (round+1)-th.
    int seen = 0;
    ASSERT_OK(attach
                  .WaitForLineMatching(
                      [&](const std::string& l) {
                        return absl::StrContains(
                                   l, "no tool has " + link + " open: modem output is dropped") &&
                               ++seen == round + 1;
                      },
                      absl::Seconds(20))
                  .status());
    CheckSerialToolCycles(link, 1, /*flush=*/false);
  }
  EXPECT_TRUE(attach.running()) << attach.Output();
  attach.Signal(SIGINT);
  ASSERT_OK_AND_ASSIGN(int code, attach.Wait(absl::Seconds(20)));
  EXPECT_EQ(code, 0) << attach.Output();
}

// An attach outlives its session lease many times over: it renews it.
class ShortLeaseE2E : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(lab_.Start()); }
  Lab lab_{Lab::Options{.modems = 1, .server = false, .agent_lease_ttl = "1s"}};
};

TEST_F(ShortLeaseE2E, AttachRenewsItsLeaseWhileInUse) {
  const std::string link = lab_.File("ttyNRF0");
  Subprocess attach;
  ASSERT_OK(attach.Start(Cmd(lab_.AgentFlags("olga"), {"attach", "modem0", "--link", link})));
  ASSERT_OK(attach.WaitForLine("attached modem0 at " + link).status());
  // Keep the port busy for 2.5 lease lifetimes; an unrenewed lease would
  // lapse and the next write would fail (LEASE_LOST ends the attach).
  const absl::Time end = absl::Now() + absl::Milliseconds(2500);
  int cycles = 0;
  while (absl::Now() < end && !::testing::Test::HasFailure()) {
    CheckSerialToolCycles(link, 1);
    ++cycles;
  }
  EXPECT_GT(cycles, 1);
  nlohmann::json leases = Json(lab_.Ctl({"--agent", lab_.agent_addr(), "lease", "list", "--json"}));
  ASSERT_EQ(leases["leases"].size(), 1u);
  EXPECT_EQ(leases["leases"][0]["owner"], "olga");
  EXPECT_TRUE(attach.running()) << attach.Output();
  attach.Signal(SIGINT);
  ASSERT_OK_AND_ASSIGN(int code, attach.Wait(absl::Seconds(20)));
  EXPECT_EQ(code, 0) << attach.Output();
}

// ---- completion and connection errors ---------------------------------------------------

TEST_F(ClientE2E, BashCompletionCompletesCommands) {
  const std::string script =
      lab_.WriteFile("complete.sh", absl::StrCat("source <(", BinaryPath("atbridgectl"),
                                                 " completion bash)\n"
                                                 "COMP_WORDS=(atbridgectl cre); COMP_CWORD=1; "
                                                 "_atbridgectl; echo \"${COMPREPLY[@]}\"\n"
                                                 "COMP_WORDS=(atbridgectl creds w); "
                                                 "COMP_CWORD=2; _atbridgectl; echo "
                                                 "\"${COMPREPLY[@]}\"\n"));
  CtlResult r = RunCapture({"/bin/bash", script}, {});
  EXPECT_EQ(r.code, 0) << r.Both();
  EXPECT_EQ(r.out, "creds\nwrite\n");
}

TEST_F(ClientE2E, PkiIssueNamesValidityAndOutputDirectory) {
  const std::string out = lab_.File("issued");
  CtlResult r = lab_.Ctl({"pki", "issue", "--role", "agent", "--name", "bench2", "--dns", "b2.lab",
                          "--dns", "localhost", "--ip", "10.1.2.3", "--ip", "127.0.0.1", "--days",
                          "30", "--out", out});
  ASSERT_EQ(r.code, 0) << r.Both();
  EXPECT_THAT(r.out, HasSubstr("names: b2.lab, localhost, 10.1.2.3, 127.0.0.1"));
  EXPECT_EQ(r.out.find("PRIVATE KEY"), std::string::npos);
  struct stat st;
  ASSERT_EQ(stat((out + "/bench2.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_NE(stat((lab_.pki_dir() + "/bench2.pem").c_str(), &st), 0) << "--out, not --dir";
  const std::string pem = testing::ReadFileOrDie(out + "/bench2.pem");
  ASSERT_OK_AND_ASSIGN(pki::CertificateInfo info, pki::ParseCertificate(pem));
  EXPECT_EQ(info.dns_names, (std::vector<std::string>{"b2.lab", "localhost"}));
  EXPECT_GT(info.not_after - absl::Now(), absl::Hours(24 * 29));
  EXPECT_LT(info.not_after - absl::Now(), absl::Hours(24 * 31));
  EXPECT_OK(
      pki::VerifyCertificate(testing::ReadFileOrDie(lab_.pki_dir() + "/ca.pem"), pem, absl::Now()));
  // The agent certificate works: the real agent accepts a client with it.
  CtlResult as_agent = lab_.Ctl({"--agent", lab_.agent_addr(), "--cert", out + "/bench2.pem",
                                 "--key", out + "/bench2.key", "config", "show", "--json"});
  EXPECT_EQ(Json(as_agent)["identity"], "bench2 (agent)");
}

TEST_F(ClientE2E, UnreachableOrUntrustedPeersGiveHints) {
  CtlResult down = lab_.Ctl({"--server", "127.0.0.1:1", "devices", "list"});
  EXPECT_EQ(down.code, 3) << down.Both();
  EXPECT_THAT(down.err, StartsWith("error: list devices on server 127.0.0.1:1 (UNAVAILABLE): "));
  EXPECT_THAT(down.err, HasSubstr("hint: is the server running? check --server (now 127.0.0.1:1)"));

  // A CA from another `pki init` does not trust this agent.
  CtlResult other = RunCapture({BinaryPath("atbridgectl"), "pki", "init", "--name", "mallory"},
                               {"XDG_CONFIG_HOME=" + lab_.File("other")});
  ASSERT_EQ(other.code, 0) << other.Both();
  CtlResult untrusted = lab_.Ctl({"--agent", lab_.agent_addr(), "--ca",
                                  lab_.File("other/atbridge/pki/ca.pem"), "devices", "list"});
  EXPECT_EQ(untrusted.code, 3) << untrusted.Both();
  EXPECT_THAT(untrusted.err, HasSubstr("hint: the TLS handshake failed"));
}

}  // namespace
}  // namespace atbridge::client::e2e
