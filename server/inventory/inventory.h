// The inventory: agents, their ports, and modems keyed by IMEI with the
// credentials known to be on them. Kept in memory for fast lookups and
// written through to the store, so it survives restarts (every agent is
// offline after a restart until it dials in again). A board moved to
// another agent or port keeps its IMEI, and with it its labels, alias,
// credentials and job history.
//
// Fed by the uplink (hello, port updates, disconnects) and by credential
// responses relayed through the server (listings, verified writes,
// deletes). Queried by the Provisioning service and the job engine.
//
// Thread-safety: thread-safe (one internal mutex; store writes happen under
// it, so calls may take as long as a small SQLite transaction: call from
// worker threads, not from gRPC reactions). Store failures are logged and the
// in-memory view stays authoritative.
#ifndef ATBRIDGE_SERVER_INVENTORY_INVENTORY_H_
#define ATBRIDGE_SERVER_INVENTORY_INVENTORY_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "atbridge/v1/common.pb.h"
#include "atbridge/v1/provisioning.pb.h"
#include "common/clock.h"
#include "server/jobs/agent_client.h"
#include "server/store/store.h"

namespace atbridge::server::inventory {

// True for exactly 15 decimal digits.
bool IsValidImei(const std::string& imei);

class Inventory {
 public:
  // Loads agents, devices and credentials from `store` (not owned; must
  // outlive the inventory), as does `clock`.
  static absl::StatusOr<std::unique_ptr<Inventory>> Create(store::InventoryStore* store,
                                                           const Clock* clock);

  // Called with the IMEIs of devices that are (again) online after a hello
  // or a port update, without the inventory lock held, on the thread that
  // fed the update. Set once before use.
  using OnlineListener = std::function<void(const std::vector<std::string>& imeis)>;
  void SetOnlineListener(OnlineListener listener);

  // ---- fed by the uplink ----

  // An agent said hello on a new stream. Returns the connection id to pass
  // to AgentDisconnected (a replaced stream's late disconnect is ignored).
  uint64_t AgentConnected(const std::string& name, const std::string& version,
                          const std::string& peer, const std::vector<v1::PortInfo>& ports);
  // The stream with `connection_id` ended.
  void AgentDisconnected(const std::string& name, uint64_t connection_id);
  // Any message arrived from the agent (updates last_seen in memory only).
  void AgentSeen(const std::string& name);
  // A port changed (state, modem, lease).
  void PortUpdated(const std::string& agent, const v1::PortInfo& port);

  // ---- credential sync from relayed responses ----

  // A fresh listing; with `has_sec_tag`, only entries of that tag are
  // replaced. Known subject/issuer/expiry are kept for unchanged hashes.
  void CredentialsListed(const std::string& imei, const std::vector<v1::CredentialEntry>& entries,
                         bool has_sec_tag, uint32_t sec_tag);
  // A verified write (or a skip: the entry is there).
  void CredentialWritten(const std::string& imei, const v1::CredentialEntry& entry);
  // A delete.
  void CredentialDeleted(const std::string& imei, uint32_t sec_tag, v1::CredentialType type);

  // ---- queries ----

  std::vector<v1::AgentInfo> ListAgents() const;
  bool IsAgentConnected(const std::string& name) const;
  // Devices matching `selector` (empty: all), by IMEI.
  std::vector<v1::Device> ListDevices(const v1::TargetSelector& selector,
                                      bool connected_only) const;
  // IMEIs a job selector targets. INVALID_ARGUMENT for an empty selector
  // (no criteria and not `all`) or a malformed IMEI, NOT_FOUND for an
  // unknown IMEI.
  absl::StatusOr<std::vector<std::string>> ResolveSelector(
      const v1::TargetSelector& selector) const;
  // One device: by IMEI, by agent/port, by alias, or by a "key=value" label
  // matching exactly one device. NOT_FOUND when none matches,
  // FAILED_PRECONDITION ("ambiguous") when several do, INVALID_ARGUMENT for
  // an empty or malformed reference.
  absl::StatusOr<v1::Device> Resolve(const v1::DeviceRef& ref) const;
  // Sets/removes server labels and the alias. ALREADY_EXISTS when the alias
  // belongs to another device; INVALID_ARGUMENT for malformed labels/alias.
  absl::StatusOr<v1::Device> Update(const v1::UpdateDeviceRequest& request);
  // Where the device is reachable now: NOT_FOUND if unknown, UNAVAILABLE
  // when its agent is disconnected or its port not ready.
  absl::StatusOr<jobs::DeviceLocation> Locate(const std::string& imei) const;

  // A certificate the inventory knows to expire soon.
  struct Expiring {
    std::string imei;
    std::string agent;  // Where the device was last seen.
    std::string port;
    v1::CredentialEntry entry;
  };
  // Certificate entries (root CA and client certificates with a known
  // not_after) of every device that expire before `before`, soonest first.
  std::vector<Expiring> ListExpiring(absl::Time before) const;

  // Agents known / connected now (for metrics).
  size_t AgentCount(bool connected_only) const;

  // The id of the agent's current (or last) connection; 0 if never seen.
  uint64_t ConnectionId(const std::string& agent) const;
  // Blocks until `agent` is connected with a connection id >= `min_id`, or
  // `timeout` passes (false). For tests and tools: waits on a condition,
  // never polls.
  bool AwaitAgent(const std::string& agent, uint64_t min_id, absl::Duration timeout) const;

 private:
  struct DeviceState {
    store::DeviceRecord rec;
    bool present = false;  // Currently identified on rec.agent/rec.port.
    v1::Lease lease;
    std::vector<v1::CredentialEntry> credentials;  // Sorted by (sec_tag, type).
  };
  struct AgentState {
    store::AgentRecord rec;
    bool connected = false;
    uint64_t connection_id = 0;
    std::map<std::string, v1::PortInfo> ports;
  };

  Inventory(store::InventoryStore* store, const Clock* clock) : store_(store), clock_(clock) {}

  // Applies one port of `agent`; records changed IMEIs in `changed`.
  void ApplyPortLocked(const std::string& agent, const v1::PortInfo& port,
                       std::vector<std::string>* changed) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PersistDevicesLocked(const std::vector<std::string>& imeis)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PersistAgentLocked(const AgentState& agent) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::Device ViewLocked(const DeviceState& d) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool OnlineLocked(const DeviceState& d) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool MatchesLocked(const DeviceState& d, const v1::TargetSelector& s) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<const DeviceState*> ResolveLocked(const v1::DeviceRef& ref) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SaveCredentialsLocked(const std::string& imei) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  store::InventoryStore* const store_;
  const Clock* const clock_;
  mutable absl::Mutex mu_;
  std::map<std::string, AgentState> agents_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, DeviceState> devices_ ABSL_GUARDED_BY(mu_);
  uint64_t next_connection_id_ ABSL_GUARDED_BY(mu_) = 1;
  OnlineListener online_listener_ ABSL_GUARDED_BY(mu_);
};

}  // namespace atbridge::server::inventory

#endif  // ATBRIDGE_SERVER_INVENTORY_INVENTORY_H_
