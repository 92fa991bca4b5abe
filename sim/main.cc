// atbridge-sim: simulated nRF91 modems on ptys. Flags -> SimOptions ->
// RunSimulator(); nothing else happens here.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <iostream>
#include <string>

#include "common/log.h"
#include "sim/sim_options.h"
#include "sim/simulator.h"

namespace {

int Main(int argc, char** argv) {
  atbridge::sim::SimOptions o;
  std::string flaky_modes = "corrupt,busy,silent";
  std::string log_level = "info";
  bool no_flow_control = false;
  uint64_t seed = 0;
  size_t max_command = o.max_command;
  size_t fifo = o.fifo_bytes;

  CLI::App app{
      "atbridge-sim: nRF91 modems (AT host over a UART) simulated on ptys.\n"
      "Creates N ptys linked as DIR/modem0..modem{N-1}, prints\n"
      "\"atbridge-sim ready: N modems\" when all answer, and runs until SIGINT/SIGTERM."};
  app.add_option("--count", o.count, "Number of modems")->capture_default_str();
  app.add_option("--link-dir", o.link_dir, "Directory for the modem<K> links")->required();
  app.add_option("--state-file", o.state_file,
                 "JSON file persisting credentials, keys and CFUN across runs (holds secrets)");
  app.add_option("--transcript", o.transcript,
                 "Record every byte (timestamped, per modem, secrets redacted) to this file");
  app.add_option("--baud", o.baud, "Pace both directions at baud/10 bytes/s (0: unpaced)")
      ->capture_default_str();
  app.add_flag("--no-flow-control", no_flow_control,
               "No RTS/CTS: input beyond the RX FIFO is lost");
  app.add_option("--fifo", fifo, "RX FIFO size in bytes")->capture_default_str();
  app.add_option("--latency", o.latency_ms, "Delay before each answer, ms")->capture_default_str();
  app.add_option("--unplug-after", o.unplug_after,
                 "Unplug (close the pty and link) when the Nth command arrives; 0: never")
      ->capture_default_str();
  app.add_option("--replug-after", o.replug_after_ms,
                 "After an unplug, come back on a new pty after this many ms; 0: never")
      ->capture_default_str();
  app.add_option("--flaky", o.flaky,
                 "Probability of a transient fault per %CMNG write/delete and %KEYGEN")
      ->capture_default_str();
  app.add_option("--flaky-modes", flaky_modes, "Faults to draw from: corrupt,busy,silent")
      ->capture_default_str();
  auto* seed_opt = app.add_option("--seed", seed, "Seed for faults and nonces (reproducible)");
  app.add_option("--cfun", o.initial_cfun, "Initial CFUN (without state)")->capture_default_str();
  app.add_option("--capacity", o.capacity, "%CMNG entries per modem")->capture_default_str();
  app.add_option("--max-command", max_command, "AT host command buffer, bytes")
      ->capture_default_str();
  app.add_option("--model", o.model, "AT+CGMM answer")->capture_default_str();
  app.add_option("--firmware", o.firmware, "AT+CGMR answer")->capture_default_str();
  app.add_option("--imei-base", o.imei_base,
                 "First IMEI (14 digits, or 15 with a valid check digit); default: derived "
                 "from the absolute link dir");
  bool reject_crlf = false;
  bool accept_crlf = false;
  auto* reject_crlf_flag = app.add_flag(
      "--reject-crlf", reject_crlf,
      "Answer 527 to type 0/1 PEMs with CRLF line endings (a field report; default: accepted "
      "and hashed as sent, as nrfcloud-utils relies on)");
  app.add_flag("--accept-crlf", accept_crlf, "The default; kept for old command lines")
      ->excludes(reject_crlf_flag);
  app.add_option("--log-level", log_level, "debug, info, warning, error, off")
      ->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  o.flow_control = !no_flow_control;
  o.accept_crlf = !reject_crlf;
  o.max_command = max_command;
  o.fifo_bytes = fifo;
  if (seed_opt->count() > 0) o.seed = seed;
  atbridge::log::Level level;
  if (!atbridge::log::ParseLevel(log_level, &level)) {
    std::cerr << "atbridge-sim: --log-level " << log_level << " is not a level\n";
    return 2;
  }
  atbridge::log::SetLevel(level);
  auto modes = atbridge::sim::ParseFlakyModes(flaky_modes);
  if (!modes.ok()) {
    std::cerr << "atbridge-sim: " << modes.status().message() << "\n";
    return 2;
  }
  o.flaky_modes = *modes;
  if (absl::Status s = atbridge::sim::ValidateSimOptions(o); !s.ok()) {
    std::cerr << "atbridge-sim: " << s.message() << "\n";
    return 2;
  }
  absl::Status s = atbridge::sim::RunSimulator(o, std::cout);
  if (!s.ok()) {
    std::cerr << "atbridge-sim: " << s << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // The last-resort catch (CLI11, the standard library): report, never abort.
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "atbridge-sim: " << e.what() << "\n";
    return 1;
  }
}
