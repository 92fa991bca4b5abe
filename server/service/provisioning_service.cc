#include "server/service/provisioning_service.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "server/jobs/job_spec.h"
#include "server/jobs/report.h"
#include "server/util/proto_time.h"

namespace atbridge::server::service {

namespace {

v1::Actor ActorOf(const tls::Identity& who) {
  v1::Actor a;
  a.set_principal(who.principal);
  a.set_role(who.role);
  return a;
}

std::string DeviceTarget(const v1::Device& d) {
  return absl::StrCat(d.imei(), " (", d.agent(), "/", d.port(), ")");
}

void SetPort(v1::AgentRequest& r, const std::string& port) {
  switch (r.request_case()) {
    case v1::AgentRequest::kExecute:
      r.mutable_execute()->set_port(port);
      break;
    case v1::AgentRequest::kAcquireLease:
      r.mutable_acquire_lease()->set_port(port);
      break;
    case v1::AgentRequest::kRenewLease:
      r.mutable_renew_lease()->set_port(port);
      break;
    case v1::AgentRequest::kReleaseLease:
      r.mutable_release_lease()->set_port(port);
      break;
    case v1::AgentRequest::kListCredentials:
      r.mutable_list_credentials()->set_port(port);
      break;
    case v1::AgentRequest::kReadCredential:
      r.mutable_read_credential()->set_port(port);
      break;
    case v1::AgentRequest::kWriteCredential:
      r.mutable_write_credential()->set_port(port);
      break;
    case v1::AgentRequest::kDeleteCredential:
      r.mutable_delete_credential()->set_port(port);
      break;
    case v1::AgentRequest::kGenerateKey:
      r.mutable_generate_key()->set_port(port);
      break;
    default:
      break;
  }
}

absl::Status CheckTagType(uint32_t sec_tag, int type) {
  if (sec_tag > jobs::kMaxSecTag) {
    return absl::InvalidArgumentError(
        absl::StrCat("sec_tag ", sec_tag, " is above ", jobs::kMaxSecTag));
  }
  if (type < 0 || type > 11) {
    return absl::InvalidArgumentError(absl::StrCat("credential type ", type, " is not 0..11"));
  }
  return absl::OkStatus();
}

absl::Status CheckTtl(const google::protobuf::Duration& ttl) {
  absl::Duration d = FromProtoDuration(ttl);
  if (d < absl::ZeroDuration() || d > absl::Hours(24)) {
    return absl::InvalidArgumentError("lease ttl must be within 0..24h");
  }
  return absl::OkStatus();
}

absl::Status CheckCommand(const std::string& command) {
  if (command.empty()) return absl::InvalidArgumentError("AT command is empty");
  if (command.size() > jobs::kMaxCommandBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("AT command is longer than ", jobs::kMaxCommandBytes, " bytes"));
  }
  for (char c : command) {
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError(
          "AT command must be printable ASCII on one line (use WriteCredential for PEM content)");
    }
  }
  return absl::OkStatus();
}

std::string CredDetail(uint32_t sec_tag, int type) {
  return absl::StrCat("sec_tag ", sec_tag, " type ", jobs::CredentialTypeLabel(type));
}

}  // namespace

std::string DeviceRefText(const v1::DeviceRef& ref) {
  switch (ref.ref_case()) {
    case v1::DeviceRef::kImei:
      return ref.imei();
    case v1::DeviceRef::kPort:
      return absl::StrCat(ref.port().agent(), "/", ref.port().port());
    case v1::DeviceRef::kAlias:
      return ref.alias();
    case v1::DeviceRef::REF_NOT_SET:
      break;
  }
  return "(no device)";
}

absl::StatusOr<tls::Identity> ProvisioningService::Authorize(grpc::CallbackServerContext* ctx,
                                                             const std::string& method,
                                                             const std::string& target) {
  auto who = tls::IdentityFromAuthContext(*ctx->auth_context());
  if (!who.ok()) return who.status();
  absl::Status allowed = CheckAllowed(*who, method);
  if (!allowed.ok()) {
    deps_.audit->Record(*who, method, target, "", allowed, "");
    return allowed;
  }
  return who;
}

absl::Duration ProvisioningService::TimeoutFor(const grpc::CallbackServerContext* ctx) const {
  const auto deadline = ctx->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return deps_.default_timeout;
  absl::Duration left = absl::FromChrono(deadline - std::chrono::system_clock::now());
  // Leave a little time to finish the call after the agent's deadline.
  left -= absl::Milliseconds(50);
  return std::clamp(left, absl::Milliseconds(1), deps_.max_timeout);
}

void ProvisioningService::RunAndFinish(grpc::ServerUnaryReactor* reactor,
                                       std::function<absl::Status()> fn) {
  deps_.pool->Post([reactor, fn = std::move(fn)] { reactor->Finish(ToGrpcStatus(fn())); });
}

void ProvisioningService::RelayToDevice(grpc::ServerUnaryReactor* reactor, const tls::Identity& who,
                                        const std::string& method, const v1::DeviceRef& ref,
                                        v1::AgentRequest request, absl::Duration timeout,
                                        const std::string& detail, Handler handle) {
  deps_.pool->Post([this, reactor, who, method, ref, request = std::move(request), timeout, detail,
                    handle = std::move(handle)]() mutable {
    auto device = deps_.inventory->Resolve(ref);
    if (!device.ok()) {
      deps_.audit->Record(who, method, DeviceRefText(ref), "", device.status(), detail);
      reactor->Finish(ToGrpcStatus(device.status()));
      return;
    }
    if (!device->online()) {
      absl::Status s = absl::UnavailableError(
          absl::StrCat("device ", device->imei(), " is offline (last seen on ", device->agent(),
                       "/", device->port(), ")"));
      deps_.audit->Record(who, method, DeviceTarget(*device), device->imei(), s, detail);
      reactor->Finish(ToGrpcStatus(s));
      return;
    }
    SetPort(request, device->port());
    const v1::Device dev = *device;
    deps_.relay->Send(dev.agent(), ActorOf(who), std::move(request), timeout,
                      [this, reactor, who, method, detail, dev,
                       handle = std::move(handle)](absl::StatusOr<v1::AgentResponse> r) {
                        absl::Status s = handle(dev, std::move(r));
                        deps_.audit->Record(who, method, DeviceTarget(dev), dev.imei(), s, detail);
                        reactor->Finish(ToGrpcStatus(s));
                      });
  });
}

// ---- inventory ----

grpc::ServerUnaryReactor* ProvisioningService::ListAgents(grpc::CallbackServerContext* ctx,
                                                          const v1::ListAgentsRequest*,
                                                          v1::ListAgentsResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  auto who = Authorize(ctx, "ListAgents", "");
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  RunAndFinish(reactor, [this, resp] {
    for (auto& a : deps_.inventory->ListAgents()) *resp->add_agents() = std::move(a);
    return absl::OkStatus();
  });
  return reactor;
}

grpc::ServerUnaryReactor* ProvisioningService::ListDevices(grpc::CallbackServerContext* ctx,
                                                           const v1::ListDevicesRequest* req,
                                                           v1::ListDevicesResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  auto who = Authorize(ctx, "ListDevices", "");
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  RunAndFinish(reactor, [this, req, resp] {
    for (auto& d : deps_.inventory->ListDevices(req->selector(), req->connected_only())) {
      *resp->add_devices() = std::move(d);
    }
    return absl::OkStatus();
  });
  return reactor;
}

grpc::ServerUnaryReactor* ProvisioningService::GetDevice(grpc::CallbackServerContext* ctx,
                                                         const v1::GetDeviceRequest* req,
                                                         v1::Device* resp) {
  auto* reactor = ctx->DefaultReactor();
  auto who = Authorize(ctx, "GetDevice", DeviceRefText(req->device()));
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  RunAndFinish(reactor, [this, req, resp]() -> absl::Status {
    auto d = deps_.inventory->Resolve(req->device());
    if (!d.ok()) return d.status();
    *resp = *std::move(d);
    return absl::OkStatus();
  });
  return reactor;
}

grpc::ServerUnaryReactor* ProvisioningService::UpdateDevice(grpc::CallbackServerContext* ctx,
                                                            const v1::UpdateDeviceRequest* req,
                                                            v1::Device* resp) {
  auto* reactor = ctx->DefaultReactor();
  auto who = Authorize(ctx, "UpdateDevice", DeviceRefText(req->device()));
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  RunAndFinish(reactor, [this, req, resp, who = *who]() -> absl::Status {
    auto d = deps_.inventory->Update(*req);
    std::string detail;
    for (const auto& [k, v] : req->set_labels()) absl::StrAppend(&detail, "set ", k, "=", v, "; ");
    for (const auto& k : req->remove_labels()) absl::StrAppend(&detail, "remove ", k, "; ");
    if (req->has_alias()) absl::StrAppend(&detail, "alias \"", req->alias(), "\"");
    deps_.audit->Record(who, "UpdateDevice",
                        d.ok() ? DeviceTarget(*d) : DeviceRefText(req->device()),
                        d.ok() ? d->imei() : "", d.status(), detail);
    if (!d.ok()) return d.status();
    *resp = *std::move(d);
    return absl::OkStatus();
  });
  return reactor;
}

// ---- relayed device access ----

grpc::ServerUnaryReactor* ProvisioningService::Execute(grpc::CallbackServerContext* ctx,
                                                       const v1::DeviceExecuteRequest* req,
                                                       v1::AtResult* resp) {
  auto* reactor = ctx->DefaultReactor();
  auto who = Authorize(ctx, "Execute", DeviceRefText(req->device()));
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  const std::string detail = RedactCommandForAudit(req->request().command());
  absl::Status valid = CheckCommand(req->request().command());
  if (!valid.ok()) {
    deps_.audit->Record(*who, "Execute", DeviceRefText(req->device()), "", valid, detail);
    reactor->Finish(ToGrpcStatus(valid));
    return reactor;
  }
  v1::AgentRequest request;
  *request.mutable_execute() = req->request();
  RelayToDevice(reactor, *who, "Execute", req->device(), std::move(request), TimeoutFor(ctx),
                detail, [resp](const v1::Device&, absl::StatusOr<v1::AgentResponse> r) {
                  if (!r.ok()) return r.status();
                  *resp = r->execute();
                  return absl::OkStatus();
                });
  return reactor;
}

grpc::ServerUnaryReactor* ProvisioningService::ListCredentials(
    grpc::CallbackServerContext* ctx, const v1::DeviceListCredentialsRequest* req,
    v1::ListCredentialsResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  auto who = Authorize(ctx, "ListCredentials", DeviceRefText(req->device()));
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  v1::AgentRequest request;
  *request.mutable_list_credentials() = req->request();
  RelayToDevice(reactor, *who, "ListCredentials", req->device(), std::move(request),
                TimeoutFor(ctx), "",
                [resp](const v1::Device&, absl::StatusOr<v1::AgentResponse> r) {
                  if (!r.ok()) return r.status();
                  *resp = r->list_credentials();
                  return absl::OkStatus();
                });
  return reactor;
}

grpc::ServerUnaryReactor* ProvisioningService::ReadCredential(
    grpc::CallbackServerContext* ctx, const v1::DeviceReadCredentialRequest* req,
    v1::ReadCredentialResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  auto who = Authorize(ctx, "ReadCredential", DeviceRefText(req->device()));
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  const auto& r = req->request();
  const std::string detail = CredDetail(r.sec_tag(), r.type());
  absl::Status valid = CheckTagType(r.sec_tag(), r.type());
  if (valid.ok() && jobs::IsSecretCredentialType(r.type())) {
    valid = absl::PermissionDeniedError(absl::StrCat(jobs::CredentialTypeLabel(r.type()),
                                                     " entries are secret and never read back"));
  }
  if (!valid.ok()) {
    deps_.audit->Record(*who, "ReadCredential", DeviceRefText(req->device()), "", valid, detail);
    reactor->Finish(ToGrpcStatus(valid));
    return reactor;
  }
  v1::AgentRequest request;
  *request.mutable_read_credential() = r;
  RelayToDevice(reactor, *who, "ReadCredential", req->device(), std::move(request), TimeoutFor(ctx),
                detail, [resp](const v1::Device&, absl::StatusOr<v1::AgentResponse> res) {
                  if (!res.ok()) return res.status();
                  *resp = res->read_credential();
                  return absl::OkStatus();
                });
  return reactor;
}

grpc::ServerUnaryReactor* ProvisioningService::WriteCredential(
    grpc::CallbackServerContext* ctx, const v1::DeviceWriteCredentialRequest* req,
    v1::WriteReport* resp) {
  auto* reactor = ctx->DefaultReactor();
  auto who = Authorize(ctx, "WriteCredential", DeviceRefText(req->device()));
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  const auto& r = req->request();
  std::string detail = absl::StrCat(CredDetail(r.sec_tag(), r.type()), ", ", r.content().size(),
                                    " bytes", r.options().dry_run() ? " (dry run)" : "");
  absl::Status valid = CheckTagType(r.sec_tag(), r.type());
  if (valid.ok()) {
    auto content = deps_.validator->Validate(r.type(), r.content(), r.options().strict());
    if (!content.ok()) valid = content.status();
  }
  if (!valid.ok()) {
    deps_.audit->Record(*who, "WriteCredential", DeviceRefText(req->device()), "", valid, detail);
    reactor->Finish(ToGrpcStatus(valid));
    return reactor;
  }
  v1::AgentRequest request;
  *request.mutable_write_credential() = r;
  RelayToDevice(reactor, *who, "WriteCredential", req->device(), std::move(request),
                TimeoutFor(ctx), detail,
                [resp](const v1::Device&, absl::StatusOr<v1::AgentResponse> res) {
                  if (!res.ok()) return res.status();
                  *resp = res->write_credential();
                  return absl::OkStatus();
                });
  return reactor;
}

grpc::ServerUnaryReactor* ProvisioningService::DeleteCredential(
    grpc::CallbackServerContext* ctx, const v1::DeviceDeleteCredentialRequest* req,
    v1::DeleteCredentialResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  auto who = Authorize(ctx, "DeleteCredential", DeviceRefText(req->device()));
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  const auto& r = req->request();
  const std::string detail = CredDetail(r.sec_tag(), r.type());
  absl::Status valid = CheckTagType(r.sec_tag(), r.type());
  if (!valid.ok()) {
    deps_.audit->Record(*who, "DeleteCredential", DeviceRefText(req->device()), "", valid, detail);
    reactor->Finish(ToGrpcStatus(valid));
    return reactor;
  }
  v1::AgentRequest request;
  *request.mutable_delete_credential() = r;
  RelayToDevice(reactor, *who, "DeleteCredential", req->device(), std::move(request),
                TimeoutFor(ctx), detail,
                [resp](const v1::Device&, absl::StatusOr<v1::AgentResponse> res) {
                  if (!res.ok()) return res.status();
                  *resp = res->delete_credential();
                  return absl::OkStatus();
                });
  return reactor;
}

grpc::ServerUnaryReactor* ProvisioningService::GenerateKey(grpc::CallbackServerContext* ctx,
                                                           const v1::DeviceGenerateKeyRequest* req,
                                                           v1::DeviceGenerateKeyResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  auto who = Authorize(ctx, "GenerateKey", DeviceRefText(req->device()));
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  const auto& r = req->request();
  const std::string detail = absl::StrCat("sec_tag ", r.sec_tag(), req->sign() ? ", sign" : "");
  absl::Status valid = CheckTagType(r.sec_tag(), 0);
  if (valid.ok()) valid = jobs::CheckKeygenAttributes(r.attributes(), "GenerateKey attributes");
  if (valid.ok() && req->sign() && deps_.signer == nullptr) {
    valid = absl::FailedPreconditionError(
        "the server has no CA to sign with (configure ca_cert_file and ca_key_file)");
  }
  if (!valid.ok()) {
    deps_.audit->Record(*who, "GenerateKey", DeviceRefText(req->device()), "", valid, detail);
    reactor->Finish(ToGrpcStatus(valid));
    return reactor;
  }
  const absl::Duration timeout = TimeoutFor(ctx);
  const absl::Time deadline = deps_.clock->Now() + timeout;
  v1::AgentRequest request;
  *request.mutable_generate_key() = r;
  // Keygen first; with sign, the certificate is written back in a second
  // request before the call finishes, so this does not use RelayToDevice.
  deps_.pool->Post([this, reactor, who = *who, req, resp, request = std::move(request), timeout,
                    deadline, detail]() mutable {
    auto finish = [this, reactor, who, detail](const std::string& target, const std::string& imei,
                                               const absl::Status& s) {
      deps_.audit->Record(who, "GenerateKey", target, imei, s, detail);
      reactor->Finish(ToGrpcStatus(s));
    };
    auto device = deps_.inventory->Resolve(req->device());
    if (!device.ok()) return finish(DeviceRefText(req->device()), "", device.status());
    if (!device->online()) {
      return finish(DeviceTarget(*device), device->imei(),
                    absl::UnavailableError(absl::StrCat("device ", device->imei(), " is offline")));
    }
    const v1::Device dev = *device;
    SetPort(request, dev.port());
    deps_.relay->Send(
        dev.agent(), ActorOf(who), std::move(request), timeout,
        [this, req, resp, dev, who, deadline, finish](absl::StatusOr<v1::AgentResponse> gen) {
          if (!gen.ok()) return finish(DeviceTarget(dev), dev.imei(), gen.status());
          *resp->mutable_csr() = gen->generate_key();
          if (!req->sign()) return finish(DeviceTarget(dev), dev.imei(), absl::OkStatus());
          const auto& g = gen->generate_key();
          // The certificate's subject is what the server asked for (the CN of
          // the attributes, else the IMEI), never what the CSR says.
          auto cert =
              deps_.signer->Sign(g.csr_der().empty() ? g.csr_pem() : g.csr_der(),
                                 jobs::DeviceCommonName(req->request().attributes(), dev.imei()),
                                 req->validity_days());
          if (!cert.ok()) return finish(DeviceTarget(dev), dev.imei(), cert.status());
          resp->set_certificate_pem(*cert);
          v1::AgentRequest write;
          auto* w = write.mutable_write_credential();
          w->set_port(dev.port());
          w->set_sec_tag(req->request().sec_tag());
          w->set_type(v1::CLIENT_CERT);
          w->set_content(*cert);
          const absl::Duration left =
              std::max(deadline - deps_.clock->Now(), absl::Milliseconds(1));
          deps_.relay->Send(dev.agent(), ActorOf(who), std::move(write), left,
                            [resp, dev, finish](absl::StatusOr<v1::AgentResponse> wr) {
                              if (!wr.ok()) {
                                return finish(
                                    DeviceTarget(dev), dev.imei(),
                                    absl::Status(wr.status().code(),
                                                 absl::StrCat("key generated and certificate "
                                                              "signed, but writing it failed: ",
                                                              wr.status().message())));
                              }
                              *resp->mutable_write() = wr->write_credential();
                              finish(DeviceTarget(dev), dev.imei(), absl::OkStatus());
                            });
        });
  });
  return reactor;
}

// ---- leases ----

grpc::ServerUnaryReactor* ProvisioningService::AcquireLease(
    grpc::CallbackServerContext* ctx, const v1::DeviceAcquireLeaseRequest* req, v1::Lease* resp) {
  auto* reactor = ctx->DefaultReactor();
  auto who = Authorize(ctx, "AcquireLease", DeviceRefText(req->device()));
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  absl::Status valid = CheckTtl(req->ttl());
  if (!valid.ok()) {
    reactor->Finish(ToGrpcStatus(valid));
    return reactor;
  }
  v1::AgentRequest request;
  request.mutable_acquire_lease()->set_reason(req->reason());
  *request.mutable_acquire_lease()->mutable_ttl() = req->ttl();
  RelayToDevice(reactor, *who, "AcquireLease", req->device(), std::move(request), TimeoutFor(ctx),
                absl::StrCat("reason \"", req->reason(), "\""),
                [resp](const v1::Device& d, absl::StatusOr<v1::AgentResponse> r) {
                  if (!r.ok()) return r.status();
                  *resp = r->acquire_lease();
                  resp->set_agent(d.agent());
                  resp->set_imei(d.imei());
                  return absl::OkStatus();
                });
  return reactor;
}

grpc::ServerUnaryReactor* ProvisioningService::RenewLease(grpc::CallbackServerContext* ctx,
                                                          const v1::DeviceRenewLeaseRequest* req,
                                                          v1::Lease* resp) {
  auto* reactor = ctx->DefaultReactor();
  auto who = Authorize(ctx, "RenewLease", DeviceRefText(req->device()));
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  absl::Status valid = CheckTtl(req->ttl());
  if (!valid.ok()) {
    reactor->Finish(ToGrpcStatus(valid));
    return reactor;
  }
  v1::AgentRequest request;
  request.mutable_renew_lease()->set_lease_id(req->lease_id());
  *request.mutable_renew_lease()->mutable_ttl() = req->ttl();
  RelayToDevice(reactor, *who, "RenewLease", req->device(), std::move(request), TimeoutFor(ctx), "",
                [resp](const v1::Device& d, absl::StatusOr<v1::AgentResponse> r) {
                  if (!r.ok()) return r.status();
                  *resp = r->renew_lease();
                  resp->set_agent(d.agent());
                  resp->set_imei(d.imei());
                  return absl::OkStatus();
                });
  return reactor;
}

grpc::ServerUnaryReactor* ProvisioningService::ReleaseLease(
    grpc::CallbackServerContext* ctx, const v1::DeviceReleaseLeaseRequest* req,
    v1::ReleaseLeaseResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  auto who = Authorize(ctx, req->force() ? "ReleaseLease.force" : "ReleaseLease",
                       DeviceRefText(req->device()));
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  v1::AgentRequest request;
  request.mutable_release_lease()->set_lease_id(req->lease_id());
  request.mutable_release_lease()->set_force(req->force());
  RelayToDevice(reactor, *who, "ReleaseLease", req->device(), std::move(request), TimeoutFor(ctx),
                req->force() ? "force" : "",
                [resp](const v1::Device& d, absl::StatusOr<v1::AgentResponse> r) {
                  if (!r.ok()) return r.status();
                  *resp = r->release_lease();
                  resp->mutable_lease()->set_agent(d.agent());
                  resp->mutable_lease()->set_imei(d.imei());
                  return absl::OkStatus();
                });
  return reactor;
}

grpc::ServerUnaryReactor* ProvisioningService::ListLeases(grpc::CallbackServerContext* ctx,
                                                          const v1::ListLeasesRequest*,
                                                          v1::ListLeasesResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  auto who = Authorize(ctx, "ListLeases", "");
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  struct Gather {
    absl::Mutex mu;
    size_t remaining ABSL_GUARDED_BY(mu) = 0;
  };
  auto sessions = deps_.registry->All();
  if (sessions.empty()) {
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  auto gather = std::make_shared<Gather>();
  {
    absl::MutexLock lock(&gather->mu);
    gather->remaining = sessions.size();
  }
  const absl::Duration timeout = TimeoutFor(ctx);
  for (const auto& session : sessions) {
    v1::AgentRequest request;
    request.mutable_list_leases();
    session->Call(ActorOf(*who), std::move(request), timeout,
                  [this, gather, reactor, resp,
                   agent = session->name()](absl::StatusOr<v1::AgentResponse> r) {
                    if (!r.ok()) {
                      ATB_LOG(WARNING) << "ListLeases: agent " << agent << ": " << r.status();
                    }
                    absl::MutexLock lock(&gather->mu);
                    if (r.ok()) {
                      for (const auto& l : r->list_leases().leases()) {
                        v1::Lease* out = resp->add_leases();
                        *out = l;
                        out->set_agent(agent);
                        v1::DeviceRef ref;
                        ref.mutable_port()->set_agent(agent);
                        ref.mutable_port()->set_port(l.port());
                        auto d = deps_.inventory->Resolve(ref);
                        if (d.ok() && d->online()) out->set_imei(d->imei());
                      }
                    }
                    if (--gather->remaining == 0) reactor->Finish(grpc::Status::OK);
                  });
  }
  return reactor;
}

// ---- jobs ----

grpc::ServerUnaryReactor* ProvisioningService::CreateJob(grpc::CallbackServerContext* ctx,
                                                         const v1::CreateJobRequest* req,
                                                         v1::Job* resp) {
  auto* reactor = ctx->DefaultReactor();
  auto who = Authorize(ctx, "CreateJob", req->spec().name());
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  RunAndFinish(reactor, [this, req, resp, who = *who]() -> absl::Status {
    const v1::JobSpec& spec = req->spec();
    std::string detail = absl::StrCat(jobs::ActionName(spec), spec.dry_run() ? " (dry run)" : "",
                                      spec.name().empty() ? "" : ", name \"", spec.name(),
                                      spec.name().empty() ? "" : "\"");
    auto imeis = deps_.inventory->ResolveSelector(spec.selector());
    if (!imeis.ok()) {
      deps_.audit->Record(who, "CreateJob", "", "", imeis.status(), detail);
      return imeis.status();
    }
    auto created = deps_.engine->CreateJob(spec, *imeis, ActorOf(who));
    if (!created.ok()) {
      deps_.audit->Record(who, "CreateJob", "", "", created.status(), detail);
      return created.status();
    }
    absl::StrAppend(&detail, ", ", imeis->size(), " device(s)",
                    created->existing ? ", existing job for the idempotency key" : "");
    deps_.audit->Record(who, "CreateJob", created->job.id(), "", absl::OkStatus(), detail);
    *resp = std::move(created->job);
    return absl::OkStatus();
  });
  return reactor;
}

grpc::ServerUnaryReactor* ProvisioningService::GetJob(grpc::CallbackServerContext* ctx,
                                                      const v1::GetJobRequest* req, v1::Job* resp) {
  auto* reactor = ctx->DefaultReactor();
  auto who = Authorize(ctx, "GetJob", req->job_id());
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  RunAndFinish(reactor, [this, req, resp]() -> absl::Status {
    auto job = deps_.engine->GetJob(req->job_id(), req->include_executions());
    if (!job.ok()) return job.status();
    *resp = *std::move(job);
    return absl::OkStatus();
  });
  return reactor;
}

grpc::ServerUnaryReactor* ProvisioningService::ListJobs(grpc::CallbackServerContext* ctx,
                                                        const v1::ListJobsRequest* req,
                                                        v1::ListJobsResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  auto who = Authorize(ctx, "ListJobs", "");
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  RunAndFinish(reactor, [this, req, resp]() -> absl::Status {
    auto jobs = deps_.engine->ListJobs(req->state(), req->limit());
    if (!jobs.ok()) return jobs.status();
    for (auto& j : *jobs) *resp->add_jobs() = std::move(j);
    return absl::OkStatus();
  });
  return reactor;
}

grpc::ServerUnaryReactor* ProvisioningService::CancelJob(grpc::CallbackServerContext* ctx,
                                                         const v1::CancelJobRequest* req,
                                                         v1::Job* resp) {
  auto* reactor = ctx->DefaultReactor();
  auto who = Authorize(ctx, "CancelJob", req->job_id());
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  RunAndFinish(reactor, [this, req, resp, who = *who]() -> absl::Status {
    const std::string reason = req->reason().empty()
                                   ? absl::StrCat("by ", who.principal)
                                   : absl::StrCat(req->reason(), " (by ", who.principal, ")");
    auto job = deps_.engine->CancelJob(req->job_id(), reason);
    deps_.audit->Record(who, "CancelJob", req->job_id(), "", job.status(), req->reason());
    if (!job.ok()) return job.status();
    *resp = *std::move(job);
    return absl::OkStatus();
  });
  return reactor;
}

grpc::ServerUnaryReactor* ProvisioningService::GetJobReport(grpc::CallbackServerContext* ctx,
                                                            const v1::GetJobReportRequest* req,
                                                            v1::JobReport* resp) {
  auto* reactor = ctx->DefaultReactor();
  auto who = Authorize(ctx, "GetJobReport", req->job_id());
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  RunAndFinish(reactor, [this, req, resp]() -> absl::Status {
    auto job = deps_.engine->GetJob(req->job_id(), /*include_executions=*/true);
    if (!job.ok()) return job.status();
    if (req->format() == v1::REPORT_FORMAT_CSV) {
      resp->set_content_type("text/csv");
      resp->set_content(jobs::RenderJobReportCsv(*job));
    } else if (req->format() == v1::REPORT_FORMAT_JSON) {
      resp->set_content_type("application/json");
      resp->set_content(jobs::RenderJobReportJson(*job));
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown report format ", req->format()));
    }
    return absl::OkStatus();
  });
  return reactor;
}

grpc::ServerUnaryReactor* ProvisioningService::QueryAudit(grpc::CallbackServerContext* ctx,
                                                          const v1::QueryAuditRequest* req,
                                                          v1::QueryAuditResponse* resp) {
  auto* reactor = ctx->DefaultReactor();
  auto who = Authorize(ctx, "QueryAudit", "");
  if (!who.ok()) {
    reactor->Finish(ToGrpcStatus(who.status()));
    return reactor;
  }
  RunAndFinish(reactor, [this, req, resp]() -> absl::Status {
    v1::QueryAuditRequest q = *req;
    if (q.limit() > 10000) q.set_limit(10000);
    auto records = deps_.audit_store->QueryAudit(q);
    if (!records.ok()) return records.status();
    for (auto& r : *records) *resp->add_records() = std::move(r);
    return absl::OkStatus();
  });
  return reactor;
}

}  // namespace atbridge::server::service
