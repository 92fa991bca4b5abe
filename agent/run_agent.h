// Wires an agent together: AgentCore on one io_context thread, the gRPC Agent
// service, the optional uplink, signal handling and orderly shutdown.
#ifndef ATBRIDGE_AGENT_RUN_AGENT_H_
#define ATBRIDGE_AGENT_RUN_AGENT_H_

#include "absl/status/status.h"
#include "agent/config/agent_options.h"

namespace atbridge::agent {

// Runs until SIGINT/SIGTERM. Prints "atbridge-agent ready on <host>:<port>"
// on stdout once serving. Returns an error if it cannot start.
absl::Status RunAgent(const AgentOptions& options);

}  // namespace atbridge::agent

#endif  // ATBRIDGE_AGENT_RUN_AGENT_H_
