// The agent's outbound connection to the server (AgentUplink.Connect): the
// agent dials out (labs behind NAT need no inbound port), says hello, then
// serves the requests the server sends down the stream through the same
// AgentCore::Handle as the direct service. Console sessions are multiplexed
// by request_id. Keepalive pings keep NATs open and detect dead links.
//
// The peer must prove it is an atbridge server: once the TLS session is up
// (when the hello, which carries only the agent's name and version, has been
// written) the role in the certificate the channel verified must be
// `server`. Only then does the agent send its ports (as port_update
// messages) and serve requests; any other peer is disconnected and retried
// with backoff.
//
// Reconnects with jittered exponential backoff (uniform in [d/2, d], d
// doubling from backoff_initial to backoff_max). The backoff starts again
// only once a stream was accepted: the server sent a message on it, or it
// stayed up for `stable_after` (a server that refuses, or a second agent
// with the same name replacing this one, never resets it). Each change of
// the link's state is logged once, not every attempt.
//
// Thread-safe: Start/Stop from any thread but the core's io thread and gRPC
// reactions; stream callbacks run on gRPC threads and only post work to the
// core.
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
  // A verified stream that stays up this long counts as accepted even if
  // the server never sent anything on it (it only speaks when it has a
  // request). Longer than backoff_max, so that two agents replacing each
  // other never reset their backoff.
  absl::Duration stable_after = absl::Seconds(60);
  // Stop() lets requests in flight finish this long before cancelling.
  absl::Duration stop_grace = absl::Seconds(2);
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
  // Ends the stream and stops reconnecting: console sessions end with
  // UNAVAILABLE, new requests are refused UNAVAILABLE, requests in flight get
  // `stop_grace` to finish, then the agent closes its side (or cancels).
  // Returns once the stream's OnDone has run and no callback of this object
  // is pending, so the object may then be destroyed. Must not be called from
  // a gRPC reaction or the core's io thread, which must still be running.
  void Stop();

  // True while a stream to a verified server is up. For tests and logs.
  bool connected() const;

 private:
  class Stream;
  friend class Stream;

  // What a finished stream tells the client.
  struct StreamEnd {
    bool verified = false;  // The peer proved role server.
    bool accepted = false;  // Verified and (a message came or stable).
    std::string peer;       // Its principal, when verified.
    std::string refusal;    // Why the peer was refused, if it was.
  };

  void Connect();
  void OnStreamVerified(const std::string& peer);
  void DetachStream(Stream* stream);
  void OnStreamDone(const grpc::Status& status, const StreamEnd& end);
  void PortUpdate(const v1::PortInfo& info);

  AgentCore& core_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AgentUplink::Stub> stub_;
  Random& random_;
  UplinkOptions options_;
  boost::asio::steady_timer retry_timer_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  Stream* stream_ = nullptr;  // Guarded by mu_; cleared before it is deleted.
  int live_streams_ = 0;      // Streams whose OnStreamDone has not finished.
  bool stopping_ = false;
  bool stopped_ = false;
  int failures_ = 0;  // Attempts since a stream was last accepted.
  // Logging once per state change.
  std::string last_failure_;
  bool announced_connected_ = false;
};

}  // namespace atbridge::agent

#endif  // ATBRIDGE_AGENT_SERVICE_UPLINK_CLIENT_H_
