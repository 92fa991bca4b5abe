// One simulated nRF91 modem behind an AT host: command execution and state
// (CFUN, CMEE, the %CMNG credential store, keys), with no I/O. The pty and
// UART model around it live in modem_port.h.
//
// Not thread-safe: each Modem is used from the simulator's single io_context
// thread. Errors never escape as statuses: like a modem, every command line
// gets an answer (OK / ERROR / +CME ERROR: <n>), or none when a fault says so.
#ifndef ATBRIDGE_SIM_MODEM_H_
#define ATBRIDGE_SIM_MODEM_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/at/command_parser.h"
#include "common/random.h"
#include "sim/crypto.h"
#include "sim/sim_options.h"

namespace atbridge::sim {

// What all modems of one simulator share (from SimOptions).
struct ModemConfig {
  std::string model = "nRF9151-LACA";
  std::string firmware = "mfw_nrf91x1_2.0.2";
  int capacity = 32;
  bool accept_crlf = true;
  int initial_cfun = 4;
  double flaky = 0.0;
  std::set<FlakyMode> flaky_modes;

  static ModemConfig FromOptions(const SimOptions& options);
};

// The functional mode as an nRF91 keeps it: AT+CFUN=20/21, 30/31 and
// 40/41 switch LTE, GNSS and the UICC one at a time, and AT+CFUN? reports
// the resulting mode, one of 0, 1, 2, 4, 44 (Nordic AT reference, +CFUN;
// the AT reference: 1 = "the active mode is either LTE or GNSS, or both").
struct CfunState {
  enum class Lte { kOff, kOn, kReceiveOnly };
  Lte lte = Lte::kOff;
  bool gnss = false;
  bool uicc = false;
  bool minimum = false;  // Set to 0 (power off) rather than offline.

  // AT+CFUN=<fun> for an accepted value (IsAcceptedCfun):
  //  0: all off (minimum functionality); 1: LTE, GNSS and UICC on;
  //  2: LTE receive-only, UICC on; 4: all off (offline); 44: offline with the
  //  UICC on; 20/21: LTE off/on (21 powers the UICC); 30/31: GNSS off/on;
  //  40/41: UICC off/on (LTE and GNSS untouched).
  void Apply(int fun);
  // AT+CFUN?: 2 if LTE is receive-only, else 1 if LTE or GNSS is on, else 0
  // after a power-off, else 44 with the UICC on, else 4.
  int Reported() const;
  // %CMNG write/delete and %KEYGEN are refused (518) in 1 and 2, i.e.
  // whenever LTE or GNSS is active.
  bool Active() const;
  // The state behind a reported (or, from older state files, set) mode.
  static CfunState FromMode(int fun);
};

// The modem's non-volatile state (what --state-file persists).
struct ModemState {
  int cfun = 4;  // As AT+CFUN? reports it (CfunState::Reported).
  // (sec_tag, type) -> content, byte-exact. Type-2 entries made by %KEYGEN
  // hold the private key PEM (secret).
  std::map<std::pair<uint32_t, int>, std::string> credentials;
};

class Modem {
 public:
  // `imei` is the modem's 15-digit IMEI; everything else about its identity
  // (device UUID, identity key) derives from it. `seed` drives the fault
  // injection and nonces.
  Modem(const ModemConfig& config, std::string imei, uint64_t seed);
  ~Modem();
  Modem(const Modem&) = delete;
  Modem& operator=(const Modem&) = delete;

  struct Reply {
    std::string bytes;           // What the modem sends back (may be empty).
    bool answered = true;        // False: the answer is lost (flaky "silent").
    bool state_changed = false;  // The non-volatile state changed: persist.
  };

  // Executes one framed command line (no terminator), possibly a ';' chain.
  Reply HandleCommandLine(absl::string_view line);
  // A command longer than the AT host buffer arrived: "ERROR".
  Reply HandleOverflow() const;
  // Power cycle (replug): volatile settings (CMEE) return to defaults.
  void Reboot();

  const std::string& imei() const { return imei_; }
  // Device UUID, lower case (CN of %KEYGEN CSRs without attributes).
  const std::string& device_uuid() const { return uuid_text_; }
  const ModemState& state() const { return state_; }
  void RestoreState(ModemState state);
  int cmee() const { return cmee_; }
  // The identity key's public key (SubjectPublicKeyInfo DER), to verify
  // COSE signatures. Empty if the key cannot be derived.
  std::string IdentityPublicKeyDer();

 private:
  // How a command ended.
  struct Outcome {
    enum Kind { kOk, kError, kCme } kind = kOk;
    int code = 0;
    bool silent = false;  // Answer lost (flaky).
    static Outcome Ok() { return {}; }
    static Outcome Error() { return {kError, 0, false}; }
    static Outcome Cme(int code) { return {kCme, code, false}; }
  };

  Outcome Execute(const at::AtCommand& cmd, std::vector<std::string>* lines, bool* changed);
  Outcome Cfun(const at::AtCommand& cmd, std::vector<std::string>* lines, bool* changed);
  Outcome Cmee(const at::AtCommand& cmd, std::vector<std::string>* lines);
  Outcome Cgsn(const at::AtCommand& cmd, std::vector<std::string>* lines);
  Outcome Cmng(const at::AtCommand& cmd, std::vector<std::string>* lines, bool* changed);
  Outcome Keygen(const at::AtCommand& cmd, std::vector<std::string>* lines, bool* changed);
  Outcome AttestToken(std::vector<std::string>* lines);
  std::string FinalLine(const Outcome& outcome) const;
  // Draws whether this operation suffers a fault, among `applicable` modes
  // that are also enabled.
  std::optional<FlakyMode> DrawFault(std::initializer_list<FlakyMode> applicable);
  absl::StatusOr<const IdentityKey*> Identity();
  std::string RandomBytes(size_t n);

  ModemConfig config_;
  std::string imei_;
  std::array<uint8_t, 16> uuid_;
  std::string uuid_text_;
  std::unique_ptr<Random> random_;
  std::unique_ptr<IdentityKey> identity_;  // Derived on first use.
  std::string attest_token_;               // Built on first use (stable).
  ModemState state_;
  CfunState cfun_;  // state_.cfun is cfun_.Reported().
  int cmee_ = 0;
};

// Device type in attestation tokens for a model string (nRF9151 -> 6, ...).
int DeviceTypeForModel(absl::string_view model);

}  // namespace atbridge::sim

#endif  // ATBRIDGE_SIM_MODEM_H_
