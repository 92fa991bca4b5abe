#include "tests/integration/agent/agent_harness.h"

#include <boost/asio/post.hpp>

#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "agent/serial/serial_port.h"
#include "common/clock.h"
#include "common/tls/credentials.h"

namespace atbridge::testing {

absl::Status SimProcess::Start(const TempDir& dir, int count,
                               const std::vector<std::string>& extra) {
  link_dir_ = dir.File("sim");
  std::vector<std::string> argv = {BinaryPath("atbridge-sim"),
                                   "--count",
                                   std::to_string(count),
                                   "--link-dir",
                                   link_dir_,
                                   "--log-level",
                                   "warning"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  if (absl::Status s = proc_.Start(argv); !s.ok()) return s;
  return proc_.WaitForLine("atbridge-sim ready:").status();
}

FakeUplinkServer::~FakeUplinkServer() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
}

absl::Status FakeUplinkServer::Start(const tls::TlsMaterial& material, grpc::Status refuse) {
  refuse_ = std::move(refuse);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", tls::ServerCredentials(material), &port_);
  builder.RegisterService(this);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) return absl::UnavailableError("fake uplink server did not start");
  return absl::OkStatus();
}

grpc::Status FakeUplinkServer::Connect(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<v1::ServerEnvelope, v1::AgentEnvelope>* stream) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    connects_.push_back(absl::Now());
    cv_.notify_all();
  }
  if (refuse_.ok()) {
    {
      std::lock_guard<std::mutex> lock(write_mu_);
      stream_ = stream;
    }
    v1::AgentEnvelope msg;
    while (stream->Read(&msg)) {
      std::lock_guard<std::mutex> lock(mu_);
      received_.push_back(msg);
      cv_.notify_all();
    }
    std::lock_guard<std::mutex> lock(write_mu_);
    stream_ = nullptr;
  }
  std::lock_guard<std::mutex> lock(mu_);
  ++ended_;
  cv_.notify_all();
  return refuse_;
}

bool FakeUplinkServer::WaitFor(const std::function<bool(const Messages&)>& pred,
                               absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)),
                      [&] { return pred(received_); });
}

bool FakeUplinkServer::WaitForEnded(int n, absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)),
                      [&] { return ended_ >= n; });
}

FakeUplinkServer::Messages FakeUplinkServer::Received() {
  std::lock_guard<std::mutex> lock(mu_);
  return received_;
}

std::vector<absl::Time> FakeUplinkServer::ConnectTimes() {
  std::lock_guard<std::mutex> lock(mu_);
  return connects_;
}

bool FakeUplinkServer::Send(const v1::ServerEnvelope& env) {
  std::lock_guard<std::mutex> lock(write_mu_);
  return stream_ != nullptr && stream_->Write(env);
}

agent::PortOptions SimPort(const std::string& name, const std::string& device) {
  agent::PortOptions p;
  p.name = name;
  p.device = device;
  p.serial.rtscts = true;  // A pty is as fast as memory: no pacing unless asked.
  p.command_timeout = absl::Seconds(3);
  return p;
}

void SetDeadline(grpc::ClientContext* ctx, absl::Duration d) {
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::milliseconds(absl::ToInt64Milliseconds(d)));
}

AgentHarness::AgentHarness(const TestPki& pki, std::vector<agent::PortOptions> ports,
                           const std::string& name)
    : pki_(pki), work_(boost::asio::make_work_guard(io_)) {
  options_.name = name;
  options_.listen = "127.0.0.1:0";
  options_.ports = std::move(ports);
  options_.resync_timeout = absl::Milliseconds(500);
  options_.reconnect_initial = absl::Milliseconds(50);
  options_.reconnect_max = absl::Milliseconds(500);
  options_.startup_identify_timeout = absl::Seconds(20);
  options_.tls = {.ca_file = "unused", .cert_file = "unused", .key_file = "unused"};
}

AgentHarness::~AgentHarness() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  if (core_) {
    core_->Stop();
    absl::Notification stopped;
    boost::asio::post(io_, [&stopped] { stopped.Notify(); });
    stopped.WaitForNotificationWithTimeout(absl::Seconds(5));
  }
  work_.reset();
  io_.stop();
  if (io_thread_.joinable()) io_thread_.join();
  server_.reset();
  service_.reset();
  core_.reset();
}

absl::Status AgentHarness::Start() {
  if (absl::Status s = agent::FinalizeAndValidate(&options_); !s.ok()) return s;
  random_ = NewSystemRandom();
  core_ = std::make_unique<agent::AgentCore>(options_, io_, agent::OpenAsioSerialPort,
                                             SystemClock(), *random_);
  core_->SetPortListener([this](const v1::PortInfo& info) {
    std::lock_guard<std::mutex> lock(mu_);
    ports_[info.name()] = info;
    cv_.notify_all();
  });
  io_thread_ = std::thread([this] { io_.run(); });
  absl::Notification started;
  core_->Start([&started] { started.Notify(); });
  if (!started.WaitForNotificationWithTimeout(absl::Seconds(30))) {
    return absl::DeadlineExceededError("agent core did not start");
  }
  service_ = std::make_unique<agent::AgentService>(*core_);
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0",
                           tls::ServerCredentials(pki_.Server(options_.name, "agent")), &port_);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) return absl::UnavailableError("agent test server did not start");
  return absl::OkStatus();
}

std::unique_ptr<v1::Agent::Stub> AgentHarness::Stub(const std::string& principal,
                                                    const std::string& role) {
  return v1::Agent::NewStub(tls::CreateChannel(target(), pki_.Client(principal, role)));
}

bool AgentHarness::WaitForPort(const std::string& name,
                               const std::function<bool(const v1::PortInfo&)>& pred,
                               absl::Duration timeout) {
  // Seed with the current snapshot (taken on the io thread).
  {
    absl::Notification got;
    v1::ListPortsResponse snapshot;
    boost::asio::post(io_, [&] {
      snapshot = core_->ListPortsNow();
      got.Notify();
    });
    got.WaitForNotification();
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& p : snapshot.ports()) {
      if (!ports_.count(p.name())) ports_[p.name()] = p;
    }
  }
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::milliseconds(absl::ToInt64Milliseconds(timeout)),
                      [&] { return ports_.count(name) && pred(ports_[name]); });
}

}  // namespace atbridge::testing
