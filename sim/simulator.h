// atbridge-sim: N simulated nRF91 modems, each on its own pty linked as
// <link_dir>/modem<K>, served by one thread running one Boost.Asio
// io_context (no thread per modem, no polling).
//
//   ASSIGN_OR_RETURN(auto sim, Simulator::Create(options));
//   RETURN_IF_ERROR(sim->Start());   // all modems usable when this returns
//   std::cout << "atbridge-sim ready: ..." << std::endl;
//   RETURN_IF_ERROR(sim->Run());     // until SIGINT/SIGTERM or Stop()
//
// Threading: Start() and Run() on one thread (the one that runs the
// io_context); Stop() from any thread. Destruction removes the links.
#ifndef ATBRIDGE_SIM_SIMULATOR_H_
#define ATBRIDGE_SIM_SIMULATOR_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sim/modem_port.h"
#include "sim/port_watcher.h"
#include "sim/sim_options.h"
#include "sim/state_file.h"
#include "sim/transcript.h"

namespace atbridge::sim {

class Simulator {
 public:
  // Validates `options` (INVALID_ARGUMENT), creates the link directory,
  // loads the state file and opens the transcript. No pty exists yet.
  static absl::StatusOr<std::unique_ptr<Simulator>> Create(const SimOptions& options);
  ~Simulator();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  // Raises RLIMIT_NOFILE as needed, creates every pty and link.
  absl::Status Start();
  // Serves until SIGINT/SIGTERM or Stop(), then removes the links.
  absl::Status Run();
  // Makes Run() return. Thread-safe.
  void Stop();

  const std::string& link_dir() const { return link_dir_; }
  const std::string& first_imei() const;
  const std::string& last_imei() const;

 private:
  explicit Simulator(const SimOptions& options);
  // Records the port's modem state and schedules one flush for every change
  // made in the current batch of handlers; `persisted` runs after it.
  void OnStateChanged(ModemPort& port, std::function<void()> persisted);
  void FlushState();

  SimOptions options_;
  std::string link_dir_;  // Absolute.
  boost::asio::io_context io_;
  std::unique_ptr<Transcript> transcript_;
  std::unique_ptr<StateFile> state_file_;  // Null without --state-file.
  bool state_save_failed_ = false;
  bool flush_posted_ = false;
  std::vector<std::function<void()>> waiting_for_flush_;
  std::unique_ptr<boost::asio::signal_set> signals_;
  // Null when inotify is unavailable. Outlives the ports (their watches).
  std::unique_ptr<PortWatcher> port_watcher_;
  std::vector<std::unique_ptr<ModemPort>> ports_;
};

// Create + Start + the readiness line on `out` + Run: what main() does.
absl::Status RunSimulator(const SimOptions& options, std::ostream& out);

}  // namespace atbridge::sim

#endif  // ATBRIDGE_SIM_SIMULATOR_H_
