#include "server/server.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/pki/pki.h"
#include "common/status/errors.h"
#include "common/tls/credentials.h"
#include "server/inventory/inventory.h"
#include "server/jobs/content_validator.h"
#include "server/jobs/csr_signer.h"
#include "server/jobs/engine.h"
#include "server/service/agent_session.h"
#include "server/service/audit_log.h"
#include "server/service/engine_timer.h"
#include "server/service/expiry_audit.h"
#include "server/service/metrics_http.h"
#include "server/service/provisioning_service.h"
#include "server/service/relay.h"
#include "server/service/worker_pool.h"
#include "server/store/store.h"

namespace atbridge::server {

namespace {

absl::Status MakeDirs(const std::string& path) {
  std::string partial;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || (path[i] == '/' && i > 0)) {
      partial = path.substr(0, i);
      if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
        return PosixError(errno, absl::StrCat("create state directory ", partial));
      }
    }
  }
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat("state_dir ", path, " is not a directory"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return PosixError(errno, absl::StrCat("open ", what, " ", path));
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

// One server per state directory: a second one (a manual run next to the
// service) would resume the first one's running jobs as interrupted before
// failing to bind its port. Held with flock for the server's life; the
// kernel drops it when the process dies, so a crash leaves nothing stale.
class StateDirLock {
 public:
  StateDirLock() = default;
  StateDirLock(const StateDirLock&) = delete;
  StateDirLock& operator=(const StateDirLock&) = delete;
  ~StateDirLock() {
    if (fd_ >= 0) close(fd_);
  }

  absl::Status Acquire(const std::string& dir) {
    const std::string path = dir + "/atbridge-server.lock";
    fd_ = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) return PosixError(errno, absl::StrCat("open ", path));
    if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      close(fd_);
      fd_ = -1;
      if (err == EWOULDBLOCK) {
        return absl::FailedPreconditionError(
            absl::StrCat("another atbridge-server is running with state_dir ", dir, " (", path,
                         " is locked); stop it or use another state_dir"));
      }
      return PosixError(err, absl::StrCat("lock ", path));
    }
    return absl::OkStatus();
  }

 private:
  int fd_ = -1;
};

}  // namespace

struct Server::Impl {
  StateDirLock state_lock;  // First: released last.
  ServerOptions options;
  const Clock* clock = nullptr;
  Random* random = nullptr;
  std::unique_ptr<Random> own_random;
  tls::TlsMaterial tls;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<inventory::Inventory> inventory;
  std::unique_ptr<jobs::ContentValidator> validator;
  std::unique_ptr<jobs::CsrSigner> signer;
  std::unique_ptr<service::WorkerPool> pool;
  std::unique_ptr<service::AuditLog> audit;
  std::unique_ptr<service::JobAuditor> job_auditor;
  std::unique_ptr<service::AgentRegistry> registry;
  std::unique_ptr<service::Relay> relay;
  std::unique_ptr<jobs::JobEngine> engine;
  std::unique_ptr<service::EngineTimer> timer;
  std::unique_ptr<service::ExpiryAudit> expiry;
  std::unique_ptr<service::MetricsHttpServer> metrics;
  std::unique_ptr<service::UplinkService> uplink;
  std::unique_ptr<service::ProvisioningService> provisioning;
  std::unique_ptr<grpc::Server> grpc_server;
  int port = 0;
  bool started = false;
  bool shut_down = false;
};

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Shutdown(); }

absl::StatusOr<std::unique_ptr<Server>> Server::Create(const ServerOptions& options_in,
                                                       const ServerHooks& hooks) {
  auto impl = std::make_unique<Impl>();
  impl->options = options_in;
  absl::Status s = ValidateServerOptions(&impl->options);
  if (!s.ok()) return s;
  const ServerOptions& o = impl->options;
  impl->clock = hooks.clock != nullptr ? hooks.clock : &SystemClock();
  if (hooks.random != nullptr) {
    impl->random = hooks.random;
  } else {
    impl->own_random = NewSystemRandom();
    impl->random = impl->own_random.get();
  }
  if (!(s = MakeDirs(o.state_dir)).ok()) return s;
  if (!(s = impl->state_lock.Acquire(o.state_dir)).ok()) return s;
  auto tls = tls::LoadTlsMaterial(o.tls);
  if (!tls.ok()) return tls.status();
  impl->tls = *std::move(tls);

  impl->validator = jobs::NewContentValidator();
  if (!o.signing_ca_cert_file.empty()) {
    pki::KeyAndCert ca;
    auto cert = ReadFile(o.signing_ca_cert_file, "signing CA certificate");
    if (!cert.ok()) return cert.status();
    auto key = ReadFile(o.signing_ca_key_file, "signing CA key");
    if (!key.ok()) return key.status();
    auto info = pki::ParseCertificate(*cert);
    if (!info.ok() || !info->is_ca) {
      return absl::InvalidArgumentError(absl::StrCat(
          "signing CA certificate ", o.signing_ca_cert_file, " is not a CA certificate"));
    }
    ca.cert_pem = *std::move(cert);
    ca.key_pem = *std::move(key);
    impl->signer = jobs::NewPkiCsrSigner(std::move(ca), impl->clock);
  }

  auto store = store::OpenStore(o.store_url);
  if (!store.ok()) return store.status();
  impl->store = *std::move(store);
  auto inventory = inventory::Inventory::Create(impl->store.get(), impl->clock);
  if (!inventory.ok()) return inventory.status();
  impl->inventory = *std::move(inventory);

  impl->pool = std::make_unique<service::WorkerPool>(o.workers);
  impl->audit =
      std::make_unique<service::AuditLog>(impl->store.get(), impl->pool.get(), impl->clock);
  impl->registry = std::make_unique<service::AgentRegistry>();
  impl->relay = std::make_unique<service::Relay>(impl->registry.get(), impl->inventory.get(),
                                                 impl->pool.get());
  jobs::EngineOptions eo;
  eo.defaults = o.job_defaults;
  if (hooks.offline_wait > absl::ZeroDuration()) eo.offline_wait = hooks.offline_wait;
  impl->job_auditor = std::make_unique<service::JobAuditor>(impl->audit.get());
  impl->engine = std::make_unique<jobs::JobEngine>(eo, impl->store.get(), impl->relay.get(),
                                                   impl->clock, impl->random, impl->validator.get(),
                                                   impl->signer.get(), impl->job_auditor.get());
  impl->timer =
      std::make_unique<service::EngineTimer>(impl->engine.get(), impl->pool.get(), impl->clock);
  impl->engine->SetWakeListener([timer = impl->timer.get()](absl::Time t) { timer->Arm(t); });
  impl->inventory->SetOnlineListener(
      [engine = impl->engine.get()](const std::vector<std::string>& imeis) {
        engine->DevicesOnline(imeis);
      });

  service::UplinkDeps ud;
  ud.inventory = impl->inventory.get();
  ud.pool = impl->pool.get();
  ud.audit = impl->audit.get();
  ud.registry = impl->registry.get();
  impl->uplink = std::make_unique<service::UplinkService>(ud);

  service::ProvisioningDeps pd;
  pd.inventory = impl->inventory.get();
  pd.engine = impl->engine.get();
  pd.relay = impl->relay.get();
  pd.registry = impl->registry.get();
  pd.pool = impl->pool.get();
  pd.audit = impl->audit.get();
  pd.audit_store = impl->store.get();
  pd.validator = impl->validator.get();
  pd.signer = impl->signer.get();
  pd.clock = impl->clock;
  pd.default_timeout = o.relay_timeout;
  impl->provisioning = std::make_unique<service::ProvisioningService>(pd);
  if (o.expiry_audit_interval > absl::ZeroDuration()) {
    impl->expiry = std::make_unique<service::ExpiryAudit>(
        impl->inventory.get(), impl->audit.get(), impl->pool.get(), impl->clock,
        o.expiry_audit_interval, o.expiry_within_days);
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

absl::Status Server::Start() {
  Impl& m = *impl_;
  if (m.started) return absl::FailedPreconditionError("server already started");
  m.started = true;
  // The engine reloads and resumes unfinished jobs before the port serves:
  // a CreateJob or WatchJob can then never meet a half-loaded engine (a job
  // created meanwhile would be overwritten by the reload, its first attempt
  // resumed a second time, its watchers told it had ended).
  absl::Status s = m.engine->Start();
  if (!s.ok()) {
    Shutdown();
    return absl::Status(s.code(), absl::StrCat("resume jobs: ", s.message()));
  }
  if (!m.options.metrics_listen.empty()) {
    auto metrics = service::MetricsHttpServer::Start(
        m.pool->io(), m.options.metrics_listen,
        [engine = m.engine.get(), inventory = m.inventory.get()] {
          service::MetricsSnapshot snap;
          snap.jobs_active = engine->ActiveJobCount();
          const v1::JobCounts c = engine->ActiveExecutionCounts();
          snap.executions = {{"queued", c.queued()},       {"in_progress", c.in_progress()},
                             {"succeeded", c.succeeded()}, {"skipped", c.skipped()},
                             {"failed", c.failed()},       {"timed_out", c.timed_out()},
                             {"canceled", c.canceled()},   {"rolled_back", c.rolled_back()}};
          snap.agents_known = inventory->AgentCount(/*connected_only=*/false);
          snap.agents_connected = inventory->AgentCount(/*connected_only=*/true);
          return service::RenderMetrics(snap);
        });
    if (!metrics.ok()) {
      Shutdown();
      return metrics.status();
    }
    m.metrics = *std::move(metrics);
  }
  if (m.expiry) m.expiry->Start();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(m.options.listen, tls::ServerCredentials(m.tls), &m.port);
  tls::ApplyServerKeepalive(builder);
  builder.RegisterService(m.uplink.get());
  builder.RegisterService(m.provisioning.get());
  m.grpc_server = builder.BuildAndStart();
  if (m.grpc_server == nullptr || m.port == 0) {
    m.grpc_server.reset();
    Shutdown();
    return absl::UnavailableError(absl::StrCat("cannot listen on ", m.options.listen));
  }
  ATB_LOG(INFO) << "atbridge-server serving on " << address() << " (store "
                << store::RedactStoreUrl(m.options.store_url)
                << (m.signer ? ", CSR signing on" : "")
                << (m.metrics ? absl::StrCat(", metrics on port ", m.metrics->port()) : "") << ")";
  return absl::OkStatus();
}

int Server::port() const { return impl_->port; }

int Server::metrics_port() const { return impl_->metrics ? impl_->metrics->port() : 0; }

std::string Server::address() const {
  const std::string& listen = impl_->options.listen;
  return absl::StrCat(listen.substr(0, listen.rfind(':')), ":", impl_->port);
}

uint64_t Server::AgentConnectionId(const std::string& agent) const {
  return impl_->inventory->ConnectionId(agent);
}

bool Server::AwaitAgent(const std::string& agent, uint64_t min_id, absl::Duration timeout) const {
  return impl_->inventory->AwaitAgent(agent, min_id, timeout);
}

void Server::Shutdown() {
  Impl& m = *impl_;
  if (m.shut_down) return;
  m.shut_down = true;
  // 1. Nothing new from the engine; in-flight executions stay IN_PROGRESS in
  //    the store and resume at the next start.
  if (m.engine) m.engine->Stop();
  if (m.timer) m.timer->Stop();
  if (m.expiry) m.expiry->Stop();
  if (m.metrics) m.metrics->Stop();
  if (m.grpc_server) {
    // 2. Finish the long streams ourselves, then let gRPC cancel the rest.
    const grpc::Status going(grpc::StatusCode::UNAVAILABLE, "server shutting down");
    m.provisioning->CloseStreams(going);
    m.registry->CloseAll(going);
    m.grpc_server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  }
  // 3. Every reactor is done; let queued work (audit records, callbacks)
  //    finish and join the workers.
  if (m.pool) m.pool->Stop();
  m.grpc_server.reset();
  ATB_LOG(INFO) << "atbridge-server stopped";
}

}  // namespace atbridge::server
