#include "agent/run_agent.h"

#include <grpcpp/grpcpp.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "agent/service/agent_core.h"
#include "agent/service/agent_service.h"
#include "agent/service/uplink_client.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/random.h"
#include "common/status/status_macros.h"
#include "common/tls/credentials.h"
#include "common/tls/identity.h"

namespace atbridge::agent {

namespace asio = boost::asio;

absl::Status RunAgent(const AgentOptions& options) {
  ASSIGN_OR_RETURN(tls::TlsMaterial tls, tls::LoadTlsMaterial(options.tls));
  ASSIGN_OR_RETURN(tls::Identity self, tls::IdentityFromCertificate(tls.cert_pem));
  if (self.principal != options.name) {
    return absl::InvalidArgumentError(absl::StrCat(
        "agent name '", options.name, "' differs from the CN '", self.principal,
        "' of its certificate ", options.tls.cert_file, "; the server identifies agents by CN"));
  }
  if (self.role != v1::ROLE_AGENT) {
    ATB_LOG(WARNING) << "certificate " << options.tls.cert_file << " has role "
                     << tls::RoleName(self.role)
                     << ", not agent: the server will refuse the uplink";
  }

  asio::io_context io(1);
  auto work = asio::make_work_guard(io);
  auto random = NewSystemRandom();
  AgentCore core(options, io, OpenAsioSerialPort, SystemClock(), *random);

  // Signals are handled from the start: identification can take up to
  // startup_identify_timeout, and SIGTERM must stop the agent then too.
  absl::Mutex mu;
  bool started = false;
  bool shutdown = false;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    ATB_LOG(INFO) << "signal " << sig << ": shutting down";
    absl::MutexLock lock(&mu);
    shutdown = true;
  });
  std::thread io_thread([&io] { io.run(); });
  auto wait_for = [&mu](const bool* a, const bool* b) {
    auto either = [a, b] { return *a || *b; };
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&either));
  };
  // Stops the ports and the io thread; runs what the core posts meanwhile.
  auto stop_core = [&] {
    signals.cancel();
    core.Stop();
    absl::Notification drained;
    asio::post(io, [&drained] { drained.Notify(); });
    drained.WaitForNotificationWithTimeout(absl::Seconds(5));
    work.reset();
    io.stop();
    io_thread.join();
  };

  ATB_LOG(INFO) << "agent " << options.name << ": identifying the modems on "
                << options.ports.size() << " port(s), up to "
                << absl::FormatDuration(options.startup_identify_timeout);
  core.Start([&] {
    absl::MutexLock lock(&mu);
    started = true;
  });
  wait_for(&started, &shutdown);
  bool stop_now;
  {
    absl::MutexLock lock(&mu);
    stop_now = shutdown;
  }
  if (stop_now) {
    ATB_LOG(INFO) << "stopped during start-up";
    stop_core();
    return absl::OkStatus();
  }

  AgentService service(core);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.listen, tls::ServerCredentials(tls), &port);
  builder.RegisterService(&service);
  tls::ApplyServerKeepalive(builder);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    stop_core();
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen));
  }

  std::unique_ptr<UplinkClient> uplink;
  if (!options.server.empty()) {
    tls::ChannelOptions co;
    co.server_name_override = options.server_name_override;
    co.keepalive_time = absl::Seconds(30);
    co.keepalive_timeout = absl::Seconds(10);
    uplink =
        std::make_unique<UplinkClient>(core, tls::CreateChannel(options.server, tls, co), *random);
    uplink->Start();
  }

  std::string host = options.listen.substr(0, options.listen.rfind(':'));
  std::printf("atbridge-agent ready on %s:%d\n", host.c_str(), port);
  std::fflush(stdout);
  ATB_LOG(INFO) << "agent " << options.name << " serving " << options.ports.size() << " port(s) on "
                << host << ":" << port
                << (options.server.empty() ? "" : absl::StrCat(", uplink to ", options.server));

  const bool never = false;
  wait_for(&shutdown, &never);

  // Order (grpc-notes §7): end the long streams with UNAVAILABLE (the uplink
  // after its requests in flight are answered, the consoles at once); stop
  // accepting calls and give those in flight (a credential transaction)
  // time to finish on the still running io thread; then stop the ports and
  // the io thread.
  absl::Time t0 = absl::Now();
  if (uplink) uplink->Stop();
  ATB_LOG(DEBUG) << "uplink stopped after " << absl::Now() - t0;
  service.FinishStreams(
      absl::UnavailableError(absl::StrCat("agent ", options.name, " is stopping")));
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  ATB_LOG(DEBUG) << "server stopped after " << absl::Now() - t0;
  uplink.reset();
  stop_core();
  server.reset();
  ATB_LOG(DEBUG) << "stopped after " << absl::Now() - t0;
  return absl::OkStatus();
}

}  // namespace atbridge::agent
