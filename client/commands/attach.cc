// attach DEVICE --link PATH: a local pty linked at PATH, relayed both ways to
// the remote modem under a lease, until SIGINT/SIGTERM. Any serial tool
// (picocom, nrfcredstore, pyserial) uses PATH as if the board were local.
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

namespace atbridge::client {

namespace {

namespace asio = boost::asio;

struct AttachOptions {
  std::string device;
  std::string link;
  std::string reason;
};

// Relays: pty master -> stream (next pty read after the write is sent) and
// stream -> pty master (next stream read after the bytes are in the pty).
class Attach {
 public:
  Attach(CommandContext& ctx, Backend& backend, const AttachOptions& o)
      : ctx_(ctx),
        options_(o),
        master_(io_),
        signals_(io_, SIGINT, SIGTERM, SIGHUP),
        session_(io_, backend,
                 {.on_opened = [this](const v1::ConsoleEvent& ev) { OnOpened(ev); },
                  .on_data = [this](std::string data) { OnData(std::move(data)); },
                  .on_event = [this](const v1::ConsoleEvent& ev) { OnEvent(ev); },
                  .on_closed = [this](absl::Status s) { OnClosed(std::move(s)); }}) {}

  absl::Status Run(const v1::DeviceRef& ref) {
    auto link = PtyLink::Create(options_.link);
    if (!link.ok()) return WithWhat(link.status(), absl::StrCat("attach ", options_.device));
    link_ = *std::move(link);
    boost::system::error_code ec;
    master_.assign(link_->ReleaseMaster(), ec);
    if (ec) return absl::InternalError(absl::StrCat("watch the pty: ", ec.message()));
    signals_.async_wait([this](const boost::system::error_code& e, int) {
      if (!e) {
        stopping_ = true;
        session_.Close();
      }
    });
    absl::Status s = session_.Open(
        ref, /*write=*/true,
        options_.reason.empty() ? absl::StrCat("attach at ", options_.link) : options_.reason);
    if (!s.ok()) return WithWhat(s, absl::StrCat("attach ", options_.device));
    io_.run();
    master_.close(ec);
    link_.reset();  // Removes the link.
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
    ctx_.out() << "attached " << options_.device << " at " << options_.link << std::endl;
    ReadPty();
  }

  void ReadPty() {
    master_.async_read_some(
        asio::buffer(in_), [this](const boost::system::error_code& ec, size_t n) {
          if (ec) {
            if (ec != asio::error::operation_aborted && !session_.closed()) {
              error_ = absl::UnavailableError(absl::StrCat("read the pty: ", ec.message()));
              session_.Close();
            }
            return;
          }
          session_.Write(std::string(in_.data(), n), [this](bool ok) {
            if (ok) ReadPty();
          });
        });
  }

  void OnData(std::string data) {
    out_ = std::move(data);
    asio::async_write(master_, asio::buffer(out_),
                      [this](const boost::system::error_code& ec, size_t) {
                        if (ec) return;
                        session_.ResumeReading();
                      });
  }

  void OnEvent(const v1::ConsoleEvent& ev) {
    switch (ev.kind()) {
      case v1::ConsoleEvent::LEASE_LOST:
        error_ = absl::FailedPreconditionError(
            absl::StrCat("the lease was lost", ev.detail().empty() ? "" : ": ", ev.detail()));
        session_.Close();
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
    io_.stop();
  }

  CommandContext& ctx_;
  AttachOptions options_;
  asio::io_context io_;
  std::unique_ptr<PtyLink> link_;
  asio::posix::stream_descriptor master_;
  asio::signal_set signals_;
  RemoteSession session_;
  std::array<char, 4096> in_;
  std::string out_;
  bool stopping_ = false;
  absl::Status error_;
  absl::Status result_;
};

absl::Status RunAttach(CommandContext& ctx, const AttachOptions& o) {
  ctx.RequireRole("operator");
  auto ref = ParseDeviceRef(o.device);
  if (!ref.ok()) return ref.status();
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
