// Sends requests to agents over their uplink sessions, for the Provisioning
// service and (as jobs::AgentClient) for the job engine, and keeps the
// inventory's credential view in sync from what comes back: listings,
// verified writes (with subject/issuer/expiry parsed from certificate
// content), reads and deletes.
//
// Thread-safety: thread-safe. Callbacks run on the worker pool.
#ifndef ATBRIDGE_SERVER_SERVICE_RELAY_H_
#define ATBRIDGE_SERVER_SERVICE_RELAY_H_

#include <string>

#include "server/inventory/inventory.h"
#include "server/jobs/agent_client.h"
#include "server/service/agent_session.h"
#include "server/service/worker_pool.h"

namespace atbridge::server::service {

class Relay final : public jobs::AgentClient {
 public:
  // Dependencies are not owned and must outlive the relay.
  Relay(AgentRegistry* registry, inventory::Inventory* inventory, WorkerPool* pool)
      : registry_(registry), inventory_(inventory), pool_(pool) {}

  absl::StatusOr<jobs::DeviceLocation> Locate(const std::string& imei) override;

  // Sends `request` to `agent`; UNAVAILABLE when it is not connected. The
  // inventory is updated from successful credential responses before `done`.
  void Send(const std::string& agent, const v1::Actor& actor, v1::AgentRequest request,
            absl::Duration timeout, Callback done) override;

 private:
  void SyncInventory(const std::string& agent, const v1::AgentRequest& request,
                     const v1::AgentResponse& response);

  AgentRegistry* const registry_;
  inventory::Inventory* const inventory_;
  WorkerPool* const pool_;
};

}  // namespace atbridge::server::service

#endif  // ATBRIDGE_SERVER_SERVICE_RELAY_H_
