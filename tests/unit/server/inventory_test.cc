// Inventory over a temp SQLite store: hellos and port updates, moves that
// keep history, disconnects, reloads, device references, selectors, labels
// and aliases, credential sync.
#include "server/inventory/inventory.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "server/service/audit_log.h"
#include "server/service/expiry_audit.h"
#include "server/service/worker_pool.h"
#include "server/store/sqlite_store.h"
#include "server/util/proto_time.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace atbridge::server::inventory {
namespace {

using ::atbridge::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::SizeIs;

v1::PortInfo Port(const std::string& name, const std::string& imei,
                  v1::PortState state = v1::PORT_STATE_READY) {
  v1::PortInfo p;
  p.set_name(name);
  p.set_state(state);
  (*p.mutable_labels())["board"] = "nrf9151dk";
  (*p.mutable_labels())["port"] = name;
  p.mutable_modem()->set_imei(imei);
  p.mutable_modem()->set_model("nRF9151");
  p.mutable_modem()->set_firmware("mfw_nrf91x1_2.0.2");
  return p;
}

constexpr char kA[] = "351111111111111";
constexpr char kB[] = "352222222222222";
constexpr char kC[] = "353333333333333";

class InventoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = store::OpenSqliteStore(dir_.File("inv.db"));
    ASSERT_OK(s);
    store_ = *std::move(s);
    Reload();
  }
  void Reload() {
    inv_.reset();
    auto inv = Inventory::Create(store_.get(), &clock_);
    ASSERT_OK(inv);
    inv_ = *std::move(inv);
    inv_->SetOnlineListener([this](const std::vector<std::string>& imeis) {
      online_events_.insert(online_events_.end(), imeis.begin(), imeis.end());
    });
  }
  static v1::DeviceRef Imei(const std::string& imei) {
    v1::DeviceRef r;
    r.set_imei(imei);
    return r;
  }
  static v1::DeviceRef Alias(const std::string& alias) {
    v1::DeviceRef r;
    r.set_alias(alias);
    return r;
  }

  atbridge::testing::TempDir dir_;
  atbridge::testing::FakeClock clock_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<Inventory> inv_;
  std::vector<std::string> online_events_;
};

TEST_F(InventoryTest, HelloRegistersAgentAndDevices) {
  uint64_t id = inv_->AgentConnected(
      "lab-1", "1.2.3", "ipv4:10.0.0.5:4000",
      {Port("modem0", kA), Port("modem1", kB), Port("modem2", "", v1::PORT_STATE_DOWN)});
  EXPECT_GT(id, 0u);
  EXPECT_THAT(online_events_, ElementsAre(kA, kB));
  auto agents = inv_->ListAgents();
  ASSERT_THAT(agents, SizeIs(1));
  EXPECT_EQ(agents[0].name(), "lab-1");
  EXPECT_TRUE(agents[0].connected());
  EXPECT_EQ(agents[0].port_count(), 3u);
  EXPECT_EQ(agents[0].peer(), "ipv4:10.0.0.5:4000");
  auto devices = inv_->ListDevices({}, false);
  ASSERT_THAT(devices, SizeIs(2));
  EXPECT_EQ(devices[0].imei(), kA);
  EXPECT_EQ(devices[0].port(), "modem0");
  EXPECT_TRUE(devices[0].online());
  EXPECT_EQ(devices[0].labels().at("board"), "nrf9151dk");
  ASSERT_OK_AND_ASSIGN(auto loc, inv_->Locate(kB));
  EXPECT_EQ(loc.agent, "lab-1");
  EXPECT_EQ(loc.port, "modem1");
  EXPECT_THAT(inv_->Locate(kC), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(InventoryTest, DisconnectMakesDevicesOfflineAndStaleDisconnectsAreIgnored) {
  uint64_t first = inv_->AgentConnected("lab-1", "1", "p", {Port("modem0", kA)});
  uint64_t second = inv_->AgentConnected("lab-1", "1", "p2", {Port("modem0", kA)});
  inv_->AgentDisconnected("lab-1", first);  // The replaced stream ends late.
  EXPECT_TRUE(inv_->IsAgentConnected("lab-1"));
  EXPECT_OK(inv_->Locate(kA));
  clock_.Advance(absl::Seconds(5));
  inv_->AgentDisconnected("lab-1", second);
  EXPECT_FALSE(inv_->IsAgentConnected("lab-1"));
  EXPECT_THAT(inv_->Locate(kA), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("offline")));
  EXPECT_THAT(inv_->ListDevices({}, /*connected_only=*/true), SizeIs(0));
  EXPECT_THAT(inv_->ListDevices({}, false), SizeIs(1));
}

TEST_F(InventoryTest, PortUpdatesTrackModemsAndLeases) {
  inv_->AgentConnected("lab-1", "1", "p", {Port("modem0", kA)});
  online_events_.clear();
  inv_->PortUpdated("lab-1", Port("modem0", "", v1::PORT_STATE_DOWN));
  EXPECT_THAT(inv_->Locate(kA), StatusIs(absl::StatusCode::kUnavailable));
  v1::PortInfo back = Port("modem0", kA);
  back.mutable_lease()->set_owner("alice");
  back.mutable_lease()->set_lease_id("l1");
  inv_->PortUpdated("lab-1", back);
  EXPECT_THAT(online_events_, ElementsAre(kA));
  ASSERT_OK_AND_ASSIGN(v1::Device d, inv_->Resolve(Imei(kA)));
  EXPECT_TRUE(d.online());
  EXPECT_EQ(d.lease().owner(), "alice");
  EXPECT_EQ(d.lease().imei(), kA);
  EXPECT_EQ(d.lease().agent(), "lab-1");
  // A different modem on the same port replaces it.
  inv_->PortUpdated("lab-1", Port("modem0", kB));
  EXPECT_THAT(inv_->Locate(kA), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_OK(inv_->Locate(kB));
}

TEST_F(InventoryTest, MovedBoardKeepsItsHistory) {
  inv_->AgentConnected("lab-1", "1", "p", {Port("modem0", kA)});
  v1::UpdateDeviceRequest up;
  *up.mutable_device() = Imei(kA);
  (*up.mutable_set_labels())["owner"] = "qa";
  up.set_has_alias(true);
  up.set_alias("bench-a");
  ASSERT_OK(inv_->Update(up));
  v1::CredentialEntry e;
  e.set_sec_tag(42);
  e.set_type(v1::CLIENT_CERT);
  e.set_sha256("AA");
  e.set_subject("CN=dev");
  inv_->CredentialWritten(kA, e);
  // Unplugged from lab-1, plugged into lab-2.
  inv_->PortUpdated("lab-1", Port("modem0", "", v1::PORT_STATE_DOWN));
  inv_->AgentConnected("lab-2", "1", "q", {Port("ttyUSB3", kA)});
  ASSERT_OK_AND_ASSIGN(v1::Device d, inv_->Resolve(Alias("bench-a")));
  EXPECT_EQ(d.agent(), "lab-2");
  EXPECT_EQ(d.port(), "ttyUSB3");
  EXPECT_EQ(d.labels().at("owner"), "qa");
  ASSERT_THAT(d.credentials(), SizeIs(1));
  EXPECT_EQ(d.credentials(0).subject(), "CN=dev");
  // And all of it survives a restart, with everyone offline.
  Reload();
  ASSERT_OK_AND_ASSIGN(d, inv_->Resolve(Alias("bench-a")));
  EXPECT_FALSE(d.online());
  EXPECT_EQ(d.agent(), "lab-2");
  EXPECT_THAT(d.credentials(), SizeIs(1));
  EXPECT_EQ(d.labels().at("board"), "nrf9151dk");
  auto agents = inv_->ListAgents();
  ASSERT_THAT(agents, SizeIs(2));
  EXPECT_FALSE(agents[0].connected());
}

TEST_F(InventoryTest, DeviceReferences) {
  inv_->AgentConnected("lab-1", "1", "p", {Port("modem0", kA), Port("modem1", kB)});
  inv_->AgentConnected("lab-2", "1", "p", {Port("modem0", kC)});
  v1::DeviceRef port;
  port.mutable_port()->set_agent("lab-2");
  port.mutable_port()->set_port("modem0");
  ASSERT_OK_AND_ASSIGN(v1::Device d, inv_->Resolve(port));
  EXPECT_EQ(d.imei(), kC);
  ASSERT_OK_AND_ASSIGN(d, inv_->Resolve(Alias("port=modem1")));
  EXPECT_EQ(d.imei(), kB);
  EXPECT_THAT(inv_->Resolve(Alias("port=modem0")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("ambiguous")));
  EXPECT_THAT(inv_->Resolve(Alias("board=other")), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(inv_->Resolve(Alias("nobody")), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(inv_->Resolve(Imei("12345")), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(inv_->Resolve(v1::DeviceRef()), StatusIs(absl::StatusCode::kInvalidArgument));
  port.mutable_port()->set_port("modem9");
  EXPECT_THAT(inv_->Resolve(port), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(InventoryTest, UpdateValidatesLabelsAndUniqueAliases) {
  inv_->AgentConnected("lab-1", "1", "p", {Port("modem0", kA), Port("modem1", kB)});
  v1::UpdateDeviceRequest up;
  *up.mutable_device() = Imei(kA);
  up.set_has_alias(true);
  up.set_alias("bench");
  ASSERT_OK(inv_->Update(up));
  *up.mutable_device() = Imei(kB);
  EXPECT_THAT(inv_->Update(up), StatusIs(absl::StatusCode::kAlreadyExists));
  up.set_alias("a=b");
  EXPECT_THAT(inv_->Update(up), StatusIs(absl::StatusCode::kInvalidArgument));
  up.set_alias(kC);
  EXPECT_THAT(inv_->Update(up), StatusIs(absl::StatusCode::kInvalidArgument));
  v1::UpdateDeviceRequest labels;
  *labels.mutable_device() = Imei(kB);
  (*labels.mutable_set_labels())["bad key"] = "x";
  EXPECT_THAT(inv_->Update(labels), StatusIs(absl::StatusCode::kInvalidArgument));
  labels.clear_set_labels();
  (*labels.mutable_set_labels())["board"] = "custom";
  ASSERT_OK_AND_ASSIGN(v1::Device d, inv_->Update(labels));
  EXPECT_EQ(d.labels().at("board"), "custom") << "server labels win over port labels";
  labels.clear_set_labels();
  labels.add_remove_labels("board");
  ASSERT_OK_AND_ASSIGN(d, inv_->Update(labels));
  EXPECT_EQ(d.labels().at("board"), "nrf9151dk");
  // Clearing an alias.
  v1::UpdateDeviceRequest clear;
  *clear.mutable_device() = Alias("bench");
  clear.set_has_alias(true);
  ASSERT_OK_AND_ASSIGN(d, inv_->Update(clear));
  EXPECT_EQ(d.alias(), "");
}

TEST_F(InventoryTest, Selectors) {
  inv_->AgentConnected("lab-1", "1", "p", {Port("modem0", kA), Port("modem1", kB)});
  inv_->AgentConnected("lab-2", "1", "p", {Port("modem0", kC)});
  v1::TargetSelector empty;
  EXPECT_THAT(inv_->ResolveSelector(empty), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(inv_->ListDevices(empty, false), SizeIs(3)) << "listing: empty means all";
  v1::TargetSelector all;
  all.set_all(true);
  EXPECT_THAT(*inv_->ResolveSelector(all), SizeIs(3));
  v1::TargetSelector s;
  (*s.mutable_labels())["port"] = "modem0";
  EXPECT_THAT(*inv_->ResolveSelector(s), ElementsAre(kA, kC));
  s.add_agents("lab-2");
  EXPECT_THAT(*inv_->ResolveSelector(s), ElementsAre(kC));
  v1::TargetSelector by_imei;
  by_imei.add_imeis(kB);
  by_imei.add_imeis(kC);
  EXPECT_THAT(*inv_->ResolveSelector(by_imei), ElementsAre(kB, kC));
  by_imei.add_imeis("359999999999999");
  EXPECT_THAT(inv_->ResolveSelector(by_imei),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("359999999999999")));
  v1::TargetSelector bad;
  bad.add_imeis("abc");
  EXPECT_THAT(inv_->ResolveSelector(bad), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(InventoryTest, CredentialListingsKeepKnownDetails) {
  inv_->AgentConnected("lab-1", "1", "p", {Port("modem0", kA)});
  v1::CredentialEntry cert;
  cert.set_sec_tag(1);
  cert.set_type(v1::CLIENT_CERT);
  cert.set_sha256("AA");
  cert.set_subject("CN=dev");
  *cert.mutable_not_after() = ToProtoTime(absl::FromUnixSeconds(1'900'000'000));
  inv_->CredentialWritten(kA, cert);
  v1::CredentialEntry other;
  other.set_sec_tag(2);
  other.set_type(v1::ROOT_CA_CERT);
  other.set_sha256("BB");
  inv_->CredentialWritten(kA, other);
  // A listing of tag 1 (lowercase hash) keeps the subject and leaves tag 2.
  v1::CredentialEntry listed;
  listed.set_sec_tag(1);
  listed.set_type(v1::CLIENT_CERT);
  listed.set_sha256("aa");
  v1::CredentialEntry key;
  key.set_sec_tag(1);
  key.set_type(v1::CLIENT_PRIVATE_KEY);
  key.set_sha256("CC");
  inv_->CredentialsListed(kA, {listed, key}, /*has_sec_tag=*/true, 1);
  ASSERT_OK_AND_ASSIGN(v1::Device d, inv_->Resolve(Imei(kA)));
  ASSERT_THAT(d.credentials(), SizeIs(3));
  EXPECT_EQ(d.credentials(0).type(), v1::CLIENT_CERT);
  EXPECT_EQ(d.credentials(0).subject(), "CN=dev");
  EXPECT_EQ(d.credentials(1).type(), v1::CLIENT_PRIVATE_KEY);
  EXPECT_EQ(d.credentials(2).sec_tag(), 2u);
  // A full listing replaces everything.
  inv_->CredentialsListed(kA, {key}, false, 0);
  inv_->CredentialDeleted(kA, 1, v1::CLIENT_PRIVATE_KEY);
  Reload();
  ASSERT_OK_AND_ASSIGN(d, inv_->Resolve(Imei(kA)));
  EXPECT_THAT(d.credentials(), SizeIs(0));
}

TEST_F(InventoryTest, ListsCertificatesThatExpireSoonestFirst) {
  inv_->AgentConnected("lab-1", "1", "p", {Port("modem0", kA), Port("modem1", kB)});
  auto cert = [](uint32_t tag, v1::CredentialType type, int64_t not_after) {
    v1::CredentialEntry e;
    e.set_sec_tag(tag);
    e.set_type(type);
    e.set_sha256(absl::StrCat("SHA", tag));
    if (not_after != 0) *e.mutable_not_after() = ToProtoTime(absl::FromUnixSeconds(not_after));
    return e;
  };
  inv_->CredentialWritten(kA, cert(1, v1::CLIENT_CERT, 2'000'000'000));
  inv_->CredentialWritten(kA, cert(2, v1::ROOT_CA_CERT, 1'900'000'000));
  inv_->CredentialWritten(kA, cert(3, v1::ROOT_CA_CERT, 0));  // Expiry unknown.
  inv_->CredentialWritten(kB, cert(4, v1::CLIENT_CERT, 1'950'000'000));
  inv_->CredentialWritten(kB, cert(5, v1::CLIENT_CERT, 2'100'000'000));
  auto soon = inv_->ListExpiring(absl::FromUnixSeconds(2'050'000'000));
  ASSERT_THAT(soon, SizeIs(3));
  EXPECT_EQ(soon[0].entry.sec_tag(), 2u);
  EXPECT_EQ(soon[0].imei, kA);
  EXPECT_EQ(soon[0].agent, "lab-1");
  EXPECT_EQ(soon[0].port, "modem0");
  EXPECT_EQ(soon[1].entry.sec_tag(), 4u);
  EXPECT_EQ(soon[1].imei, kB);
  EXPECT_EQ(soon[2].entry.sec_tag(), 1u);
  EXPECT_THAT(inv_->ListExpiring(absl::FromUnixSeconds(1'000'000'000)), SizeIs(0));
  EXPECT_EQ(inv_->AgentCount(false), 1u);
  EXPECT_EQ(inv_->AgentCount(true), 1u);
}

TEST_F(InventoryTest, ExpiryAuditRecordsEachExpiringCertificate) {
  inv_->AgentConnected("lab-1", "1", "p", {Port("modem0", kA)});
  v1::CredentialEntry e;
  e.set_sec_tag(7);
  e.set_type(v1::CLIENT_CERT);
  e.set_sha256("AB");
  e.set_subject("CN=dev");
  *e.mutable_not_after() = ToProtoTime(clock_.Now() + absl::Hours(24 * 10));
  inv_->CredentialWritten(kA, e);
  service::WorkerPool pool(1);
  service::AuditLog audit(store_.get(), &pool, &clock_);
  service::ExpiryAudit within_30(inv_.get(), &audit, &pool, &clock_, absl::Hours(24), 30);
  service::ExpiryAudit within_5(inv_.get(), &audit, &pool, &clock_, absl::Hours(24), 5);
  EXPECT_EQ(within_5.RunOnce(), 0u);
  EXPECT_EQ(within_30.RunOnce(), 1u);
  pool.Stop();  // Lets the audit write land.
  v1::QueryAuditRequest q;
  q.set_action("ExpiringCredential");
  q.set_imei(kA);
  ASSERT_OK_AND_ASSIGN(auto records, store_->QueryAudit(q));
  ASSERT_THAT(records, SizeIs(1));
  EXPECT_EQ(records[0].principal(), "atbridge-server");
  EXPECT_THAT(records[0].detail(), HasSubstr("sec_tag 7 client certificate CN=dev expires"));
}

TEST_F(InventoryTest, AwaitAgentWaitsForTheConnection) {
  EXPECT_EQ(inv_->ConnectionId("lab-1"), 0u);
  EXPECT_FALSE(inv_->AwaitAgent("lab-1", 1, absl::Milliseconds(1)));
  uint64_t id = inv_->AgentConnected("lab-1", "1", "p", {});
  EXPECT_TRUE(inv_->AwaitAgent("lab-1", id, absl::Seconds(5)));
  EXPECT_FALSE(inv_->AwaitAgent("lab-1", id + 1, absl::Milliseconds(1)));
}

TEST(ImeiTest, Valid) {
  EXPECT_TRUE(IsValidImei("351234567890123"));
  EXPECT_FALSE(IsValidImei("35123456789012"));
  EXPECT_FALSE(IsValidImei("35123456789012a"));
}

}  // namespace
}  // namespace atbridge::server::inventory
