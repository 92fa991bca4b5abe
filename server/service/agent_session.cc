#include "server/service/agent_session.h"

#include <boost/asio/bind_executor.hpp>
#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "server/util/proto_time.h"

namespace atbridge::server::service {

namespace {

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return std::chrono::nanoseconds(absl::ToInt64Nanoseconds(d));
}

const char* RequestName(v1::AgentRequest::RequestCase c) {
  switch (c) {
    case v1::AgentRequest::kListPorts:
      return "ListPorts";
    case v1::AgentRequest::kGetModemInfo:
      return "GetModemInfo";
    case v1::AgentRequest::kExecute:
      return "Execute";
    case v1::AgentRequest::kAcquireLease:
      return "AcquireLease";
    case v1::AgentRequest::kRenewLease:
      return "RenewLease";
    case v1::AgentRequest::kReleaseLease:
      return "ReleaseLease";
    case v1::AgentRequest::kListLeases:
      return "ListLeases";
    case v1::AgentRequest::kListCredentials:
      return "ListCredentials";
    case v1::AgentRequest::kReadCredential:
      return "ReadCredential";
    case v1::AgentRequest::kWriteCredential:
      return "WriteCredential";
    case v1::AgentRequest::kDeleteCredential:
      return "DeleteCredential";
    case v1::AgentRequest::kGenerateKey:
      return "GenerateKey";
    case v1::AgentRequest::REQUEST_NOT_SET:
      break;
  }
  return "request";
}

}  // namespace

grpc::ServerBidiReactor<v1::AgentEnvelope, v1::ServerEnvelope>* AgentSession::Start(
    grpc::CallbackServerContext* ctx, const UplinkDeps& deps) {
  auto session = std::make_shared<AgentSession>(ctx, deps);
  AgentSession* raw = session.get();
  raw->Begin(std::move(session));
  return raw;
}

AgentSession::AgentSession(grpc::CallbackServerContext* ctx, const UplinkDeps& deps)
    : ctx_(ctx),
      deps_(deps),
      strand_(boost::asio::make_strand(deps.pool->io())),
      peer_(ctx->peer()) {}

AgentSession::~AgentSession() = default;

void AgentSession::Begin(std::shared_ptr<AgentSession> self) {
  absl::MutexLock lock(&mu_);
  self_ = std::move(self);
  auto id = tls::IdentityFromAuthContext(*ctx_->auth_context());
  if (!id.ok()) {
    FinishLocked(ToGrpcStatus(id.status()));
    return;
  }
  identity_ = *id;
  if (identity_.role != v1::ROLE_AGENT) {
    absl::Status denied = absl::PermissionDeniedError(
        absl::StrCat(identity_.principal, " (role ", tls::RoleName(identity_.role),
                     ") may not open the agent uplink; it needs an agent certificate"));
    deps_.audit->Record(identity_, "AgentUplink.Connect", peer_, "", denied, "");
    FinishLocked(ToGrpcStatus(denied));
    return;
  }
  StartRead(&in_);
}

void AgentSession::OnReadDone(bool ok) {
  if (!ok) {
    // The agent closed its side, or the stream broke.
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status::OK);
    return;
  }
  if (!hello_done_) {
    if (!in_.has_hello()) {
      absl::MutexLock lock(&mu_);
      FinishLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                "the first uplink message must be hello"));
      return;
    }
    if (in_.hello().agent() != identity_.principal) {
      absl::Status denied = absl::PermissionDeniedError(
          absl::StrCat("hello names agent \"", in_.hello().agent(),
                       "\" but the certificate is for \"", identity_.principal, "\""));
      deps_.audit->Record(identity_, "AgentUplink.Connect", in_.hello().agent(), "", denied, "");
      absl::MutexLock lock(&mu_);
      FinishLocked(ToGrpcStatus(denied));
      return;
    }
    HandleHello(in_.hello());
  } else {
    HandleMessage(in_);
  }
  absl::MutexLock lock(&mu_);
  if (!finish_called_ && !finish_pending_.has_value()) StartRead(&in_);
}

void AgentSession::HandleHello(const v1::AgentHello& hello) {
  hello_done_ = true;
  name_ = hello.agent();
  std::shared_ptr<AgentSession> old = deps_.registry->Register(shared_from_this());
  if (old != nullptr) {
    ATB_LOG(INFO) << "agent " << name_ << " reconnected from " << peer_
                  << "; replacing its previous stream";
    old->Close(grpc::Status(grpc::StatusCode::ABORTED,
                            absl::StrCat("replaced by a new connection from ", peer_)));
  }
  version_ = hello.version();
  // An agent that lists its ports in the hello is connected now; one that
  // first verifies the server sends them as an AgentInventory.
  if (hello.ports_size() > 0) {
    inventory_done_ = true;
    Connected(std::vector<v1::PortInfo>(hello.ports().begin(), hello.ports().end()));
  }
}

void AgentSession::Connected(std::vector<v1::PortInfo> ports) {
  deps_.audit->Record(
      identity_, "AgentUplink.Connect", name_, "", absl::OkStatus(),
      absl::StrCat("from ", peer_, ", version ", version_, ", ", ports.size(), " port(s)"));
  boost::asio::post(strand_, [self = shared_from_this(), ports = std::move(ports)] {
    self->connection_id_ =
        self->deps_.inventory->AgentConnected(self->name_, self->version_, self->peer_, ports);
  });
}

void AgentSession::HandleMessage(const v1::AgentEnvelope& msg) {
  const absl::Time now = absl::Now();
  if (now - last_seen_posted_ > absl::Seconds(1)) {
    last_seen_posted_ = now;
    boost::asio::post(
        strand_, [self = shared_from_this()] { self->deps_.inventory->AgentSeen(self->name_); });
  }
  switch (msg.body_case()) {
    case v1::AgentEnvelope::kInventory:
      if (inventory_done_) {
        ATB_LOG(WARNING) << "agent " << name_ << " sent a second inventory; ignored";
        return;
      }
      inventory_done_ = true;
      Connected(std::vector<v1::PortInfo>(msg.inventory().ports().begin(),
                                          msg.inventory().ports().end()));
      return;
    case v1::AgentEnvelope::kPortUpdate:
      boost::asio::post(strand_, [self = shared_from_this(), port = msg.port_update()] {
        self->deps_.inventory->PortUpdated(self->name_, port);
      });
      return;
    case v1::AgentEnvelope::kResponse:
    case v1::AgentEnvelope::kStatus: {
      std::optional<Pending> p;
      std::shared_ptr<ConsoleSink> console;
      {
        absl::MutexLock lock(&mu_);
        auto it = pending_.find(msg.request_id());
        if (it != pending_.end()) {
          p = std::move(it->second);
          pending_.erase(it);
        } else if (msg.has_status()) {
          auto cit = consoles_.find(msg.request_id());
          if (cit != consoles_.end()) {
            console = std::move(cit->second);
            consoles_.erase(cit);
          }
        }
      }
      if (console != nullptr) {
        console->OnConsoleEnd(FromRpcStatus(msg.status()));
        return;
      }
      if (!p.has_value()) {
        ATB_LOG(DEBUG) << "agent " << name_ << ": answer for unknown or expired request "
                       << msg.request_id();
        return;
      }
      if (p->timer) p->timer->cancel();
      absl::StatusOr<v1::AgentResponse> result;
      if (msg.has_status()) {
        absl::Status s = FromRpcStatus(msg.status());
        if (s.ok()) {
          s = absl::InternalError(absl::StrCat("agent ", name_, " answered ", RequestName(p->kind),
                                               " with an OK status and no "
                                               "response"));
        }
        result = s;
      } else if (static_cast<int>(msg.response().response_case()) != static_cast<int>(p->kind)) {
        result =
            absl::InternalError(absl::StrCat("agent ", name_, " answered ", RequestName(p->kind),
                                             " with a response of another kind"));
      } else {
        result = msg.response();
      }
      deps_.pool->Post([done = std::move(p->done), result = std::move(result)]() mutable {
        done(std::move(result));
      });
      return;
    }
    case v1::AgentEnvelope::kConsole: {
      std::shared_ptr<ConsoleSink> console;
      {
        absl::MutexLock lock(&mu_);
        auto it = consoles_.find(msg.request_id());
        if (it != consoles_.end()) console = it->second;
      }
      if (console != nullptr) console->OnConsoleOut(msg.console());
      return;
    }
    case v1::AgentEnvelope::kHello:
      ATB_LOG(WARNING) << "agent " << name_ << " sent a second hello; ignored";
      return;
    case v1::AgentEnvelope::BODY_NOT_SET:
      return;
  }
}

void AgentSession::Call(const v1::Actor& actor, v1::AgentRequest request, absl::Duration timeout,
                        Callback done) {
  if (timeout <= absl::ZeroDuration()) timeout = absl::Seconds(120);
  absl::MutexLock lock(&mu_);
  if (finish_called_ || done_) {
    deps_.pool->Post([done = std::move(done), name = name_] {
      done(absl::UnavailableError(absl::StrCat("agent ", name, " disconnected")));
    });
    return;
  }
  const uint64_t id = next_id_++;
  v1::ServerEnvelope env;
  env.set_request_id(id);
  *env.mutable_actor() = actor;
  *env.mutable_timeout() = ToProtoDuration(timeout);
  const auto kind = request.request_case();
  *env.mutable_request() = std::move(request);
  auto timer = std::make_unique<boost::asio::steady_timer>(deps_.pool->io(), ToChrono(timeout));
  timer->async_wait([weak = weak_from_this(), id](const boost::system::error_code& ec) {
    if (ec) return;
    if (auto self = weak.lock()) self->OnDeadline(id);
  });
  pending_[id] = Pending{kind, std::move(done), std::move(timer)};
  EnqueueLocked(std::move(env));
}

void AgentSession::OnDeadline(uint64_t id) {
  std::optional<Pending> p;
  {
    absl::MutexLock lock(&mu_);
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    p = std::move(it->second);
    pending_.erase(it);
    v1::ServerEnvelope cancel;
    cancel.set_request_id(id);
    cancel.mutable_cancel()->set_reason("deadline exceeded");
    EnqueueLocked(std::move(cancel));
  }
  // Already on a worker thread (timer handler).
  p->done(absl::DeadlineExceededError(
      absl::StrCat("agent ", name_, " did not answer ", RequestName(p->kind), " in time")));
}

uint64_t AgentSession::OpenConsole(const v1::Actor& actor, const v1::ConsoleOpen& open,
                                   std::shared_ptr<ConsoleSink> sink) {
  absl::MutexLock lock(&mu_);
  if (finish_called_ || done_) return 0;
  const uint64_t id = next_id_++;
  consoles_[id] = std::move(sink);
  v1::ServerEnvelope env;
  env.set_request_id(id);
  *env.mutable_actor() = actor;
  *env.mutable_console()->mutable_open() = open;
  EnqueueLocked(std::move(env));
  return id;
}

void AgentSession::ConsoleInput(uint64_t id, std::string data) {
  absl::MutexLock lock(&mu_);
  if (consoles_.count(id) == 0) return;
  v1::ServerEnvelope env;
  env.set_request_id(id);
  env.mutable_console()->set_data(std::move(data));
  EnqueueLocked(std::move(env));
}

void AgentSession::CloseConsole(uint64_t id, const std::string& reason) {
  absl::MutexLock lock(&mu_);
  if (consoles_.erase(id) == 0) return;
  v1::ServerEnvelope env;
  env.set_request_id(id);
  env.mutable_cancel()->set_reason(reason);
  EnqueueLocked(std::move(env));
}

void AgentSession::Close(const grpc::Status& status) {
  absl::MutexLock lock(&mu_);
  if (done_) return;
  FinishLocked(status);
  ctx_->TryCancel();
}

void AgentSession::EnqueueLocked(v1::ServerEnvelope env) {
  if (finish_called_ || finish_pending_.has_value() || done_) return;
  out_.push_back(std::move(env));
  if (!writing_) {
    writing_ = true;
    StartWrite(&out_.front());
  }
}

void AgentSession::FinishLocked(const grpc::Status& status) {
  if (finish_called_ || finish_pending_.has_value()) return;
  if (writing_) {
    // One op per direction: Finish after the write in flight completes, and
    // drop what was queued behind it.
    while (out_.size() > 1) out_.pop_back();
    finish_pending_ = status;
    return;
  }
  out_.clear();
  finish_called_ = true;
  Finish(status);
}

void AgentSession::OnWriteDone(bool ok) {
  absl::MutexLock lock(&mu_);
  out_.pop_front();
  writing_ = false;
  if (finish_pending_.has_value()) {
    out_.clear();
    finish_called_ = true;
    Finish(*finish_pending_);
    return;
  }
  if (!ok) {
    // The stream is broken; the read side ends too and finishes it.
    out_.clear();
    return;
  }
  if (!out_.empty() && !finish_called_) {
    writing_ = true;
    StartWrite(&out_.front());
  }
}

void AgentSession::OnCancel() {
  absl::MutexLock lock(&mu_);
  FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "uplink cancelled"));
}

void AgentSession::OnDone() {
  std::map<uint64_t, Pending> pending;
  std::map<uint64_t, std::shared_ptr<ConsoleSink>> consoles;
  std::shared_ptr<AgentSession> self;
  {
    absl::MutexLock lock(&mu_);
    done_ = true;
    pending = std::move(pending_);
    pending_.clear();
    consoles = std::move(consoles_);
    consoles_.clear();
    self = std::move(self_);
  }
  const std::string who = name_.empty() ? peer_ : name_;
  for (auto& [id, p] : pending) {
    if (p.timer) p.timer->cancel();
    deps_.pool->Post([done = std::move(p.done), who] {
      done(absl::UnavailableError(absl::StrCat("agent ", who, " disconnected")));
    });
  }
  for (auto& [id, sink] : consoles) {
    sink->OnConsoleEnd(absl::UnavailableError(absl::StrCat("agent ", who, " disconnected")));
  }
  if (hello_done_) {
    deps_.registry->Unregister(name_, this);
    boost::asio::post(strand_, [self] {
      self->deps_.inventory->AgentDisconnected(self->name_, self->connection_id_);
    });
  }
  // `self` may be the last reference: the session is destroyed here or when
  // the last timer/strand handler lets go of it.
}

std::shared_ptr<AgentSession> AgentRegistry::Find(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(name);
  return it == sessions_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<AgentSession>> AgentRegistry::All() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<AgentSession>> out;
  for (const auto& [name, s] : sessions_) out.push_back(s);
  return out;
}

std::shared_ptr<AgentSession> AgentRegistry::Register(std::shared_ptr<AgentSession> session) {
  absl::MutexLock lock(&mu_);
  std::shared_ptr<AgentSession>& slot = sessions_[session->name()];
  std::shared_ptr<AgentSession> old = std::move(slot);
  slot = std::move(session);
  return old;
}

void AgentRegistry::Unregister(const std::string& name, const AgentSession* session) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(name);
  if (it != sessions_.end() && it->second.get() == session) sessions_.erase(it);
}

void AgentRegistry::CloseAll(const grpc::Status& status) {
  for (auto& s : All()) s->Close(status);
}

grpc::ServerBidiReactor<v1::AgentEnvelope, v1::ServerEnvelope>* UplinkService::Connect(
    grpc::CallbackServerContext* ctx) {
  return AgentSession::Start(ctx, deps_);
}

}  // namespace atbridge::server::service
