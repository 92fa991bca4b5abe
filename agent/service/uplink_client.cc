#include "agent/service/uplink_client.h"

#include <boost/asio/post.hpp>
#include <deque>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/proto_time.h"
#include "common/tls/identity.h"

namespace atbridge::agent {

namespace asio = boost::asio;

namespace {

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      absl::ToChronoNanoseconds(d));
}

v1::AgentResponse::ResponseCase ResponseCaseFor(v1::AgentRequest::RequestCase c) {
  // The two oneofs use the same field numbers.
  return static_cast<v1::AgentResponse::ResponseCase>(static_cast<int>(c));
}

}  // namespace

// One connection attempt. Lives until OnDone; everything that may outlive it
// (core callbacks, console sinks) goes through `link_`, which is detached in
// OnDone.
class UplinkClient::Stream final
    : public grpc::ClientBidiReactor<v1::AgentEnvelope, v1::ServerEnvelope> {
 public:
  // Shared with callbacks that may fire after the stream is gone.
  struct Link {
    std::mutex mu;
    Stream* stream = nullptr;
  };

  class SessionSink final : public ConsoleSink {
   public:
    SessionSink(std::shared_ptr<Link> link, uint64_t id) : link_(std::move(link)), id_(id) {}
    void OnConsoleOut(v1::ConsoleOut out) override {
      std::lock_guard<std::mutex> lock(link_->mu);
      if (link_->stream) link_->stream->SendConsole(id_, std::move(out));
    }
    void OnConsoleClosed(absl::Status status) override {
      std::lock_guard<std::mutex> lock(link_->mu);
      if (link_->stream) link_->stream->EndSession(id_, status);
    }

   private:
    std::shared_ptr<Link> link_;
    uint64_t id_;
  };

  Stream(UplinkClient* client, v1::AgentUplink::Stub* stub, v1::AgentEnvelope hello)
      : client_(client), link_(std::make_shared<Link>()) {
    link_->stream = this;
    ctx_.set_wait_for_ready(true);  // No deadline: the uplink lives as long as it can.
    stub->async()->Connect(&ctx_, this);
    out_.push_back(std::move(hello));
    writing_ = true;
    StartWrite(&out_.front());
    StartRead(&in_);
    AddHold();  // Writes are also started from the core's thread.
    StartCall();
  }

  void OnReadInitialMetadataDone(bool ok) override {
    if (!ok) return;
    // The peer must be an atbridge server, not merely someone our CA signed.
    auto id = tls::IdentityFromAuthContext(*ctx_.auth_context());
    if (!id.ok() || id->role != v1::ROLE_SERVER) {
      ATB_LOG(ERROR) << "uplink peer is not an atbridge server ("
                     << (id.ok() ? id->ToString() : std::string(id.status().message()))
                     << "); disconnecting";
      ctx_.TryCancel();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      established_ = true;
    }
    ATB_LOG(INFO) << "uplink connected to " << id->principal;
    // Lock order: client before stream (PortUpdate); never both from here.
    std::lock_guard<std::mutex> lock(client_->mu_);
    client_->connected_ = true;
    client_->failures_ = 0;
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Shutdown();
      return;
    }
    Dispatch(std::move(in_));
    in_.Clear();
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    writing_ = false;
    if (!out_.empty()) out_.pop_front();
    if (!ok) return;  // The read side will see the failure and shut down.
    WriteNextLocked();
  }

  void OnDone(const grpc::Status& status) override {
    {
      std::lock_guard<std::mutex> lock(link_->mu);
      link_->stream = nullptr;
    }
    std::map<uint64_t, std::shared_ptr<ConsoleSession>> sessions;
    std::map<uint64_t, CancelFlag> pending;
    bool established;
    {
      std::lock_guard<std::mutex> lock(mu_);
      sessions.swap(sessions_);
      pending.swap(pending_);
      established = established_;
    }
    for (auto& [id, s] : sessions) s->Close();
    for (auto& [id, flag] : pending) *flag = true;
    UplinkClient* client = client_;
    delete this;
    client->OnStreamDone(status, established);
  }

  void Cancel() { ctx_.TryCancel(); }

  // Queues an envelope (any thread).
  void Send(v1::AgentEnvelope env) {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    out_.push_back(std::move(env));
    WriteNextLocked();
  }

  void SendConsole(uint64_t id, v1::ConsoleOut out) {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_ || !sessions_.count(id)) return;
    size_t n = out.has_data() ? out.data().size() : 0;
    if (n > 0 && console_bytes_[id] + n > client_->options_.console_queue_bytes) {
      dropped_[id] += n;
      return;
    }
    console_bytes_[id] += n;
    v1::AgentEnvelope env;
    env.set_request_id(id);
    *env.mutable_console() = std::move(out);
    out_.push_back(std::move(env));
    WriteNextLocked();
  }

  void EndSession(uint64_t id, const absl::Status& status) {
    std::lock_guard<std::mutex> lock(mu_);
    if (closed_) return;
    auto it = sessions_.find(id);
    if (it == sessions_.end()) return;
    sessions_.erase(it);
    v1::AgentEnvelope env;
    env.set_request_id(id);
    *env.mutable_status() = ToRpcStatus(status);
    out_.push_back(std::move(env));
    WriteNextLocked();
  }

 private:
  void WriteNextLocked() {
    if (writing_ || out_.empty() || closed_) return;
    // Account console bytes leaving the per-session budget.
    const v1::AgentEnvelope& front = out_.front();
    if (front.has_console() && front.console().has_data()) {
      auto it = console_bytes_.find(front.request_id());
      if (it != console_bytes_.end()) it->second -= front.console().data().size();
      auto d = dropped_.find(front.request_id());
      if (d != dropped_.end() && d->second > 0) {
        v1::AgentEnvelope e;
        e.set_request_id(front.request_id());
        e.mutable_console()->mutable_event()->set_kind(v1::ConsoleEvent::DROPPED);
        e.mutable_console()->mutable_event()->set_dropped_bytes(d->second);
        d->second = 0;
        out_.insert(out_.begin() + 1, std::move(e));
      }
    }
    writing_ = true;
    StartWrite(&out_.front());
  }

  void Shutdown() {
    bool release = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!closed_) {
        closed_ = true;
        release = true;
      }
    }
    if (release) RemoveHold();
  }

  void Dispatch(v1::ServerEnvelope env) {
    const uint64_t id = env.request_id();
    Caller caller{
        .principal = env.actor().principal(), .role = env.actor().role(), .via_server = true};
    switch (env.body_case()) {
      case v1::ServerEnvelope::kRequest: {
        absl::Duration timeout = FromProtoDuration(env.timeout());
        absl::Time deadline =
            timeout > absl::ZeroDuration() ? absl::Now() + timeout : absl::InfiniteFuture();
        auto flag = std::make_shared<std::atomic<bool>>(false);
        {
          std::lock_guard<std::mutex> lock(mu_);
          pending_[id] = flag;
        }
        auto expected = ResponseCaseFor(env.request().request_case());
        client_->core_.Handle(
            std::move(caller), std::move(*env.mutable_request()), deadline, flag,
            [link = link_, id, expected](absl::StatusOr<v1::AgentResponse> r) {
              v1::AgentEnvelope out;
              out.set_request_id(id);
              if (r.ok()) {
                if (r->response_case() != expected) {
                  *out.mutable_status() =
                      ToRpcStatus(absl::InternalError("agent produced a mismatched response"));
                } else {
                  *out.mutable_response() = *std::move(r);
                }
              } else {
                *out.mutable_status() = ToRpcStatus(r.status());
              }
              std::lock_guard<std::mutex> lock(link->mu);
              if (link->stream) link->stream->Complete(id, std::move(out));
            });
        return;
      }
      case v1::ServerEnvelope::kCancel: {
        std::lock_guard<std::mutex> lock(mu_);
        if (auto it = pending_.find(id); it != pending_.end()) *it->second = true;
        if (auto it = sessions_.find(id); it != sessions_.end()) {
          it->second->Close();
          sessions_.erase(it);
          v1::AgentEnvelope e;
          e.set_request_id(id);
          *e.mutable_status() = ToRpcStatus(absl::CancelledError("console closed by the server"));
          out_.push_back(std::move(e));
          WriteNextLocked();
        }
        return;
      }
      case v1::ServerEnvelope::kConsole: {
        if (env.console().has_open()) {
          auto sink = std::make_shared<SessionSink>(link_, id);
          std::lock_guard<std::mutex> lock(mu_);
          if (sessions_.count(id)) return;
          // Registered before opening so the OPENED event finds it.
          sessions_[id] = nullptr;
          console_bytes_[id] = 0;
          sessions_[id] = client_->core_.OpenConsole(caller, env.console().open(), sink);
          return;
        }
        std::shared_ptr<ConsoleSession> session;
        {
          std::lock_guard<std::mutex> lock(mu_);
          auto it = sessions_.find(id);
          if (it != sessions_.end()) session = it->second;
        }
        if (session && env.console().msg_case() == v1::ConsoleIn::kData) {
          session->Write(std::move(*env.mutable_console()->mutable_data()),
                         [](const absl::Status&) {});
        }
        return;
      }
      default:
        return;
    }
  }

  void Complete(uint64_t id, v1::AgentEnvelope env) {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.erase(id);
    if (closed_) return;
    out_.push_back(std::move(env));
    WriteNextLocked();
  }

  UplinkClient* client_;
  std::shared_ptr<Link> link_;
  grpc::ClientContext ctx_;
  v1::ServerEnvelope in_;
  std::mutex mu_;
  std::deque<v1::AgentEnvelope> out_;
  bool writing_ = false;
  bool closed_ = false;
  bool established_ = false;
  std::map<uint64_t, CancelFlag> pending_;
  std::map<uint64_t, std::shared_ptr<ConsoleSession>> sessions_;
  std::map<uint64_t, size_t> console_bytes_;
  std::map<uint64_t, uint64_t> dropped_;
};

UplinkClient::UplinkClient(AgentCore& core, std::shared_ptr<grpc::Channel> channel, Random& random,
                           UplinkOptions options)
    : core_(core),
      channel_(std::move(channel)),
      stub_(v1::AgentUplink::NewStub(channel_)),
      random_(random),
      options_(options),
      retry_timer_(core.io()) {}

UplinkClient::~UplinkClient() { Stop(); }

void UplinkClient::Start() {
  core_.SetPortListener([this](const v1::PortInfo& info) { PortUpdate(info); });
  asio::post(core_.io(), [this] { Connect(); });
}

// io thread: the hello carries a consistent snapshot of the ports.
void UplinkClient::Connect() {
  v1::AgentEnvelope hello;
  v1::ListPortsResponse ports = core_.ListPortsNow();
  hello.mutable_hello()->set_agent(core_.name());
  hello.mutable_hello()->set_version(ATBRIDGE_VERSION);
  for (auto& p : *ports.mutable_ports()) *hello.mutable_hello()->add_ports() = std::move(p);
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_ || stream_) return;
  stream_ = new Stream(this, stub_.get(), std::move(hello));
}

void UplinkClient::OnStreamDone(const grpc::Status& status, bool was_established) {
  std::unique_lock<std::mutex> lock(mu_);
  stream_ = nullptr;
  connected_ = false;
  if (stopping_) {
    cv_.notify_all();
    return;
  }
  if (was_established) {
    ATB_LOG(WARNING) << "uplink lost: " << status.error_message() << "; reconnecting";
    failures_ = 0;
  } else if (failures_ == 0) {
    ATB_LOG(WARNING) << "uplink connect failed: " << status.error_message() << "; retrying";
  }
  double base = absl::ToDoubleSeconds(options_.backoff_initial) *
                static_cast<double>(1u << std::min(failures_, 16));
  base = std::min(base, absl::ToDoubleSeconds(options_.backoff_max));
  absl::Duration delay = absl::Seconds(base * (0.5 + 0.5 * random_.UniformDouble()));
  ++failures_;
  lock.unlock();
  // Reconnect from the io thread, never from inside this reaction.
  asio::post(core_.io(), [this, delay] {
    retry_timer_.expires_after(ToChrono(delay));
    retry_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) Connect();
    });
  });
}

void UplinkClient::PortUpdate(const v1::PortInfo& info) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!stream_) return;  // Queued behind the hello until the stream is up.
  v1::AgentEnvelope env;
  *env.mutable_port_update() = info;
  stream_->Send(std::move(env));
}

bool UplinkClient::connected() const {
  std::lock_guard<std::mutex> lock(mu_);
  return connected_;
}

void UplinkClient::Stop() {
  std::unique_lock<std::mutex> lock(mu_);
  if (stopping_ && !stream_) return;
  stopping_ = true;
  if (stream_) stream_->Cancel();
  cv_.wait_for(lock, std::chrono::seconds(5), [this] { return stream_ == nullptr; });
  lock.unlock();
  asio::post(core_.io(), [this] { retry_timer_.cancel(); });
}

}  // namespace atbridge::agent
