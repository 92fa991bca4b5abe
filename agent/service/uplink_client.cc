#include "agent/service/uplink_client.h"

#include <grpc/grpc_security.h>

#include <boost/asio/post.hpp>
#include <deque>
#include <iterator>
#include <map>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
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

// The PEM of the certificate the channel verified for the peer of `call`;
// nullopt while the call has no security context yet (not on a transport).
// Read through the C API: ClientContext::auth_context() caches its first
// answer, even an empty one.
std::optional<std::string> PeerCertificatePem(grpc_call* call) {
  if (call == nullptr) return std::nullopt;
  grpc_auth_context* auth = grpc_call_auth_context(call);
  if (auth == nullptr) return std::nullopt;
  std::string pem;
  grpc_auth_property_iterator it =
      grpc_auth_context_find_properties_by_name(auth, GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (const grpc_auth_property* p = grpc_auth_property_iterator_next(&it)) {
    pem.assign(p->value, p->value_length);
  }
  grpc_auth_context_release(auth);
  return pem;
}

// What a failed stream is, for logging once per kind.
std::string FailureKind(const grpc::Status& status) {
  return absl::StrCat("code/", static_cast<int>(status.error_code()));
}

}  // namespace

// One connection attempt. Lives until OnDone; everything that may outlive it
// (core callbacks, console sinks) goes through `link_`, which is detached in
// OnDone, and the client clears its pointer to it before it is deleted.
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

  Stream(UplinkClient* client, v1::AgentUplink::Stub* stub, v1::AgentEnvelope hello,
         std::vector<v1::PortInfo> ports)
      : client_(client), link_(std::make_shared<Link>()), started_(absl::Now()) {
    link_->stream = this;
    for (auto& p : ports) ports_[p.name()] = std::move(p);
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
    CheckPeer(/*must_know=*/false);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Shutdown();
      return;
    }
    // Nothing from the peer is acted on before it has proved it is a server.
    if (!CheckPeer(/*must_know=*/true)) {
      Shutdown();
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      got_message_ = true;
    }
    Dispatch(std::move(in_));
    in_.Clear();
    StartRead(&in_);
  }

  void OnWriteDone(bool ok) override {
    bool check = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      writing_ = false;
      if (!out_.empty()) out_.pop_front();
      if (!ok) return;  // The read side will see the failure and shut down.
      // The hello is on the transport, so the TLS session is up: check the
      // peer now rather than waiting for it to speak.
      check = !hello_written_;
      hello_written_ = true;
      WriteNextLocked();
    }
    if (check) CheckPeer(/*must_know=*/false);
  }

  void OnDone(const grpc::Status& status) override {
    {
      std::lock_guard<std::mutex> lock(link_->mu);
      link_->stream = nullptr;
    }
    std::map<uint64_t, std::shared_ptr<ConsoleSession>> sessions;
    std::map<uint64_t, CancelFlag> pending;
    StreamEnd end;
    {
      std::lock_guard<std::mutex> lock(mu_);
      sessions.swap(sessions_);
      pending.swap(pending_);
      end.verified = peer_ == Peer::kServer;
      end.accepted = end.verified &&
                     (got_message_ || absl::Now() - started_ >= client_->options_.stable_after);
      end.peer = peer_name_;
      end.refusal = refusal_;
    }
    for (auto& [id, s] : sessions) {
      if (s) s->Close();
    }
    for (auto& [id, flag] : pending) *flag = true;
    UplinkClient* client = client_;
    // Nobody can reach this reactor once the client forgets it.
    client->DetachStream(this);
    delete this;
    client->OnStreamDone(status, end);
  }

  void Cancel() { ctx_.TryCancel(); }

  bool verified() {
    std::lock_guard<std::mutex> lock(mu_);
    return peer_ == Peer::kServer;
  }

  // Stop(): console sessions end UNAVAILABLE, new requests are refused, and
  // the agent closes its side once the requests in flight are answered.
  void BeginClose() {
    std::map<uint64_t, std::shared_ptr<ConsoleSession>> sessions;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closing_) return;
      closing_ = true;
      if (peer_ != Peer::kServer) {
        ctx_.TryCancel();
        return;
      }
      sessions.swap(sessions_);
      for (const auto& [id, s] : sessions) {
        v1::AgentEnvelope env;
        env.set_request_id(id);
        *env.mutable_status() = ToRpcStatus(absl::UnavailableError("agent stopping"));
        out_.push_back(std::move(env));
      }
      WriteNextLocked();
    }
    for (auto& [id, s] : sessions) {
      if (s) s->Close();
    }
  }

  // A port changed (io thread): sent at once to a verified server, folded
  // into the ports it will be sent once verified, dropped for a refused one.
  void UpdatePort(const v1::PortInfo& info) {
    std::lock_guard<std::mutex> lock(mu_);
    if (peer_ == Peer::kUnknown) {
      ports_[info.name()] = info;
      return;
    }
    if (peer_ != Peer::kServer || closed_) return;
    v1::AgentEnvelope env;
    *env.mutable_port_update() = info;
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
    ForgetSessionLocked(id);
    v1::AgentEnvelope env;
    env.set_request_id(id);
    *env.mutable_status() = ToRpcStatus(status);
    out_.push_back(std::move(env));
    WriteNextLocked();
  }

 private:
  enum class Peer { kUnknown, kServer, kRefused };

  // Decides, once, whether the peer is an atbridge server: the role of the
  // certificate the channel verified must be `server`. True if it is; false
  // if it is not (the stream is then cancelled) or not known yet (only
  // while !must_know: once the peer has sent a message, not knowing its
  // certificate is a refusal).
  bool CheckPeer(bool must_know) {
    std::string verified_as;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (peer_ != Peer::kUnknown) return peer_ == Peer::kServer;
      std::optional<std::string> pem = PeerCertificatePem(ctx_.c_call());
      if (!pem.has_value() && !must_know) return false;
      auto id = tls::IdentityFromCertificate(pem.value_or(""));
      if (!id.ok() || id->role != v1::ROLE_SERVER) {
        peer_ = Peer::kRefused;
        refusal_ = id.ok() ? absl::StrCat(id->ToString(), " is not an atbridge server (role ",
                                          tls::RoleName(id->role), ")")
                           : std::string(id.status().message());
        ctx_.TryCancel();
        return false;
      }
      peer_ = Peer::kServer;
      peer_name_ = id->principal;
      verified_as = peer_name_;
      // The inventory goes only to a verified server, in one message: the
      // server announces the agent when it has all of it.
      v1::AgentEnvelope env;
      v1::AgentInventory* inventory = env.mutable_inventory();
      for (auto& [name, info] : ports_) *inventory->add_ports() = std::move(info);
      out_.push_back(std::move(env));
      ports_.clear();
      WriteNextLocked();
    }
    // Lock order: client before stream, so the client hears of it here.
    client_->OnStreamVerified(verified_as);
    return true;
  }

  void WriteNextLocked() {
    if (writing_ || closed_ || writes_done_) return;
    if (out_.empty()) {
      if (closing_ && pending_.empty()) {
        // Everything answered: close our side; the server then finishes.
        writes_done_ = true;
        StartWritesDone();
      }
      return;
    }
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

  // A session ended: its output budget goes too (bytes of it still queued
  // are no longer counted; see WriteNextLocked).
  void ForgetSessionLocked(uint64_t id) {
    console_bytes_.erase(id);
    dropped_.erase(id);
  }

  // Queues a failure answer for request `id` (lock held).
  void RefuseLocked(uint64_t id, const absl::Status& status) {
    v1::AgentEnvelope e;
    e.set_request_id(id);
    *e.mutable_status() = ToRpcStatus(status);
    out_.push_back(std::move(e));
    WriteNextLocked();
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
          if (closing_) {
            RefuseLocked(id, absl::UnavailableError("agent stopping"));
            return;
          }
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
                // With its details (the WriteReport of a failed write).
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
          if (it->second) it->second->Close();
          sessions_.erase(it);
          ForgetSessionLocked(id);
          RefuseLocked(id, absl::CancelledError("console closed by the server"));
        }
        return;
      }
      case v1::ServerEnvelope::kConsole: {
        if (env.console().has_open()) {
          auto sink = std::make_shared<SessionSink>(link_, id);
          std::lock_guard<std::mutex> lock(mu_);
          if (sessions_.count(id)) return;
          if (closing_) {
            RefuseLocked(id, absl::UnavailableError("agent stopping"));
            return;
          }
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
  const absl::Time started_;
  grpc::ClientContext ctx_;
  v1::ServerEnvelope in_;
  std::mutex mu_;
  std::deque<v1::AgentEnvelope> out_;
  bool writing_ = false;
  bool hello_written_ = false;
  bool closed_ = false;       // The hold is released; no more writes.
  bool closing_ = false;      // Stop(): finishing up.
  bool writes_done_ = false;  // Our side is closed.
  Peer peer_ = Peer::kUnknown;
  std::string peer_name_;
  std::string refusal_;
  bool got_message_ = false;
  // The ports, held back until the peer is verified.
  std::map<std::string, v1::PortInfo> ports_;
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

// io thread: the snapshot of the ports is consistent; they are sent once the
// peer is verified.
void UplinkClient::Connect() {
  v1::AgentEnvelope hello;
  hello.mutable_hello()->set_agent(core_.name());
  hello.mutable_hello()->set_version(ATBRIDGE_VERSION);
  v1::ListPortsResponse list = core_.ListPortsNow();
  std::vector<v1::PortInfo> ports(std::make_move_iterator(list.mutable_ports()->begin()),
                                  std::make_move_iterator(list.mutable_ports()->end()));
  std::lock_guard<std::mutex> lock(mu_);
  if (stopping_ || stream_) return;
  ++live_streams_;
  stream_ = new Stream(this, stub_.get(), std::move(hello), std::move(ports));
}

void UplinkClient::OnStreamVerified(const std::string& peer) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!announced_connected_) {
    announced_connected_ = true;
    ATB_LOG(INFO) << "uplink connected to " << peer;
  }
}

void UplinkClient::DetachStream(Stream* stream) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stream_ == stream) stream_ = nullptr;
}

void UplinkClient::OnStreamDone(const grpc::Status& status, const StreamEnd& end) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!stopping_) {
    if (end.accepted) failures_ = 0;
    const double base = std::min(absl::ToDoubleSeconds(options_.backoff_initial) *
                                     static_cast<double>(1u << std::min(failures_, 16)),
                                 absl::ToDoubleSeconds(options_.backoff_max));
    const absl::Duration delay = absl::Seconds(base * (0.5 + 0.5 * random_.UniformDouble()));
    ++failures_;
    // Log when the kind of trouble changes, not on every attempt.
    const std::string kind = end.refusal.empty() ? FailureKind(status) : "refused-peer";
    if (kind != last_failure_ || end.accepted) {
      last_failure_ = kind;
      const std::string next =
          absl::StrCat("; retrying with backoff (next in ",
                       absl::FormatDuration(absl::Trunc(delay, absl::Milliseconds(100))), ")");
      if (!end.refusal.empty()) {
        ATB_LOG(ERROR) << "uplink peer refused: " << end.refusal << next;
      } else if (end.verified) {
        ATB_LOG(WARNING) << "uplink to " << end.peer << " ended ("
                         << FromGrpcStatus(status).ToString() << ")"
                         << (status.error_code() == grpc::StatusCode::ABORTED
                                 ? " (another agent with this name may have replaced it)"
                                 : "")
                         << next;
      } else {
        ATB_LOG(WARNING) << "uplink connect failed (" << FromGrpcStatus(status).ToString() << ")"
                         << next;
      }
      if (!end.verified || end.accepted) announced_connected_ = false;
    } else {
      ATB_LOG(DEBUG) << "uplink attempt ended again: " << status.error_message();
    }
    // Reconnect from the io thread, never from inside a reaction. Posted
    // under mu_, so a later Stop() finds it queued before its own work.
    asio::post(core_.io(), [this, delay] {
      retry_timer_.expires_after(ToChrono(delay));
      retry_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) Connect();
      });
    });
  }
  --live_streams_;
  cv_.notify_all();
}

void UplinkClient::PortUpdate(const v1::PortInfo& info) {
  std::lock_guard<std::mutex> lock(mu_);
  if (stream_) stream_->UpdatePort(info);  // Lock order: client, then stream.
}

bool UplinkClient::connected() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stream_ != nullptr && stream_->verified();  // Lock order: client, then stream.
}

void UplinkClient::Stop() {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (stopped_) return;
    stopping_ = true;
    if (stream_) stream_->BeginClose();
    auto gone = [this] { return live_streams_ == 0; };
    if (!cv_.wait_for(lock, ToChrono(options_.stop_grace), gone)) {
      if (stream_) stream_->Cancel();
      while (!cv_.wait_for(lock, std::chrono::seconds(5), gone)) {
        ATB_LOG(WARNING) << "still waiting for the uplink stream to end";
      }
    }
    stopped_ = true;
  }
  // No port change may reach this object any more, and the retry timer's
  // handler must have run before it goes away.
  if (core_.io().stopped()) return;
  core_.SetPortListener(nullptr);
  absl::Notification drained;
  asio::post(core_.io(), [this, &drained] {
    retry_timer_.cancel();
    // The cancelled wait's handler is queued now; this runs after it.
    asio::post(core_.io(), [&drained] { drained.Notify(); });
  });
  drained.WaitForNotification();
}

}  // namespace atbridge::agent
