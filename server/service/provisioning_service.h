// The Provisioning service (callback API): inventory reads, relayed device
// access (Execute, Console, credentials, GenerateKey with CA signing,
// leases), jobs (create, get, list, watch, cancel, report) and audit queries.
//
// Threading: reactions never block. Each handler authorizes from the peer
// certificate (one place: Authorize + authz.h), then posts the work to the
// worker pool, which finishes the reactor. Long streams (WatchJob, Console)
// keep a write queue with one write in flight and finish exactly once;
// CloseStreams() ends them all at shutdown.
//
// Audit: every call that touches a device, every inventory change, job
// creation and cancellation, and every denied call is recorded (never with
// secret content).
#ifndef ATBRIDGE_SERVER_SERVICE_PROVISIONING_SERVICE_H_
#define ATBRIDGE_SERVER_SERVICE_PROVISIONING_SERVICE_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "atbridge/v1/provisioning.grpc.pb.h"
#include "common/clock.h"
#include "common/tls/identity.h"
#include "server/inventory/inventory.h"
#include "server/jobs/content_validator.h"
#include "server/jobs/csr_signer.h"
#include "server/jobs/engine.h"
#include "server/service/agent_session.h"
#include "server/service/audit_log.h"
#include "server/service/authz.h"
#include "server/service/relay.h"
#include "server/service/worker_pool.h"
#include "server/store/store.h"

namespace atbridge::server::service {

// What the service uses; none owned, all must outlive the service.
struct ProvisioningDeps {
  inventory::Inventory* inventory = nullptr;
  jobs::JobEngine* engine = nullptr;
  Relay* relay = nullptr;
  AgentRegistry* registry = nullptr;
  WorkerPool* pool = nullptr;
  AuditLog* audit = nullptr;
  store::AuditStore* audit_store = nullptr;
  const jobs::ContentValidator* validator = nullptr;
  jobs::CsrSigner* signer = nullptr;  // May be null: signing is refused.
  const Clock* clock = nullptr;
  // Deadline of a relayed call when the client sets none, and the cap.
  absl::Duration default_timeout = absl::Seconds(120);
  absl::Duration max_timeout = absl::Minutes(30);
};

// A long-lived stream the service can end at shutdown.
class ClosableStream {
 public:
  virtual ~ClosableStream() = default;
  virtual void Close(const grpc::Status& status) = 0;
};

// Open streams. Thread-safe.
class StreamSet {
 public:
  void Add(const std::shared_ptr<ClosableStream>& s);
  void Remove(const ClosableStream* s);
  void CloseAll(const grpc::Status& status);

 private:
  absl::Mutex mu_;
  std::map<const ClosableStream*, std::weak_ptr<ClosableStream>> streams_ ABSL_GUARDED_BY(mu_);
};

class ProvisioningService final : public v1::Provisioning::CallbackService {
 public:
  explicit ProvisioningService(const ProvisioningDeps& deps) : deps_(deps) {}

  // Ends every open WatchJob and Console stream (shutdown).
  void CloseStreams(const grpc::Status& status) { streams_.CloseAll(status); }

  // Identity of the caller if it may call `method`; a denial is audited.
  absl::StatusOr<tls::Identity> Authorize(grpc::CallbackServerContext* ctx,
                                          const std::string& method, const std::string& target);

  grpc::ServerUnaryReactor* ListAgents(grpc::CallbackServerContext* ctx,
                                       const v1::ListAgentsRequest* req,
                                       v1::ListAgentsResponse* resp) override;
  grpc::ServerUnaryReactor* ListDevices(grpc::CallbackServerContext* ctx,
                                        const v1::ListDevicesRequest* req,
                                        v1::ListDevicesResponse* resp) override;
  grpc::ServerUnaryReactor* GetDevice(grpc::CallbackServerContext* ctx,
                                      const v1::GetDeviceRequest* req, v1::Device* resp) override;
  grpc::ServerUnaryReactor* UpdateDevice(grpc::CallbackServerContext* ctx,
                                         const v1::UpdateDeviceRequest* req,
                                         v1::Device* resp) override;
  grpc::ServerUnaryReactor* Execute(grpc::CallbackServerContext* ctx,
                                    const v1::DeviceExecuteRequest* req,
                                    v1::AtResult* resp) override;
  grpc::ServerBidiReactor<v1::ConsoleIn, v1::ConsoleOut>* Console(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* ListCredentials(grpc::CallbackServerContext* ctx,
                                            const v1::DeviceListCredentialsRequest* req,
                                            v1::ListCredentialsResponse* resp) override;
  grpc::ServerUnaryReactor* ReadCredential(grpc::CallbackServerContext* ctx,
                                           const v1::DeviceReadCredentialRequest* req,
                                           v1::ReadCredentialResponse* resp) override;
  grpc::ServerUnaryReactor* WriteCredential(grpc::CallbackServerContext* ctx,
                                            const v1::DeviceWriteCredentialRequest* req,
                                            v1::WriteReport* resp) override;
  grpc::ServerUnaryReactor* DeleteCredential(grpc::CallbackServerContext* ctx,
                                             const v1::DeviceDeleteCredentialRequest* req,
                                             v1::DeleteCredentialResponse* resp) override;
  grpc::ServerUnaryReactor* GenerateKey(grpc::CallbackServerContext* ctx,
                                        const v1::DeviceGenerateKeyRequest* req,
                                        v1::DeviceGenerateKeyResponse* resp) override;
  grpc::ServerUnaryReactor* AcquireLease(grpc::CallbackServerContext* ctx,
                                         const v1::DeviceAcquireLeaseRequest* req,
                                         v1::Lease* resp) override;
  grpc::ServerUnaryReactor* RenewLease(grpc::CallbackServerContext* ctx,
                                       const v1::DeviceRenewLeaseRequest* req,
                                       v1::Lease* resp) override;
  grpc::ServerUnaryReactor* ReleaseLease(grpc::CallbackServerContext* ctx,
                                         const v1::DeviceReleaseLeaseRequest* req,
                                         v1::ReleaseLeaseResponse* resp) override;
  grpc::ServerUnaryReactor* ListLeases(grpc::CallbackServerContext* ctx,
                                       const v1::ListLeasesRequest* req,
                                       v1::ListLeasesResponse* resp) override;
  grpc::ServerUnaryReactor* CreateJob(grpc::CallbackServerContext* ctx,
                                      const v1::CreateJobRequest* req, v1::Job* resp) override;
  grpc::ServerUnaryReactor* GetJob(grpc::CallbackServerContext* ctx, const v1::GetJobRequest* req,
                                   v1::Job* resp) override;
  grpc::ServerUnaryReactor* ListJobs(grpc::CallbackServerContext* ctx,
                                     const v1::ListJobsRequest* req,
                                     v1::ListJobsResponse* resp) override;
  grpc::ServerWriteReactor<v1::JobEvent>* WatchJob(grpc::CallbackServerContext* ctx,
                                                   const v1::WatchJobRequest* req) override;
  grpc::ServerUnaryReactor* CancelJob(grpc::CallbackServerContext* ctx,
                                      const v1::CancelJobRequest* req, v1::Job* resp) override;
  grpc::ServerUnaryReactor* GetJobReport(grpc::CallbackServerContext* ctx,
                                         const v1::GetJobReportRequest* req,
                                         v1::JobReport* resp) override;
  grpc::ServerUnaryReactor* QueryAudit(grpc::CallbackServerContext* ctx,
                                       const v1::QueryAuditRequest* req,
                                       v1::QueryAuditResponse* resp) override;

  const ProvisioningDeps& deps() const { return deps_; }
  StreamSet& streams() { return streams_; }

 private:
  // Called with the resolved device and the agent's answer; fills the
  // response and returns the call's status.
  using Handler = std::function<absl::Status(const v1::Device&, absl::StatusOr<v1::AgentResponse>)>;

  // Resolves `ref`, sends `request` to the device's agent (port filled in)
  // for `who`, and finishes `reactor` with `handle`'s status. Audited as
  // `method` with `detail`.
  void RelayToDevice(grpc::ServerUnaryReactor* reactor, const tls::Identity& who,
                     const std::string& method, const v1::DeviceRef& ref, v1::AgentRequest request,
                     absl::Duration timeout, const std::string& detail, Handler handle);
  // Runs `fn` on the worker pool and finishes `reactor` with its status.
  void RunAndFinish(grpc::ServerUnaryReactor* reactor, std::function<absl::Status()> fn);
  absl::Duration TimeoutFor(const grpc::CallbackServerContext* ctx) const;

  const ProvisioningDeps deps_;
  StreamSet streams_;
};

// "imei", "agent/port" or the alias, for audit targets and messages.
std::string DeviceRefText(const v1::DeviceRef& ref);

}  // namespace atbridge::server::service

#endif  // ATBRIDGE_SERVER_SERVICE_PROVISIONING_SERVICE_H_
