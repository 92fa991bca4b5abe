#include "server/inventory/inventory.h"

#include <algorithm>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "server/util/proto_time.h"

namespace atbridge::server::inventory {

namespace {

bool EntryLess(const v1::CredentialEntry& a, const v1::CredentialEntry& b) {
  if (a.sec_tag() != b.sec_tag()) return a.sec_tag() < b.sec_tag();
  return a.type() < b.type();
}

bool IsPrintable(const std::string& s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

absl::Status CheckLabelKey(const std::string& k) {
  if (k.empty() || k.size() > 64 || !IsPrintable(k) || k.find('=') != std::string::npos ||
      k.find(' ') != std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        "label key \"", k, "\" must be 1..64 printable characters without '=' or ' '"));
  }
  return absl::OkStatus();
}

}  // namespace

bool IsValidImei(const std::string& imei) {
  return imei.size() == 15 &&
         std::all_of(imei.begin(), imei.end(), [](char c) { return c >= '0' && c <= '9'; });
}

absl::StatusOr<std::unique_ptr<Inventory>> Inventory::Create(store::InventoryStore* store,
                                                             const Clock* clock) {
  std::unique_ptr<Inventory> inv(new Inventory(store, clock));
  auto agents = store->ListAgents();
  if (!agents.ok()) return agents.status();
  auto devices = store->ListDevices();
  if (!devices.ok()) return devices.status();
  auto creds = store->ListAllCredentials();
  if (!creds.ok()) return creds.status();
  absl::MutexLock lock(&inv->mu_);
  for (auto& a : *agents) {
    const std::string name = a.name;
    inv->agents_[name].rec = std::move(a);
  }
  for (auto& d : *devices) {
    const std::string imei = d.imei;
    inv->devices_[imei].rec = std::move(d);
  }
  for (auto& [imei, entries] : *creds) {
    auto it = inv->devices_.find(imei);
    if (it != inv->devices_.end()) it->second.credentials = std::move(entries);
  }
  return inv;
}

void Inventory::SetOnlineListener(OnlineListener listener) {
  absl::MutexLock lock(&mu_);
  online_listener_ = std::move(listener);
}

uint64_t Inventory::AgentConnected(const std::string& name, const std::string& version,
                                   const std::string& peer,
                                   const std::vector<v1::PortInfo>& ports) {
  std::vector<std::string> online;
  OnlineListener listener;
  uint64_t id;
  {
    absl::MutexLock lock(&mu_);
    const absl::Time now = clock_->Now();
    AgentState& a = agents_[name];
    a.rec.name = name;
    a.rec.version = version;
    a.rec.peer = peer;
    a.rec.connected_at = now;
    a.rec.last_seen = now;
    a.rec.port_count = static_cast<uint32_t>(ports.size());
    a.connected = true;
    a.connection_id = next_connection_id_++;
    a.ports.clear();
    std::vector<std::string> changed;
    // Whatever this agent had before is re-established from the hello.
    for (auto& [imei, d] : devices_) {
      if (d.rec.agent == name && d.present) {
        d.present = false;
        d.lease.Clear();
        changed.push_back(imei);
      }
    }
    for (const v1::PortInfo& p : ports) {
      a.ports[p.name()] = p;
      ApplyPortLocked(name, p, &changed);
    }
    PersistAgentLocked(a);
    PersistDevicesLocked(changed);
    for (const auto& [imei, d] : devices_) {
      if (d.present && d.rec.agent == name) online.push_back(imei);
    }
    listener = online_listener_;
    id = a.connection_id;
  }
  ATB_LOG(INFO) << "agent " << name << " connected from " << peer << " (version " << version << ", "
                << ports.size() << " port(s), " << online.size() << " modem(s))";
  if (listener && !online.empty()) listener(online);
  return id;
}

void Inventory::AgentDisconnected(const std::string& name, uint64_t connection_id) {
  absl::MutexLock lock(&mu_);
  auto it = agents_.find(name);
  if (it == agents_.end() || it->second.connection_id != connection_id) return;
  it->second.connected = false;
  it->second.rec.last_seen = clock_->Now();
  PersistAgentLocked(it->second);
  ATB_LOG(INFO) << "agent " << name << " disconnected";
}

void Inventory::AgentSeen(const std::string& name) {
  absl::MutexLock lock(&mu_);
  auto it = agents_.find(name);
  if (it != agents_.end()) it->second.rec.last_seen = clock_->Now();
}

void Inventory::PortUpdated(const std::string& agent, const v1::PortInfo& port) {
  std::vector<std::string> online;
  OnlineListener listener;
  {
    absl::MutexLock lock(&mu_);
    auto it = agents_.find(agent);
    if (it == agents_.end() || !it->second.connected) return;
    AgentState& a = it->second;
    a.ports[port.name()] = port;
    a.rec.port_count = static_cast<uint32_t>(a.ports.size());
    a.rec.last_seen = clock_->Now();
    std::vector<std::string> changed;
    ApplyPortLocked(agent, port, &changed);
    PersistDevicesLocked(changed);
    auto dit = devices_.find(port.modem().imei());
    if (dit != devices_.end() && dit->second.present && dit->second.rec.agent == agent) {
      online.push_back(dit->first);
    }
    listener = online_listener_;
  }
  if (listener && !online.empty()) listener(online);
}

void Inventory::ApplyPortLocked(const std::string& agent, const v1::PortInfo& port,
                                std::vector<std::string>* changed) {
  const absl::Time now = clock_->Now();
  const std::string& imei = port.modem().imei();
  const bool ready = port.state() == v1::PORT_STATE_READY && IsValidImei(imei);
  // Whoever was on this port before and is not the modem there now has left.
  for (auto& [other, d] : devices_) {
    if (d.present && d.rec.agent == agent && d.rec.port == port.name() &&
        (!ready || other != imei)) {
      d.present = false;
      d.lease.Clear();
      changed->push_back(other);
    }
  }
  if (!ready) {
    if (!imei.empty() && !IsValidImei(imei)) {
      ATB_LOG(WARNING) << "agent " << agent << " port " << port.name()
                       << " reports a malformed IMEI; ignoring the modem";
    }
    return;
  }
  DeviceState& d = devices_[imei];
  if (!d.rec.imei.empty() && (d.rec.agent != agent || d.rec.port != port.name())) {
    ATB_LOG(INFO) << "device " << imei << " moved from " << d.rec.agent << "/" << d.rec.port
                  << " to " << agent << "/" << port.name();
  }
  d.rec.imei = imei;
  d.rec.agent = agent;
  d.rec.port = port.name();
  d.rec.model = port.modem().model();
  d.rec.firmware = port.modem().firmware();
  d.rec.manufacturer = port.modem().manufacturer();
  d.rec.port_labels =
      std::map<std::string, std::string>(port.labels().begin(), port.labels().end());
  d.rec.last_seen = now;
  d.present = true;
  d.lease = port.lease();
  changed->push_back(imei);
}

void Inventory::PersistDevicesLocked(const std::vector<std::string>& imeis) {
  if (imeis.empty()) return;
  std::set<std::string> unique(imeis.begin(), imeis.end());
  std::vector<store::DeviceRecord> recs;
  for (const auto& imei : unique) {
    auto it = devices_.find(imei);
    if (it != devices_.end()) recs.push_back(it->second.rec);
  }
  absl::Status s = store_->UpsertDevices(recs);
  if (!s.ok()) ATB_LOG(ERROR) << "inventory: cannot save " << recs.size() << " device(s): " << s;
}

void Inventory::PersistAgentLocked(const AgentState& agent) {
  absl::Status s = store_->UpsertAgent(agent.rec);
  if (!s.ok()) ATB_LOG(ERROR) << "inventory: cannot save agent " << agent.rec.name << ": " << s;
}

void Inventory::SaveCredentialsLocked(const std::string& imei) {
  absl::Status s = store_->ReplaceCredentials(imei, devices_[imei].credentials);
  if (!s.ok()) ATB_LOG(ERROR) << "inventory: cannot save credentials of " << imei << ": " << s;
}

void Inventory::CredentialsListed(const std::string& imei,
                                  const std::vector<v1::CredentialEntry>& entries, bool has_sec_tag,
                                  uint32_t sec_tag) {
  absl::MutexLock lock(&mu_);
  auto it = devices_.find(imei);
  if (it == devices_.end()) return;
  std::vector<v1::CredentialEntry>& creds = it->second.credentials;
  std::vector<v1::CredentialEntry> next;
  for (const auto& old : creds) {
    if (has_sec_tag && old.sec_tag() != sec_tag) next.push_back(old);
  }
  for (v1::CredentialEntry e : entries) {
    if (has_sec_tag && e.sec_tag() != sec_tag) continue;
    // Keep what we learnt from the content when the hash is unchanged.
    for (const auto& old : creds) {
      if (old.sec_tag() == e.sec_tag() && old.type() == e.type() &&
          absl::AsciiStrToUpper(old.sha256()) == absl::AsciiStrToUpper(e.sha256())) {
        if (e.subject().empty()) e.set_subject(old.subject());
        if (e.issuer().empty()) e.set_issuer(old.issuer());
        if (!IsSet(e.not_after())) *e.mutable_not_after() = old.not_after();
      }
    }
    next.push_back(std::move(e));
  }
  std::sort(next.begin(), next.end(), EntryLess);
  creds = std::move(next);
  SaveCredentialsLocked(imei);
}

void Inventory::CredentialWritten(const std::string& imei, const v1::CredentialEntry& entry) {
  absl::MutexLock lock(&mu_);
  auto it = devices_.find(imei);
  if (it == devices_.end()) return;
  auto& creds = it->second.credentials;
  auto pos = std::find_if(creds.begin(), creds.end(), [&](const v1::CredentialEntry& e) {
    return e.sec_tag() == entry.sec_tag() && e.type() == entry.type();
  });
  if (pos != creds.end()) {
    *pos = entry;
  } else {
    creds.push_back(entry);
    std::sort(creds.begin(), creds.end(), EntryLess);
  }
  absl::Status s = store_->UpsertCredential(imei, entry);
  if (!s.ok()) ATB_LOG(ERROR) << "inventory: cannot save a credential of " << imei << ": " << s;
}

void Inventory::CredentialDeleted(const std::string& imei, uint32_t sec_tag,
                                  v1::CredentialType type) {
  absl::MutexLock lock(&mu_);
  auto it = devices_.find(imei);
  if (it == devices_.end()) return;
  auto& creds = it->second.credentials;
  creds.erase(std::remove_if(creds.begin(), creds.end(),
                             [&](const v1::CredentialEntry& e) {
                               return e.sec_tag() == sec_tag && e.type() == type;
                             }),
              creds.end());
  absl::Status s = store_->DeleteCredential(imei, sec_tag, type);
  if (!s.ok()) ATB_LOG(ERROR) << "inventory: cannot delete a credential of " << imei << ": " << s;
}

std::vector<v1::AgentInfo> Inventory::ListAgents() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::AgentInfo> out;
  for (const auto& [name, a] : agents_) {
    v1::AgentInfo info;
    info.set_name(name);
    info.set_version(a.rec.version);
    info.set_connected(a.connected);
    info.set_peer(a.rec.peer);
    *info.mutable_connected_at() = ToProtoTime(a.rec.connected_at);
    *info.mutable_last_seen() = ToProtoTime(a.rec.last_seen);
    info.set_port_count(a.rec.port_count);
    out.push_back(std::move(info));
  }
  return out;
}

bool Inventory::IsAgentConnected(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = agents_.find(name);
  return it != agents_.end() && it->second.connected;
}

bool Inventory::OnlineLocked(const DeviceState& d) const {
  if (!d.present) return false;
  auto it = agents_.find(d.rec.agent);
  return it != agents_.end() && it->second.connected;
}

v1::Device Inventory::ViewLocked(const DeviceState& d) const {
  v1::Device v;
  v.set_imei(d.rec.imei);
  v.set_agent(d.rec.agent);
  v.set_port(d.rec.port);
  v.set_model(d.rec.model);
  v.set_firmware(d.rec.firmware);
  v.set_manufacturer(d.rec.manufacturer);
  auto& labels = *v.mutable_labels();
  for (const auto& [k, val] : d.rec.port_labels) labels[k] = val;
  for (const auto& [k, val] : d.rec.server_labels) labels[k] = val;
  v.set_alias(d.rec.alias);
  const bool online = OnlineLocked(d);
  v.set_online(online);
  absl::Time seen = d.rec.last_seen;
  if (online) seen = std::max(seen, agents_.at(d.rec.agent).rec.last_seen);
  *v.mutable_last_seen() = ToProtoTime(seen);
  for (const auto& e : d.credentials) *v.add_credentials() = e;
  if (online && !d.lease.owner().empty()) {
    v1::Lease* l = v.mutable_lease();
    *l = d.lease;
    l->set_agent(d.rec.agent);
    l->set_port(d.rec.port);
    l->set_imei(d.rec.imei);
  }
  return v;
}

bool Inventory::MatchesLocked(const DeviceState& d, const v1::TargetSelector& s) const {
  if (s.all()) return true;
  if (!s.imeis().empty() &&
      std::find(s.imeis().begin(), s.imeis().end(), d.rec.imei) == s.imeis().end()) {
    return false;
  }
  if (!s.agents().empty() &&
      std::find(s.agents().begin(), s.agents().end(), d.rec.agent) == s.agents().end()) {
    return false;
  }
  for (const auto& [k, v] : s.labels()) {
    auto sit = d.rec.server_labels.find(k);
    const std::string* have = nullptr;
    if (sit != d.rec.server_labels.end()) {
      have = &sit->second;
    } else {
      auto pit = d.rec.port_labels.find(k);
      if (pit != d.rec.port_labels.end()) have = &pit->second;
    }
    if (have == nullptr || *have != v) return false;
  }
  return true;
}

std::vector<Inventory::Expiring> Inventory::ListExpiring(absl::Time before) const {
  absl::MutexLock lock(&mu_);
  std::vector<Expiring> out;
  for (const auto& [imei, d] : devices_) {
    for (const v1::CredentialEntry& e : d.credentials) {
      if (e.type() != v1::ROOT_CA_CERT && e.type() != v1::CLIENT_CERT) continue;
      if (!IsSet(e.not_after()) || FromProtoTime(e.not_after()) >= before) continue;
      out.push_back({imei, d.rec.agent, d.rec.port, e});
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const Expiring& a, const Expiring& b) {
    return FromProtoTime(a.entry.not_after()) < FromProtoTime(b.entry.not_after());
  });
  return out;
}

size_t Inventory::AgentCount(bool connected_only) const {
  absl::MutexLock lock(&mu_);
  if (!connected_only) return agents_.size();
  size_t n = 0;
  for (const auto& [name, a] : agents_) n += a.connected ? 1 : 0;
  return n;
}

std::vector<v1::Device> Inventory::ListDevices(const v1::TargetSelector& selector,
                                               bool connected_only) const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::Device> out;
  for (const auto& [imei, d] : devices_) {
    if (!MatchesLocked(d, selector)) continue;
    if (connected_only && !OnlineLocked(d)) continue;
    out.push_back(ViewLocked(d));
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> Inventory::ResolveSelector(
    const v1::TargetSelector& selector) const {
  if (!selector.all() && selector.imeis().empty() && selector.labels().empty() &&
      selector.agents().empty()) {
    return absl::InvalidArgumentError(
        "job selector is empty: set imeis, labels, agents or all (\"all\" must be explicit)");
  }
  absl::MutexLock lock(&mu_);
  std::vector<std::string> unknown;
  for (const auto& imei : selector.imeis()) {
    if (!IsValidImei(imei)) {
      return absl::InvalidArgumentError(
          absl::StrCat("selector IMEI \"", imei, "\" is not 15 digits"));
    }
    if (devices_.count(imei) == 0) unknown.push_back(imei);
  }
  if (!unknown.empty()) {
    return absl::NotFoundError(
        absl::StrCat("selector names unknown device(s): ", absl::StrJoin(unknown, ", ")));
  }
  std::vector<std::string> out;
  for (const auto& [imei, d] : devices_) {
    if (MatchesLocked(d, selector)) out.push_back(imei);
  }
  return out;
}

absl::StatusOr<const Inventory::DeviceState*> Inventory::ResolveLocked(
    const v1::DeviceRef& ref) const {
  switch (ref.ref_case()) {
    case v1::DeviceRef::kImei: {
      if (!IsValidImei(ref.imei())) {
        return absl::InvalidArgumentError(
            absl::StrCat("device IMEI \"", ref.imei(), "\" is not 15 digits"));
      }
      auto it = devices_.find(ref.imei());
      if (it == devices_.end()) {
        return absl::NotFoundError(absl::StrCat("no device with IMEI ", ref.imei()));
      }
      return &it->second;
    }
    case v1::DeviceRef::kPort: {
      const DeviceState* best = nullptr;
      for (const auto& [imei, d] : devices_) {
        if (d.rec.agent != ref.port().agent() || d.rec.port != ref.port().port()) continue;
        if (d.present) return &d;
        if (best == nullptr || d.rec.last_seen > best->rec.last_seen) best = &d;
      }
      if (best == nullptr) {
        return absl::NotFoundError(
            absl::StrCat("no device known on ", ref.port().agent(), "/", ref.port().port()));
      }
      return best;
    }
    case v1::DeviceRef::kAlias: {
      const std::string& alias = ref.alias();
      if (alias.empty()) return absl::InvalidArgumentError("device alias is empty");
      const size_t eq = alias.find('=');
      std::vector<const DeviceState*> matches;
      if (eq == std::string::npos) {
        for (const auto& [imei, d] : devices_) {
          if (d.rec.alias == alias) matches.push_back(&d);
        }
        if (matches.empty()) return absl::NotFoundError(absl::StrCat("no device aliased ", alias));
      } else {
        v1::TargetSelector s;
        (*s.mutable_labels())[alias.substr(0, eq)] = alias.substr(eq + 1);
        for (const auto& [imei, d] : devices_) {
          if (MatchesLocked(d, s)) matches.push_back(&d);
        }
        if (matches.empty()) {
          return absl::NotFoundError(absl::StrCat("no device has label ", alias));
        }
      }
      if (matches.size() > 1) {
        std::vector<std::string> imeis;
        imeis.reserve(matches.size());
        for (const auto* d : matches) imeis.push_back(d->rec.imei);
        return absl::FailedPreconditionError(
            absl::StrCat("device reference \"", alias, "\" is ambiguous: it matches ",
                         matches.size(), " devices (", absl::StrJoin(imeis, ", "), ")"));
      }
      return matches[0];
    }
    case v1::DeviceRef::REF_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(
      "device reference is empty (give an IMEI, agent/port or alias)");
}

absl::StatusOr<v1::Device> Inventory::Resolve(const v1::DeviceRef& ref) const {
  absl::MutexLock lock(&mu_);
  auto d = ResolveLocked(ref);
  if (!d.ok()) return d.status();
  return ViewLocked(**d);
}

absl::StatusOr<v1::Device> Inventory::Update(const v1::UpdateDeviceRequest& req) {
  absl::MutexLock lock(&mu_);
  auto found = ResolveLocked(req.device());
  if (!found.ok()) return found.status();
  const std::string imei = (*found)->rec.imei;
  DeviceState& d = devices_[imei];
  store::DeviceRecord next = d.rec;
  for (const auto& [k, v] : req.set_labels()) {
    absl::Status s = CheckLabelKey(k);
    if (!s.ok()) return s;
    if (v.size() > 256 || !IsPrintable(v)) {
      return absl::InvalidArgumentError(
          absl::StrCat("label ", k, ": value must be at most 256 printable characters"));
    }
    next.server_labels[k] = v;
  }
  for (const auto& k : req.remove_labels()) next.server_labels.erase(k);
  if (req.has_alias()) {
    const std::string& alias = req.alias();
    if (!alias.empty()) {
      if (alias.size() > 64 || !IsPrintable(alias) || alias.find('=') != std::string::npos ||
          IsValidImei(alias)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "alias \"", alias, "\" must be 1..64 printable characters, no '=', not an IMEI"));
      }
      for (const auto& [other, od] : devices_) {
        if (other != imei && od.rec.alias == alias) {
          return absl::AlreadyExistsError(
              absl::StrCat("alias ", alias, " already names device ", other));
        }
      }
    }
    next.alias = alias;
  }
  absl::Status s = store_->UpsertDevices({next});
  if (!s.ok()) return s;
  d.rec = std::move(next);
  return ViewLocked(d);
}

absl::StatusOr<jobs::DeviceLocation> Inventory::Locate(const std::string& imei) const {
  absl::MutexLock lock(&mu_);
  auto it = devices_.find(imei);
  if (it == devices_.end()) return absl::NotFoundError(absl::StrCat("no device with IMEI ", imei));
  const DeviceState& d = it->second;
  if (!OnlineLocked(d)) {
    return absl::UnavailableError(absl::StrCat("device ", imei, " is offline (last seen on ",
                                               d.rec.agent, "/", d.rec.port, " at ",
                                               FormatRfc3339(d.rec.last_seen), ")"));
  }
  return jobs::DeviceLocation{d.rec.agent, d.rec.port};
}

uint64_t Inventory::ConnectionId(const std::string& agent) const {
  absl::MutexLock lock(&mu_);
  auto it = agents_.find(agent);
  return it == agents_.end() ? 0 : it->second.connection_id;
}

bool Inventory::AwaitAgent(const std::string& agent, uint64_t min_id,
                           absl::Duration timeout) const {
  auto ready = [this, &agent, min_id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = agents_.find(agent);
    return it != agents_.end() && it->second.connected && it->second.connection_id >= min_id;
  };
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
}

}  // namespace atbridge::server::inventory
