// What the job engine needs from the agents, behind an interface so the
// engine links no gRPC and tests can script outcomes. The server implements
// it over the agents' uplink streams (service/uplink_agent_client.h).
#ifndef ATBRIDGE_SERVER_JOBS_AGENT_CLIENT_H_
#define ATBRIDGE_SERVER_JOBS_AGENT_CLIENT_H_

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "atbridge/v1/common.pb.h"
#include "atbridge/v1/uplink.pb.h"

namespace atbridge::server::jobs {

// Where a device can be reached now.
struct DeviceLocation {
  std::string agent;
  std::string port;
};

// Thread-safety: implementations are thread-safe.
class AgentClient {
 public:
  using Callback = std::function<void(absl::StatusOr<v1::AgentResponse>)>;

  virtual ~AgentClient() = default;

  // The agent and port the device with `imei` is on now. NOT_FOUND for an
  // unknown IMEI; UNAVAILABLE when its agent is not connected or its port is
  // not ready. Must not block (an in-memory lookup).
  virtual absl::StatusOr<DeviceLocation> Locate(const std::string& imei) = 0;

  // Sends `request` (its port field already set) to `agent` on behalf of
  // `actor`, with `timeout` as the request's deadline. `done` runs exactly
  // once with the response or a non-OK status whose code is the retry
  // contract (common/status/retry.h): UNAVAILABLE when the agent is not
  // connected or disconnects, DEADLINE_EXCEEDED at the deadline. `done` may
  // run on any thread, possibly inline from Send.
  virtual void Send(const std::string& agent, const v1::Actor& actor, v1::AgentRequest request,
                    absl::Duration timeout, Callback done) = 0;
};

}  // namespace atbridge::server::jobs

#endif  // ATBRIDGE_SERVER_JOBS_AGENT_CLIENT_H_
