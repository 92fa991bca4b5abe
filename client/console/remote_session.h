// A console session with a remote modem (through the server or one agent),
// driven from a Boost.Asio io_context: the gRPC bidi stream
// (rpc/console_stream.h) with its callbacks moved onto the io thread, the
// OPENED handshake (within the backend's --timeout, else DEADLINE_EXCEEDED),
// renewal of the session's lease (console/lease_renewal.h: at half its TTL on
// the local monotonic clock, failures retried with backoff while the lease
// holds; then the session ends with FAILED_PRECONDITION), and a clean close
// (half-close, then cancel after a grace period).
//
// Used by `console` (terminal <-> modem) and `attach` (local pty <-> modem).
//
// Threading: construct, call and destroy on the io thread (or before it
// runs); every handler runs on the io thread. No thread per byte: reads and
// writes are consumer-paced on both sides.
#ifndef ATBRIDGE_CLIENT_CONSOLE_REMOTE_SESSION_H_
#define ATBRIDGE_CLIENT_CONSOLE_REMOTE_SESSION_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "atbridge/v1/agent.pb.h"
#include "client/console/lease_renewal.h"
#include "client/rpc/backend.h"
#include "client/rpc/console_stream.h"

namespace atbridge::client {

class RemoteSession {
 public:
  struct Handlers {
    // The session opened; `opened.writable()` says whether we may write.
    std::function<void(const v1::ConsoleEvent& opened)> on_opened;
    // Bytes from the modem. Call ResumeReading() once they are consumed.
    std::function<void(std::string data)> on_data;
    // Any later event (DROPPED, PORT_DOWN, PORT_UP, LEASE_LOST).
    std::function<void(const v1::ConsoleEvent& event)> on_event;
    // The stream ended: OK after Close(); DEADLINE_EXCEEDED when the peer
    // never opened the session; FAILED_PRECONDITION when the session's lease
    // could not be renewed. Runs once, last.
    std::function<void(absl::Status status)> on_closed;
  };

  // How long Close() waits for the peer to end the stream before cancelling.
  static constexpr absl::Duration kCloseGrace = absl::Seconds(5);

  // `backend` must outlive the session.
  RemoteSession(boost::asio::io_context& io, Backend& backend, Handlers handlers);
  // Cancels a stream that has not ended and waits for it to finish.
  ~RemoteSession();
  RemoteSession(const RemoteSession&) = delete;
  RemoteSession& operator=(const RemoteSession&) = delete;

  // Resolves DEVICE and opens the stream. Errors from resolving are returned;
  // errors of the stream arrive through on_closed.
  absl::Status Open(const v1::DeviceRef& ref, bool write, const std::string& reason);
  // Sends bytes (writers only); `written(ok)` runs on the io thread.
  void Write(std::string bytes, std::function<void(bool ok)> written);
  // Asks for the next output.
  void ResumeReading();
  // Ends the session: half-close now, cancel after kCloseGrace.
  void Close();
  // Cancels at once.
  void Cancel();

  bool writable() const { return writable_; }
  bool closed() const { return closed_; }

 private:
  // Posting into the io_context from gRPC threads, but never after the
  // session is gone.
  struct Poster {
    std::mutex mu;
    boost::asio::io_context* io = nullptr;
    void Post(std::function<void()> f);
  };

  void OnOutput(v1::ConsoleOut out);
  void OnDone(absl::Status status);
  // Ends the session with `status` (the first failure wins).
  void Fail(absl::Status status);
  void ArmRenewal();
  void SendRenewal();

  boost::asio::io_context& io_;
  Backend& backend_;
  Handlers handlers_;
  std::shared_ptr<Poster> poster_;
  std::shared_ptr<absl::Notification> stream_done_;
  std::unique_ptr<ConsoleStream> stream_;
  boost::asio::steady_timer close_timer_;
  boost::asio::steady_timer open_timer_;
  boost::asio::steady_timer renew_timer_;
  std::chrono::steady_clock::time_point open_sent_;
  LeaseRenewal renewal_;
  v1::DeviceRef lease_ref_;  // How to name the port when renewing.
  std::string lease_id_;
  bool renew_failing_ = false;  // Told the user about a failed renewal.
  absl::Status failure_;        // Why we ended the session ourselves.
  bool opened_ = false;
  bool writable_ = false;
  bool closing_ = false;
  bool closed_ = false;
};

}  // namespace atbridge::client

#endif  // ATBRIDGE_CLIENT_CONSOLE_REMOTE_SESSION_H_
