#include "agent/service/agent_service.h"

#include <deque>
#include <mutex>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/tls/identity.h"

namespace atbridge::agent {

namespace {

// A unary reactor that tells the core when the client goes away.
class UnaryReactor final : public grpc::ServerUnaryReactor {
 public:
  CancelFlag cancelled = std::make_shared<std::atomic<bool>>(false);
  void OnCancel() override { *cancelled = true; }
  void OnDone() override { delete this; }
};

absl::StatusOr<Caller> CallerOf(grpc::CallbackServerContext* ctx) {
  auto id = tls::IdentityFromAuthContext(*ctx->auth_context());
  if (!id.ok()) {
    ATB_LOG(WARNING) << "denied: " << id.status().message() << " (peer " << ctx->peer() << ")";
    return id.status();
  }
  return Caller{.principal = id->principal, .role = id->role, .via_server = false};
}

absl::Time DeadlineOf(grpc::CallbackServerContext* ctx) {
  auto d = ctx->deadline();
  if (d == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(d);
}

class ConsoleReactor;

}  // namespace

// The open Console reactors, so that shutdown can finish them. A reactor is
// added when created and removed in OnDone, under `mu`; it is alive while
// listed.
struct AgentService::ConsoleRegistry {
  std::mutex mu;
  std::set<ConsoleReactor*> open;
  bool closing = false;  // FinishStreams was called.
  grpc::Status closing_status;
};

namespace {

// Console stream: one reactor per client; output fanned out by the core's
// io thread into a byte-bounded queue; input written to the port one message
// at a time (the next read starts when the previous bytes are on the wire).
// Every operation on the reactor runs under `mu_` and none after Finish.
class ConsoleReactor final : public grpc::ServerBidiReactor<v1::ConsoleIn, v1::ConsoleOut> {
 public:
  class Sink final : public ConsoleSink {
   public:
    explicit Sink(ConsoleReactor* r) : reactor_(r) {}
    void OnConsoleOut(v1::ConsoleOut out) override {
      std::lock_guard<std::mutex> lock(mu_);
      if (reactor_) reactor_->Enqueue(std::move(out));
    }
    void OnConsoleClosed(absl::Status status) override {
      std::lock_guard<std::mutex> lock(mu_);
      if (reactor_) reactor_->FinishWhenDrained(ToGrpcStatus(status));
    }
    // The bytes of the last input message are on the wire: read the next.
    void OnInputWritten() {
      std::lock_guard<std::mutex> lock(mu_);
      if (reactor_) reactor_->ReadNext();
    }
    void Detach() {
      std::lock_guard<std::mutex> lock(mu_);
      reactor_ = nullptr;
    }

   private:
    std::mutex mu_;
    ConsoleReactor* reactor_;
  };

  ConsoleReactor(AgentCore& core, absl::StatusOr<Caller> caller,
                 AgentService::ConsoleRegistry* registry)
      : core_(core),
        caller_(std::move(caller)),
        sink_(std::make_shared<Sink>(this)),
        registry_(registry) {
    std::lock_guard<std::mutex> registry_lock(registry_->mu);
    registry_->open.insert(this);
    std::lock_guard<std::mutex> lock(mu_);
    if (registry_->closing) {
      FinishLocked(registry_->closing_status);
      return;
    }
    if (!caller_.ok()) {
      FinishLocked(ToGrpcStatus(caller_.status()));
      return;
    }
    StartRead(&in_);
  }

  // Shutdown: ends the session and the stream now (registry lock held).
  void Abort(const grpc::Status& status) {
    std::lock_guard<std::mutex> lock(mu_);
    CloseSession();
    FinishLocked(status);
  }

  void OnReadDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    // A read may complete while Finish runs on another thread (the io
    // thread, a sink, shutdown): the reactor is not touched after Finish.
    if (finished_) {
      if (!ok) CloseSession();
      return;
    }
    if (!ok) {
      // The client closed its side (or the call broke): end the session.
      CloseSession();
      FinishWhenDrainedLocked(grpc::Status::OK);
      return;
    }
    if (!session_) {
      if (!in_.has_open()) {
        FinishLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                  "the first console message must be `open`"));
        return;
      }
      session_ = core_.OpenConsole(*caller_, in_.open(), sink_);
      StartRead(&in_);
      return;
    }
    if (in_.msg_case() != v1::ConsoleIn::kData) {
      StartRead(&in_);
      return;
    }
    // io thread; a failed write already produced an event for the client.
    session_->Write(std::move(*in_.mutable_data()),
                    [sink = sink_](const absl::Status&) { sink->OnInputWritten(); });
  }

  void ReadNext() {
    std::lock_guard<std::mutex> lock(mu_);
    if (!finished_ && !read_closed_) StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!out_.empty()) {
      if (out_.front().has_data()) queued_bytes_ -= out_.front().data().size();
      out_.pop_front();
    }
    if (!ok) {
      CloseSession();
      FinishLocked(grpc::Status::CANCELLED);
      return;
    }
    if (dropped_ > 0) {
      v1::ConsoleOut e;
      e.mutable_event()->set_kind(v1::ConsoleEvent::DROPPED);
      e.mutable_event()->set_dropped_bytes(dropped_);
      e.mutable_event()->set_detail(
          absl::StrCat("this watcher fell behind; ", dropped_, " bytes of output were dropped"));
      dropped_ = 0;
      out_.push_back(std::move(e));
    }
    WriteNextLocked();
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    CloseSession();
    FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    {
      std::lock_guard<std::mutex> registry_lock(registry_->mu);
      registry_->open.erase(this);
    }
    sink_->Detach();
    {
      std::lock_guard<std::mutex> lock(mu_);
      CloseSession();
    }
    delete this;
  }

  // From the sink (io thread).
  void Enqueue(v1::ConsoleOut out) {
    std::lock_guard<std::mutex> lock(mu_);
    if (finished_ || finish_pending_) return;
    if (out.has_data()) {
      if (queued_bytes_ + out.data().size() > AgentService::kConsoleQueueBytes) {
        dropped_ += out.data().size();
        return;
      }
      queued_bytes_ += out.data().size();
    }
    out_.push_back(std::move(out));
    WriteNextLocked();
  }

  void FinishWhenDrained(grpc::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    FinishWhenDrainedLocked(std::move(status));
  }

 private:
  void WriteNextLocked() {
    if (finished_ || writing_) return;
    if (out_.empty()) {
      if (finish_pending_) FinishLocked(finish_status_);
      return;
    }
    writing_ = true;
    StartWrite(&out_.front());
  }

  void FinishWhenDrainedLocked(grpc::Status status) {
    read_closed_ = true;
    if (finished_ || finish_pending_) return;
    finish_pending_ = true;
    finish_status_ = std::move(status);
    if (!writing_ && out_.empty()) FinishLocked(finish_status_);
  }

  void FinishLocked(const grpc::Status& status) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  void CloseSession() {
    if (session_) {
      session_->Close();
      session_.reset();
    }
  }

  AgentCore& core_;
  absl::StatusOr<Caller> caller_;
  std::shared_ptr<Sink> sink_;
  AgentService::ConsoleRegistry* registry_;
  std::mutex mu_;
  v1::ConsoleIn in_;
  std::shared_ptr<ConsoleSession> session_;
  std::deque<v1::ConsoleOut> out_;
  size_t queued_bytes_ = 0;
  uint64_t dropped_ = 0;
  bool writing_ = false;
  bool finished_ = false;
  bool finish_pending_ = false;
  bool read_closed_ = false;
  grpc::Status finish_status_;
};

}  // namespace

AgentService::AgentService(AgentCore& core)
    : core_(core), consoles_(std::make_unique<ConsoleRegistry>()) {}

AgentService::~AgentService() = default;

void AgentService::FinishStreams(const absl::Status& status) {
  std::lock_guard<std::mutex> lock(consoles_->mu);
  consoles_->closing = true;
  consoles_->closing_status = ToGrpcStatus(status);
  if (!consoles_->open.empty()) {
    ATB_LOG(INFO) << "ending " << consoles_->open.size() << " console stream(s): " << status;
  }
  for (ConsoleReactor* r : consoles_->open) r->Abort(consoles_->closing_status);
}

template <typename Resp, typename Extract>
grpc::ServerUnaryReactor* AgentService::Unary(grpc::CallbackServerContext* ctx,
                                              v1::AgentRequest request,  // NOLINT: moved
                                              Resp* resp, Extract extract) {
  auto* reactor = new UnaryReactor();
  auto caller = CallerOf(ctx);
  if (!caller.ok()) {
    reactor->Finish(ToGrpcStatus(caller.status()));
    return reactor;
  }
  core_.Handle(*std::move(caller), std::move(request), DeadlineOf(ctx), reactor->cancelled,
               [reactor, resp, extract](absl::StatusOr<v1::AgentResponse> r) mutable {
                 if (!r.ok()) {
                   reactor->Finish(ToGrpcStatus(r.status()));
                   return;
                 }
                 extract(*r, resp);
                 reactor->Finish(grpc::Status::OK);
               });
  return reactor;
}

#define ATB_AGENT_UNARY(Method, ReqType, RespType, field)                                      \
  grpc::ServerUnaryReactor* AgentService::Method(grpc::CallbackServerContext* ctx,             \
                                                 const v1::ReqType* req, v1::RespType* resp) { \
    v1::AgentRequest r;                                                                        \
    *r.mutable_##field() = *req;                                                               \
    return Unary(ctx, std::move(r), resp, [](v1::AgentResponse& a, v1::RespType* out) {        \
      *out = std::move(*a.mutable_##field());                                                  \
    });                                                                                        \
  }

ATB_AGENT_UNARY(ListPorts, ListPortsRequest, ListPortsResponse, list_ports)
ATB_AGENT_UNARY(GetModemInfo, GetModemInfoRequest, ModemInfo, get_modem_info)
ATB_AGENT_UNARY(Execute, ExecuteRequest, AtResult, execute)
ATB_AGENT_UNARY(AcquireLease, AcquireLeaseRequest, Lease, acquire_lease)
ATB_AGENT_UNARY(RenewLease, RenewLeaseRequest, Lease, renew_lease)
ATB_AGENT_UNARY(ReleaseLease, ReleaseLeaseRequest, ReleaseLeaseResponse, release_lease)
ATB_AGENT_UNARY(ListLeases, ListLeasesRequest, ListLeasesResponse, list_leases)
ATB_AGENT_UNARY(ListCredentials, ListCredentialsRequest, ListCredentialsResponse, list_credentials)
ATB_AGENT_UNARY(ReadCredential, ReadCredentialRequest, ReadCredentialResponse, read_credential)
ATB_AGENT_UNARY(WriteCredential, WriteCredentialRequest, WriteReport, write_credential)
ATB_AGENT_UNARY(DeleteCredential, DeleteCredentialRequest, DeleteCredentialResponse,
                delete_credential)
ATB_AGENT_UNARY(GenerateKey, GenerateKeyRequest, GenerateKeyResponse, generate_key)

#undef ATB_AGENT_UNARY

grpc::ServerBidiReactor<v1::ConsoleIn, v1::ConsoleOut>* AgentService::Console(
    grpc::CallbackServerContext* ctx) {
  return new ConsoleReactor(core_, CallerOf(ctx), consoles_.get());
}

}  // namespace atbridge::agent
