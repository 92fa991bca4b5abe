// attach DEVICE --link PATH: a local pty linked at PATH, relayed both ways to
// the remote modem under a lease, until SIGINT/SIGTERM. Any serial tool
// (picocom, nrfcredstore, pyserial) uses PATH as if the board were local.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/write.hpp>
#include <csignal>
#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "client/commands/common.h"
#include "client/console/pty_link.h"
#include "client/console/remote_session.h"
#include "client/core/parse.h"
#include "common/pty/pty.h"

namespace atbridge::client {

namespace {

namespace asio = boost::asio;

struct AttachOptions {
  std::string device;
  std::string link;
  std::string reason;
};

// Relays: pty master -> stream (next pty read after the write is sent) and
// stream -> pty master (next stream read after the bytes are in the pty, or
// dropped because no tool has the port open). The pty behaves like a real
// serial port (console/pty_link.h): each tool gets a fresh line, and output
// that arrives while no tool has the port open is dropped.
class Attach {
 public:
  Attach(CommandContext& ctx, Backend& backend, const AttachOptions& o)
      : ctx_(ctx),
        options_(o),
        master_(io_),
        tool_watch_(io_),
        signals_(io_, SIGINT, SIGTERM, SIGHUP),
        session_(io_, backend,
                 {.on_opened = [this](const v1::ConsoleEvent& ev) { OnOpened(ev); },
                  .on_data = [this](std::string data) { OnData(std::move(data)); },
                  .on_event = [this](const v1::ConsoleEvent& ev) { OnEvent(ev); },
                  .on_closed = [this](absl::Status s) { OnClosed(std::move(s)); }}) {}

  absl::Status Run(const v1::DeviceRef& ref) {
    const std::string what = absl::StrCat("attach ", options_.device);
    auto link = PtyLink::Create(options_.link);
    if (!link.ok()) return WithWhat(link.status(), what);
    link_ = *std::move(link);
    boost::system::error_code ec;
    master_.assign(link_->ReleaseMaster(), ec);
    if (ec)
      return WithWhat(absl::InternalError(absl::StrCat("watch the pty: ", ec.message())), what);
    // Asio closes what it is given: give it a duplicate of the watch fd.
    int watch_fd = fcntl(link_->watch_fd(), F_DUPFD_CLOEXEC, 0);
    if (watch_fd >= 0) tool_watch_.assign(watch_fd, ec);
    if (watch_fd < 0 || ec) {
      if (watch_fd >= 0) close(watch_fd);
      return WithWhat(absl::InternalError("watch the pty for tools opening it"), what);
    }
    signals_.async_wait([this](const boost::system::error_code& e, int) {
      if (!e) {
        stopping_ = true;
        session_.Close();
      }
    });
    absl::Status s = session_.Open(
        ref, /*write=*/true,
        options_.reason.empty() ? absl::StrCat("attach at ", options_.link) : options_.reason);
    if (!s.ok()) return WithWhat(s, what);
    io_.run();
    // The link and the pty's own slave fd go first; the master stays open
    // as long as the pty lives (console/pty_link.h).
    link_.reset();  // Removes the link.
    tool_watch_.close(ec);
    master_.close(ec);
    return result_;
  }

 private:
  void OnOpened(const v1::ConsoleEvent& ev) {
    if (!session_.writable()) {
      error_ = absl::FailedPreconditionError(
          ev.detail().empty() ? "the port is not writable for you" : ev.detail());
      session_.Close();
      return;
    }
    // Only now is the path ours to point at the pty.
    if (absl::Status s = link_->Link(); !s.ok()) {
      error_ = std::move(s);
      session_.Close();
      return;
    }
    ctx_.out() << "attached " << options_.device << " at " << options_.link << std::endl;
    WatchTools();
    ReadPty();
  }

  // Tools opening the port, as soon as they do.
  void WatchTools() {
    tool_watch_.async_wait(asio::posix::descriptor_base::wait_read,
                           [this](const boost::system::error_code& ec) {
                             if (ec || session_.closed()) return;
                             NoteOpens();
                             WatchTools();
                           });
  }

  void NoteOpens() {
    if (link_->TakeOpens()) drop_noticed_ = false;
  }

  void ReadPty() {
    master_.async_read_some(asio::buffer(in_), [this](const boost::system::error_code& ec,
                                                      size_t n) {
      NoteOpens();  // An open that already happened is known before anything else.
      if (ec == asio::error::operation_aborted || session_.closed()) return;
      if (ec == boost::system::errc::io_error || ec == asio::error::eof) {
        // The last tool closed the port: a fresh line for the next one,
        // and nothing queued for this one reaches it.
        if (absl::Status s = link_->OnHangup(); !s.ok()) {
          Fail(absl::InternalError(absl::StrCat("reset ", options_.link, ": ", s.message())));
          return;
        }
        if (writing_) drop_rest_ = true;
        ReadPty();
        return;
      }
      if (ec) {
        Fail(absl::UnavailableError(absl::StrCat("read from ", options_.link, ": ", ec.message())));
        return;
      }
      session_.Write(std::string(in_.data(), n), [this](bool ok) {
        if (ok) ReadPty();
      });
    });
  }

  void OnData(std::string data) {
    out_ = std::move(data);
    out_off_ = 0;
    WriteMaster();
  }

  // Writes out_ from out_off_, dropping what no tool is there to read.
  void WriteMaster() {
    NoteOpens();
    // Dropped only when the kernel agrees nobody is there; a failed check
    // writes (a real tool must never lose output to a guess).
    absl::StatusOr<bool> present = link_->ToolPresent();
    const bool nobody = present.ok() && !*present;
    if (nobody || drop_rest_ || out_off_ >= out_.size()) {
      if (nobody && out_off_ < out_.size()) NoteDropped();
      drop_rest_ = false;
      out_.clear();
      out_off_ = 0;
      session_.ResumeReading();
      return;
    }
    writing_ = true;
    master_.async_write_some(
        asio::buffer(out_.data() + out_off_, out_.size() - out_off_),
        [this](const boost::system::error_code& ec, size_t n) {
          writing_ = false;
          if (ec == asio::error::operation_aborted || session_.closed()) {
            return;
          }
          if (ec) {
            Fail(absl::InternalError(absl::StrCat("write to ", options_.link, ": ", ec.message())));
            return;
          }
          out_off_ += n;
          WriteMaster();
        });
  }

  void NoteDropped() {
    if (drop_noticed_) return;
    drop_noticed_ = true;
    ctx_.err() << "atbridgectl: no tool has " << options_.link
               << " open: modem output is dropped until one opens it, as a closed serial port "
                  "drops it"
               << std::endl;
  }

  void Fail(absl::Status s) {
    if (error_.ok()) error_ = std::move(s);
    session_.Close();
  }

  void OnEvent(const v1::ConsoleEvent& ev) {
    switch (ev.kind()) {
      case v1::ConsoleEvent::LEASE_LOST:
        Fail(absl::FailedPreconditionError(
            absl::StrCat("the lease was lost", ev.detail().empty() ? "" : ": ", ev.detail())));
        break;
      case v1::ConsoleEvent::DROPPED:
        ctx_.err() << "atbridgectl: " << ev.dropped_bytes()
                   << " bytes of modem output were dropped (nobody read " << options_.link << ")"
                   << std::endl;
        break;
      case v1::ConsoleEvent::PORT_DOWN:
        ctx_.err() << "atbridgectl: the remote port went down" << (ev.detail().empty() ? "" : ": ")
                   << ev.detail() << std::endl;
        break;
      case v1::ConsoleEvent::PORT_UP:
        ctx_.err() << "atbridgectl: the remote port is back" << std::endl;
        break;
      default:
        if (!ev.detail().empty()) ctx_.err() << "atbridgectl: " << ev.detail() << std::endl;
        break;
    }
  }

  void OnClosed(absl::Status s) {
    if (error_.ok() && s.ok() && !stopping_) {
      error_ = absl::UnavailableError("the remote side ended the session");
    }
    result_ =
        WithWhat(error_.ok() ? std::move(s) : error_, absl::StrCat("attach ", options_.device));
    signals_.cancel();
    boost::system::error_code ec;
    master_.cancel(ec);
    tool_watch_.cancel(ec);
    io_.stop();
  }

  CommandContext& ctx_;
  AttachOptions options_;
  asio::io_context io_;
  std::unique_ptr<PtyLink> link_;
  asio::posix::stream_descriptor master_;
  asio::posix::stream_descriptor tool_watch_;
  asio::signal_set signals_;
  RemoteSession session_;
  std::array<char, 4096> in_;
  std::string out_;            // Modem output being written to the pty.
  size_t out_off_ = 0;         // How much of out_ is written.
  bool writing_ = false;       // A write to the master is in flight.
  bool drop_rest_ = false;     // The tool left mid-write: drop the rest of out_.
  bool drop_noticed_ = false;  // Told the user about dropping since the last open.
  bool stopping_ = false;
  absl::Status error_;
  absl::Status result_;
};

absl::Status RunAttach(CommandContext& ctx, const AttachOptions& o) {
  ctx.RequireRole("operator");
  auto ref = ParseDeviceRef(o.device);
  if (!ref.ok()) return ref.status();
  const std::string what = absl::StrCat("attach ", o.device);
  // One attach per path: a second one must not touch the first one's link.
  auto claim = pty::PathClaim::Claim(o.link, "atbridgectl attach");
  if (!claim.ok()) {
    return WithHint(WithWhat(claim.status(), what),
                    "stop that attach first (it removes its link when it ends), or choose "
                    "another --link");
  }
  // A path that is not a symlink is never replaced: say so before taking
  // the port's lease.
  struct stat st;
  if (lstat(o.link.c_str(), &st) == 0 && !S_ISLNK(st.st_mode)) {
    return WithHint(WithWhat(absl::AlreadyExistsError(absl::StrCat(
                                 o.link, " exists and is not a symlink; refusing to replace it")),
                             what),
                    "choose another --link, e.g. /tmp/ttyNRF0");
  }
  auto backend = ctx.backend();
  if (!backend.ok()) return backend.status();
  Attach attach(ctx, **backend, o);
  return attach.Run(*ref);
}

}  // namespace

void AddAttachCommand(CLI::App& app, CommandContext& ctx) {
  auto o = std::make_shared<AttachOptions>();
  CLI::App* a = app.add_subcommand(
      "attach",
      "make a remote modem a local serial port: a pty linked at --link PATH, relayed under the "
      "port's lease until SIGINT/SIGTERM");
  a->add_option("DEVICE", o->device, "IMEI, agent/port or alias")->required();
  a->add_option("--link", o->link, "path of the local port, e.g. /tmp/ttyNRF0")->required();
  a->add_option("--reason", o->reason, "lease reason shown to others");
  a->footer(
      "\nPrints 'attached DEVICE at PATH' once usable. Example:\n"
      "  atbridgectl attach bench1/modem0 --link /tmp/ttyNRF0 &\n"
      "  picocom -b 115200 /tmp/ttyNRF0        # or: nrfcredstore /tmp/ttyNRF0 list");
  a->callback([&ctx, o] { ctx.SetAction([&ctx, o] { return RunAttach(ctx, *o); }); });
}

}  // namespace atbridge::client
