#include "client/console/remote_session.h"

#include <algorithm>
#include <boost/asio/post.hpp>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/proto_time.h"

namespace atbridge::client {

namespace asio = boost::asio;

namespace {

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      absl::ToChronoNanoseconds(d));
}

}  // namespace

void RemoteSession::Poster::Post(std::function<void()> f) {
  std::lock_guard<std::mutex> lock(mu);
  if (io != nullptr) asio::post(*io, std::move(f));
}

RemoteSession::RemoteSession(asio::io_context& io, Backend& backend, Handlers handlers)
    : io_(io),
      backend_(backend),
      handlers_(std::move(handlers)),
      poster_(std::make_shared<Poster>()),
      stream_done_(std::make_shared<absl::Notification>()),
      close_timer_(io),
      open_timer_(io),
      renew_timer_(io) {
  poster_->io = &io_;
}

RemoteSession::~RemoteSession() {
  if (stream_ && !stream_done_->HasBeenNotified()) {
    stream_->Cancel();
    stream_done_->WaitForNotification();
  }
  std::lock_guard<std::mutex> lock(poster_->mu);
  poster_->io = nullptr;
}

absl::Status RemoteSession::Open(const v1::DeviceRef& ref, bool write, const std::string& reason) {
  v1::ConsoleOpen open;
  open.set_write(write);
  open.set_reason(reason);
  absl::Status s = backend_.PrepareConsole(ref, &open);
  if (!s.ok()) return s;
  if (backend_.server_mode()) {
    lease_ref_ = open.device();
  } else {
    lease_ref_.set_alias(open.port());  // Direct mode: the alias is the port name.
  }
  ConsoleStream::Callbacks callbacks;
  auto poster = poster_;
  callbacks.on_output = [this, poster](v1::ConsoleOut out) {
    poster->Post([this, out = std::move(out)]() mutable { OnOutput(std::move(out)); });
  };
  auto done = stream_done_;
  callbacks.on_done = [this, poster, done](const absl::Status& status) {
    poster->Post([this, status] { OnDone(status); });
    done->Notify();  // Last: the stream may be destroyed from now on.
  };
  stream_ = backend_.NewConsoleStream(std::move(callbacks));
  open_sent_ = std::chrono::steady_clock::now();
  stream_->Start(std::move(open));
  // A peer that accepts the stream but never opens the session must not
  // leave us waiting forever.
  const absl::Duration timeout = backend_.timeout();
  open_timer_.expires_after(ToChrono(timeout));
  open_timer_.async_wait([this, timeout](const boost::system::error_code& ec) {
    if (ec || opened_ || closing_ || closed_) return;
    Fail(absl::DeadlineExceededError(
        absl::StrCat("the ", backend_.server_mode() ? "server" : "agent",
                     " accepted the console stream but did not open the session within ",
                     absl::FormatDuration(timeout), " (--timeout)")));
  });
  return absl::OkStatus();
}

void RemoteSession::Write(std::string bytes, std::function<void(bool)> written) {
  if (!stream_ || closing_ || closed_) {
    if (written) asio::post(io_, [written] { written(false); });
    return;
  }
  auto poster = poster_;
  stream_->Write(std::move(bytes), [poster, written = std::move(written)](bool ok) {
    if (written) poster->Post([written, ok] { written(ok); });
  });
}

void RemoteSession::ResumeReading() {
  if (stream_ && !closed_) stream_->ResumeReading();
}

void RemoteSession::Close() {
  if (!stream_ || closing_ || closed_) return;
  closing_ = true;
  renew_timer_.cancel();
  open_timer_.cancel();  // A clean close, even before OPENED, is not a timeout.
  stream_->CloseWrites();
  close_timer_.expires_after(ToChrono(kCloseGrace));
  close_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec && !closed_) stream_->Cancel();
  });
}

void RemoteSession::Cancel() {
  if (!stream_ || closed_) return;
  closing_ = true;
  open_timer_.cancel();
  renew_timer_.cancel();
  stream_->Cancel();
}

void RemoteSession::Fail(absl::Status status) {
  if (closed_) return;
  if (failure_.ok()) failure_ = std::move(status);
  Cancel();
}

void RemoteSession::OnOutput(v1::ConsoleOut out) {
  if (closed_) return;
  if (out.has_data()) {
    if (handlers_.on_data) {
      handlers_.on_data(std::move(*out.mutable_data()));
    } else {
      ResumeReading();
    }
    return;
  }
  const v1::ConsoleEvent& ev = out.event();
  if (ev.kind() == v1::ConsoleEvent::OPENED && !opened_) {
    opened_ = true;
    open_timer_.cancel();
    writable_ = ev.writable();
    if (writable_ && !ev.lease().lease_id().empty()) {
      lease_id_ = ev.lease().lease_id();
      if (renewal_.Start(ev.lease(), open_sent_, absl::Now())) ArmRenewal();
    }
    if (handlers_.on_opened) handlers_.on_opened(ev);
  } else {
    if (ev.kind() == v1::ConsoleEvent::LEASE_LOST) {
      writable_ = false;
      renew_timer_.cancel();
    }
    if (handlers_.on_event) handlers_.on_event(ev);
  }
  ResumeReading();
}

void RemoteSession::OnDone(absl::Status status) {
  if (closed_) return;
  closed_ = true;
  close_timer_.cancel();
  open_timer_.cancel();
  renew_timer_.cancel();
  if (!failure_.ok()) {
    status = failure_;
  } else if (closing_ && status.code() == absl::StatusCode::kCancelled) {
    status = absl::OkStatus();  // A cancel we asked for is a clean end.
  }
  if (handlers_.on_closed) handlers_.on_closed(status);
}

void RemoteSession::ArmRenewal() {
  renew_timer_.expires_at(renewal_.next());
  renew_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || closing_ || closed_) return;
    SendRenewal();
  });
}

void RemoteSession::SendRenewal() {
  const auto sent = std::chrono::steady_clock::now();
  // A renewal that cannot come back before the lease lapses is no use.
  absl::Duration left = absl::FromChrono(
      std::chrono::duration_cast<std::chrono::nanoseconds>(renewal_.expires() - sent));
  absl::Duration deadline = std::max(std::min(backend_.timeout(), left), LeaseRenewal::kMinLeft);
  auto poster = poster_;
  backend_.RenewLeaseAsync(
      lease_ref_, lease_id_, renewal_.ttl(), deadline,
      [this, poster, sent](absl::StatusOr<v1::Lease> renewed) {
        poster->Post([this, sent, renewed = std::move(renewed)] {
          if (closing_ || closed_) return;
          if (renewed.ok()) {
            if (!renewed->lease_id().empty()) lease_id_ = renewed->lease_id();
            renewal_.Renewed(sent);
            if (renew_failing_ && handlers_.on_event) {
              v1::ConsoleEvent ev;
              ev.set_detail("renewed the session's lease");
              handlers_.on_event(ev);
            }
            renew_failing_ = false;
            ArmRenewal();
            return;
          }
          const absl::Status& s = renewed.status();
          // The status code is the retry contract: only a peer that is
          // unreachable or slow is worth asking again.
          const bool retry = s.code() == absl::StatusCode::kUnavailable ||
                             s.code() == absl::StatusCode::kDeadlineExceeded;
          if (!retry || !renewal_.Failed(std::chrono::steady_clock::now())) {
            Fail(absl::FailedPreconditionError(
                absl::StrCat(retry ? "could not renew the session's lease before it expired: "
                                   : "the session's lease could not be renewed: ",
                             absl::StatusCodeToString(s.code()), ": ", s.message())));
            return;
          }
          if (!renew_failing_ && handlers_.on_event) {
            v1::ConsoleEvent ev;
            ev.set_kind(v1::ConsoleEvent::KIND_UNSPECIFIED);
            ev.set_detail(
                absl::StrCat("could not renew the session's lease (retrying): ", s.message()));
            handlers_.on_event(ev);
          }
          renew_failing_ = true;
          ArmRenewal();
        });
      });
}

}  // namespace atbridge::client
