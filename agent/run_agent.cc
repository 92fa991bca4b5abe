#include "agent/run_agent.h"

#include <grpcpp/grpcpp.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <thread>

#include "absl/strings/str_cat.h"
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
  std::thread io_thread([&io] { io.run(); });
  auto random = NewSystemRandom();
  AgentCore core(options, io, OpenAsioSerialPort, SystemClock(), *random);

  auto stop_io = [&] {
    work.reset();
    io.stop();
    io_thread.join();
  };

  absl::Notification started;
  core.Start([&started] { started.Notify(); });
  started.WaitForNotification();

  AgentService service(core);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.listen, tls::ServerCredentials(tls), &port);
  builder.RegisterService(&service);
  tls::ApplyServerKeepalive(builder);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    core.Stop();
    stop_io();
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

  absl::Notification shutdown;
  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&shutdown](const boost::system::error_code& ec, int sig) {
    if (!ec) {
      ATB_LOG(INFO) << "signal " << sig << ": shutting down";
      shutdown.Notify();
    }
  });

  std::string host = options.listen.substr(0, options.listen.rfind(':'));
  std::printf("atbridge-agent ready on %s:%d\n", host.c_str(), port);
  std::fflush(stdout);
  ATB_LOG(INFO) << "agent " << options.name << " serving " << options.ports.size() << " port(s) on "
                << host << ":" << port
                << (options.server.empty() ? "" : absl::StrCat(", uplink to ", options.server));

  shutdown.WaitForNotification();

  // Order (grpc-notes §7): stop the uplink; stop accepting calls and give
  // those in flight (a credential transaction) time to finish on the still
  // running io thread; then stop the ports and the io thread.
  absl::Time t0 = absl::Now();
  if (uplink) uplink->Stop();
  ATB_LOG(DEBUG) << "uplink stopped after " << absl::Now() - t0;
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  ATB_LOG(DEBUG) << "server stopped after " << absl::Now() - t0;
  core.Stop();
  absl::Notification drained;
  asio::post(io, [&drained] { drained.Notify(); });
  drained.WaitForNotificationWithTimeout(absl::Seconds(5));
  uplink.reset();
  signals.cancel();
  stop_io();
  server.reset();
  ATB_LOG(DEBUG) << "stopped after " << absl::Now() - t0;
  return absl::OkStatus();
}

}  // namespace atbridge::agent
