#include "agent/service/agent_core.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "agent/modem/modem_ops.h"
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

// The agent's authorization table (docs/security.md, "On the agent"):
//   admin, operator, server   every request (force-releasing a lease: admin);
//   viewer                    the reads below, and Console as a watcher;
//   automation, agent, none   nothing: automation works through the server's
//                             jobs, which reach the agent as role server.
// Requests the server relays (Caller::via_server) were authorized there.
//
// What a viewer may call. GetModemInfo with refresh re-runs identification
// (seven AT commands, AT+CMEE=1 among them): an action, so operator.
// ListCredentials and ReadCredential are single %CMNG queries; certificates
// are public and secret types are refused to everyone (RunReadCredential).
bool ViewerMay(const v1::AgentRequest& r) {
  switch (r.request_case()) {
    case v1::AgentRequest::kListPorts:
    case v1::AgentRequest::kListLeases:
    case v1::AgentRequest::kListCredentials:
    case v1::AgentRequest::kReadCredential:
      return true;
    case v1::AgentRequest::kGetModemInfo:
      return !r.get_modem_info().refresh();
    default:
      return false;
  }
}

// Roles that may act (write, run AT, hold leases, write to a console).
bool MayAct(v1::Role role) {
  return role == v1::ROLE_ADMIN || role == v1::ROLE_OPERATOR || role == v1::ROLE_SERVER;
}

// Requests that change the modem and so respect another principal's lease.
bool NeedsWriter(const v1::AgentRequest& r) {
  switch (r.request_case()) {
    case v1::AgentRequest::kExecute:
    case v1::AgentRequest::kWriteCredential:
    case v1::AgentRequest::kDeleteCredential:
    case v1::AgentRequest::kGenerateKey:
      return true;
    default:
      return false;
  }
}

const char* RequestName(const v1::AgentRequest& r) {
  switch (r.request_case()) {
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
      return "(empty)";
  }
  return "?";
}

// The port a request addresses ("" for agent-wide requests).
std::string PortOf(const v1::AgentRequest& r) {
  switch (r.request_case()) {
    case v1::AgentRequest::kGetModemInfo:
      return r.get_modem_info().port();
    case v1::AgentRequest::kExecute:
      return r.execute().port();
    case v1::AgentRequest::kAcquireLease:
      return r.acquire_lease().port();
    case v1::AgentRequest::kRenewLease:
      return r.renew_lease().port();
    case v1::AgentRequest::kReleaseLease:
      return r.release_lease().port();
    case v1::AgentRequest::kListCredentials:
      return r.list_credentials().port();
    case v1::AgentRequest::kReadCredential:
      return r.read_credential().port();
    case v1::AgentRequest::kWriteCredential:
      return r.write_credential().port();
    case v1::AgentRequest::kDeleteCredential:
      return r.delete_credential().port();
    case v1::AgentRequest::kGenerateKey:
      return r.generate_key().port();
    default:
      return "";
  }
}

v1::ModemInfo ToModemInfo(const ModemIdentity& id) {
  v1::ModemInfo m;
  m.set_imei(id.imei);
  m.set_manufacturer(id.manufacturer);
  m.set_model(id.model);
  m.set_firmware(id.firmware);
  m.set_cfun(id.cfun);
  if (id.identified_at != absl::InfinitePast()) {
    *m.mutable_identified_at() = ToProtoTime(id.identified_at);
  }
  return m;
}

}  // namespace

std::string Caller::ToString() const {
  return absl::StrCat(principal, " (", tls::RoleName(role), via_server ? ", via server)" : ")");
}

// ---- console sessions --------------------------------------------------------

class AgentCore::ConsoleSessionImpl final
    : public ConsoleSession,
      public ConsoleWatcher,
      public std::enable_shared_from_this<ConsoleSessionImpl> {
 public:
  ConsoleSessionImpl(AgentCore* core, Caller caller, std::shared_ptr<ConsoleSink> sink)
      : core_(core), alive_(core->alive_), caller_(std::move(caller)), sink_(std::move(sink)) {}

  // io thread.
  void Open(const v1::ConsoleOpen& open) {
    if (!*alive_) return;
    auto port = core_->FindPort(open.port());
    if (!port.ok()) {
      closed_ = true;
      sink_->OnConsoleClosed(port.status());
      return;
    }
    port_name_ = open.port();
    channel_ = (*port)->channel;
    v1::ConsoleEvent opened;
    opened.set_kind(v1::ConsoleEvent::OPENED);
    const bool may_write = caller_.via_server || MayAct(caller_.role);
    if (open.write() && !may_write) {
      opened.set_detail(absl::StrCat(caller_.ToString(),
                                     " may only watch this console (writing needs operator)"));
    } else if (open.write()) {
      auto held = core_->leases_.Get(port_name_);
      if (held && held->owner() == caller_.principal) {
        writable_ = true;
        opened.set_detail("writing under your lease");
      } else if (held) {
        opened.set_detail(absl::StrCat("watching: ", DescribeLease(*held)));
      } else {
        auto lease = core_->leases_.Acquire(
            port_name_, caller_.principal,
            open.reason().empty() ? "console session" : open.reason(), absl::ZeroDuration());
        if (lease.ok()) {
          writable_ = true;
          took_lease_ = lease->lease_id();
          opened.set_detail("writing under a lease taken for this session");
          core_->PortChanged(port_name_);
          core_->ArmLeaseTimer();
        } else {
          opened.set_detail(std::string(lease.status().message()));
        }
      }
    } else {
      opened.set_detail("watching");
    }
    opened.set_writable(writable_);
    if (auto held = core_->leases_.Get(port_name_)) *opened.mutable_lease() = *held;
    watcher_id_ = channel_->AddWatcher(weak_from_this());
    v1::ConsoleOut out;
    *out.mutable_event() = std::move(opened);
    sink_->OnConsoleOut(std::move(out));
    if (channel_->state() != ChannelState::kReady) {
      OnConsoleEvent(Event::kPortDown, channel_->last_error());
    }
  }

  const Caller& caller() const { return caller_; }

  void Deny(const absl::Status& status) {
    closed_ = true;
    sink_->OnConsoleClosed(status);
  }

  void Write(std::string bytes, absl::AnyInvocable<void(absl::Status)> done) override {
    asio::post(core_io(), [self = shared_from_this(), bytes = std::move(bytes),
                           done = std::move(done)]() mutable {
      self->DoWrite(std::move(bytes), std::move(done));
    });
  }

  void Close() override {
    asio::post(core_io(), [self = shared_from_this()] { self->DoClose(); });
  }

  void OnConsoleData(absl::string_view bytes) override {
    if (closed_) return;
    v1::ConsoleOut out;
    out.set_data(std::string(bytes));
    sink_->OnConsoleOut(std::move(out));
  }

  void OnConsoleEvent(Event event, absl::string_view detail) override {
    if (closed_) return;
    v1::ConsoleOut out;
    v1::ConsoleEvent* e = out.mutable_event();
    e->set_kind(event == Event::kPortDown ? v1::ConsoleEvent::PORT_DOWN
                                          : v1::ConsoleEvent::PORT_UP);
    e->set_writable(writable_);
    e->set_detail(std::string(detail));
    sink_->OnConsoleOut(std::move(out));
  }

 private:
  asio::io_context& core_io() { return io_; }

  void DoWrite(std::string bytes, absl::AnyInvocable<void(absl::Status)> done) {
    if (closed_ || !*alive_ || !channel_) {
      done(absl::FailedPreconditionError("console session is closed"));
      return;
    }
    if (!writable_) {
      // Said to the client, not only to the caller of Write: input is
      // discarded and it should know why.
      std::string why = absl::StrCat(
          "input discarded: this console session on ", port_name_, " is read-only (",
          MayAct(caller_.role) || caller_.via_server
              ? "another principal holds the lease, or the session was opened without write"
              : absl::StrCat(caller_.ToString(), " may only watch"),
          ")");
      if (!refusal_logged_) {
        refusal_logged_ = true;
        ATB_LOG(WARNING) << "denied: console input from " << caller_.ToString() << " on "
                         << port_name_ << " (read-only session)";
      }
      v1::ConsoleOut out;
      out.mutable_event()->set_kind(v1::ConsoleEvent::WRITE_REFUSED);
      out.mutable_event()->set_dropped_bytes(bytes.size());
      out.mutable_event()->set_detail(why);
      if (auto held = core_->leases_.Get(port_name_)) *out.mutable_event()->mutable_lease() = *held;
      sink_->OnConsoleOut(std::move(out));
      done(absl::PermissionDeniedError(why));
      return;
    }
    absl::Status lease = CheckLease();
    if (!lease.ok()) {
      done(lease);
      return;
    }
    // Checked again when the channel's lock is granted: the bytes may wait
    // behind a transaction, and the lease may lapse or be force-released, or
    // the session close, meanwhile.
    channel_->WriteRaw(
        std::move(bytes), std::move(done), [weak = weak_from_this()]() -> absl::Status {
          auto self = weak.lock();
          if (!self || self->closed_ || !*self->alive_) {
            return absl::FailedPreconditionError("console session is closed");
          }
          if (!self->writable_) {
            return absl::FailedPreconditionError("console session is no longer writable");
          }
          return self->CheckLease();
        });
  }

  // OK while the session may write under its lease; else tells the client
  // (LEASE_LOST, once: the session turns read-only) and FAILED_PRECONDITION.
  absl::Status CheckLease() {
    absl::Status lease = core_->leases_.CheckWriter(port_name_, caller_.principal);
    if (lease.ok() && !took_lease_.empty()) {
      // The session's own lease, not one taken again since by the same principal.
      auto held = core_->leases_.Get(port_name_);
      if (!held || held->lease_id() != took_lease_) {
        lease = absl::FailedPreconditionError("the session's lease expired or was released");
      }
    }
    if (lease.ok()) return lease;
    writable_ = false;
    v1::ConsoleOut out;
    out.mutable_event()->set_kind(v1::ConsoleEvent::LEASE_LOST);
    out.mutable_event()->set_detail(std::string(lease.message()));
    sink_->OnConsoleOut(std::move(out));
    return lease;
  }

  void DoClose() {
    if (closed_) return;
    closed_ = true;
    if (channel_) channel_->RemoveWatcher(watcher_id_);
    if (*alive_ && !took_lease_.empty()) {
      if (core_->leases_.Release(port_name_, caller_.principal, took_lease_, false).ok()) {
        core_->PortChanged(port_name_);
      }
    }
  }

  AgentCore* core_;
  std::shared_ptr<std::atomic<bool>> alive_;
  asio::io_context& io_ = core_->io_;
  Caller caller_;
  std::shared_ptr<ConsoleSink> sink_;
  std::string port_name_;
  std::shared_ptr<ModemChannel> channel_;
  bool writable_ = false;
  bool refusal_logged_ = false;
  std::string took_lease_;
  int watcher_id_ = 0;
  bool closed_ = false;
};

// ---- core ------------------------------------------------------------------------

AgentCore::AgentCore(AgentOptions options, asio::io_context& io, SerialPortOpener opener,
                     Clock& clock, Random& random)
    : options_(std::move(options)),
      io_(io),
      clock_(clock),
      random_(random),
      leases_(clock, random, options_.lease_ttl, options_.max_lease_ttl),
      lease_timer_(io),
      startup_timer_(io),
      alive_(std::make_shared<std::atomic<bool>>(true)) {
  auto shared_opener = std::make_shared<SerialPortOpener>(std::move(opener));
  for (const PortOptions& p : options_.ports) {
    ChannelOptions co;
    co.port = p;
    co.resync_timeout = options_.resync_timeout;
    co.reconnect_initial = options_.reconnect_initial;
    co.reconnect_max = options_.reconnect_max;
    auto channel = ModemChannel::Create(
        io_, std::move(co),
        [shared_opener](asio::io_context& ctx, const std::string& device, const SerialSettings& s) {
          return (*shared_opener)(ctx, device, s);
        },
        clock_, random_);
    std::string name = p.name;
    channel->SetObserver([this, name] { PortChanged(name); });
    ports_[p.name] = Port{std::move(channel)};
  }
}

AgentCore::~AgentCore() { *alive_ = false; }

void AgentCore::Start(absl::AnyInvocable<void()> started) {
  auto shared_started = std::make_shared<absl::AnyInvocable<void()>>(std::move(started));
  asio::post(io_, [this, shared_started] {
    auto fire = [shared_started] {
      if (*shared_started) {
        auto f = std::move(*shared_started);
        *shared_started = nullptr;
        f();
      }
    };
    if (ports_.empty()) {
      fire();
      return;
    }
    auto remaining = std::make_shared<size_t>(ports_.size());
    for (auto& [name, port] : ports_) {
      port.channel->Start();
      port.channel->WhenFirstAttemptDone([remaining, fire] {
        if (--*remaining == 0) fire();
      });
    }
    startup_timer_.expires_after(ToChrono(options_.startup_identify_timeout));
    startup_timer_.async_wait([fire](const boost::system::error_code& ec) {
      if (!ec) fire();
    });
  });
}

void AgentCore::Stop() {
  asio::post(io_, [this] {
    *alive_ = false;
    lease_timer_.cancel();
    startup_timer_.cancel();
    for (auto& [name, port] : ports_) port.channel->Stop();
  });
}

void AgentCore::SetPortListener(std::function<void(const v1::PortInfo&)> listener) {
  asio::post(io_, [this, listener = std::move(listener)]() mutable {
    port_listener_ = std::move(listener);
  });
}

absl::StatusOr<AgentCore::Port*> AgentCore::FindPort(const std::string& name) {
  auto it = ports_.find(name);
  if (it != ports_.end()) return &it->second;
  std::vector<std::string> names;
  for (const auto& [n, p] : ports_) names.push_back(n);
  return absl::NotFoundError(absl::StrCat("agent ", options_.name, " has no port named '", name,
                                          "' (ports: ", absl::StrJoin(names, ", "), ")"));
}

v1::PortInfo AgentCore::PortInfoFor(const std::string& name, Port& port) {
  const ModemChannel& ch = *port.channel;
  const PortOptions& p = ch.port();
  v1::PortInfo info;
  info.set_name(name);
  info.set_device(p.device);
  info.set_baud(p.serial.baud);
  info.set_flow_control(p.serial.rtscts ? v1::FLOW_CONTROL_RTSCTS : v1::FLOW_CONTROL_NONE);
  for (const auto& [k, v] : p.labels) (*info.mutable_labels())[k] = v;
  switch (ch.state()) {
    case ChannelState::kReady:
      info.set_state(v1::PORT_STATE_READY);
      break;
    case ChannelState::kOpening:
      info.set_state(v1::PORT_STATE_OPENING);
      break;
    default:
      info.set_state(v1::PORT_STATE_DOWN);
      break;
  }
  if (!ch.identity().imei.empty()) *info.mutable_modem() = ToModemInfo(ch.identity());
  if (auto lease = leases_.Get(name)) {
    *info.mutable_lease() = *lease;
    info.mutable_lease()->set_agent(options_.name);
  }
  info.set_last_error(ch.last_error());
  info.set_max_command_bytes(static_cast<uint32_t>(p.max_command_bytes));
  return info;
}

void AgentCore::PortChanged(const std::string& name) {
  if (!port_listener_) return;
  auto it = ports_.find(name);
  if (it != ports_.end()) port_listener_(PortInfoFor(name, it->second));
}

v1::ListPortsResponse AgentCore::ListPortsNow() {
  v1::ListPortsResponse out;
  out.set_agent(options_.name);
  out.set_version(ATBRIDGE_VERSION);
  for (auto& [name, port] : ports_) *out.add_ports() = PortInfoFor(name, port);
  return out;
}

void AgentCore::ArmLeaseTimer() {
  absl::Time next = leases_.NextExpiry();
  if (next == absl::InfiniteFuture()) {
    lease_timer_.cancel();
    return;
  }
  lease_timer_.expires_after(ToChrono(std::max(next - clock_.Now(), absl::ZeroDuration())));
  lease_timer_.async_wait([this, alive = alive_](const boost::system::error_code& ec) {
    if (ec || !*alive) return;
    for (const std::string& port : leases_.Expire()) {
      ATB_LOG(INFO) << "lease on " << port << " expired";
      PortChanged(port);
    }
    ArmLeaseTimer();
  });
}

absl::Status AgentCore::Authorize(const Caller& caller, const v1::AgentRequest& request) const {
  if (caller.via_server) return absl::OkStatus();  // The server authorized its user.
  if (MayAct(caller.role)) return absl::OkStatus();
  std::string why;
  if (caller.role == v1::ROLE_VIEWER) {
    if (ViewerMay(request)) return absl::OkStatus();
    why = request.request_case() == v1::AgentRequest::kGetModemInfo
              ? "refresh re-identifies the modem with AT commands, which needs operator"
              : "it needs operator";
  } else if (caller.role == v1::ROLE_AUTOMATION) {
    why = "automation works through the server's jobs, not on agents directly";
  } else {
    why = "this role has no rights on agents";
  }
  return absl::PermissionDeniedError(absl::StrCat(caller.ToString(), " may not call ",
                                                  RequestName(request), " on agent ", options_.name,
                                                  ": ", why));
}

void AgentCore::Handle(Caller caller, v1::AgentRequest request, absl::Time deadline,
                       CancelFlag cancelled, ResponseCallback done) {
  asio::post(io_, [this, caller = std::move(caller), request = std::move(request), deadline,
                   cancelled = std::move(cancelled), done = std::move(done)]() mutable {
    if (!*alive_) {
      done(absl::UnavailableError(absl::StrCat("agent ", options_.name, " is shutting down")));
      return;
    }
    Run(caller, std::move(request), deadline, cancelled, std::move(done));
  });
}

void AgentCore::Run(const Caller& caller, v1::AgentRequest request, absl::Time deadline,
                    const CancelFlag& cancelled, ResponseCallback done) {
  if (absl::Status auth = Authorize(caller, request); !auth.ok()) {
    ATB_LOG(WARNING) << "denied: " << auth.message();
    done(auth);
    return;
  }
  v1::AgentResponse resp;
  const std::string port_name = PortOf(request);
  Port* port = nullptr;
  if (!port_name.empty() || request.request_case() == v1::AgentRequest::kExecute) {
    auto p = FindPort(port_name);
    if (!p.ok()) {
      done(p.status());
      return;
    }
    port = *p;
  }
  switch (request.request_case()) {
    case v1::AgentRequest::kListPorts:
      *resp.mutable_list_ports() = ListPortsNow();
      done(std::move(resp));
      return;
    case v1::AgentRequest::kListLeases:
      for (auto& lease : leases_.List()) {
        lease.set_agent(options_.name);
        *resp.mutable_list_leases()->add_leases() = std::move(lease);
      }
      done(std::move(resp));
      return;
    case v1::AgentRequest::kAcquireLease: {
      const auto& r = request.acquire_lease();
      auto lease =
          leases_.Acquire(r.port(), caller.principal, r.reason(), FromProtoDuration(r.ttl()));
      if (!lease.ok()) {
        done(lease.status());
        return;
      }
      lease->set_agent(options_.name);
      ATB_LOG(INFO) << caller.ToString() << " leased " << r.port();
      *resp.mutable_acquire_lease() = *lease;
      PortChanged(r.port());
      ArmLeaseTimer();
      done(std::move(resp));
      return;
    }
    case v1::AgentRequest::kRenewLease: {
      const auto& r = request.renew_lease();
      auto lease =
          leases_.Renew(r.port(), caller.principal, r.lease_id(), FromProtoDuration(r.ttl()));
      if (!lease.ok()) {
        done(lease.status());
        return;
      }
      lease->set_agent(options_.name);
      *resp.mutable_renew_lease() = *lease;
      PortChanged(r.port());
      ArmLeaseTimer();
      done(std::move(resp));
      return;
    }
    case v1::AgentRequest::kReleaseLease: {
      const auto& r = request.release_lease();
      if (r.force() && caller.role != v1::ROLE_ADMIN) {
        absl::Status denied = absl::PermissionDeniedError(
            absl::StrCat(caller.ToString(), " may not force-release leases (admin only)"));
        ATB_LOG(WARNING) << "denied: " << denied.message();
        done(std::move(denied));
        return;
      }
      auto lease = leases_.Release(r.port(), caller.principal, r.lease_id(), r.force());
      if (!lease.ok()) {
        done(lease.status());
        return;
      }
      lease->set_agent(options_.name);
      ATB_LOG(INFO) << caller.ToString() << " released the lease on " << r.port()
                    << (r.force() ? " (forced)" : "");
      *resp.mutable_release_lease()->mutable_lease() = *lease;
      PortChanged(r.port());
      ArmLeaseTimer();
      done(std::move(resp));
      return;
    }
    case v1::AgentRequest::kGetModemInfo:
      if (!request.get_modem_info().refresh()) {
        if (port->channel->state() != ChannelState::kReady) {
          done(absl::UnavailableError(absl::StrCat("port ", port_name, " is ",
                                                   ChannelStateName(port->channel->state()), ": ",
                                                   port->channel->last_error())));
          return;
        }
        *resp.mutable_get_modem_info() = ToModemInfo(port->channel->identity());
        done(std::move(resp));
        return;
      }
      break;
    case v1::AgentRequest::REQUEST_NOT_SET:
      done(absl::InvalidArgumentError("empty request"));
      return;
    default:
      break;
  }

  // Operations on the modem: under the port's lock, in FIFO order.
  if (NeedsWriter(request)) {
    if (absl::Status s = leases_.CheckWriter(port_name, caller.principal); !s.ok()) {
      done(s);
      return;
    }
  }
  std::shared_ptr<ModemChannel> channel = port->channel;
  std::string name(RequestName(request));
  asio::co_spawn(
      io_,
      [this, channel, caller, request = std::move(request), deadline,
       cancelled]() -> asio::awaitable<absl::StatusOr<v1::AgentResponse>> {
        co_await channel->AsyncLock(asio::use_awaitable);
        struct Unlock {
          std::shared_ptr<ModemChannel> ch;
          ~Unlock() { ch->Unlock(); }
        } unlock{channel};
        if (cancelled && *cancelled) co_return absl::CancelledError("the caller went away");
        if (clock_.Now() > deadline) {
          co_return absl::DeadlineExceededError(
              absl::StrCat("port ", channel->name(),
                           " was busy until past the caller's deadline; nothing was sent"));
        }
        if (NeedsWriter(request)) {
          // The lease may have changed while we waited for the port.
          if (absl::Status s = leases_.CheckWriter(channel->name(), caller.principal); !s.ok()) {
            co_return s;
          }
        }
        OpContext ctx{channel, clock_};
        v1::AgentResponse out;
        switch (request.request_case()) {
          case v1::AgentRequest::kExecute: {
            auto r = co_await RunExecute(ctx, request.execute());
            if (!r.ok()) co_return r.status();
            *out.mutable_execute() = *std::move(r);
            break;
          }
          case v1::AgentRequest::kListCredentials: {
            auto r = co_await RunListCredentials(ctx, request.list_credentials());
            if (!r.ok()) co_return r.status();
            *out.mutable_list_credentials() = *std::move(r);
            break;
          }
          case v1::AgentRequest::kReadCredential: {
            auto r = co_await RunReadCredential(ctx, request.read_credential());
            if (!r.ok()) co_return r.status();
            *out.mutable_read_credential() = *std::move(r);
            break;
          }
          case v1::AgentRequest::kWriteCredential: {
            auto r = co_await RunWriteCredential(ctx, request.write_credential());
            if (!r.ok()) co_return r.status();
            *out.mutable_write_credential() = *std::move(r);
            break;
          }
          case v1::AgentRequest::kDeleteCredential: {
            auto r = co_await RunDeleteCredential(ctx, request.delete_credential());
            if (!r.ok()) co_return r.status();
            *out.mutable_delete_credential() = *std::move(r);
            break;
          }
          case v1::AgentRequest::kGenerateKey: {
            auto r = co_await RunGenerateKey(ctx, request.generate_key());
            if (!r.ok()) co_return r.status();
            *out.mutable_generate_key() = *std::move(r);
            break;
          }
          case v1::AgentRequest::kGetModemInfo: {
            absl::Status s =
                co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(absl::Status)>(
                    [channel](auto handler) {
                      channel->Identify([h = std::move(handler)](absl::Status st) mutable {
                        std::move(h)(std::move(st));
                      });
                    },
                    asio::use_awaitable);
            if (!s.ok()) co_return s;
            *out.mutable_get_modem_info() = ToModemInfo(channel->identity());
            break;
          }
          default:
            co_return absl::UnimplementedError(
                absl::StrCat(RequestName(request), " is not implemented"));
        }
        co_return out;
      },
      [done = std::move(done), name = std::move(name)](
          const std::exception_ptr& e, absl::StatusOr<v1::AgentResponse> r) mutable {
        if (e) {
          ATB_LOG(ERROR) << name << " threw an unexpected exception";
          r = absl::InternalError(absl::StrCat(name, " failed unexpectedly"));
        }
        done(std::move(r));
      });
}

std::shared_ptr<ConsoleSession> AgentCore::OpenConsole(Caller caller, v1::ConsoleOpen open,
                                                       std::shared_ptr<ConsoleSink> sink) {
  auto session = std::make_shared<ConsoleSessionImpl>(this, std::move(caller), std::move(sink));
  asio::post(io_, [this, session, open = std::move(open)] {
    if (!*alive_) return;
    const Caller& c = session->caller();
    if (!c.via_server && !MayAct(c.role) && c.role != v1::ROLE_VIEWER) {
      absl::Status denied = absl::PermissionDeniedError(absl::StrCat(
          c.ToString(), " may not open a console on agent ", options_.name,
          c.role == v1::ROLE_AUTOMATION ? ": automation runs no raw AT and no console" : ""));
      ATB_LOG(WARNING) << "denied: " << denied.message();
      session->Deny(denied);
      return;
    }
    session->Open(open);
  });
  return session;
}

}  // namespace atbridge::agent
