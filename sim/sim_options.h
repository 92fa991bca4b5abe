// Options of atbridge-sim. Filled only by sim/main.cc (from flags), validated
// with ValidateSimOptions() and passed down by const reference; the library
// never reads flags.
#ifndef ATBRIDGE_SIM_SIM_OPTIONS_H_
#define ATBRIDGE_SIM_SIM_OPTIONS_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace atbridge::sim {

// Transient faults --flaky can inject into %CMNG write/delete and %KEYGEN.
enum class FlakyMode {
  kCorrupt,  // The stored bytes are corrupted (the next list shows another
             // SHA-256); for %KEYGEN the returned CSR is corrupted.
  kBusy,     // Nothing happens; the answer is +CME ERROR: 528.
  kSilent,   // The operation happens but its answer is lost.
};

// Parses "corrupt,busy,silent" (any subset, any order). INVALID_ARGUMENT on an
// unknown or empty name.
absl::StatusOr<std::set<FlakyMode>> ParseFlakyModes(absl::string_view text);

struct SimOptions {
  // Number of modems (ptys), 1..100000.
  int count = 1;
  // Directory of the links modem0 .. modem{count-1}; created if missing.
  std::string link_dir;

  // Modem identity and behaviour.
  std::string model = "nRF9151-LACA";          // AT+CGMM
  std::string firmware = "mfw_nrf91x1_2.0.2";  // AT+CGMR
  // 14 digits (the first modem's IMEI without its check digit) or a valid
  // 15-digit IMEI. Empty: derived from a hash of the absolute link_dir.
  std::string imei_base;
  int initial_cfun = 4;  // CFUN at first boot (no state file entry).
  int capacity = 32;     // %CMNG entries per modem (515 beyond).
  // CRLF line endings in type 0/1 PEMs: accepted and hashed as sent (as
  // nrfcloud-utils relies on); false models a field report of 527.
  bool accept_crlf = true;

  // AT host.
  size_t max_command = 4096;  // CONFIG_AT_HOST_CMD_MAX_LEN.
  int latency_ms = 0;         // Delay before each answer.

  // UART model. baud == 0: no pacing (bytes move at pty speed).
  int baud = 0;
  bool flow_control = true;  // RTS/CTS: nothing is ever dropped.
  size_t fifo_bytes = 256;   // RX FIFO; without flow control, overflow is lost.

  // Faults.
  int unplug_after = 0;        // Unplug when the Nth command arrives; 0 = never.
  int replug_after_ms = 1000;  // Come back on a new pty after this; 0 = never.
  double flaky = 0.0;          // Probability of a transient fault per operation.
  std::set<FlakyMode> flaky_modes = {FlakyMode::kCorrupt, FlakyMode::kBusy, FlakyMode::kSilent};
  std::optional<uint64_t> seed;  // Makes --flaky (and nonces) reproducible.

  // Files.
  std::string state_file;  // Modem NVM (credentials, keys, CFUN); empty: none.
  std::string transcript;  // Byte transcript; empty: none.
};

// INVALID_ARGUMENT naming the first bad option.
absl::Status ValidateSimOptions(const SimOptions& options);

// CFUN values the modem accepts (AT+CFUN=<n>).
bool IsAcceptedCfun(int mode);

}  // namespace atbridge::sim

#endif  // ATBRIDGE_SIM_SIM_OPTIONS_H_
