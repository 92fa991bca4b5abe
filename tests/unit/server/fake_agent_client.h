// A scripted jobs::AgentClient for engine tests: devices are placed on
// agents/ports by the test; requests either wait in a queue until the test
// answers them (manual mode) or are answered inline by a responder.
#ifndef ATBRIDGE_TESTS_UNIT_SERVER_FAKE_AGENT_CLIENT_H_
#define ATBRIDGE_TESTS_UNIT_SERVER_FAKE_AGENT_CLIENT_H_

#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "server/jobs/agent_client.h"

namespace atbridge::server::testing {

class FakeAgentClient final : public jobs::AgentClient {
 public:
  struct Sent {
    std::string agent;
    v1::Actor actor;
    v1::AgentRequest request;
    absl::Duration timeout;
    Callback done;
    std::string imei;  // Resolved from agent/port by the fake.
  };
  using Responder = std::function<absl::StatusOr<v1::AgentResponse>(const Sent&)>;

  // Places a device; online unless `offline`.
  void Place(const std::string& imei, const std::string& agent, const std::string& port,
             bool offline = false) {
    std::lock_guard<std::mutex> lock(mu_);
    devices_[imei] = {agent, port, offline};
  }
  void SetOffline(const std::string& imei, bool offline) {
    std::lock_guard<std::mutex> lock(mu_);
    devices_[imei].offline = offline;
  }
  // Answers every request inline from Send (nullptr: queue them).
  void SetResponder(Responder r) {
    std::lock_guard<std::mutex> lock(mu_);
    responder_ = std::move(r);
  }

  absl::StatusOr<jobs::DeviceLocation> Locate(const std::string& imei) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = devices_.find(imei);
    if (it == devices_.end()) return absl::NotFoundError("unknown device " + imei);
    if (it->second.offline) return absl::UnavailableError("device " + imei + " is offline");
    return jobs::DeviceLocation{it->second.agent, it->second.port};
  }

  void Send(const std::string& agent, const v1::Actor& actor, v1::AgentRequest request,
            absl::Duration timeout, Callback done) override {
    Sent s{agent, actor, std::move(request), timeout, std::move(done), ""};
    Responder responder;
    {
      std::lock_guard<std::mutex> lock(mu_);
      s.imei = ImeiAtLocked(agent, PortOf(s.request));
      log_.push_back(s.request);
      log_imeis_.push_back(s.imei);
      responder = responder_;
      if (!responder) {
        pending_.push_back(std::move(s));
        return;
      }
    }
    auto result = responder(s);
    s.done(std::move(result));
  }

  // Requests waiting for an answer (manual mode), oldest first.
  size_t PendingCount() {
    std::lock_guard<std::mutex> lock(mu_);
    return pending_.size();
  }
  std::vector<Sent> TakePending() {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<Sent> out(std::make_move_iterator(pending_.begin()),
                          std::make_move_iterator(pending_.end()));
    pending_.clear();
    return out;
  }
  // Every request ever sent, in order, with the IMEI it went to.
  std::vector<v1::AgentRequest> Log() {
    std::lock_guard<std::mutex> lock(mu_);
    return log_;
  }
  std::vector<std::string> LogImeis() {
    std::lock_guard<std::mutex> lock(mu_);
    return log_imeis_;
  }
  size_t SentCount() {
    std::lock_guard<std::mutex> lock(mu_);
    return log_.size();
  }

  static std::string PortOf(const v1::AgentRequest& r) {
    switch (r.request_case()) {
      case v1::AgentRequest::kExecute:
        return r.execute().port();
      case v1::AgentRequest::kReadCredential:
        return r.read_credential().port();
      case v1::AgentRequest::kWriteCredential:
        return r.write_credential().port();
      case v1::AgentRequest::kDeleteCredential:
        return r.delete_credential().port();
      case v1::AgentRequest::kGenerateKey:
        return r.generate_key().port();
      case v1::AgentRequest::kListCredentials:
        return r.list_credentials().port();
      default:
        return "";
    }
  }

 private:
  struct Location {
    std::string agent;
    std::string port;
    bool offline = false;
  };

  std::string ImeiAtLocked(const std::string& agent, const std::string& port) const {
    for (const auto& [imei, loc] : devices_) {
      if (loc.agent == agent && loc.port == port) return imei;
    }
    return "";
  }

  std::mutex mu_;
  std::map<std::string, Location> devices_;
  Responder responder_;
  std::deque<Sent> pending_;
  std::vector<v1::AgentRequest> log_;
  std::vector<std::string> log_imeis_;
};

// Response helpers.
inline v1::AgentResponse WriteOk(const std::string& sha, bool skipped = false) {
  v1::AgentResponse r;
  auto* w = r.mutable_write_credential();
  w->set_sha256(sha);
  w->set_skipped(skipped);
  w->mutable_entry()->set_sha256(sha);
  return r;
}

}  // namespace atbridge::server::testing

#endif  // ATBRIDGE_TESTS_UNIT_SERVER_FAKE_AGENT_CLIENT_H_
