// The agent's outbound connection to the server (AgentUplink.Connect): the
// agent dials out (labs behind NAT need no inbound port), says hello with its
// ports, then serves the requests the server sends down the stream through
// the same AgentCore::Handle as the direct service. Console sessions are
// multiplexed by request_id. Reconnects with jittered exponential backoff;
// keepalive pings keep NATs open and detect dead links.
//
// Thread-safe: Start/Stop from any thread; stream callbacks run on gRPC
// threads and only post work to the core.
#ifndef ATBRIDGE_AGENT_SERVICE_UPLINK_CLIENT_H_
#define ATBRIDGE_AGENT_SERVICE_UPLINK_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "absl/time/time.h"
#include "agent/service/agent_core.h"
#include "atbridge/v1/uplink.grpc.pb.h"
#include "common/random.h"

namespace atbridge::agent {

struct UplinkOptions {
  absl::Duration backoff_initial = absl::Milliseconds(500);
  absl::Duration backoff_max = absl::Seconds(30);
  // Per-session console output bound inside the shared stream.
  size_t console_queue_bytes = 256 * 1024;
};

class UplinkClient {
 public:
  UplinkClient(AgentCore& core, std::shared_ptr<grpc::Channel> channel, Random& random,
               UplinkOptions options = {});
  ~UplinkClient();  // Calls Stop().
  UplinkClient(const UplinkClient&) = delete;
  UplinkClient& operator=(const UplinkClient&) = delete;

  void Start();
  // Ends the stream and stops reconnecting; waits (bounded) for the stream's
  // OnDone. Must not be called from a gRPC reaction.
  void Stop();

  // True while a stream is established (hello sent). For tests and logs.
  bool connected() const;

 private:
  class Stream;
  friend class Stream;

  void Connect();
  void OnStreamDone(const grpc::Status& status, bool was_established);
  void PortUpdate(const v1::PortInfo& info);

  AgentCore& core_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AgentUplink::Stub> stub_;
  Random& random_;
  UplinkOptions options_;
  boost::asio::steady_timer retry_timer_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  Stream* stream_ = nullptr;  // Guarded by mu_.
  bool stopping_ = false;
  bool connected_ = false;
  int failures_ = 0;
};

}  // namespace atbridge::agent

#endif  // ATBRIDGE_AGENT_SERVICE_UPLINK_CLIENT_H_
