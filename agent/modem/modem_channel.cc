#include "agent/modem/modem_channel.h"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/at/credential_types.h"
#include "common/at/modem_responses.h"
#include "common/log.h"
#include "common/status/errors.h"

namespace atbridge::agent {

namespace asio = boost::asio;

namespace {

std::chrono::steady_clock::duration ToChrono(absl::Duration d) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      absl::ToChronoNanoseconds(d));
}

// A command as it may appear in logs and status messages: secrets redacted
// first (a %CMNG write of a key or PSK), then shortened.
std::string Shown(absl::string_view command, size_t max = 40) {
  std::string shown = at::RedactSecrets(command);
  if (shown.size() > max) {
    shown.resize(max);
    shown += "...";
  }
  return shown;
}

}  // namespace

at::CommandExpectation ExpectationFor(absl::string_view command) {
  at::CommandExpectation e;
  e.echo = std::string(command);
  if (command.size() > 2 && (absl::StartsWithIgnoreCase(command, "AT"))) {
    absl::string_view rest = command.substr(2);
    if (!rest.empty() && (rest[0] == '+' || rest[0] == '%' || rest[0] == '#')) {
      size_t end = 1;
      while (end < rest.size() && std::isalnum(static_cast<unsigned char>(rest[end]))) ++end;
      if (end > 1) {
        std::string name(rest.substr(0, end));
        for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        e.info_prefixes.push_back(name + ":");
      }
    }
  }
  return e;
}

const char* ChannelStateName(ChannelState state) {
  switch (state) {
    case ChannelState::kOpening:
      return "opening";
    case ChannelState::kReady:
      return "ready";
    case ChannelState::kDown:
      return "down";
    case ChannelState::kStopped:
      return "stopped";
  }
  return "?";
}

std::shared_ptr<ModemChannel> ModemChannel::Create(asio::io_context& io, ChannelOptions options,
                                                   SerialPortOpener opener, Clock& clock,
                                                   Random& random) {
  return std::shared_ptr<ModemChannel>(
      new ModemChannel(io, std::move(options), std::move(opener), clock, random));
}

ModemChannel::ModemChannel(asio::io_context& io, ChannelOptions options, SerialPortOpener opener,
                           Clock& clock, Random& random)
    : io_(io),
      options_(std::move(options)),
      opener_(std::move(opener)),
      clock_(clock),
      random_(random),
      deadline_timer_(io),
      pace_timer_(io),
      reconnect_timer_(io) {
  if (!options_.port.transcript_file.empty()) {
    auto t = Transcript::Open(options_.port.transcript_file, options_.port.name, clock_);
    if (t.ok()) {
      transcript_ = *std::move(t);
    } else {
      ATB_LOG(WARNING) << name() << ": transcript disabled: " << t.status().message();
    }
  }
}

ModemChannel::~ModemChannel() = default;

void ModemChannel::Start() {
  asio::post(io_, [self = shared_from_this()] { self->Open(); });
}

void ModemChannel::Stop() {
  asio::post(io_, [self = shared_from_this()] {
    if (self->state_ == ChannelState::kStopped) return;
    self->SetState(ChannelState::kStopped);
    ++self->generation_;
    self->reconnect_timer_.cancel();
    self->deadline_timer_.cancel();
    self->pace_timer_.cancel();
    if (self->port_) self->port_->Close();
    self->port_.reset();
    self->FailAll(absl::CancelledError(absl::StrCat(self->name(), ": agent shutting down")));
    self->FinishIdentifyWaiters(absl::CancelledError("agent shutting down"));
  });
}

void ModemChannel::SetObserver(std::function<void()> observer) { observer_ = std::move(observer); }

void ModemChannel::Notify() {
  if (observer_) observer_();
}

void ModemChannel::SetState(ChannelState state) {
  if (state_ == state) return;
  state_ = state;
  Notify();
}

void ModemChannel::set_cfun(int cfun) {
  if (identity_.cfun != cfun) {
    identity_.cfun = cfun;
    Notify();
  }
}

void ModemChannel::WhenFirstAttemptDone(absl::AnyInvocable<void()> done) {
  if (first_attempt_done_) {
    done();
  } else {
    first_attempt_waiters_.push_back(std::move(done));
  }
}

// ---- open, identify, reconnect ------------------------------------------

void ModemChannel::Open() {
  if (state_ == ChannelState::kStopped) return;
  SetState(ChannelState::kOpening);
  auto port = opener_(io_, options_.port.device, options_.port.serial);
  if (!port.ok()) {
    last_error_ = std::string(port.status().message());
    if (reconnect_attempts_ == 0) ATB_LOG(WARNING) << name() << ": " << last_error_;
    SetState(ChannelState::kDown);
    FinishIdentifyWaiters(absl::UnavailableError(absl::StrCat(name(), ": ", last_error_)));
    ScheduleReconnect();
    return;
  }
  port_ = *std::move(port);
  ++generation_;
  parser_.Reset();
  raw_framer_.Reset();
  EmitRx(rx_redactor_.Flush());
  resync_needed_ = false;
  quote_risk_ = false;
  resyncing_ = false;
  writing_ = false;
  if (transcript_) transcript_->RecordEvent(absl::StrCat("opened ", options_.port.device));
  StartRead();
  StartIdentify(generation_);
}

void ModemChannel::StartIdentify(uint64_t generation) {
  auto self = shared_from_this();
  asio::co_spawn(
      io_,
      [self]() -> asio::awaitable<absl::StatusOr<ModemIdentity>> {
        auto run = [&self](std::string text,
                           absl::Duration timeout =
                               absl::ZeroDuration()) -> asio::awaitable<absl::StatusOr<AtReply>> {
          AtCommand c{.text = std::move(text), .expect = {}, .timeout = timeout};
          co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&,
                                                  void(absl::StatusOr<AtReply>)>(
              [&self](auto handler, AtCommand cmd) {  // NOLINT(performance-unnecessary-value-param)
                self->SubmitInternal(std::move(cmd),
                                     [h = std::move(handler)](absl::StatusOr<AtReply> r) mutable {
                                       std::move(h)(std::move(r));
                                     });
              },
              asio::use_awaitable, std::move(c));
        };
        // A modem may hold junk from before we opened it: the first "AT" can
        // answer ERROR or nothing. Up to three tries (each timeout also
        // triggers the channel's resynchronization).
        absl::Status alive = absl::UnavailableError("no answer");
        for (int i = 0; i < 3; ++i) {
          auto r = co_await run("AT", self->options_.resync_timeout);
          if (r.ok() && r->response.final.ok()) {
            alive = absl::OkStatus();
            break;
          }
          if (!r.ok() && r.status().code() == absl::StatusCode::kUnavailable) co_return r.status();
          alive = r.ok()
                      ? absl::UnavailableError(absl::StrCat("AT answered ", r->response.final.line))
                      : r.status();
        }
        if (!alive.ok()) {
          co_return absl::UnavailableError(absl::StrCat("modem on ", self->options_.port.device,
                                                        " does not answer AT: ", alive.message()));
        }
        // Numeric +CME ERROR codes are what typed statuses are made of.
        (void)co_await run("AT+CMEE=1");
        ModemIdentity id;
        auto imei = co_await run("AT+CGSN=1");
        if (imei.ok() && imei->response.final.ok()) {
          auto parsed = at::ParseImei(imei->response.lines);
          if (parsed.ok()) id.imei = *parsed;
        }
        if (id.imei.empty()) {
          imei = co_await run("AT+CGSN");
          if (!imei.ok()) co_return imei.status();
          auto parsed = at::ParseImei(imei->response.lines);
          if (!imei->response.final.ok() || !parsed.ok()) {
            co_return absl::UnavailableError(absl::StrCat("modem on ", self->options_.port.device,
                                                          " gave no IMEI (",
                                                          imei->response.final.line, ")"));
          }
          id.imei = *parsed;
        }
        auto single = [](const absl::StatusOr<AtReply>& r) -> std::string {
          if (!r.ok() || !r->response.final.ok()) return "";
          auto s = at::ParseSingleLine(r->response.lines);
          return s.ok() ? *s : "";
        };
        id.manufacturer = single(co_await run("AT+CGMI"));
        id.model = single(co_await run("AT+CGMM"));
        id.firmware = single(co_await run("AT+CGMR"));
        auto cfun = co_await run("AT+CFUN?");
        if (cfun.ok() && cfun->response.final.ok()) {
          auto mode = at::ParseCfun(cfun->response.lines);
          if (mode.ok()) id.cfun = *mode;
        }
        id.identified_at = self->clock_.Now();
        co_return id;
      },
      [self, generation](const std::exception_ptr& e, absl::StatusOr<ModemIdentity> result) {
        if (e) result = absl::InternalError("identification failed unexpectedly");
        self->OnIdentified(generation, std::move(result));
      });
}

void ModemChannel::OnIdentified(uint64_t generation, absl::StatusOr<ModemIdentity> result) {
  if (generation != generation_ || state_ == ChannelState::kStopped) return;
  if (result.ok()) {
    identity_ = *std::move(result);
    last_error_.clear();
    reconnect_attempts_ = 0;
    ATB_LOG(INFO) << name() << ": " << identity_.model << " IMEI " << identity_.imei << " "
                  << identity_.firmware << " on " << options_.port.device;
    if (transcript_) transcript_->RecordEvent(absl::StrCat("identified IMEI ", identity_.imei));
    bool back = down_notified_;
    down_notified_ = false;
    SetState(ChannelState::kReady);
    Notify();
    if (back) {
      for (auto& [id, w] : watchers_) {
        if (auto sp = w.lock()) sp->OnConsoleEvent(ConsoleWatcher::Event::kPortUp, "port is back");
      }
    }
    Pump();
  } else {
    last_error_ = std::string(result.status().message());
    ATB_LOG(WARNING) << name() << ": " << last_error_;
    ++generation_;
    if (port_) port_->Close();
    port_.reset();
    FailAll(absl::UnavailableError(absl::StrCat(name(), ": ", last_error_)));
    SetState(ChannelState::kDown);
    ScheduleReconnect();
  }
  FinishIdentifyWaiters(state_ == ChannelState::kReady
                            ? absl::OkStatus()
                            : absl::UnavailableError(absl::StrCat(name(), ": ", last_error_)));
}

void ModemChannel::Identify(absl::AnyInvocable<void(absl::Status)> done) {
  if (state_ != ChannelState::kReady) {
    done(absl::UnavailableError(absl::StrCat(name(), " is ", ChannelStateName(state_),
                                             last_error_.empty() ? "" : ": ", last_error_)));
    return;
  }
  identify_waiters_.push_back(std::move(done));
  if (identify_waiters_.size() == 1) StartIdentify(generation_);
}

void ModemChannel::ScheduleReconnect() {
  if (state_ == ChannelState::kStopped) return;
  // Jittered exponential backoff: uniform in [d/2, d], d doubling to the cap.
  double base = absl::ToDoubleSeconds(options_.reconnect_initial) *
                static_cast<double>(1u << std::min(reconnect_attempts_, 16));
  base = std::min(base, absl::ToDoubleSeconds(options_.reconnect_max));
  absl::Duration delay = absl::Seconds(base * (0.5 + 0.5 * random_.UniformDouble()));
  ++reconnect_attempts_;
  reconnect_timer_.expires_after(ToChrono(delay));
  reconnect_timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec) self->Open();
  });
}

void ModemChannel::PortLost(const absl::Status& why) {
  if (state_ == ChannelState::kStopped || !port_) return;
  last_error_ = std::string(why.message());
  ATB_LOG(WARNING) << name() << ": port lost: " << last_error_;
  if (transcript_) transcript_->RecordEvent(absl::StrCat("lost: ", last_error_));
  ++generation_;
  port_->Close();
  port_.reset();
  EmitRx(rx_redactor_.Flush());
  deadline_timer_.cancel();
  pace_timer_.cancel();
  writing_ = false;
  resyncing_ = false;
  FailAll(absl::UnavailableError(absl::StrCat(name(), ": port lost: ", last_error_)));
  SetState(ChannelState::kDown);
  down_notified_ = true;
  for (auto& [id, w] : watchers_) {
    if (auto sp = w.lock()) sp->OnConsoleEvent(ConsoleWatcher::Event::kPortDown, last_error_);
  }
  reconnect_attempts_ = 0;
  FinishIdentifyWaiters(absl::UnavailableError(absl::StrCat(name(), ": ", last_error_)));
  ScheduleReconnect();
}

void ModemChannel::FinishIdentifyWaiters(const absl::Status& status) {
  if (!first_attempt_done_) {
    first_attempt_done_ = true;
    for (auto& w : first_attempt_waiters_) asio::post(io_, std::move(w));
    first_attempt_waiters_.clear();
  }
  for (auto& w : identify_waiters_) {
    asio::post(io_, [w = std::move(w), status]() mutable { w(status); });
  }
  identify_waiters_.clear();
}

void ModemChannel::FailAll(const absl::Status& status) {
  if (in_flight_) {
    auto p = std::move(*in_flight_);
    in_flight_.reset();
    Deliver(std::move(p.done), status);
  }
  while (!queue_.empty()) {
    auto p = std::move(queue_.front());
    queue_.pop_front();
    Deliver(std::move(p.done), status);
  }
  if (raw_) {
    asio::post(io_, [d = std::move(raw_->done), status]() mutable { d(status); });
    raw_.reset();
  }
  while (!raw_queue_.empty()) {
    asio::post(io_, [d = std::move(raw_queue_.front().done), status]() mutable { d(status); });
    raw_queue_.pop_front();
  }
  if (raw_phase_ != RawPhase::kNone) {
    raw_phase_ = RawPhase::kNone;
    raw_finals_expected_ = 0;
    Unlock();
  }
}

void ModemChannel::Deliver(ReplyCallback done, absl::StatusOr<AtReply> result) {
  // Posted, so callbacks never re-enter the channel from inside its handlers.
  asio::post(io_, [d = std::move(done), r = std::move(result)]() mutable { d(std::move(r)); });
}

// ---- reading --------------------------------------------------------------

void ModemChannel::StartRead() {
  uint64_t gen = generation_;
  port_->AsyncReadSome(
      read_buf_, sizeof(read_buf_),
      [self = shared_from_this(), gen](const boost::system::error_code& ec, size_t n) {
        if (gen != self->generation_) return;
        if (ec) {
          self->PortLost(FromErrorCode(ec, absl::StrCat("read ", self->options_.port.device)));
          return;
        }
        self->OnRead(absl::string_view(self->read_buf_, n));
        if (gen == self->generation_) self->StartRead();
      });
}

void ModemChannel::EmitRx(absl::string_view safe) {
  if (safe.empty()) return;
  if (transcript_) transcript_->RecordRx(safe);
  for (auto it = watchers_.begin(); it != watchers_.end();) {
    if (auto sp = it->second.lock()) {
      sp->OnConsoleData(safe);
      ++it;
    } else {
      it = watchers_.erase(it);
    }
  }
}

void ModemChannel::OnRead(absl::string_view data) {
  // The parser sees the real bytes; watchers and the transcript never see
  // an echoed secret.
  EmitRx(rx_redactor_.Feed(data));
  // The modem is still talking: the quiet window of a raw exchange restarts.
  if (raw_phase_ == RawPhase::kAwaiting) ArmRawQuiet();
  std::vector<at::ParserEvent> events;
  parser_.Feed(data, &events);
  for (auto& e : events) {
    switch (e.type) {
      case at::ParserEvent::Type::kComplete:
        if (resyncing_) {
          OnProbeComplete(e.response);
        } else if (raw_phase_ == RawPhase::kWriting || raw_phase_ == RawPhase::kAwaiting) {
          OnRawFinal();
        } else if (in_flight_) {
          CompleteInFlight(AtReply{std::move(e.response), clock_.Now() - in_flight_started_});
        }
        break;
      case at::ParserEvent::Type::kOverflow:
        ATB_LOG(WARNING) << name() << ": modem line over the parser limit (" << e.bytes
                         << " bytes) discarded";
        if (in_flight_ && !resyncing_) {
          parser_.Abandon();
          resync_needed_ = true;
          CompleteInFlight(absl::DataLossError(
              absl::StrCat(name(), ": a response line of ", e.bytes,
                           " bytes overflowed the parser; the answer was discarded")));
        }
        break;
      case at::ParserEvent::Type::kUrc:
        ATB_LOG(DEBUG) << name() << ": URC " << at::RedactSecrets(e.line);
        break;
      case at::ParserEvent::Type::kStale:
        ATB_LOG(DEBUG) << name()
                       << ": late reply to an abandoned command: " << at::RedactSecrets(e.line);
        break;
      case at::ParserEvent::Type::kGarbage:
      case at::ParserEvent::Type::kPrompt:
        break;
    }
  }
}

// ---- writing and the command queue ------------------------------------------

void ModemChannel::Submit(AtCommand command, ReplyCallback done) {
  if (state_ != ChannelState::kReady) {
    Deliver(std::move(done), absl::UnavailableError(absl::StrCat(
                                 "port ", name(), " is ", ChannelStateName(state_),
                                 last_error_.empty() ? "" : absl::StrCat(" (", last_error_, ")"))));
    return;
  }
  queue_.push_back(Pending{std::move(command), std::move(done), false});
  Pump();
}

void ModemChannel::SubmitInternal(AtCommand command, ReplyCallback done) {
  if (!port_ || state_ == ChannelState::kStopped) {
    Deliver(std::move(done), absl::UnavailableError(absl::StrCat("port ", name(), " is closed")));
    return;
  }
  queue_.push_back(Pending{std::move(command), std::move(done), true});
  Pump();
}

void ModemChannel::WriteRaw(std::string bytes, absl::AnyInvocable<void(absl::Status)> done,
                            absl::AnyInvocable<absl::Status()> authorize) {
  if (state_ != ChannelState::kReady || !port_) {
    asio::post(io_, [d = std::move(done), n = name(), s = state_]() mutable {
      d(absl::UnavailableError(absl::StrCat("port ", n, " is ", ChannelStateName(s))));
    });
    return;
  }
  raw_queue_.push_back(RawWrite{std::move(bytes), std::move(done), std::move(authorize)});
  if (raw_phase_ == RawPhase::kPartial) {
    // The console goes on with the line it left open; the lock is still ours.
    StartNextRaw();
    return;
  }
  // Console bytes wait their turn behind transactions, like any operation.
  // While a raw write holds the lock, the next one starts when it ends.
  if (raw_phase_ == RawPhase::kNone && !raw_lock_requested_) RequestRawLock();
}

void ModemChannel::RequestRawLock() {
  raw_lock_requested_ = true;
  Lock([self = shared_from_this()] {
    self->raw_lock_requested_ = false;
    self->StartNextRaw();
  });
}

// Lock held; raw_phase_ is kNone (just granted) or kPartial.
void ModemChannel::StartNextRaw() {
  while (!raw_queue_.empty()) {
    RawWrite next = std::move(raw_queue_.front());
    raw_queue_.pop_front();
    absl::Status status = absl::OkStatus();
    if (state_ != ChannelState::kReady || !port_) {
      status =
          absl::UnavailableError(absl::StrCat("port ", name(), " is ", ChannelStateName(state_)));
    } else if (next.authorize) {
      // Checked now, not when the bytes were queued: a lease may have been
      // released, or the session closed, while they waited for the lock.
      status = next.authorize();
    }
    if (!status.ok()) {
      asio::post(io_, [d = std::move(next.done), status]() mutable { d(status); });
      continue;
    }
    if (raw_phase_ == RawPhase::kPartial) {
      deadline_timer_.cancel();  // The partial line's quiet window.
      ++seq_;
    }
    raw_ = std::move(next);
    raw_phase_ = RawPhase::kQueued;
    Pump();
    return;
  }
  // Nothing to write. A partial line keeps the port (its quiet window runs).
  if (raw_phase_ != RawPhase::kPartial) ReleaseRaw();
}

void ModemChannel::BeginRaw() {
  std::string bytes = raw_->bytes;
  std::vector<at::FramerEvent> lines;
  raw_framer_.Feed(bytes, &lines);
  // Every command line the bytes complete (also one over the modem's
  // buffer, which gets ERROR) is answered with one final result.
  raw_finals_expected_ = static_cast<int>(lines.size());
  raw_phase_ = RawPhase::kWriting;
  // What the modem says from now on answers these bytes (the watchers see
  // it all); it must not reach the next command.
  if (raw_finals_expected_ > 0) parser_.BeginCommand(at::CommandExpectation{});
  // The write holds the lock, so it has a deadline too (writing, paced, plus
  // the port's command timeout as a floor): with CTS held low it would never
  // end and every other operation would wait for ever.
  absl::Duration write_time = WriteTime(bytes.size());
  uint64_t seq = ++seq_;
  deadline_timer_.expires_after(ToChrono(write_time + options_.port.command_timeout));
  deadline_timer_.async_wait([self = shared_from_this(), seq](const boost::system::error_code& ec) {
    if (!ec) self->OnRawDeadline(seq);
  });
  uint64_t gen = generation_;
  StartWrite(std::move(bytes), true, nullptr,
             [self = shared_from_this(), gen] { self->OnRawWritten(gen); });
}

void ModemChannel::OnRawDeadline(uint64_t seq) {
  if (seq != seq_ || !writing_) return;
  if (raw_phase_ != RawPhase::kWriting && raw_phase_ != RawPhase::kAnswered) return;
  ATB_LOG(WARNING) << name() << ": could not write " << raw_->bytes.size()
                   << " console bytes in time (flow control?)";
  PortLost(absl::UnavailableError("write stalled"));
}

void ModemChannel::OnRawWritten(uint64_t generation) {
  if (generation != generation_ || !raw_) return;
  auto done = std::move(raw_->done);
  raw_.reset();
  asio::post(io_, [d = std::move(done)]() mutable { d(absl::OkStatus()); });
  if (raw_finals_expected_ == 0 || raw_phase_ == RawPhase::kAnswered) {
    EndRaw();
    return;
  }
  raw_phase_ = RawPhase::kAwaiting;
  raw_written_at_ = clock_.Now();
  ArmRawQuiet();
}

void ModemChannel::OnRawFinal() {
  if (raw_finals_expected_ > 0) --raw_finals_expected_;
  if (raw_finals_expected_ > 0) {
    parser_.BeginCommand(at::CommandExpectation{});
    return;
  }
  if (raw_phase_ == RawPhase::kWriting) {
    raw_phase_ = RawPhase::kAnswered;  // Ends when the write completes.
    return;
  }
  EndRaw();
}

void ModemChannel::ArmRawQuiet() {
  const absl::Duration left =
      raw_written_at_ + options_.port.command_timeout + LineTime(1) - clock_.Now();
  const absl::Duration wait =
      std::max(std::min(options_.console_reply_quiet, left), absl::ZeroDuration());
  uint64_t seq = ++seq_;
  deadline_timer_.expires_after(ToChrono(wait));
  deadline_timer_.async_wait([self = shared_from_this(), seq](const boost::system::error_code& ec) {
    if (!ec) self->OnRawQuiet(seq);
  });
}

void ModemChannel::OnRawQuiet(uint64_t seq) {
  if (seq != seq_ || raw_phase_ != RawPhase::kAwaiting) return;
  // Whatever still comes for the console's command is stale: it is never
  // taken for the next command's answer.
  ATB_LOG(DEBUG) << name() << ": console command unanswered after "
                 << absl::FormatDuration(options_.console_reply_quiet) << " of quiet";
  parser_.Abandon();
  resync_needed_ = true;  // As after a command's timeout (design.md §3).
  // The resynchronization also clears a partial line the bytes left.
  if (raw_framer_.in_quotes()) quote_risk_ = true;
  deadline_timer_.cancel();
  ++seq_;
  raw_finals_expected_ = 0;
  ReleaseRaw();
}

// The raw write is written and answered.
void ModemChannel::EndRaw() {
  deadline_timer_.cancel();
  ++seq_;
  raw_finals_expected_ = 0;
  if (raw_framer_.has_partial()) {
    // The modem holds the start of a line: anything sent now would be
    // spliced into it (or land inside its open quote). The port stays the
    // console's until the line is completed or the quiet window ends.
    raw_phase_ = RawPhase::kPartial;
    if (!raw_queue_.empty()) {
      StartNextRaw();
    } else {
      ArmPartialQuiet();
    }
    return;
  }
  ReleaseRaw();
}

void ModemChannel::ReleaseRaw() {
  raw_phase_ = RawPhase::kNone;
  Unlock();
  // Console bytes that came meanwhile queue for the lock again, behind
  // whoever waits for it.
  if (!raw_queue_.empty() && !raw_lock_requested_) RequestRawLock();
  Pump();
}

void ModemChannel::ArmPartialQuiet() {
  uint64_t seq = ++seq_;
  deadline_timer_.expires_after(ToChrono(options_.console_reply_quiet));
  deadline_timer_.async_wait([self = shared_from_this(), seq](const boost::system::error_code& ec) {
    if (!ec) self->OnPartialQuiet(seq);
  });
}

void ModemChannel::OnPartialQuiet(uint64_t seq) {
  if (seq != seq_ || raw_phase_ != RawPhase::kPartial) return;
  if (lock_waiters_.empty() && queue_.empty()) {
    // Nobody needs the port: the console may take its time (typing).
    ArmPartialQuiet();
    return;
  }
  ATB_LOG(INFO) << name() << ": console left a partial line ("
                << (raw_framer_.in_quotes() ? "inside quotes, " : "") << raw_framer_.pending_bytes()
                << " bytes) for " << absl::FormatDuration(options_.console_reply_quiet)
                << "; clearing it before the next operation";
  // Resynchronize before the next command: the first probe erases the line
  // (a DEL per byte held; BS/DEL remove a byte even inside quotes and leave
  // the quote state alone, nrf91-at-credentials.md §1) and ends what is left,
  // its answer taken by the probe, never by a command. Inside quotes an "AT"
  // would only be more quoted data, whatever the flow control, so the quote
  // is closed first: the modem then sees a lone '"' (ERROR), not the console's
  // half-written command.
  resync_needed_ = true;
  if (raw_framer_.in_quotes()) quote_risk_ = true;
  ReleaseRaw();
}

void ModemChannel::Pump() {
  if (!port_ || in_flight_ || resyncing_ || writing_) return;
  if (raw_phase_ != RawPhase::kNone && raw_phase_ != RawPhase::kQueued) return;
  const bool raw_queued = raw_phase_ == RawPhase::kQueued;
  if (resync_needed_ && (!queue_.empty() || raw_queued)) {
    StartResync();
    return;
  }
  if (raw_queued) {
    BeginRaw();
    return;
  }
  if (queue_.empty()) return;
  in_flight_ = std::move(queue_.front());
  queue_.pop_front();
  BeginCommand();
}

absl::Duration ModemChannel::LineTime(size_t bytes) const {
  return absl::Seconds(10.0 * static_cast<double>(bytes) /
                       static_cast<double>(options_.port.serial.baud));
}

// Writing `bytes` paced: the line time with a margin, plus the pacing gaps.
absl::Duration ModemChannel::WriteTime(size_t bytes) const {
  absl::Duration t = LineTime(bytes) * 1.5;
  if (options_.port.pacing.chunk_bytes > 0) {
    t += options_.port.pacing.gap *
         static_cast<double>((bytes + options_.port.pacing.chunk_bytes - 1) /
                             options_.port.pacing.chunk_bytes);
  }
  return t;
}

void ModemChannel::BeginCommand() {
  AtCommand& cmd = in_flight_->command;
  if (cmd.expect.echo.empty()) cmd.expect = ExpectationFor(cmd.text);
  absl::Duration timeout =
      cmd.timeout > absl::ZeroDuration() ? cmd.timeout : options_.port.command_timeout;
  std::string bytes = cmd.text + options_.port.terminator;
  // The deadline covers writing (paced at most chunk+gap per chunk) plus the
  // modem's answer.
  absl::Duration write_time = WriteTime(bytes.size());
  uint64_t seq = ++seq_;
  in_flight_started_ = clock_.Now();
  // The modem's line buffer ends with this command's terminator.
  raw_framer_.Reset();
  deadline_timer_.expires_after(ToChrono(timeout + write_time));
  deadline_timer_.async_wait([self = shared_from_this(), seq](const boost::system::error_code& ec) {
    if (!ec) self->OnCommandDeadline(seq);
  });
  auto expect = cmd.expect;
  StartWrite(
      std::move(bytes), true,
      [self = shared_from_this(), expect = std::move(expect)]() mutable {
        // From here on, lines belong to this command (oFono: only after its
        // terminator has been written).
        self->parser_.BeginCommand(std::move(expect));
      },
      nullptr);
}

void ModemChannel::StartWrite(std::string data, bool paced,
                              absl::AnyInvocable<void()> before_last_chunk,
                              absl::AnyInvocable<void()> written) {
  if (transcript_) transcript_->RecordTx(data);
  writing_ = true;
  write_buf_ = std::move(data);
  write_off_ = 0;
  write_chunk_ = paced ? options_.port.pacing.chunk_bytes : 0;
  before_last_chunk_ = std::move(before_last_chunk);
  write_done_ = std::move(written);
  WriteNextChunk();
}

void ModemChannel::WriteNextChunk() {
  size_t remaining = write_buf_.size() - write_off_;
  size_t n = (write_chunk_ == 0 || remaining <= write_chunk_) ? remaining : write_chunk_;
  if (write_off_ + n == write_buf_.size() && before_last_chunk_) {
    auto f = std::move(before_last_chunk_);
    before_last_chunk_ = nullptr;
    f();
  }
  uint64_t gen = generation_;
  port_->AsyncWrite(
      absl::string_view(write_buf_).substr(write_off_, n),
      [self = shared_from_this(), gen](const boost::system::error_code& ec, size_t written) {
        if (gen != self->generation_) return;
        if (ec) {
          self->PortLost(FromErrorCode(ec, absl::StrCat("write ", self->options_.port.device)));
          return;
        }
        self->write_off_ += written;
        if (self->write_off_ < self->write_buf_.size()) {
          self->pace_timer_.expires_after(ToChrono(self->options_.port.pacing.gap));
          self->pace_timer_.async_wait([self, gen](const boost::system::error_code& tec) {
            if (!tec && gen == self->generation_) self->WriteNextChunk();
          });
          return;
        }
        self->writing_ = false;
        self->write_buf_.clear();
        if (self->write_done_) {
          auto f = std::move(self->write_done_);
          self->write_done_ = nullptr;
          f();
        }
        self->Pump();
      });
}

void ModemChannel::CompleteInFlight(absl::StatusOr<AtReply> result) {
  deadline_timer_.cancel();
  ++seq_;
  auto p = std::move(*in_flight_);
  in_flight_.reset();
  Deliver(std::move(p.done), std::move(result));
  Pump();
}

void ModemChannel::OnCommandDeadline(uint64_t seq) {
  if (seq != seq_ || !in_flight_ || resyncing_) return;
  const std::string& text = in_flight_->command.text;
  ATB_LOG(WARNING) << name() << ": no final result within the deadline for " << Shown(text);
  parser_.Abandon();
  resync_needed_ = true;
  // A quoted command on a line without flow control may have lost its
  // closing quote; the modem would then take every later byte as quoted.
  quote_risk_ = quote_risk_ || (absl::StrContains(text, '"') && !options_.port.serial.rtscts);
  if (writing_) {
    // Still writing after the whole budget: the line is stuck (CTS low?).
    CompleteInFlight(absl::DeadlineExceededError(
        absl::StrCat(name(), ": could not write ", text.size(), " bytes in time (flow control?)")));
    PortLost(absl::UnavailableError("write stalled"));
    return;
  }
  absl::Duration waited = clock_.Now() - in_flight_started_;
  CompleteInFlight(absl::DeadlineExceededError(
      absl::StrCat(name(), ": no answer to ", Shown(text), " within ",
                   absl::FormatDuration(absl::Trunc(waited, absl::Milliseconds(1))))));
}

// ---- resynchronization ------------------------------------------------------

void ModemChannel::StartResync() {
  resyncing_ = true;
  // Raw console bytes may have left a partial line: erase it first.
  erase_bytes_ = raw_framer_.pending_bytes();
  probes_left_ = options_.max_resync_probes;
  probe_kind_ = quote_risk_ ? ProbeKind::kQuote : ProbeKind::kAt;
  ATB_LOG(INFO) << name() << ": resynchronizing"
                << (quote_risk_ ? " (closing a possibly open quote first)" : "");
  SendProbe();
}

void ModemChannel::SendProbe() {
  --probes_left_;
  std::string text = probe_kind_ == ProbeKind::kQuote ? "\"" : "AT";
  std::string bytes = std::string(erase_bytes_, '\x7f') + text + options_.port.terminator;
  const bool paced = erase_bytes_ > 0;
  erase_bytes_ = 0;
  uint64_t seq = ++seq_;
  deadline_timer_.expires_after(
      ToChrono(options_.resync_timeout + (paced ? WriteTime(bytes.size()) : absl::ZeroDuration())));
  deadline_timer_.async_wait([self = shared_from_this(), seq](const boost::system::error_code& ec) {
    if (!ec) self->OnProbeDeadline(seq);
  });
  at::CommandExpectation expect;
  expect.echo = text;
  StartWrite(
      std::move(bytes), paced,
      [self = shared_from_this(), expect = std::move(expect)]() mutable {
        self->parser_.BeginCommand(std::move(expect));
      },
      nullptr);
}

void ModemChannel::OnProbeComplete(const at::Response& response) {
  deadline_timer_.cancel();
  ++seq_;
  if (probe_kind_ == ProbeKind::kAt && response.final.ok()) {
    resyncing_ = false;
    resync_needed_ = false;
    quote_risk_ = false;
    raw_framer_.Reset();  // The modem's line is empty again.
    ATB_LOG(INFO) << name() << ": back in sync";
    Pump();
    return;
  }
  if (probe_kind_ == ProbeKind::kQuote) quote_risk_ = false;
  probe_kind_ = ProbeKind::kAt;
  if (probes_left_ <= 0) {
    OnProbeDeadline(seq_);
    return;
  }
  // Wait for any write of the previous probe to finish before the next.
  if (writing_) {
    write_done_ = [self = shared_from_this()] { self->SendProbe(); };
  } else {
    SendProbe();
  }
}

void ModemChannel::OnProbeDeadline(uint64_t seq) {
  if (seq != seq_ || !resyncing_) return;
  // Whatever was awaited (a stale final, or ours) is not coming: forget it.
  parser_.Reset();
  if (probes_left_ <= 0 || writing_) {
    resyncing_ = false;
    PortLost(absl::UnavailableError(writing_ ? "write stalled during resynchronization"
                                             : "modem does not answer AT after a timeout"));
    return;
  }
  // An unanswered AT on a line without flow control may mean the modem is
  // inside a quoted string (ours or one whose closing quote was lost).
  if (probe_kind_ == ProbeKind::kAt && !options_.port.serial.rtscts) {
    probe_kind_ = ProbeKind::kQuote;
  } else {
    probe_kind_ = ProbeKind::kAt;
  }
  SendProbe();
}

// ---- exclusive use and watchers --------------------------------------------

void ModemChannel::Lock(absl::AnyInvocable<void()> granted) {
  if (!locked_) {
    locked_ = true;
    asio::post(io_, std::move(granted));
  } else {
    lock_waiters_.push_back(std::move(granted));
  }
}

void ModemChannel::Unlock() {
  if (lock_waiters_.empty()) {
    locked_ = false;
    return;
  }
  auto next = std::move(lock_waiters_.front());
  lock_waiters_.pop_front();
  asio::post(io_, std::move(next));
}

int ModemChannel::AddWatcher(std::weak_ptr<ConsoleWatcher> watcher) {
  int id = next_watcher_id_++;
  watchers_[id] = std::move(watcher);
  return id;
}

void ModemChannel::RemoveWatcher(int id) { watchers_.erase(id); }

}  // namespace atbridge::agent
