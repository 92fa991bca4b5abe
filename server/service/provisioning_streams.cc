// The two long-lived Provisioning streams: Console (bidi, relayed to the
// device's agent) and WatchJob (server stream of job events).
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <deque>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "server/service/provisioning_service.h"

namespace atbridge::server::service {

void StreamSet::Add(const std::shared_ptr<ClosableStream>& s) {
  absl::MutexLock lock(&mu_);
  streams_[s.get()] = s;
}

void StreamSet::Remove(const ClosableStream* s) {
  absl::MutexLock lock(&mu_);
  streams_.erase(s);
}

void StreamSet::CloseAll(const grpc::Status& status) {
  std::vector<std::shared_ptr<ClosableStream>> all;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [ptr, weak] : streams_) {
      if (auto s = weak.lock()) all.push_back(std::move(s));
    }
  }
  for (auto& s : all) s->Close(status);
}

namespace {

constexpr size_t kConsoleQueueBytes = 1 << 20;
constexpr size_t kWatchQueueEvents = 20000;

// ---- Console ----

class ConsoleRelay final : public grpc::ServerBidiReactor<v1::ConsoleIn, v1::ConsoleOut>,
                           public ConsoleSink,
                           public ClosableStream,
                           public std::enable_shared_from_this<ConsoleRelay> {
 public:
  ConsoleRelay(grpc::CallbackServerContext* ctx, ProvisioningService* service)
      : ctx_(ctx), service_(service) {}

  void Begin(std::shared_ptr<ConsoleRelay> self) {
    auto who = service_->Authorize(ctx_, "Console", "");
    absl::MutexLock lock(&mu_);
    self_ = std::move(self);
    service_->streams().Add(self_);
    if (!who.ok()) {
      FinishLocked(ToGrpcStatus(who.status()), /*drain=*/false);
      return;
    }
    who_ = *who;
    StartRead(&in_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The client is done sending: end the session on the agent too.
      EndAgentSession("client closed the console");
      absl::MutexLock lock(&mu_);
      FinishLocked(grpc::Status::OK, /*drain=*/true);
      return;
    }
    if (!opened_) {
      opened_ = true;
      if (!in_.has_open()) {
        absl::MutexLock lock(&mu_);
        FinishLocked(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                  "the first console message must be open"),
                     false);
        return;
      }
      // Resolving touches the inventory lock: do it on a worker.
      service_->deps().pool->Post(
          [self = shared_from_this(), open = in_.open()] { self->Open(open); });
      return;
    }
    std::shared_ptr<AgentSession> session;
    uint64_t id;
    {
      absl::MutexLock lock(&mu_);
      session = session_;
      id = id_;
    }
    if (in_.has_data() && session != nullptr) session->ConsoleInput(id, in_.data());
    absl::MutexLock lock(&mu_);
    if (!finish_called_ && !finish_pending_.has_value()) StartRead(&in_);
  }

  void Open(const v1::ConsoleOpen& open) {
    const auto& deps = service_->deps();
    const std::string detail = open.write() ? "write" : "watch";
    auto device = deps.inventory->Resolve(open.device());
    absl::Status s;
    std::shared_ptr<AgentSession> session;
    if (!device.ok()) {
      s = device.status();
    } else if (!device->online()) {
      s = absl::UnavailableError(absl::StrCat("device ", device->imei(), " is offline"));
    } else if ((session = deps.registry->Find(device->agent())) == nullptr) {
      s = absl::UnavailableError(absl::StrCat("agent ", device->agent(), " is not connected"));
    }
    const std::string target =
        device.ok() ? absl::StrCat(device->imei(), " (", device->agent(), "/", device->port(), ")")
                    : DeviceRefText(open.device());
    if (!s.ok()) {
      deps.audit->Record(who_, "Console", target, device.ok() ? device->imei() : "", s, detail);
      absl::MutexLock lock(&mu_);
      FinishLocked(ToGrpcStatus(s), false);
      return;
    }
    v1::ConsoleOpen agent_open;
    agent_open.set_port(device->port());
    // Viewers may only watch.
    agent_open.set_write(open.write() && RoleAllows(who_.role, Permission::kDevice));
    agent_open.set_reason(open.reason());
    v1::Actor actor;
    actor.set_principal(who_.principal);
    actor.set_role(who_.role);
    absl::MutexLock lock(&mu_);
    if (finish_called_ || finish_pending_.has_value()) return;  // Client left meanwhile.
    const uint64_t id = session->OpenConsole(actor, agent_open, shared_from_this());
    if (id == 0) {
      FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                absl::StrCat("agent ", device->agent(), " disconnected")),
                   false);
      return;
    }
    session_ = session;
    id_ = id;
    deps.audit->Record(who_, "Console", target, device->imei(), absl::OkStatus(), detail);
    StartRead(&in_);
  }

  // ConsoleSink: from the agent's session, on gRPC threads.
  void OnConsoleOut(const v1::ConsoleOut& out) override {
    absl::MutexLock lock(&mu_);
    if (finish_called_ || finish_pending_.has_value()) return;
    if (out.has_data()) {
      if (queued_bytes_ + out.data().size() > kConsoleQueueBytes) {
        dropped_ += out.data().size();
        return;
      }
      queued_bytes_ += out.data().size();
    }
    EnqueueLocked(out);
  }

  void OnConsoleEnd(const absl::Status& status) override {
    absl::MutexLock lock(&mu_);
    session_.reset();
    FinishLocked(ToGrpcStatus(status), /*drain=*/true);
  }

  void Close(const grpc::Status& status) override {
    EndAgentSession("server shutting down");
    absl::MutexLock lock(&mu_);
    if (done_) return;
    FinishLocked(status, false);
    ctx_->TryCancel();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    if (out_.front().has_data()) queued_bytes_ -= out_.front().data().size();
    out_.pop_front();
    writing_ = false;
    if (!ok) {
      out_.clear();
      queued_bytes_ = 0;
      if (finish_pending_.has_value()) DoFinishLocked();
      return;
    }
    if (out_.empty() && dropped_ > 0 && !finish_pending_.has_value()) {
      v1::ConsoleOut ev;
      ev.mutable_event()->set_kind(v1::ConsoleEvent::DROPPED);
      ev.mutable_event()->set_dropped_bytes(dropped_);
      ev.mutable_event()->set_detail(
          absl::StrCat("this console fell behind; ", dropped_, " bytes were dropped"));
      dropped_ = 0;
      EnqueueLocked(std::move(ev));
      return;
    }
    if (!out_.empty()) {
      writing_ = true;
      StartWrite(&out_.front());
      return;
    }
    if (finish_pending_.has_value()) DoFinishLocked();
  }

  void OnCancel() override {
    EndAgentSession("client cancelled the console");
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "console cancelled"), false);
  }

  void OnDone() override {
    EndAgentSession("console ended");
    service_->streams().Remove(this);
    std::shared_ptr<ConsoleRelay> self;
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      self = std::move(self_);
    }
  }

 private:
  void EndAgentSession(const std::string& reason) {
    std::shared_ptr<AgentSession> session;
    uint64_t id;
    {
      absl::MutexLock lock(&mu_);
      session = std::move(session_);
      session_.reset();
      id = id_;
    }
    if (session != nullptr) session->CloseConsole(id, reason);
  }

  void EnqueueLocked(v1::ConsoleOut out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    out_.push_back(std::move(out));
    if (!writing_) {
      writing_ = true;
      StartWrite(&out_.front());
    }
  }

  // With `drain`, queued output is written first.
  void FinishLocked(const grpc::Status& status, bool drain) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finish_called_ || finish_pending_.has_value()) return;
    finish_pending_ = status;
    if (!drain) {
      while (out_.size() > (writing_ ? 1u : 0u)) out_.pop_back();
    }
    if (!writing_) DoFinishLocked();
  }

  void DoFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finish_called_) return;
    finish_called_ = true;
    out_.clear();
    Finish(*finish_pending_);
  }

  grpc::CallbackServerContext* const ctx_;
  ProvisioningService* const service_;
  tls::Identity who_;
  // Read side (serialized by gRPC, and Open runs before the next StartRead).
  v1::ConsoleIn in_;
  bool opened_ = false;

  absl::Mutex mu_;
  std::shared_ptr<ConsoleRelay> self_ ABSL_GUARDED_BY(mu_);
  std::shared_ptr<AgentSession> session_ ABSL_GUARDED_BY(mu_);
  uint64_t id_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<v1::ConsoleOut> out_ ABSL_GUARDED_BY(mu_);
  size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t dropped_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> finish_pending_ ABSL_GUARDED_BY(mu_);
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

// ---- WatchJob ----

bool IsLastEvent(const v1::JobEvent& ev) {
  return !ev.has_execution() && ev.job_state() != v1::JOB_IN_PROGRESS &&
         ev.counts().queued() + ev.counts().in_progress() == 0;
}

class JobWatcher final : public grpc::ServerWriteReactor<v1::JobEvent>,
                         public jobs::JobObserver,
                         public ClosableStream,
                         public std::enable_shared_from_this<JobWatcher> {
 public:
  JobWatcher(grpc::CallbackServerContext* ctx, ProvisioningService* service, std::string job_id)
      : ctx_(ctx),
        service_(service),
        job_id_(std::move(job_id)),
        strand_(boost::asio::make_strand(service->deps().pool->io())) {}

  void Begin(std::shared_ptr<JobWatcher> self) {
    auto who = service_->Authorize(ctx_, "WatchJob", job_id_);
    {
      absl::MutexLock lock(&mu_);
      self_ = self;
      service_->streams().Add(self_);
      if (!who.ok()) {
        FinishLocked(ToGrpcStatus(who.status()), false);
        return;
      }
    }
    // Watch and Unwatch run on one strand so they cannot cross.
    boost::asio::post(strand_, [self = std::move(self)] { self->Subscribe(); });
  }

  void Subscribe() {
    {
      absl::MutexLock lock(&mu_);
      if (done_ || finish_called_ || finish_pending_.has_value()) return;
    }
    bool running = false;
    auto job = service_->deps().engine->Watch(job_id_, this, &running);
    absl::MutexLock lock(&mu_);
    // The client may have gone (OnCancel) while Watch ran: Finish may already
    // have been called, and no write may follow it. OnDone's Unwatch runs on
    // this strand after us, so the observer just registered is still removed.
    if (done_ || finish_called_ || finish_pending_.has_value()) return;
    if (!job.ok()) {
      FinishLocked(ToGrpcStatus(job.status()), false);
      return;
    }
    subscribed_ = running;
    // The snapshot first: the job, then each execution as it is now.
    v1::JobEvent head;
    head.set_job_id(job->id());
    head.set_job_state(job->state());
    *head.mutable_counts() = job->counts();
    EnqueueLocked(head);
    for (const v1::Execution& x : job->executions()) {
      v1::JobEvent ev;
      ev.set_job_id(job->id());
      ev.set_job_state(job->state());
      *ev.mutable_counts() = job->counts();
      *ev.mutable_execution() = x;
      ev.mutable_execution()->clear_history();
      if (!x.history().empty()) *ev.mutable_transition() = x.history(x.history_size() - 1);
      EnqueueLocked(std::move(ev));
    }
    snapshot_sent_ = true;
    bool last = !running;
    for (auto& ev : early_) {
      last = last || IsLastEvent(ev);
      EnqueueLocked(std::move(ev));
    }
    early_.clear();
    if (last) FinishLocked(grpc::Status::OK, /*drain=*/true);
  }

  // From the engine, under its lock: must not block.
  void OnJobEvent(const v1::JobEvent& event) override {
    absl::MutexLock lock(&mu_);
    if (finish_called_ || finish_pending_.has_value()) return;
    if (!snapshot_sent_) {
      early_.push_back(event);
      return;
    }
    if (out_.size() >= kWatchQueueEvents) {
      FinishLocked(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                "the watcher fell too far behind the job's events"),
                   false);
      return;
    }
    EnqueueLocked(event);
    if (IsLastEvent(event)) FinishLocked(grpc::Status::OK, /*drain=*/true);
  }

  void Close(const grpc::Status& status) override {
    absl::MutexLock lock(&mu_);
    if (done_) return;
    FinishLocked(status, false);
    ctx_->TryCancel();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    out_.pop_front();
    writing_ = false;
    if (!ok) out_.clear();
    if (!out_.empty() && !finish_called_) {
      writing_ = true;
      StartWrite(&out_.front());
      return;
    }
    if (finish_pending_.has_value()) DoFinishLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "watch cancelled"), false);
  }

  void OnDone() override {
    service_->streams().Remove(this);
    std::shared_ptr<JobWatcher> self;
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      self = std::move(self_);
    }
    // The engine may still hold this observer: unregister on the strand
    // (never block a reaction on the engine's lock), then let go.
    boost::asio::post(strand_, [self = std::move(self)] {
      self->service_->deps().engine->Unwatch(self->job_id_, self.get());
    });
  }

 private:
  void EnqueueLocked(v1::JobEvent ev) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    out_.push_back(std::move(ev));
    if (!writing_) {
      writing_ = true;
      StartWrite(&out_.front());
    }
  }

  void FinishLocked(const grpc::Status& status, bool drain) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finish_called_ || finish_pending_.has_value()) return;
    finish_pending_ = status;
    if (!drain) {
      while (out_.size() > (writing_ ? 1u : 0u)) out_.pop_back();
    }
    if (!writing_) DoFinishLocked();
  }

  void DoFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finish_called_) return;
    finish_called_ = true;
    out_.clear();
    Finish(*finish_pending_);
  }

  grpc::CallbackServerContext* const ctx_;
  ProvisioningService* const service_;
  const std::string job_id_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;

  absl::Mutex mu_;
  std::shared_ptr<JobWatcher> self_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::JobEvent> out_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::JobEvent> early_ ABSL_GUARDED_BY(mu_);
  bool snapshot_sent_ ABSL_GUARDED_BY(mu_) = false;
  bool subscribed_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> finish_pending_ ABSL_GUARDED_BY(mu_);
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerBidiReactor<v1::ConsoleIn, v1::ConsoleOut>* ProvisioningService::Console(
    grpc::CallbackServerContext* ctx) {
  auto relay = std::make_shared<ConsoleRelay>(ctx, this);
  ConsoleRelay* raw = relay.get();
  raw->Begin(std::move(relay));
  return raw;
}

grpc::ServerWriteReactor<v1::JobEvent>* ProvisioningService::WatchJob(
    grpc::CallbackServerContext* ctx, const v1::WatchJobRequest* req) {
  auto watcher = std::make_shared<JobWatcher>(ctx, this, req->job_id());
  JobWatcher* raw = watcher.get();
  raw->Begin(std::move(watcher));
  return raw;
}

}  // namespace atbridge::server::service
