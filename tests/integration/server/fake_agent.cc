#include "tests/integration/server/fake_agent.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/grpc_status.h"
#include "common/pki/pki.h"
#include "tests/testing/test_pki.h"

namespace atbridge::server::testing {

namespace {

std::string MakeCsrDer(const std::string& cn) {
  return ::atbridge::testing::MakeTestCsr({{"CN", cn}});
}

v1::Step OkStep(const std::string& name) {
  v1::Step s;
  s.set_name(name);
  s.set_status(v1::STEP_OK);
  return s;
}

}  // namespace

std::string ModemBank::ImeiFor(int agent_index, int port_index) {
  return absl::StrFormat("35%06d%07d", agent_index, port_index);
}

absl::StatusOr<v1::AgentResponse> ModemBank::Apply(const std::string& imei, const v1::Actor& actor,
                                                   const v1::AgentRequest& request) {
  std::lock_guard<std::mutex> lock(mu_);
  Modem& m = modems_[imei];
  v1::AgentResponse resp;
  auto lease_check = [&]() -> absl::Status {
    if (!m.lease_owner.empty() && m.lease_owner != actor.principal()) {
      return absl::FailedPreconditionError(
          absl::StrCat("port is leased by ", m.lease_owner, " (", m.lease_reason, ")"));
    }
    return absl::OkStatus();
  };
  switch (request.request_case()) {
    case v1::AgentRequest::kExecute: {
      absl::Status s = lease_check();
      if (!s.ok()) return s;
      auto* at = resp.mutable_execute();
      if (request.execute().command() == "AT+CGSN") at->add_lines(imei);
      at->set_final(v1::FINAL_RESULT_OK);
      at->set_final_line("OK");
      return resp;
    }
    case v1::AgentRequest::kWriteCredential: {
      absl::Status s = lease_check();
      if (!s.ok()) return s;
      const auto& w = request.write_credential();
      ++m.writes;
      const std::string sha = pki::Sha256Hex(w.content());
      auto* rep = resp.mutable_write_credential();
      auto key = std::make_pair(w.sec_tag(), static_cast<int>(w.type()));
      auto it = m.creds.find(key);
      *rep->add_steps() = OkStep("validate");
      if (it != m.creds.end() && it->second.sha256 == sha && !w.options().force()) {
        rep->set_skipped(true);
        v1::Step* st = rep->add_steps();
        st->set_name("compare");
        st->set_status(v1::STEP_SKIPPED);
        st->set_detail("already present");
      } else if (!w.options().dry_run()) {
        m.creds[key] = Credential{w.content(), sha};
        *rep->add_steps() = OkStep("write");
        *rep->add_steps() = OkStep("verify");
      }
      rep->set_sha256(sha);
      rep->set_content_bytes(static_cast<uint32_t>(w.content().size()));
      rep->mutable_entry()->set_sec_tag(w.sec_tag());
      rep->mutable_entry()->set_type(w.type());
      rep->mutable_entry()->set_sha256(sha);
      return resp;
    }
    case v1::AgentRequest::kDeleteCredential: {
      absl::Status s = lease_check();
      if (!s.ok()) return s;
      const auto& d = request.delete_credential();
      auto key = std::make_pair(d.sec_tag(), static_cast<int>(d.type()));
      if (m.creds.erase(key) == 0) {
        if (!d.ignore_missing()) return absl::NotFoundError("+CME ERROR: 513");
        resp.mutable_delete_credential()->set_skipped(true);
      } else {
        *resp.mutable_delete_credential()->add_steps() = OkStep("delete");
      }
      return resp;
    }
    case v1::AgentRequest::kReadCredential: {
      const auto& r = request.read_credential();
      if (r.type() == v1::CLIENT_PRIVATE_KEY || r.type() == v1::PSK) {
        return absl::PermissionDeniedError("secret type");
      }
      auto it = m.creds.find(std::make_pair(r.sec_tag(), static_cast<int>(r.type())));
      if (it == m.creds.end()) return absl::NotFoundError("+CME ERROR: 513");
      auto* out = resp.mutable_read_credential();
      out->set_content(it->second.content);
      out->mutable_entry()->set_sec_tag(r.sec_tag());
      out->mutable_entry()->set_type(r.type());
      out->mutable_entry()->set_sha256(it->second.sha256);
      return resp;
    }
    case v1::AgentRequest::kListCredentials: {
      auto* out = resp.mutable_list_credentials();
      for (const auto& [key, c] : m.creds) {
        if (request.list_credentials().has_sec_tag() &&
            key.first != request.list_credentials().sec_tag()) {
          continue;
        }
        auto* e = out->add_entries();
        e->set_sec_tag(key.first);
        e->set_type(static_cast<v1::CredentialType>(key.second));
        e->set_sha256(c.sha256);
      }
      return resp;
    }
    case v1::AgentRequest::kGenerateKey: {
      absl::Status s = lease_check();
      if (!s.ok()) return s;
      const std::string der = MakeCsrDer(imei);
      resp.mutable_generate_key()->set_csr_der(der);
      resp.mutable_generate_key()->set_csr_pem(pki::CsrDerToPem(der));
      m.creds[std::make_pair(request.generate_key().sec_tag(), 2)] =
          Credential{"", pki::Sha256Hex(der)};
      return resp;
    }
    case v1::AgentRequest::kAcquireLease: {
      absl::Status s = lease_check();
      if (!s.ok()) return s;
      m.lease_owner = actor.principal();
      m.lease_reason = request.acquire_lease().reason();
      m.lease_id = absl::StrCat("lease-", next_lease_++);
      auto* l = resp.mutable_acquire_lease();
      l->set_port(request.acquire_lease().port());
      l->set_owner(m.lease_owner);
      l->set_reason(m.lease_reason);
      l->set_lease_id(m.lease_id);
      return resp;
    }
    case v1::AgentRequest::kRenewLease: {
      if (m.lease_owner != actor.principal() || m.lease_id != request.renew_lease().lease_id()) {
        return absl::FailedPreconditionError("not your lease");
      }
      auto* l = resp.mutable_renew_lease();
      l->set_port(request.renew_lease().port());
      l->set_owner(m.lease_owner);
      l->set_lease_id(m.lease_id);
      return resp;
    }
    case v1::AgentRequest::kReleaseLease: {
      const auto& r = request.release_lease();
      if (m.lease_owner.empty()) return absl::NotFoundError("no lease");
      if (!r.force() && (m.lease_owner != actor.principal() || m.lease_id != r.lease_id())) {
        return absl::FailedPreconditionError(absl::StrCat("lease held by ", m.lease_owner));
      }
      auto* l = resp.mutable_release_lease()->mutable_lease();
      l->set_port(r.port());
      l->set_owner(m.lease_owner);
      l->set_lease_id(m.lease_id);
      m.lease_owner.clear();
      m.lease_id.clear();
      return resp;
    }
    default:
      return absl::UnimplementedError("fake agent: request not simulated");
  }
}

std::map<std::pair<uint32_t, int>, ModemBank::Credential> ModemBank::CredentialsOf(
    const std::string& imei) {
  std::lock_guard<std::mutex> lock(mu_);
  return modems_[imei].creds;
}

std::optional<v1::Lease> ModemBank::LeaseOf(const std::string& imei) {
  std::lock_guard<std::mutex> lock(mu_);
  const Modem& m = modems_[imei];
  if (m.lease_owner.empty()) return std::nullopt;
  v1::Lease l;
  l.set_owner(m.lease_owner);
  l.set_reason(m.lease_reason);
  l.set_lease_id(m.lease_id);
  return l;
}

int ModemBank::WritesTo(const std::string& imei) {
  std::lock_guard<std::mutex> lock(mu_);
  return modems_[imei].writes;
}

FakeAgent::FakeAgent(const std::string& target, const tls::TlsMaterial& material,
                     std::shared_ptr<ModemBank> bank, Options options)
    : options_(std::move(options)), bank_(std::move(bank)) {
  channel_ = tls::CreateChannel(target, material, {.server_name_override = "atbridge.test"});
  stub_ = v1::AgentUplink::NewStub(channel_);
  hold_writes_ = options_.hold_writes;
}

FakeAgent::~FakeAgent() { Disconnect(); }

std::string FakeAgent::PortName(int i) const { return absl::StrCat("modem", i); }

std::string FakeAgent::Imei(int i) const { return ModemBank::ImeiFor(options_.agent_index, i); }

std::vector<std::string> FakeAgent::Imeis() const {
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(options_.ports));
  for (int i = 0; i < options_.ports; ++i) out.push_back(Imei(i));
  return out;
}

std::string FakeAgent::ImeiOfPort(const std::string& port) const {
  for (int i = 0; i < options_.ports; ++i) {
    if (PortName(i) == port) return Imei(i);
  }
  return "";
}

void FakeAgent::Start() {
  v1::AgentEnvelope hello;
  auto* h = hello.mutable_hello();
  h->set_agent(options_.name);
  h->set_version("fake-1.0");
  if (options_.ports_in_hello) *h->mutable_ports() = Ports();
  stub_->async()->Connect(&ctx_, this);
  StartRead(&in_);
  AddHold();
  {
    std::lock_guard<std::mutex> lock(mu_);
    started_ = true;
  }
  Send(std::move(hello));
  if (!options_.ports_in_hello && !options_.hold_inventory) SendInventory();
  StartCall();
}

void FakeAgent::SendInventory() {
  v1::AgentEnvelope inventory;
  *inventory.mutable_inventory()->mutable_ports() = Ports();
  Send(std::move(inventory));
}

google::protobuf::RepeatedPtrField<v1::PortInfo> FakeAgent::Ports() const {
  google::protobuf::RepeatedPtrField<v1::PortInfo> ports;
  for (int i = 0; i < options_.ports; ++i) {
    v1::PortInfo* p = ports.Add();
    p->set_name(PortName(i));
    p->set_device(absl::StrCat("/dev/ttyFAKE", i));
    p->set_baud(115200);
    p->set_state(v1::PORT_STATE_READY);
    for (const auto& [k, v] : options_.labels) (*p->mutable_labels())[k] = v;
    (*p->mutable_labels())["slot"] = absl::StrCat(i);
    v1::ModemInfo* m = p->mutable_modem();
    m->set_imei(Imei(i));
    m->set_manufacturer("Nordic Semiconductor ASA");
    m->set_model("nRF9151");
    m->set_firmware("mfw_nrf91x1_2.0.2");
  }
  return ports;
}

void FakeAgent::Send(v1::AgentEnvelope env) {
  std::lock_guard<std::mutex> lock(mu_);
  if (read_closed_ || done_) return;
  out_.push_back(std::move(env));
  if (!writing_) {
    writing_ = true;
    StartWrite(&out_.front());
  }
}

void FakeAgent::OnWriteDone(bool ok) {
  std::lock_guard<std::mutex> lock(mu_);
  out_.pop_front();
  writing_ = false;
  if (!ok) {
    out_.clear();
    return;
  }
  if (!out_.empty() && !read_closed_) {
    writing_ = true;
    StartWrite(&out_.front());
  }
}

void FakeAgent::OnReadDone(bool ok) {
  if (!ok) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      read_closed_ = true;
    }
    RemoveHold();
    return;
  }
  const v1::ServerEnvelope env = in_;
  StartRead(&in_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (env.has_actor()) actors_.push_back(env.actor());
  }
  switch (env.body_case()) {
    case v1::ServerEnvelope::kRequest: {
      const auto& r = env.request();
      if (r.has_write_credential()) {
        std::unique_lock<std::mutex> lock(mu_);
        if (hold_writes_) {
          held_.push_back(env);
          cv_.notify_all();
          return;
        }
      }
      Answer(env);
      return;
    }
    case v1::ServerEnvelope::kCancel: {
      std::lock_guard<std::mutex> lock(mu_);
      for (auto it = held_.begin(); it != held_.end(); ++it) {
        if (it->request_id() == env.request_id()) {
          held_.erase(it);
          break;
        }
      }
      return;
    }
    case v1::ServerEnvelope::kConsole: {
      v1::AgentEnvelope out;
      out.set_request_id(env.request_id());
      if (env.console().has_open()) {
        auto* ev = out.mutable_console()->mutable_event();
        ev->set_kind(v1::ConsoleEvent::OPENED);
        ev->set_writable(env.console().open().write());
        ev->set_detail(absl::StrCat("port ", env.console().open().port()));
      } else {
        {
          std::lock_guard<std::mutex> lock(mu_);
          console_input_ += env.console().data();
        }
        out.mutable_console()->set_data(absl::StrCat("echo:", env.console().data()));
      }
      Send(std::move(out));
      return;
    }
    default:
      return;
  }
}

void FakeAgent::Answer(const v1::ServerEnvelope& env) {
  const auto& r = env.request();
  std::string port;
  switch (r.request_case()) {
    case v1::AgentRequest::kExecute:
      port = r.execute().port();
      break;
    case v1::AgentRequest::kWriteCredential:
      port = r.write_credential().port();
      break;
    case v1::AgentRequest::kDeleteCredential:
      port = r.delete_credential().port();
      break;
    case v1::AgentRequest::kReadCredential:
      port = r.read_credential().port();
      break;
    case v1::AgentRequest::kListCredentials:
      port = r.list_credentials().port();
      break;
    case v1::AgentRequest::kGenerateKey:
      port = r.generate_key().port();
      break;
    case v1::AgentRequest::kAcquireLease:
      port = r.acquire_lease().port();
      break;
    case v1::AgentRequest::kRenewLease:
      port = r.renew_lease().port();
      break;
    case v1::AgentRequest::kReleaseLease:
      port = r.release_lease().port();
      break;
    default:
      break;
  }
  v1::AgentEnvelope out;
  out.set_request_id(env.request_id());
  if (r.has_list_leases()) {
    auto* leases = out.mutable_response()->mutable_list_leases();
    for (int i = 0; i < options_.ports; ++i) {
      auto lease = bank_->LeaseOf(Imei(i));
      if (!lease.has_value()) continue;
      *leases->add_leases() = *lease;
      leases->mutable_leases(leases->leases_size() - 1)->set_port(PortName(i));
    }
    Send(std::move(out));
    return;
  }
  const std::string imei = ImeiOfPort(port);
  std::optional<absl::Status> fault;
  if (options_.fault) fault = options_.fault(imei, env);
  if (imei.empty() && !fault.has_value()) {
    fault = absl::NotFoundError(absl::StrCat("no port ", port));
  }
  if (fault.has_value()) {
    *out.mutable_status() = ToRpcStatus(*fault);
  } else {
    auto result = bank_->Apply(imei, env.actor(), r);
    if (result.ok()) {
      *out.mutable_response() = *std::move(result);
    } else {
      *out.mutable_status() = ToRpcStatus(result.status());
    }
  }
  Send(std::move(out));
}

size_t FakeAgent::HeldCount() {
  std::lock_guard<std::mutex> lock(mu_);
  return held_.size();
}

bool FakeAgent::WaitForHeld(size_t n, absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [&] {
    return held_.size() >= n || done_;
  }) && held_.size() >= n;
}

void FakeAgent::ReleaseHeld() {
  std::vector<v1::ServerEnvelope> held;
  {
    std::lock_guard<std::mutex> lock(mu_);
    held.swap(held_);
  }
  for (const auto& env : held) Answer(env);
}

void FakeAgent::set_hold_writes(bool hold) {
  std::lock_guard<std::mutex> lock(mu_);
  hold_writes_ = hold;
}

std::vector<v1::Actor> FakeAgent::Actors() {
  std::lock_guard<std::mutex> lock(mu_);
  return actors_;
}

std::string FakeAgent::ConsoleInput() {
  std::lock_guard<std::mutex> lock(mu_);
  return console_input_;
}

void FakeAgent::OnDone(const grpc::Status& status) {
  std::lock_guard<std::mutex> lock(mu_);
  done_ = true;
  status_ = status;
  cv_.notify_all();
}

grpc::Status FakeAgent::WaitDone(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!started_) return grpc::Status::OK;
  if (!cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), [&] { return done_; })) {
    return grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "fake agent stream did not end");
  }
  return status_;
}

bool FakeAgent::done() {
  std::lock_guard<std::mutex> lock(mu_);
  return done_;
}

void FakeAgent::Disconnect() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!started_ || done_) return;
  }
  ctx_.TryCancel();
  WaitDone();
}

}  // namespace atbridge::server::testing
