#include "sim/simulator.h"

#include <signal.h>

#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <filesystem>
#include <random>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/pty/pty.h"
#include "common/status/errors.h"
#include "common/status/status_macros.h"
#include "sim/identity.h"

namespace atbridge::sim {

Simulator::Simulator(const SimOptions& options) : options_(options) {}

Simulator::~Simulator() {
  // Ports close their ptys and remove their links.
  ports_.clear();
}

absl::StatusOr<std::unique_ptr<Simulator>> Simulator::Create(const SimOptions& options) {
  RETURN_IF_ERROR(ValidateSimOptions(options));
  std::unique_ptr<Simulator> sim(new Simulator(options));

  std::error_code ec;
  std::filesystem::create_directories(options.link_dir, ec);
  if (ec) return FromErrorCode(ec, absl::StrCat("create link dir ", options.link_dir));
  std::filesystem::path dir = std::filesystem::canonical(options.link_dir, ec);
  if (ec) return FromErrorCode(ec, absl::StrCat("resolve link dir ", options.link_dir));
  sim->link_dir_ = dir.string();

  uint64_t base = 0;
  if (options.imei_base.empty()) {
    base = DeriveImeiBase(sim->link_dir_);
  } else {
    ASSIGN_OR_RETURN(base, ParseImeiBase(options.imei_base));
  }

  if (!options.state_file.empty()) {
    ASSIGN_OR_RETURN(sim->state_file_, StateFile::Open(options.state_file));
  }
  if (!options.transcript.empty()) {
    ASSIGN_OR_RETURN(sim->transcript_, Transcript::Open(options.transcript));
  }

  // One watcher for all ports: each behaves like a real serial port across
  // a tool's open and close. Without inotify, the held-slave behaviour.
  absl::StatusOr<std::unique_ptr<PortWatcher>> watcher = PortWatcher::Create(sim->io_);
  if (watcher.ok()) {
    sim->port_watcher_ = *std::move(watcher);
  } else {
    ATB_LOG(WARNING) << "not watching the ptys for tools (" << watcher.status()
                     << "): answers nobody read survive a close and a tool's termios outlive it";
  }

  std::random_device entropy;
  const ModemConfig config = ModemConfig::FromOptions(options);
  const PortOptions port_options = PortOptions::FromOptions(options);
  sim->ports_.reserve(static_cast<size_t>(options.count));
  for (int i = 0; i < options.count; ++i) {
    std::string imei = ImeiFor(base, static_cast<uint64_t>(i));
    uint64_t seed = options.seed.has_value()
                        ? SeedFrom(absl::StrCat("seed:", *options.seed, ":", i))
                        : (static_cast<uint64_t>(entropy()) << 32) ^ entropy();
    auto modem = std::make_unique<Modem>(config, imei, seed);
    if (sim->state_file_) {
      std::optional<ModemState> state = sim->state_file_->Get(imei);
      if (state.has_value()) modem->RestoreState(*std::move(state));
    }
    Simulator* self = sim.get();
    sim->ports_.push_back(std::make_unique<ModemPort>(
        sim->io_, port_options, i, absl::StrCat(sim->link_dir_, "/modem", i), std::move(modem),
        sim->transcript_.get(), sim->port_watcher_.get(),
        [self](ModemPort& port, std::function<void()> persisted) {
          self->OnStateChanged(port, std::move(persisted));
        }));
  }
  return sim;
}

const std::string& Simulator::first_imei() const { return ports_.front()->modem().imei(); }
const std::string& Simulator::last_imei() const { return ports_.back()->modem().imei(); }

absl::Status Simulator::Start() {
  // Registered before any link exists, so a signal during startup still
  // lets Run() remove them.
  signals_ = std::make_unique<boost::asio::signal_set>(io_, SIGINT, SIGTERM);
  // Per modem: the master and the held slave; plus slack for the process
  // (the inotify fd among it).
  RETURN_IF_ERROR(pty::EnsureFileLimit(2 * ports_.size() + 64));
  for (auto& port : ports_) {
    absl::Status s = port->Plug();
    if (!s.ok()) return Annotate(s, absl::StrCat("modem", port->index()));
  }
  ATB_LOG(INFO) << "atbridge-sim: " << ports_.size() << " modems in " << link_dir_ << " (IMEI "
                << first_imei() << (ports_.size() > 1 ? absl::StrCat(" .. ", last_imei()) : "")
                << ")";
  return absl::OkStatus();
}

void Simulator::OnStateChanged(ModemPort& port, std::function<void()> persisted) {
  if (!state_file_) {
    persisted();
    return;
  }
  state_file_->Set(port.modem().imei(), port.modem().state());
  waiting_for_flush_.push_back(std::move(persisted));
  if (!flush_posted_) {
    flush_posted_ = true;
    boost::asio::post(io_, [this] { FlushState(); });
  }
}

void Simulator::FlushState() {
  flush_posted_ = false;
  if (state_file_) {
    absl::Status s = state_file_->Save();
    if (!s.ok()) {
      // The modems keep answering (a full disk is not the modem's problem);
      // the next change retries.
      if (!state_save_failed_) ATB_LOG(ERROR) << "state file not saved: " << s;
      state_save_failed_ = true;
    } else {
      state_save_failed_ = false;
    }
  }
  std::vector<std::function<void()>> waiting;
  waiting.swap(waiting_for_flush_);
  for (auto& done : waiting) done();
}

absl::Status Simulator::Run() {
  if (!signals_) return absl::FailedPreconditionError("Simulator::Run before Start");
  signals_->async_wait([this](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    ATB_LOG(INFO) << "atbridge-sim: signal " << signo << ", stopping";
    io_.stop();
  });
  io_.run();
  boost::system::error_code ignored;
  signals_->cancel(ignored);
  for (auto& port : ports_) port->Shutdown();
  // Changes whose flush was still queued (their answers are moot now).
  FlushState();
  return absl::OkStatus();
}

void Simulator::Stop() { io_.stop(); }

absl::Status RunSimulator(const SimOptions& options, std::ostream& out) {
  // A client closing its end must never kill the simulator.
  signal(SIGPIPE, SIG_IGN);
  ASSIGN_OR_RETURN(std::unique_ptr<Simulator> sim, Simulator::Create(options));
  RETURN_IF_ERROR(sim->Start());
  out << "atbridge-sim ready: " << options.count << " modems" << std::endl;
  return sim->Run();
}

}  // namespace atbridge::sim
