#include "server/service/relay.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/pki/pki.h"
#include "server/util/proto_time.h"

namespace atbridge::server::service {

namespace {

std::string PortOf(const v1::AgentRequest& r) {
  switch (r.request_case()) {
    case v1::AgentRequest::kListCredentials:
      return r.list_credentials().port();
    case v1::AgentRequest::kReadCredential:
      return r.read_credential().port();
    case v1::AgentRequest::kWriteCredential:
      return r.write_credential().port();
    case v1::AgentRequest::kDeleteCredential:
      return r.delete_credential().port();
    default:
      return "";
  }
}

// Fills subject/issuer/not_after from certificate content when missing.
void Enrich(v1::CredentialEntry* e, const std::string& content) {
  if (e->type() != v1::ROOT_CA_CERT && e->type() != v1::CLIENT_CERT) return;
  if (!e->subject().empty() && IsSet(e->not_after())) return;
  auto info = pki::ParseCertificate(content);
  if (!info.ok()) return;
  if (e->subject().empty()) e->set_subject(info->subject);
  if (e->issuer().empty()) e->set_issuer(info->issuer);
  if (!IsSet(e->not_after())) *e->mutable_not_after() = ToProtoTime(info->not_after);
}

}  // namespace

absl::StatusOr<jobs::DeviceLocation> Relay::Locate(const std::string& imei) {
  return inventory_->Locate(imei);
}

void Relay::Send(const std::string& agent, const v1::Actor& actor, v1::AgentRequest request,
                 absl::Duration timeout, Callback done) {
  std::shared_ptr<AgentSession> session = registry_->Find(agent);
  if (session == nullptr) {
    pool_->Post([done = std::move(done), agent] {
      done(absl::UnavailableError(absl::StrCat("agent ", agent, " is not connected")));
    });
    return;
  }
  const bool sync = !PortOf(request).empty();
  v1::AgentRequest copy = sync ? request : v1::AgentRequest();
  session->Call(actor, std::move(request), timeout,
                [this, agent, sync, copy = std::move(copy),
                 done = std::move(done)](absl::StatusOr<v1::AgentResponse> r) {
                  if (sync && r.ok()) SyncInventory(agent, copy, *r);
                  done(std::move(r));
                });
}

void Relay::SyncInventory(const std::string& agent, const v1::AgentRequest& request,
                          const v1::AgentResponse& response) {
  v1::DeviceRef ref;
  ref.mutable_port()->set_agent(agent);
  ref.mutable_port()->set_port(PortOf(request));
  auto device = inventory_->Resolve(ref);
  if (!device.ok() || !device->online()) return;
  const std::string& imei = device->imei();
  switch (response.response_case()) {
    case v1::AgentResponse::kListCredentials: {
      std::vector<v1::CredentialEntry> entries(response.list_credentials().entries().begin(),
                                               response.list_credentials().entries().end());
      inventory_->CredentialsListed(imei, entries, request.list_credentials().has_sec_tag(),
                                    request.list_credentials().sec_tag());
      return;
    }
    case v1::AgentResponse::kWriteCredential: {
      const auto& w = request.write_credential();
      if (w.options().dry_run()) return;
      const v1::WriteReport& rep = response.write_credential();
      v1::CredentialEntry e = rep.entry();
      e.set_sec_tag(w.sec_tag());
      e.set_type(w.type());
      if (e.sha256().empty()) e.set_sha256(rep.sha256());
      if (e.sha256().empty()) return;  // Nothing verified to record.
      Enrich(&e, w.content());
      inventory_->CredentialWritten(imei, e);
      return;
    }
    case v1::AgentResponse::kReadCredential: {
      v1::CredentialEntry e = response.read_credential().entry();
      e.set_sec_tag(request.read_credential().sec_tag());
      e.set_type(request.read_credential().type());
      if (e.sha256().empty()) return;
      Enrich(&e, response.read_credential().content());
      inventory_->CredentialWritten(imei, e);
      return;
    }
    case v1::AgentResponse::kDeleteCredential:
      inventory_->CredentialDeleted(imei, request.delete_credential().sec_tag(),
                                    request.delete_credential().type());
      return;
    default:
      return;
  }
}

}  // namespace atbridge::server::service
