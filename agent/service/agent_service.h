// The direct gRPC Agent service (callback API). Every RPC becomes a
// v1::AgentRequest handed to AgentCore, with the caller's identity read from
// the peer certificate. Reactions never block: they hand work to the core's
// io thread, which calls Finish when done.
#ifndef ATBRIDGE_AGENT_SERVICE_AGENT_SERVICE_H_
#define ATBRIDGE_AGENT_SERVICE_AGENT_SERVICE_H_

#include <cstddef>
#include <memory>

#include "absl/status/status.h"
#include "agent/service/agent_core.h"
#include "atbridge/v1/agent.grpc.pb.h"

namespace atbridge::agent {

class AgentService final : public v1::Agent::CallbackService {
 public:
  // Per-watcher console output bound; beyond it output is dropped and the
  // watcher gets a DROPPED event (it never stalls the port or others).
  static constexpr size_t kConsoleQueueBytes = 256 * 1024;

  explicit AgentService(AgentCore& core);
  ~AgentService() override;

  // Finishes every open Console stream with `status` (UNAVAILABLE when the
  // agent stops) and refuses new ones the same way: long streams must end
  // before Server::Shutdown (grpc-notes §7). Thread-safe; never call it from
  // a reaction.
  void FinishStreams(const absl::Status& status);

  grpc::ServerUnaryReactor* ListPorts(grpc::CallbackServerContext* ctx,
                                      const v1::ListPortsRequest* req,
                                      v1::ListPortsResponse* resp) override;
  grpc::ServerUnaryReactor* GetModemInfo(grpc::CallbackServerContext* ctx,
                                         const v1::GetModemInfoRequest* req,
                                         v1::ModemInfo* resp) override;
  grpc::ServerUnaryReactor* Execute(grpc::CallbackServerContext* ctx, const v1::ExecuteRequest* req,
                                    v1::AtResult* resp) override;
  grpc::ServerBidiReactor<v1::ConsoleIn, v1::ConsoleOut>* Console(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* AcquireLease(grpc::CallbackServerContext* ctx,
                                         const v1::AcquireLeaseRequest* req,
                                         v1::Lease* resp) override;
  grpc::ServerUnaryReactor* RenewLease(grpc::CallbackServerContext* ctx,
                                       const v1::RenewLeaseRequest* req, v1::Lease* resp) override;
  grpc::ServerUnaryReactor* ReleaseLease(grpc::CallbackServerContext* ctx,
                                         const v1::ReleaseLeaseRequest* req,
                                         v1::ReleaseLeaseResponse* resp) override;
  grpc::ServerUnaryReactor* ListLeases(grpc::CallbackServerContext* ctx,
                                       const v1::ListLeasesRequest* req,
                                       v1::ListLeasesResponse* resp) override;
  grpc::ServerUnaryReactor* ListCredentials(grpc::CallbackServerContext* ctx,
                                            const v1::ListCredentialsRequest* req,
                                            v1::ListCredentialsResponse* resp) override;
  grpc::ServerUnaryReactor* ReadCredential(grpc::CallbackServerContext* ctx,
                                           const v1::ReadCredentialRequest* req,
                                           v1::ReadCredentialResponse* resp) override;
  grpc::ServerUnaryReactor* WriteCredential(grpc::CallbackServerContext* ctx,
                                            const v1::WriteCredentialRequest* req,
                                            v1::WriteReport* resp) override;
  grpc::ServerUnaryReactor* DeleteCredential(grpc::CallbackServerContext* ctx,
                                             const v1::DeleteCredentialRequest* req,
                                             v1::DeleteCredentialResponse* resp) override;
  grpc::ServerUnaryReactor* GenerateKey(grpc::CallbackServerContext* ctx,
                                        const v1::GenerateKeyRequest* req,
                                        v1::GenerateKeyResponse* resp) override;

  // The open Console reactors (an implementation detail of the .cc).
  struct ConsoleRegistry;

 private:
  template <typename Resp, typename Extract>
  grpc::ServerUnaryReactor* Unary(grpc::CallbackServerContext* ctx, v1::AgentRequest request,
                                  Resp* resp, Extract extract);

  AgentCore& core_;
  std::unique_ptr<ConsoleRegistry> consoles_;
};

}  // namespace atbridge::agent

#endif  // ATBRIDGE_AGENT_SERVICE_AGENT_SERVICE_H_
