#include "sim/modem_port.h"

#include <unistd.h>

#include <algorithm>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status/errors.h"
#include "common/status/status_macros.h"

namespace atbridge::sim {

namespace asio = boost::asio;

PortOptions PortOptions::FromOptions(const SimOptions& o) {
  PortOptions p;
  p.baud = o.baud;
  p.flow_control = o.flow_control;
  p.fifo_bytes = o.fifo_bytes;
  p.latency = std::chrono::milliseconds(o.latency_ms);
  p.unplug_after = o.unplug_after;
  p.replug_after = std::chrono::milliseconds(o.replug_after_ms);
  p.max_command = o.max_command;
  return p;
}

ModemPort::ModemPort(asio::io_context& io, const PortOptions& options, int index,
                     std::string link_path, std::unique_ptr<Modem> modem, Transcript* transcript,
                     PortWatcher* watcher, StateChangedFn on_state_changed)
    : io_(io),
      options_(options),
      index_(index),
      link_path_(std::move(link_path)),
      modem_(std::move(modem)),
      transcript_(transcript),
      watcher_(watcher),
      on_state_changed_(std::move(on_state_changed)),
      consume_timer_(io),
      framer_(at::CommandFramerOptions{options.max_command}),
      rx_filter_(options.max_command + 64),
      tx_timer_(io),
      latency_timer_(io),
      replug_timer_(io) {
  if (options_.baud > 0) {
    byte_time_ = std::chrono::nanoseconds(10'000'000'000LL / options_.baud);
    // About 2 ms of line time per write.
    tx_chunk_ = std::max<size_t>(1, static_cast<size_t>(options_.baud) / 10 / 500);
  }
}

ModemPort::~ModemPort() {
  try {
    Shutdown();
  } catch (...) {  // NOLINT(bugprone-empty-catch): nothing to do in a destructor.
  }
}

absl::Status ModemPort::Plug() {
  if (plugged_) return absl::OkStatus();
  ASSIGN_OR_RETURN(pty::Pty pty, pty::Pty::Open(/*non_blocking_master=*/true));
  auto master = std::make_unique<asio::posix::stream_descriptor>(io_);
  boost::system::error_code ec;
  int fd = pty.ReleaseMaster();
  master->assign(fd, ec);
  if (ec) {
    close(fd);
    return FromErrorCode(ec, absl::StrCat("assign pty master of ", pty.slave_path()));
  }
  master->non_blocking(true, ec);
  if (ec) return FromErrorCode(ec, absl::StrCat("non-blocking pty master of ", pty.slave_path()));
  RETURN_IF_ERROR(pty::ReplaceSymlink(pty.slave_path(), link_path_));
  pty_ = std::move(pty);
  master_ = std::move(master);
  ++generation_;
  plugged_ = true;
  read_failed_ = false;
  if (watcher_ != nullptr) {
    watch_ = watcher_->Add(&pty_, [this] { Note("a tool opened the port"); });
  }
  StartRead();
  return absl::OkStatus();
}

void ModemPort::Close() {
  ++generation_;
  plugged_ = false;
  if (transcript_ != nullptr) {
    std::string held = rx_filter_.Flush();
    if (!held.empty()) transcript_->Record(index_, "rx", held);
  }
  if (watcher_ != nullptr) watcher_->Remove(watch_);
  watch_ = 0;
  if (!pty_.slave_path().empty()) pty::RemoveSymlinkIfPointsTo(pty_.slave_path(), link_path_);
  boost::system::error_code ec;
  consume_timer_.cancel();
  tx_timer_.cancel();
  latency_timer_.cancel();
  if (master_) {
    master_->close(ec);  // Pending operations end with operation_aborted.
    master_.reset();
  }
  pty_.Close();  // Clients holding the slave now see hangup / EIO.
  rx_queue_.clear();
  pending_.clear();
  framer_.Reset();
  tx_queue_.clear();
  tx_inflight_.clear();
  reading_ = false;
  writing_ = false;
  busy_ = false;
  response_pending_ = false;
  consume_timer_armed_ = false;
}

void ModemPort::Shutdown() {
  replug_timer_.cancel();
  Close();
}

void ModemPort::Unplug() {
  ATB_LOG(INFO) << "modem" << index_ << " unplugged after " << commands_seen_ << " commands";
  Note("unplugged");
  Close();
  modem_->Reboot();
  if (options_.replug_after.count() <= 0) return;
  replug_timer_.expires_after(options_.replug_after);
  replug_timer_.async_wait([this, gen = generation_](const boost::system::error_code& ec) {
    if (ec || gen != generation_) return;
    absl::Status s = Plug();
    if (!s.ok()) {
      ATB_LOG(ERROR) << "modem" << index_ << " replug failed: " << s;
      return;
    }
    ATB_LOG(INFO) << "modem" << index_ << " replugged at " << pty_.slave_path();
    Note(absl::StrCat("replugged at ", pty_.slave_path()));
  });
}

void ModemPort::Note(const std::string& text) {
  if (transcript_ != nullptr) transcript_->Record(index_, "note", text);
}

void ModemPort::StartRead() {
  if (!plugged_ || reading_ || read_failed_) return;
  size_t room = read_buf_.size();
  if (options_.flow_control && (paced() || busy_)) {
    // RTS deasserted while the FIFO is full: the writer waits in the pty.
    if (rx_queue_.size() >= options_.fifo_bytes) return;
    room = std::min(room, options_.fifo_bytes - rx_queue_.size());
  }
  reading_ = true;
  master_->async_read_some(
      asio::buffer(read_buf_.data(), room),
      [this, gen = generation_](const boost::system::error_code& ec, size_t n) {
        if (gen != generation_) return;
        reading_ = false;
        OnRead(ec, n);
      });
}

bool ModemPort::ToolPresent() {
  // Once let go, a tool is known to be there until the hangup; only while
  // the slave is held does the answer cost syscalls (pending opens, then the
  // kernel, which also knows of a tool that opened unreported).
  if (watch_ == 0 || !pty_.holds_slave()) return true;
  return watcher_->ToolPresent(watch_);
}

void ModemPort::OnHangup() {
  absl::Status s = watcher_->OnHangup(watch_);
  if (!s.ok()) {
    ATB_LOG(WARNING) << "modem" << index_ << ": after the last tool closed " << pty_.slave_path()
                     << ": " << s << "; not reading it any more";
    read_failed_ = true;
    return;
  }
  // Nobody was there: what was still on its way to the tool is gone. A write
  // in progress is cancelled (its handler finishes the command); an answer
  // waiting out its latency or the state file is dropped when it is due.
  size_t dropped = tx_queue_.size();
  tx_queue_.clear();
  ++answer_epoch_;
  if (writing_) {
    boost::system::error_code ignored;
    master_->cancel(ignored);
  }
  Note(dropped > 0 ? absl::StrCat("the last tool closed the port; ", dropped,
                                  " answer bytes nobody read dropped, line reset")
                   : "the last tool closed the port; line reset");
  StartRead();
}

void ModemPort::OnRead(const boost::system::error_code& ec, size_t n) {
  // An open that already happened is known before anything is answered (a
  // tool's IN_OPEN is queued before its first write).
  if (watch_ != 0 && pty_.holds_slave()) watcher_->TakeOpens();
  if (ec) {
    if (ec == asio::error::operation_aborted) return;
    if (watch_ != 0 && (ec == asio::error::eof ||
                        ec == boost::system::error_code(EIO, boost::system::system_category()))) {
      OnHangup();
      return;
    }
    // Cannot happen while a slave fd is held; stop rather than spin.
    ATB_LOG(WARNING) << "modem" << index_ << ": read from pty master " << pty_.slave_path()
                     << " failed: " << ec.message() << "; not reading it any more";
    read_failed_ = true;
    return;
  }
  if (watch_ != 0 && n > 0 && pty_.holds_slave()) {
    // Bytes while the slave is ours: a tool opened the port while the watch
    // was paused for OnHangup's reopen, so inotify never said so (what the
    // last tool wrote was all read before its close read as EIO). Let go as
    // TakeOpens would: its answers go out and its close is a hangup.
    pty_.LetGo();
    Note("a tool opened the port (seen by its first bytes)");
  }
  const uint64_t gen = generation_;
  const Clock::time_point now = Clock::now();
  // A copy: read_buf_ belongs to the next read (defensive; Pump() never
  // starts one, but Asio may complete a started read speculatively).
  const std::string data(read_buf_.data(), n);
  absl::string_view chunk(data);
  if (transcript_ != nullptr) {
    std::string record = rx_filter_.Feed(chunk);
    if (!record.empty()) transcript_->Record(index_, "rx", record);
  }
  // Catch up with the drain first, so the FIFO level is the one at arrival.
  Pump(now);
  if (gen != generation_) return;
  size_t accepted = n;
  if (!options_.flow_control && paced()) {
    size_t level = rx_queue_.size();
    accepted = level >= options_.fifo_bytes ? 0 : std::min(n, options_.fifo_bytes - level);
  }
  if (rx_queue_.empty()) consume_next_ = now + byte_time_;
  rx_queue_.append(chunk.data(), accepted);
  uint64_t dropped = n - accepted;
  Pump(now);
  if (gen != generation_) return;
  if (!options_.flow_control && !paced() && rx_queue_.size() > options_.fifo_bytes) {
    // Unpaced: the bytes behind a command that is now executing arrived
    // while the AT host was not reading; the FIFO keeps what fits.
    dropped += rx_queue_.size() - options_.fifo_bytes;
    rx_queue_.resize(options_.fifo_bytes);
  }
  if (dropped > 0) {
    dropped_bytes_ += dropped;
    Note(absl::StrCat("dropped ", dropped, " bytes (RX FIFO overrun)"));
  }
  StartRead();
}

void ModemPort::Pump(Clock::time_point now) {
  const uint64_t gen = generation_;
  while (gen == generation_ && plugged_ && !busy_) {
    if (!pending_.empty()) {
      at::FramerEvent event = std::move(pending_.front());
      pending_.pop_front();
      HandleEvent(event);
      continue;
    }
    if (rx_queue_.empty()) break;
    size_t run = rx_queue_.size();
    if (paced()) {
      if (consume_next_ > now) break;
      auto due = static_cast<size_t>((now - consume_next_) / byte_time_) + 1;
      run = std::min(run, due);
    }
    // Commands end only at CR/LF: feed up to the next one, so at most one
    // command completes per run and later bytes wait while it executes.
    size_t term = rx_queue_.find_first_of("\r\n");
    if (term != std::string::npos) run = std::min(run, term + 1);
    events_.clear();
    framer_.Feed(absl::string_view(rx_queue_.data(), run), &events_);
    rx_queue_.erase(0, run);
    if (paced()) consume_next_ += run * byte_time_;
    for (auto& e : events_) pending_.push_back(std::move(e));
  }
  if (gen != generation_ || !plugged_) return;
  if (paced() && !busy_ && !rx_queue_.empty()) {
    ArmConsumeTimer(std::max(consume_next_, now + std::chrono::milliseconds(1)));
  }
}

void ModemPort::ArmConsumeTimer(Clock::time_point at) {
  if (consume_timer_armed_ && consume_timer_at_ <= at) return;
  consume_timer_armed_ = true;
  consume_timer_at_ = at;
  consume_timer_.expires_at(at);
  consume_timer_.async_wait([this, gen = generation_](const boost::system::error_code& ec) {
    if (gen != generation_ || ec == asio::error::operation_aborted) return;
    consume_timer_armed_ = false;
    Pump(Clock::now());
    StartRead();  // The FIFO has room again.
  });
}

void ModemPort::HandleEvent(const at::FramerEvent& event) {
  ++commands_seen_;

  if (options_.unplug_after > 0 && !unplugged_once_ &&
      commands_seen_ == static_cast<uint64_t>(options_.unplug_after)) {
    unplugged_once_ = true;
    Unplug();
    return;
  }
  Modem::Reply reply = event.type == at::FramerEvent::Type::kCommand
                           ? modem_->HandleCommandLine(event.command)
                           : modem_->HandleOverflow();
  if (!reply.answered) {
    if (reply.state_changed && on_state_changed_) on_state_changed_(*this, [] {});
    Note("answer lost (flaky)");
    return;
  }
  busy_ = true;
  const uint64_t epoch = answer_epoch_;
  if (reply.state_changed && on_state_changed_) {
    // Like a modem writing NVM: the answer goes out once the change is
    // persisted.
    on_state_changed_(*this, [this, gen = generation_, epoch, bytes = std::move(reply.bytes)] {
      if (gen == generation_) Answer(bytes, epoch);
    });
  } else {
    Answer(reply.bytes, epoch);
  }
}

void ModemPort::Answer(absl::string_view bytes, uint64_t epoch) {
  if (options_.latency.count() <= 0) {
    Send(bytes, epoch);
    return;
  }
  latency_timer_.expires_after(options_.latency);
  latency_timer_.async_wait([this, gen = generation_, epoch,
                             text = std::string(bytes)](const boost::system::error_code& ec) {
    if (ec || gen != generation_) return;
    Send(text, epoch);
  });
}

void ModemPort::Send(absl::string_view bytes, uint64_t epoch) {
  if (epoch != answer_epoch_ || !ToolPresent()) {
    // The port is closed on the host side: a real port's driver drops it.
    if (!bytes.empty())
      Note(absl::StrCat("no tool on the port; ", bytes.size(), " answer bytes dropped"));
  } else {
    tx_queue_.append(bytes.data(), bytes.size());
  }
  // Either way the command is over: the AT host reads again.
  response_pending_ = true;
  PumpTx();
}

void ModemPort::PumpTx() {
  if (!plugged_ || writing_) return;
  if (tx_queue_.empty()) {
    if (response_pending_) {
      // The answer is out: the AT host reads again; the FIFO starts draining
      // now (it did not while the command executed).
      response_pending_ = false;
      busy_ = false;
      const Clock::time_point now = Clock::now();
      consume_next_ = now + byte_time_;
      Pump(now);
      StartRead();
    }
    return;
  }
  size_t chunk = tx_queue_.size();
  if (paced()) {
    const Clock::time_point now = Clock::now();
    if (tx_next_ > now) {
      tx_timer_.expires_at(tx_next_);
      tx_timer_.async_wait([this, gen = generation_](const boost::system::error_code& ec) {
        if (ec || gen != generation_) return;
        PumpTx();
      });
      return;
    }
    chunk = std::min(chunk, tx_chunk_);
    tx_next_ = std::max(tx_next_, now) + chunk * byte_time_;
  }
  if (!ToolPresent()) {
    Note(absl::StrCat("no tool on the port; ", tx_queue_.size(), " answer bytes dropped"));
    tx_queue_.clear();
    PumpTx();
    return;
  }
  tx_inflight_ = tx_queue_.substr(0, chunk);
  tx_queue_.erase(0, chunk);
  if (transcript_ != nullptr) transcript_->Record(index_, "tx", tx_inflight_);
  writing_ = true;
  asio::async_write(*master_, asio::buffer(tx_inflight_),
                    [this, gen = generation_](const boost::system::error_code& ec, size_t) {
                      if (gen != generation_) return;
                      writing_ = false;
                      // operation_aborted: cancelled by OnHangup, which
                      // cleared the queue; PumpTx finishes the command.
                      if (ec && ec != asio::error::operation_aborted) {
                        ATB_LOG(WARNING)
                            << "modem" << index_ << ": write to pty master failed: " << ec.message()
                            << "; answer dropped";
                        tx_queue_.clear();
                      }
                      PumpTx();
                    });
}

}  // namespace atbridge::sim
