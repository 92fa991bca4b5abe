// console DEVICE: an interactive raw console to a remote modem. The terminal
// goes raw; Ctrl-] leaves (like telnet/picocom). Without the lease (someone
// else holds it) the console is a read-only watcher. With stdin not a
// terminal (a pipe), input is sent as read, and after its end the session
// stays until every command line sent has its final result (or
// --at-timeout passes), so a script's last reply is not lost.
#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <csignal>
#include <memory>

#include "absl/strings/str_cat.h"
#include "client/commands/common.h"
#include "client/console/at_tracker.h"
#include "client/console/remote_session.h"
#include "client/core/parse.h"

namespace atbridge::client {

namespace {

namespace asio = boost::asio;

constexpr char kEscape = 0x1d;  // Ctrl-]

// Puts a terminal in raw mode and restores it.
class RawTerminal {
 public:
  explicit RawTerminal(int fd) : fd_(fd) {
    if (tcgetattr(fd_, &saved_) != 0) return;
    struct termios raw = saved_;
    cfmakeraw(&raw);
    active_ = tcsetattr(fd_, TCSANOW, &raw) == 0;
  }
  ~RawTerminal() {
    if (active_) tcsetattr(fd_, TCSANOW, &saved_);
  }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;
  bool active() const { return active_; }

 private:
  int fd_;
  struct termios saved_ {};
  bool active_ = false;
};

// Blocking write of everything (stdout may share a non-blocking file
// description with stdin on a terminal: wait for room instead of dropping).
void WriteAll(int fd, const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      struct pollfd p = {.fd = fd, .events = POLLOUT, .revents = 0};
      poll(&p, 1, -1);
      continue;
    }
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

// Restores fd 0's file status flags (Asio makes it non-blocking, and a
// terminal shares that with the shell).
class StdinFlags {
 public:
  StdinFlags() : flags_(fcntl(0, F_GETFL)) {}
  ~StdinFlags() {
    if (flags_ >= 0) fcntl(0, F_SETFL, flags_);
  }
  StdinFlags(const StdinFlags&) = delete;
  StdinFlags& operator=(const StdinFlags&) = delete;

 private:
  int flags_;
};

struct ConsoleOptions {
  std::string device;
  bool read_only = false;
  std::string reason;
  absl::Duration at_timeout = absl::Seconds(10);
};

class Console {
 public:
  Console(CommandContext& ctx, Backend& backend, const ConsoleOptions& o)
      : ctx_(ctx),
        options_(o),
        stdin_(io_),
        signals_(io_, SIGINT, SIGTERM, SIGHUP),
        drain_timer_(io_),
        session_(io_, backend,
                 {.on_opened = [this](const v1::ConsoleEvent& ev) { OnOpened(ev); },
                  .on_data = [this](const std::string& data) { OnData(data); },
                  .on_event = [this](const v1::ConsoleEvent& ev) { OnEvent(ev); },
                  .on_closed = [this](absl::Status s) { OnClosed(std::move(s)); }}) {}

  absl::Status Run(const v1::DeviceRef& ref) {
    StdinFlags restore_flags;
    if (ctx_.stdin_tty()) raw_ = std::make_unique<RawTerminal>(0);
    int in = dup(0);
    boost::system::error_code ec;
    stdin_.assign(in, ec);
    if (ec) {
      // A regular file: epoll cannot watch it; read it whole instead.
      close(in);
      stdin_is_file_ = true;
    }
    signals_.async_wait([this](const boost::system::error_code& e, int) {
      if (e) return;
      interrupted_ = true;
      session_.Close();
    });
    absl::Status s =
        session_.Open(ref, !options_.read_only,
                      options_.reason.empty() ? "atbridgectl console" : options_.reason);
    if (!s.ok()) return s;
    io_.run();
    raw_.reset();
    return result_;
  }

 private:
  void Notice(const std::string& text) {
    // In raw mode the terminal needs CR LF.
    WriteAll(2, raw_ && raw_->active() ? absl::StrCat("\r\n[atbridgectl] ", text, "\r\n")
                                       : absl::StrCat("atbridgectl: ", text, "\n"));
  }

  void OnOpened(const v1::ConsoleEvent& ev) {
    std::string mode = session_.writable() ? "read-write" : "read-only (watching)";
    std::string detail = ev.detail().empty() ? "" : absl::StrCat("; ", ev.detail());
    Notice(absl::StrCat("console on ", options_.device, ": ", mode, detail,
                        "; press Ctrl-] to leave"));
    ReadStdin();
  }

  void OnData(const std::string& data) {
    WriteAll(1, data);
    if (!ctx_.stdin_tty()) {
      tracker_.Received(data);
      if (draining_ && tracker_.pending() == 0) session_.Close();
    }
    session_.ResumeReading();
  }

  void OnEvent(const v1::ConsoleEvent& ev) {
    switch (ev.kind()) {
      case v1::ConsoleEvent::DROPPED:
        Notice(absl::StrCat("fell behind: ", ev.dropped_bytes(), " bytes of output dropped"));
        break;
      case v1::ConsoleEvent::PORT_DOWN:
        Notice(absl::StrCat("port down", ev.detail().empty() ? "" : ": ", ev.detail(),
                            "; waiting for it to come back"));
        break;
      case v1::ConsoleEvent::PORT_UP:
        Notice("port up again");
        break;
      case v1::ConsoleEvent::LEASE_LOST:
        Notice(absl::StrCat("lease lost, now read-only", ev.detail().empty() ? "" : ": ",
                            ev.detail()));
        break;
      default:
        if (!ev.detail().empty()) Notice(ev.detail());
        break;
    }
  }

  void OnClosed(absl::Status s) {
    if (s.ok() && interrupted_) {
      s = WithExitCode(absl::CancelledError("interrupted by a signal"), kExitInterrupted);
    } else if (s.ok() && !ctx_.stdin_tty() && !options_.read_only && discarded_bytes_ > 0) {
      // A script must be able to tell that its commands never went out.
      s = absl::FailedPreconditionError(
          absl::StrCat("the session was read-only: ", discarded_bytes_,
                       " byte(s) of piped input were not sent"));
      s = WithHint(s, "someone else holds the port's lease; see 'atbridgectl lease list'");
    } else if (s.ok() && unanswered_ > 0) {
      s = absl::DeadlineExceededError(
          absl::StrCat("no final result for ", unanswered_, " command(s) within ",
                       absl::FormatDuration(options_.at_timeout), " after the end of input"));
      s = WithHint(s, "raise --at-timeout, or use 'atbridgectl at' for scripted commands");
    }
    result_ = WithWhat(std::move(s), absl::StrCat("console on ", options_.device));
    drain_timer_.cancel();
    signals_.cancel();
    boost::system::error_code ec;
    stdin_.close(ec);
    io_.stop();
  }

  void ReadStdin() {
    if (stdin_is_file_) {
      std::string all;
      char buf[4096];
      ssize_t n;
      while ((n = read(0, buf, sizeof(buf))) > 0) all.append(buf, static_cast<size_t>(n));
      Input(std::move(all), /*eof=*/true);
      return;
    }
    stdin_.async_read_some(asio::buffer(buf_),
                           [this](const boost::system::error_code& ec, size_t n) {
                             if (ec) {
                               Input("", /*eof=*/true);
                               return;
                             }
                             Input(std::string(buf_.data(), n), /*eof=*/false);
                           });
  }

  // Sends typed bytes; the escape character ends the session.
  void Input(std::string bytes, bool eof) {
    bool leave = eof;
    if (size_t esc = bytes.find(kEscape); esc != std::string::npos) {
      bytes.resize(esc);
      leave = true;
    }
    auto next = [this, leave](bool ok) {
      if (!ok) {
        session_.Close();
      } else if (leave) {
        Leave();
      } else {
        ReadStdin();
      }
    };
    if (bytes.empty()) {
      next(true);
      return;
    }
    if (!session_.writable()) {
      if (!warned_read_only_) {
        warned_read_only_ = true;
        Notice("read-only: typed input is discarded");
      }
      discarded_bytes_ += bytes.size();
      next(true);
      return;
    }
    if (!ctx_.stdin_tty()) tracker_.Sent(bytes);
    session_.Write(std::move(bytes), next);
  }

  // End of input (or the escape): in pipe mode, wait for the answers first.
  void Leave() {
    if (ctx_.stdin_tty() || tracker_.pending() == 0) {
      session_.Close();
      return;
    }
    draining_ = true;
    drain_timer_.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        absl::ToChronoNanoseconds(options_.at_timeout)));
    drain_timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec || session_.closed()) return;
      unanswered_ = tracker_.pending();
      session_.Close();
    });
  }

  CommandContext& ctx_;
  ConsoleOptions options_;
  asio::io_context io_;
  asio::posix::stream_descriptor stdin_;
  asio::signal_set signals_;
  asio::steady_timer drain_timer_;
  RemoteSession session_;
  AtTracker tracker_;         // Pipe mode: commands sent and not yet answered.
  bool draining_ = false;     // Input ended; waiting for the answers.
  int unanswered_ = 0;        // Commands still unanswered at --at-timeout.
  bool interrupted_ = false;  // SIGINT/SIGTERM/SIGHUP.
  std::unique_ptr<RawTerminal> raw_;
  std::array<char, 4096> buf_;
  bool stdin_is_file_ = false;
  bool warned_read_only_ = false;
  absl::Status result_;
  size_t discarded_bytes_ = 0;  // Input not sent: the session was read-only.
};

absl::Status RunConsole(CommandContext& ctx, const ConsoleOptions& o) {
  ctx.RequireRole(o.read_only ? "viewer" : "operator");
  auto ref = ParseDeviceRef(o.device);
  if (!ref.ok()) return ref.status();
  auto backend = ctx.backend();
  if (!backend.ok()) return backend.status();
  Console console(ctx, **backend, o);
  return console.Run(*ref);
}

}  // namespace

void AddConsoleCommand(CLI::App& app, CommandContext& ctx) {
  auto o = std::make_shared<ConsoleOptions>();
  CLI::App* c = app.add_subcommand(
      "console",
      "interactive raw console to a device (terminal in raw mode; Ctrl-] leaves). Takes the "
      "port's lease for the session when it is free; otherwise watches read-only");
  c->add_option("DEVICE", o->device, "IMEI, agent/port or alias")->required();
  c->add_flag("--read-only", o->read_only, "only watch, never take the lease");
  c->add_option("--reason", o->reason, "lease reason shown to others");
  auto at_timeout = std::make_shared<std::string>();
  c->add_option(
      "--at-timeout", *at_timeout,
      "pipe mode: after the end of input, how long to wait for the answers (default 10s)");
  c->footer(
      "\nCtrl-] or the end of piped input leaves (exit 0); a signal (SIGINT, SIGTERM, SIGHUP)\n"
      "exits 130. Example: printf 'AT+CGSN\\r\\n' | atbridgectl console bench1/modem0");
  c->callback([&ctx, o, at_timeout] {
    ctx.SetAction([&ctx, o, at_timeout]() -> absl::Status {
      if (!at_timeout->empty()) {
        auto d = ParsePositiveDuration(*at_timeout);
        if (!d.ok()) return UsageError(absl::StrCat("--at-timeout: ", d.status().message()));
        o->at_timeout = *d;
      }
      return RunConsole(ctx, *o);
    });
  });
}

}  // namespace atbridge::client
