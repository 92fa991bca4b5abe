#include "client/rpc/backend.h"

#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client/core/errors.h"
#include "client/core/parse.h"
#include "client/rpc/connection.h"
#include "common/grpc_status.h"
#include "common/proto_time.h"

namespace atbridge::client {

namespace {

// Runs one unary call with a deadline.
template <typename Resp, typename Call>
absl::StatusOr<Resp> Unary(absl::Duration timeout, Call&& call) {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, timeout);
  Resp resp;
  grpc::Status s = call(&ctx, &resp);
  if (!s.ok()) return FromGrpcStatus(s);
  return resp;
}

// The state of one async unary call, freed by its callback.
template <typename Req, typename Resp>
struct AsyncCall {
  grpc::ClientContext ctx;
  Req req;
  Resp resp;
};

absl::Duration LongTimeout(const ResolvedConfig& config) {
  return config.timeout_explicit ? config.timeout : std::max(config.timeout, kLongCallTimeout);
}

// ---- server mode ----------------------------------------------------------------

class ServerBackend final : public Backend {
 public:
  ServerBackend(std::shared_ptr<grpc::Channel> channel, ResolvedConfig config)
      : channel_(std::move(channel)),
        stub_(v1::Provisioning::NewStub(channel_)),
        config_(std::move(config)) {}

  bool server_mode() const override { return true; }
  std::string Describe() const override { return absl::StrCat("server ", config_.address); }
  absl::Duration timeout() const override { return config_.timeout; }

  absl::StatusOr<v1::ListDevicesResponse> ListDevices(const v1::ListDevicesRequest& req) override {
    return Unary<v1::ListDevicesResponse>(
        config_.timeout, [&](auto* ctx, auto* resp) { return stub_->ListDevices(ctx, req, resp); });
  }

  absl::StatusOr<v1::Device> GetDevice(const v1::DeviceRef& ref) override {
    v1::GetDeviceRequest req;
    *req.mutable_device() = ref;
    return Unary<v1::Device>(
        config_.timeout, [&](auto* ctx, auto* resp) { return stub_->GetDevice(ctx, req, resp); });
  }

  absl::StatusOr<v1::AtResult> Execute(const v1::DeviceRef& ref, v1::ExecuteRequest r) override {
    v1::DeviceExecuteRequest req;
    *req.mutable_device() = ref;
    *req.mutable_request() = std::move(r);
    return Unary<v1::AtResult>(
        ExecuteDeadline(config_.timeout, req.request()),
        [&](auto* ctx, auto* resp) { return stub_->Execute(ctx, req, resp); });
  }

  absl::StatusOr<v1::ListCredentialsResponse> ListCredentials(
      const v1::DeviceRef& ref, v1::ListCredentialsRequest r) override {
    v1::DeviceListCredentialsRequest req;
    *req.mutable_device() = ref;
    *req.mutable_request() = std::move(r);
    return Unary<v1::ListCredentialsResponse>(config_.timeout, [&](auto* ctx, auto* resp) {
      return stub_->ListCredentials(ctx, req, resp);
    });
  }

  absl::StatusOr<v1::ReadCredentialResponse> ReadCredential(const v1::DeviceRef& ref,
                                                            v1::ReadCredentialRequest r) override {
    v1::DeviceReadCredentialRequest req;
    *req.mutable_device() = ref;
    *req.mutable_request() = std::move(r);
    return Unary<v1::ReadCredentialResponse>(config_.timeout, [&](auto* ctx, auto* resp) {
      return stub_->ReadCredential(ctx, req, resp);
    });
  }

  absl::StatusOr<v1::WriteReport> WriteCredential(const v1::DeviceRef& ref,
                                                  v1::WriteCredentialRequest r) override {
    v1::DeviceWriteCredentialRequest req;
    *req.mutable_device() = ref;
    *req.mutable_request() = std::move(r);
    return Unary<v1::WriteReport>(LongTimeout(config_), [&](auto* ctx, auto* resp) {
      return stub_->WriteCredential(ctx, req, resp);
    });
  }

  absl::StatusOr<v1::DeleteCredentialResponse> DeleteCredential(
      const v1::DeviceRef& ref, v1::DeleteCredentialRequest r) override {
    v1::DeviceDeleteCredentialRequest req;
    *req.mutable_device() = ref;
    *req.mutable_request() = std::move(r);
    return Unary<v1::DeleteCredentialResponse>(LongTimeout(config_), [&](auto* ctx, auto* resp) {
      return stub_->DeleteCredential(ctx, req, resp);
    });
  }

  absl::StatusOr<v1::DeviceGenerateKeyResponse> GenerateKey(
      const v1::DeviceRef& ref, v1::DeviceGenerateKeyRequest req) override {
    *req.mutable_device() = ref;
    return Unary<v1::DeviceGenerateKeyResponse>(LongTimeout(config_), [&](auto* ctx, auto* resp) {
      return stub_->GenerateKey(ctx, req, resp);
    });
  }

  absl::StatusOr<v1::Lease> AcquireLease(const v1::DeviceRef& ref, const std::string& reason,
                                         absl::Duration ttl) override {
    v1::DeviceAcquireLeaseRequest req;
    *req.mutable_device() = ref;
    req.set_reason(reason);
    if (ttl > absl::ZeroDuration()) *req.mutable_ttl() = ToProtoDuration(ttl);
    return Unary<v1::Lease>(config_.timeout, [&](auto* ctx, auto* resp) {
      return stub_->AcquireLease(ctx, req, resp);
    });
  }

  absl::StatusOr<v1::Lease> RenewLease(const v1::DeviceRef& ref, const std::string& lease_id,
                                       absl::Duration ttl) override {
    v1::DeviceRenewLeaseRequest req;
    *req.mutable_device() = ref;
    req.set_lease_id(lease_id);
    if (ttl > absl::ZeroDuration()) *req.mutable_ttl() = ToProtoDuration(ttl);
    return Unary<v1::Lease>(
        config_.timeout, [&](auto* ctx, auto* resp) { return stub_->RenewLease(ctx, req, resp); });
  }

  void RenewLeaseAsync(const v1::DeviceRef& ref, const std::string& lease_id, absl::Duration ttl,
                       absl::Duration timeout,
                       std::function<void(absl::StatusOr<v1::Lease>)> done) override {
    auto* call = new AsyncCall<v1::DeviceRenewLeaseRequest, v1::Lease>();
    *call->req.mutable_device() = ref;
    call->req.set_lease_id(lease_id);
    if (ttl > absl::ZeroDuration()) *call->req.mutable_ttl() = ToProtoDuration(ttl);
    SetDeadline(&call->ctx, timeout > absl::ZeroDuration() ? timeout : config_.timeout);
    stub_->async()->RenewLease(&call->ctx, &call->req, &call->resp,
                               [call, done = std::move(done)](const grpc::Status& s) {
                                 if (s.ok()) {
                                   done(std::move(call->resp));
                                 } else {
                                   done(FromGrpcStatus(s));
                                 }
                                 delete call;
                               });
  }

  absl::StatusOr<v1::ReleaseLeaseResponse> ReleaseLease(const v1::DeviceRef& ref,
                                                        const std::string& lease_id,
                                                        bool force) override {
    v1::DeviceReleaseLeaseRequest req;
    *req.mutable_device() = ref;
    req.set_lease_id(lease_id);
    req.set_force(force);
    return Unary<v1::ReleaseLeaseResponse>(config_.timeout, [&](auto* ctx, auto* resp) {
      return stub_->ReleaseLease(ctx, req, resp);
    });
  }

  absl::StatusOr<v1::ListLeasesResponse> ListLeases() override {
    return Unary<v1::ListLeasesResponse>(config_.timeout, [&](auto* ctx, auto* resp) {
      return stub_->ListLeases(ctx, v1::ListLeasesRequest(), resp);
    });
  }

  absl::Status PrepareConsole(const v1::DeviceRef& ref, v1::ConsoleOpen* open) override {
    *open->mutable_device() = ref;
    return absl::OkStatus();
  }

  std::unique_ptr<ConsoleStream> NewConsoleStream(ConsoleStream::Callbacks callbacks) override {
    v1::Provisioning::Stub* stub = stub_.get();
    return std::make_unique<ConsoleStream>(
        [stub](grpc::ClientContext* ctx, ConsoleStream::Reactor* r) {
          stub->async()->Console(ctx, r);
        },
        std::move(callbacks));
  }

  absl::StatusOr<v1::Provisioning::Stub*> Server(absl::string_view) override { return stub_.get(); }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Provisioning::Stub> stub_;
  ResolvedConfig config_;
};

// ---- direct mode ----------------------------------------------------------------

v1::Device DeviceFromPort(const std::string& agent, const v1::PortInfo& p) {
  v1::Device d;
  d.set_imei(p.modem().imei());
  d.set_agent(agent);
  d.set_port(p.name());
  d.set_model(p.modem().model());
  d.set_firmware(p.modem().firmware());
  d.set_manufacturer(p.modem().manufacturer());
  d.mutable_labels()->insert(p.labels().begin(), p.labels().end());
  d.set_online(p.state() == v1::PORT_STATE_READY);
  if (p.modem().has_identified_at()) *d.mutable_last_seen() = p.modem().identified_at();
  if (p.has_lease() && !p.lease().owner().empty()) {
    *d.mutable_lease() = p.lease();
    d.mutable_lease()->set_agent(agent);
    d.mutable_lease()->set_imei(p.modem().imei());
  }
  return d;
}

bool Matches(const v1::TargetSelector& sel, const v1::Device& d) {
  if (sel.imeis_size() > 0) {
    bool any = false;
    for (const auto& i : sel.imeis()) any = any || i == d.imei();
    if (!any) return false;
  }
  if (sel.agents_size() > 0) {
    bool any = false;
    for (const auto& a : sel.agents()) any = any || a == d.agent();
    if (!any) return false;
  }
  for (const auto& [k, v] : sel.labels()) {
    auto it = d.labels().find(k);
    if (it == d.labels().end() || it->second != v) return false;
  }
  return true;
}

class AgentBackend final : public Backend {
 public:
  AgentBackend(std::shared_ptr<grpc::Channel> channel, ResolvedConfig config)
      : channel_(std::move(channel)),
        stub_(v1::Agent::NewStub(channel_)),
        config_(std::move(config)) {}

  bool server_mode() const override { return false; }
  std::string Describe() const override { return absl::StrCat("agent ", config_.address); }
  absl::Duration timeout() const override { return config_.timeout; }

  absl::StatusOr<v1::ListDevicesResponse> ListDevices(const v1::ListDevicesRequest& req) override {
    auto ports = Ports();
    if (!ports.ok()) return ports.status();
    v1::ListDevicesResponse out;
    for (const auto& p : (*ports)->ports()) {
      v1::Device d = DeviceFromPort((*ports)->agent(), p);
      if (req.connected_only() && !d.online()) continue;
      if (!Matches(req.selector(), d)) continue;
      *out.add_devices() = std::move(d);
    }
    return out;
  }

  absl::StatusOr<v1::Device> GetDevice(const v1::DeviceRef& ref) override {
    auto port = PortFor(ref);
    if (!port.ok()) return port.status();
    auto ports = Ports();
    if (!ports.ok()) return ports.status();
    v1::Device d;
    bool found = false;
    for (const auto& p : (*ports)->ports()) {
      if (p.name() != *port) continue;
      d = DeviceFromPort((*ports)->agent(), p);
      found = true;
    }
    if (!found) {
      return absl::NotFoundError(
          absl::StrCat("agent ", (*ports)->agent(), " has no port '", *port, "'"));
    }
    if (d.online()) {
      auto creds = ListCredentials(ref, v1::ListCredentialsRequest());
      if (!creds.ok()) return creds.status();
      *d.mutable_credentials() = std::move(*creds->mutable_entries());
    }
    return d;
  }

  absl::StatusOr<v1::AtResult> Execute(const v1::DeviceRef& ref, v1::ExecuteRequest req) override {
    auto port = PortFor(ref);
    if (!port.ok()) return port.status();
    req.set_port(*port);
    return Unary<v1::AtResult>(ExecuteDeadline(config_.timeout, req), [&](auto* ctx, auto* resp) {
      return stub_->Execute(ctx, req, resp);
    });
  }

  absl::StatusOr<v1::ListCredentialsResponse> ListCredentials(
      const v1::DeviceRef& ref, v1::ListCredentialsRequest req) override {
    auto port = PortFor(ref);
    if (!port.ok()) return port.status();
    req.set_port(*port);
    return Unary<v1::ListCredentialsResponse>(config_.timeout, [&](auto* ctx, auto* resp) {
      return stub_->ListCredentials(ctx, req, resp);
    });
  }

  absl::StatusOr<v1::ReadCredentialResponse> ReadCredential(
      const v1::DeviceRef& ref, v1::ReadCredentialRequest req) override {
    auto port = PortFor(ref);
    if (!port.ok()) return port.status();
    req.set_port(*port);
    return Unary<v1::ReadCredentialResponse>(config_.timeout, [&](auto* ctx, auto* resp) {
      return stub_->ReadCredential(ctx, req, resp);
    });
  }

  absl::StatusOr<v1::WriteReport> WriteCredential(const v1::DeviceRef& ref,
                                                  v1::WriteCredentialRequest req) override {
    auto port = PortFor(ref);
    if (!port.ok()) return port.status();
    req.set_port(*port);
    return Unary<v1::WriteReport>(LongTimeout(config_), [&](auto* ctx, auto* resp) {
      return stub_->WriteCredential(ctx, req, resp);
    });
  }

  absl::StatusOr<v1::DeleteCredentialResponse> DeleteCredential(
      const v1::DeviceRef& ref, v1::DeleteCredentialRequest req) override {
    auto port = PortFor(ref);
    if (!port.ok()) return port.status();
    req.set_port(*port);
    return Unary<v1::DeleteCredentialResponse>(LongTimeout(config_), [&](auto* ctx, auto* resp) {
      return stub_->DeleteCredential(ctx, req, resp);
    });
  }

  absl::StatusOr<v1::DeviceGenerateKeyResponse> GenerateKey(
      const v1::DeviceRef& ref, v1::DeviceGenerateKeyRequest req) override {
    if (req.sign()) {
      return WithHint(UsageError("signing the CSR needs the server's CA; direct mode (--agent) "
                                 "only returns the CSR"),
                      "drop --sign, or pass --server HOST:PORT");
    }
    auto port = PortFor(ref);
    if (!port.ok()) return port.status();
    v1::GenerateKeyRequest r = req.request();
    r.set_port(*port);
    auto csr = Unary<v1::GenerateKeyResponse>(LongTimeout(config_), [&](auto* ctx, auto* resp) {
      return stub_->GenerateKey(ctx, r, resp);
    });
    if (!csr.ok()) return csr.status();
    v1::DeviceGenerateKeyResponse out;
    *out.mutable_csr() = std::move(*csr);
    return out;
  }

  absl::StatusOr<v1::Lease> AcquireLease(const v1::DeviceRef& ref, const std::string& reason,
                                         absl::Duration ttl) override {
    auto port = PortFor(ref);
    if (!port.ok()) return port.status();
    v1::AcquireLeaseRequest req;
    req.set_port(*port);
    req.set_reason(reason);
    if (ttl > absl::ZeroDuration()) *req.mutable_ttl() = ToProtoDuration(ttl);
    auto lease = Unary<v1::Lease>(config_.timeout, [&](auto* ctx, auto* resp) {
      return stub_->AcquireLease(ctx, req, resp);
    });
    if (lease.ok()) FillLease(&*lease);
    return lease;
  }

  absl::StatusOr<v1::Lease> RenewLease(const v1::DeviceRef& ref, const std::string& lease_id,
                                       absl::Duration ttl) override {
    auto port = PortFor(ref);
    if (!port.ok()) return port.status();
    v1::RenewLeaseRequest req;
    req.set_port(*port);
    req.set_lease_id(lease_id);
    if (ttl > absl::ZeroDuration()) *req.mutable_ttl() = ToProtoDuration(ttl);
    auto lease = Unary<v1::Lease>(
        config_.timeout, [&](auto* ctx, auto* resp) { return stub_->RenewLease(ctx, req, resp); });
    if (lease.ok()) FillLease(&*lease);
    return lease;
  }

  void RenewLeaseAsync(const v1::DeviceRef& ref, const std::string& lease_id, absl::Duration ttl,
                       absl::Duration timeout,
                       std::function<void(absl::StatusOr<v1::Lease>)> done) override {
    // A console session names its port in the open message; direct mode
    // keeps DEVICE as the port name there (see PrepareConsole).
    auto* call = new AsyncCall<v1::RenewLeaseRequest, v1::Lease>();
    call->req.set_port(ref.has_port() ? ref.port().port() : ref.alias());
    call->req.set_lease_id(lease_id);
    if (ttl > absl::ZeroDuration()) *call->req.mutable_ttl() = ToProtoDuration(ttl);
    SetDeadline(&call->ctx, timeout > absl::ZeroDuration() ? timeout : config_.timeout);
    stub_->async()->RenewLease(&call->ctx, &call->req, &call->resp,
                               [call, done = std::move(done)](const grpc::Status& s) {
                                 if (s.ok()) {
                                   done(std::move(call->resp));
                                 } else {
                                   done(FromGrpcStatus(s));
                                 }
                                 delete call;
                               });
  }

  absl::StatusOr<v1::ReleaseLeaseResponse> ReleaseLease(const v1::DeviceRef& ref,
                                                        const std::string& lease_id,
                                                        bool force) override {
    auto port = PortFor(ref);
    if (!port.ok()) return port.status();
    v1::ReleaseLeaseRequest req;
    req.set_port(*port);
    req.set_lease_id(lease_id);
    req.set_force(force);
    auto resp = Unary<v1::ReleaseLeaseResponse>(
        config_.timeout, [&](auto* ctx, auto* r) { return stub_->ReleaseLease(ctx, req, r); });
    if (resp.ok()) FillLease(resp->mutable_lease());
    return resp;
  }

  absl::StatusOr<v1::ListLeasesResponse> ListLeases() override {
    auto leases = Unary<v1::ListLeasesResponse>(config_.timeout, [&](auto* ctx, auto* resp) {
      return stub_->ListLeases(ctx, v1::ListLeasesRequest(), resp);
    });
    if (!leases.ok()) return leases.status();
    for (auto& l : *leases->mutable_leases()) FillLease(&l);
    return leases;
  }

  absl::Status PrepareConsole(const v1::DeviceRef& ref, v1::ConsoleOpen* open) override {
    auto port = PortFor(ref);
    if (!port.ok()) return port.status();
    open->set_port(*port);
    return absl::OkStatus();
  }

  std::unique_ptr<ConsoleStream> NewConsoleStream(ConsoleStream::Callbacks callbacks) override {
    v1::Agent::Stub* stub = stub_.get();
    return std::make_unique<ConsoleStream>(
        [stub](grpc::ClientContext* ctx, ConsoleStream::Reactor* r) {
          stub->async()->Console(ctx, r);
        },
        std::move(callbacks));
  }

  absl::StatusOr<v1::Provisioning::Stub*> Server(absl::string_view command) override {
    return WithHint(UsageError(absl::StrCat(
                        "'", command, "' needs the server: direct mode (--agent ", config_.address,
                        ") talks to one agent, which keeps no jobs, "
                        "inventory or audit log")),
                    "pass --server HOST:PORT or set ATBRIDGE_SERVER");
  }

 private:
  // ListPorts, cached for the life of the command.
  absl::StatusOr<const v1::ListPortsResponse*> Ports() {
    if (!ports_) {
      auto r = Unary<v1::ListPortsResponse>(config_.timeout, [&](auto* ctx, auto* resp) {
        return stub_->ListPorts(ctx, v1::ListPortsRequest(), resp);
      });
      if (!r.ok()) return r.status();
      ports_ = std::move(*r);
    }
    return &*ports_;
  }

  // Fills the agent and IMEI a direct call leaves out.
  void FillLease(v1::Lease* lease) {
    if (!lease->agent().empty() && !lease->imei().empty()) return;
    auto ports = Ports();
    if (!ports.ok()) return;
    if (lease->agent().empty()) lease->set_agent((*ports)->agent());
    for (const auto& p : (*ports)->ports()) {
      if (p.name() == lease->port() && lease->imei().empty()) lease->set_imei(p.modem().imei());
    }
  }

  // DEVICE -> port name on this agent.
  absl::StatusOr<std::string> PortFor(const v1::DeviceRef& ref) {
    switch (ref.ref_case()) {
      case v1::DeviceRef::kAlias: {
        const std::string& alias = ref.alias();
        if (alias.find('=') == std::string::npos) return alias;  // A port name.
        // A label: exactly one port must carry it.
        auto kv = ParseLabel(alias);
        if (!kv.ok()) return kv.status();
        auto ports = Ports();
        if (!ports.ok()) return ports.status();
        std::vector<std::string> hits;
        for (const auto& p : (*ports)->ports()) {
          auto it = p.labels().find(kv->first);
          if (it != p.labels().end() && it->second == kv->second) hits.push_back(p.name());
        }
        if (hits.size() == 1) return hits[0];
        if (hits.empty()) {
          return absl::NotFoundError(
              absl::StrCat("no port on agent ", (*ports)->agent(), " has the label ", alias));
        }
        return absl::FailedPreconditionError(absl::StrCat("the label ", alias, " matches ",
                                                          hits.size(), " ports on agent ",
                                                          (*ports)->agent(), "; name one port"));
      }
      case v1::DeviceRef::kImei: {
        auto ports = Ports();
        if (!ports.ok()) return ports.status();
        for (const auto& p : (*ports)->ports()) {
          if (p.modem().imei() == ref.imei()) return p.name();
        }
        return absl::NotFoundError(absl::StrCat("no port on agent ", (*ports)->agent(),
                                                " has a modem with IMEI ", ref.imei()));
      }
      case v1::DeviceRef::kPort: {
        auto ports = Ports();
        if (!ports.ok()) return ports.status();
        if (ref.port().agent() != (*ports)->agent()) {
          return absl::NotFoundError(absl::StrCat("DEVICE names agent '", ref.port().agent(),
                                                  "' but --agent ", config_.address, " is agent '",
                                                  (*ports)->agent(), "'"));
        }
        return ref.port().port();
      }
      case v1::DeviceRef::REF_NOT_SET:
        break;
    }
    return UsageError("no DEVICE given");
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Agent::Stub> stub_;
  ResolvedConfig config_;
  std::optional<v1::ListPortsResponse> ports_;
};

}  // namespace

absl::Duration ExecuteDeadline(absl::Duration call_timeout, const v1::ExecuteRequest& req) {
  if (!req.has_timeout()) return call_timeout;
  return std::max(call_timeout, FromProtoDuration(req.timeout()) + kAtDeadlineMargin);
}

absl::StatusOr<std::unique_ptr<Backend>> CreateBackend(const ResolvedConfig& config) {
  auto channel = Dial(config);
  if (!channel.ok()) return channel.status();
  if (config.mode == Mode::kServer) {
    return std::unique_ptr<Backend>(new ServerBackend(*std::move(channel), config));
  }
  return std::unique_ptr<Backend>(new AgentBackend(*std::move(channel), config));
}

}  // namespace atbridge::client
