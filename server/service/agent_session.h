// The server side of AgentUplink.Connect: one AgentSession per agent stream.
//
// Protocol (uplink.proto): the agent's first message is hello{agent,
// version, ports}; hello.agent must equal the CN of its certificate, whose
// role must be `agent` (else the stream ends PERMISSION_DENIED). A second
// stream from the same agent replaces the first (the old one is finished
// ABORTED and cancelled). The server sends ServerEnvelope{request_id, actor,
// timeout, request | console | cancel}; the agent answers with the same
// request_id (response or status), streams console output, and sends
// unsolicited port updates with request_id 0.
//
// Each session keeps a write queue (one write in flight), finishes its stream
// exactly once, and a table of pending requests: each fails UNAVAILABLE
// ("agent X disconnected") when the stream ends and DEADLINE_EXCEEDED at its
// deadline (an Asio timer on the worker pool; the agent is sent a cancel).
// Completion callbacks always run on the worker pool, never inline and never
// on a gRPC thread. Inventory updates (hello, port updates, disconnect) run
// on a per-session strand, in order.
//
// Lifetime: a session owns itself (self_) until gRPC's OnDone; the registry,
// timers and callers may hold further references. After OnDone every call
// fails UNAVAILABLE.
#ifndef ATBRIDGE_SERVER_SERVICE_AGENT_SESSION_H_
#define ATBRIDGE_SERVER_SERVICE_AGENT_SESSION_H_

#include <grpcpp/grpcpp.h>

#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "atbridge/v1/uplink.grpc.pb.h"
#include "common/tls/identity.h"
#include "server/inventory/inventory.h"
#include "server/service/audit_log.h"
#include "server/service/worker_pool.h"

namespace atbridge::server::service {

// Receives the output of a relayed console session. Both methods must not
// block (they run on gRPC threads); OnConsoleEnd is called at most once and
// nothing follows it.
class ConsoleSink {
 public:
  virtual ~ConsoleSink() = default;
  virtual void OnConsoleOut(const v1::ConsoleOut& out) = 0;
  virtual void OnConsoleEnd(const absl::Status& status) = 0;
};

class AgentRegistry;

// What a session needs; none owned, all must outlive every session.
struct UplinkDeps {
  inventory::Inventory* inventory = nullptr;
  WorkerPool* pool = nullptr;
  AuditLog* audit = nullptr;
  AgentRegistry* registry = nullptr;
};

class AgentSession final : public grpc::ServerBidiReactor<v1::AgentEnvelope, v1::ServerEnvelope>,
                           public std::enable_shared_from_this<AgentSession> {
 public:
  using Callback = std::function<void(absl::StatusOr<v1::AgentResponse>)>;

  // Creates the reactor for a new Connect call.
  static grpc::ServerBidiReactor<v1::AgentEnvelope, v1::ServerEnvelope>* Start(
      grpc::CallbackServerContext* ctx, const UplinkDeps& deps);

  AgentSession(grpc::CallbackServerContext* ctx, const UplinkDeps& deps);
  ~AgentSession() override;

  // The agent's name (valid once registered).
  const std::string& name() const { return name_; }

  // Sends a unary request on behalf of `actor`. `done` runs exactly once on
  // the worker pool.
  void Call(const v1::Actor& actor, v1::AgentRequest request, absl::Duration timeout,
            Callback done);

  // Opens a console session (open.port set); returns its id, or 0 when the
  // stream is gone (the sink is then not called).
  uint64_t OpenConsole(const v1::Actor& actor, const v1::ConsoleOpen& open,
                       std::shared_ptr<ConsoleSink> sink);
  // Forwards console input; ignored for unknown ids.
  void ConsoleInput(uint64_t id, std::string data);
  // Ends a console session from the server side (sends cancel).
  void CloseConsole(uint64_t id, const std::string& reason);

  // Finishes the stream with `status` and cancels it (replacement, shutdown).
  void Close(const grpc::Status& status);

  // gRPC reactions.
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  struct Pending {
    v1::AgentRequest::RequestCase kind;
    Callback done;
    std::unique_ptr<boost::asio::steady_timer> timer;
  };

  void Begin(std::shared_ptr<AgentSession> self);
  void HandleHello(const v1::AgentHello& hello);
  // The agent's ports are known: it is connected (inventory, audit, log).
  void Connected(std::vector<v1::PortInfo> ports);
  void HandleMessage(const v1::AgentEnvelope& msg);
  void OnDeadline(uint64_t id);
  void EnqueueLocked(v1::ServerEnvelope env) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  grpc::CallbackServerContext* const ctx_;
  const UplinkDeps deps_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  std::string peer_;
  tls::Identity identity_;

  // Touched only by read reactions (which gRPC serializes) and Begin.
  v1::AgentEnvelope in_;
  bool hello_done_ = false;
  // Set by the reads (one at a time) before Connected() posts to strand_.
  bool inventory_done_ = false;
  std::string version_;
  absl::Time last_seen_posted_ = absl::InfinitePast();
  // Written once before registration, read-only afterwards.
  std::string name_;
  // Touched only on strand_.
  uint64_t connection_id_ = 0;

  absl::Mutex mu_;
  std::shared_ptr<AgentSession> self_ ABSL_GUARDED_BY(mu_);
  std::deque<v1::ServerEnvelope> out_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_called_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> finish_pending_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, Pending> pending_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::shared_ptr<ConsoleSink>> consoles_ ABSL_GUARDED_BY(mu_);
};

// Connected agents by name. Thread-safe.
class AgentRegistry {
 public:
  std::shared_ptr<AgentSession> Find(const std::string& name) const;
  std::vector<std::shared_ptr<AgentSession>> All() const;
  // Registers `session` under its name; returns the session it replaces.
  std::shared_ptr<AgentSession> Register(std::shared_ptr<AgentSession> session);
  // Removes `session` if it is still the one registered under `name`.
  void Unregister(const std::string& name, const AgentSession* session);
  // Closes every session (shutdown).
  void CloseAll(const grpc::Status& status);

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<AgentSession>> sessions_ ABSL_GUARDED_BY(mu_);
};

// The AgentUplink service.
class UplinkService final : public v1::AgentUplink::CallbackService {
 public:
  explicit UplinkService(const UplinkDeps& deps) : deps_(deps) {}
  grpc::ServerBidiReactor<v1::AgentEnvelope, v1::ServerEnvelope>* Connect(
      grpc::CallbackServerContext* ctx) override;

 private:
  const UplinkDeps deps_;
};

}  // namespace atbridge::server::service

#endif  // ATBRIDGE_SERVER_SERVICE_AGENT_SESSION_H_
