// A raw console stream (Agent.Console or Provisioning.Console) as a gRPC
// client bidi reactor, for `console` and `attach`.
//
// Rules it follows (grpc-notes.md §1): one read and one write in flight;
// writes are queued and the next starts from OnWriteDone; a hold is taken
// before StartCall because reads and writes are started from other threads,
// and released once no more reads will follow; the ClientContext is a member
// and outlives OnDone.
//
// Reads are consumer-paced: after each output the next read starts only when
// the consumer calls ResumeReading(), so a slow sink (a pty nobody reads)
// holds back the stream instead of growing a buffer.
//
// Thread-safety: all public methods are thread-safe. Callbacks run on gRPC
// threads and must not block. The object must stay alive until `on_done` has
// run; it may be destroyed by another thread after that.
#ifndef ATBRIDGE_CLIENT_RPC_CONSOLE_STREAM_H_
#define ATBRIDGE_CLIENT_RPC_CONSOLE_STREAM_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/client_callback.h>

#include <deque>
#include <functional>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "atbridge/v1/agent.pb.h"

namespace atbridge::client {

class ConsoleStream final : public grpc::ClientBidiReactor<v1::ConsoleIn, v1::ConsoleOut> {
 public:
  using Reactor = grpc::ClientBidiReactor<v1::ConsoleIn, v1::ConsoleOut>;
  // Binds the reactor to a stub method, e.g.
  //   [stub](grpc::ClientContext* c, Reactor* r) { stub->async()->Console(c, r); }
  using Starter = std::function<void(grpc::ClientContext*, Reactor*)>;

  struct Callbacks {
    // One message from the peer. Call ResumeReading() for the next.
    std::function<void(v1::ConsoleOut)> on_output;
    // The stream ended (OK after a clean close). Runs once, last.
    std::function<void(absl::Status)> on_done;
  };

  ConsoleStream(Starter starter, Callbacks callbacks);

  // Sends `open` and starts the call. Call once.
  void Start(v1::ConsoleOpen open);
  // Queues raw bytes; `written(ok)` runs when they were sent (ok) or can no
  // longer be (stream closing or broken). `written` may be empty.
  void Write(std::string bytes, std::function<void(bool)> written);
  // Starts the next read (after on_output). No-op once reading has ended.
  void ResumeReading();
  // Half-closes the stream after the queued writes: the peer then ends it.
  void CloseWrites();
  // Cancels the call; on_done follows with CANCELLED.
  void Cancel();

  // Reactions.
  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnWritesDoneDone(bool ok) override {}
  void OnDone(const grpc::Status& status) override;

 private:
  struct Pending {
    v1::ConsoleIn message;
    std::function<void(bool)> written;
  };

  void StartNextWriteLocked();
  void MaybeRemoveHoldLocked();

  Starter starter_;
  Callbacks callbacks_;
  grpc::ClientContext ctx_;

  std::mutex mu_;
  std::deque<Pending> queue_;
  v1::ConsoleOut in_;
  bool writing_ = false;
  bool reading_ = false;
  bool read_done_ = false;
  bool hold_removed_ = false;
  bool close_requested_ = false;
  bool writes_done_sent_ = false;
  bool cancelled_ = false;
};

}  // namespace atbridge::client

#endif  // ATBRIDGE_CLIENT_RPC_CONSOLE_STREAM_H_
