// The operations the agent performs on a modem, as Asio coroutines over a
// ModemChannel: Execute, the credential transaction (design.md §4), delete,
// list, read and key generation. Each returns a typed status whose code is
// the retry contract (common/status/retry.h).
//
// Callers hold the channel's Lock() for the whole operation so no other
// command interleaves, and run these on the channel's io thread.
#ifndef ATBRIDGE_AGENT_MODEM_MODEM_OPS_H_
#define ATBRIDGE_AGENT_MODEM_MODEM_OPS_H_

#include <boost/asio/awaitable.hpp>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "agent/config/agent_options.h"
#include "agent/modem/modem_channel.h"
#include "atbridge/v1/agent.pb.h"
#include "common/clock.h"

namespace atbridge::agent {

template <typename T>
using Awaitable = boost::asio::awaitable<T>;

struct OpContext {
  std::shared_ptr<ModemChannel> channel;
  Clock& clock;
};

// A credential write validated and built before any byte is sent.
struct PreparedWrite {
  std::string content;  // Normalized; exactly the bytes between the quotes.
  std::string command;  // AT%CMNG=0,...,"<content>" (no terminator).
  std::string sha256;   // What the modem must report afterwards.
  std::vector<std::string> repairs;
};

// Validates tag, type and content (normalizing PEM unless strict), and
// checks that the command fits the port's AT command buffer. INVALID_ARGUMENT
// with the reason (and the sizes, for the buffer) otherwise. Never quotes
// secret content in messages.
absl::StatusOr<PreparedWrite> PrepareWrite(const v1::WriteCredentialRequest& request,
                                           const PortOptions& port);

// Upper bound of ExecuteRequest.timeout (a network scan, AT+COPS=?, takes a
// few minutes); more is INVALID_ARGUMENT.
inline constexpr absl::Duration kMaxExecuteTimeout = absl::Minutes(5);

// The result of an AT command as the API reports it.
v1::AtResult ToAtResult(const AtReply& reply);

Awaitable<absl::StatusOr<v1::AtResult>> RunExecute(OpContext ctx, v1::ExecuteRequest request);
Awaitable<absl::StatusOr<v1::ListCredentialsResponse>> RunListCredentials(
    OpContext ctx, v1::ListCredentialsRequest request);
Awaitable<absl::StatusOr<v1::ReadCredentialResponse>> RunReadCredential(
    OpContext ctx, v1::ReadCredentialRequest request);
Awaitable<absl::StatusOr<v1::WriteReport>> RunWriteCredential(OpContext ctx,
                                                              v1::WriteCredentialRequest request);
Awaitable<absl::StatusOr<v1::DeleteCredentialResponse>> RunDeleteCredential(
    OpContext ctx, v1::DeleteCredentialRequest request);
Awaitable<absl::StatusOr<v1::GenerateKeyResponse>> RunGenerateKey(OpContext ctx,
                                                                  v1::GenerateKeyRequest request);

}  // namespace atbridge::agent

#endif  // ATBRIDGE_AGENT_MODEM_MODEM_OPS_H_
