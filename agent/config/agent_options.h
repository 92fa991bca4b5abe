// What an agent serves: its identity, endpoints and serial ports. Filled from
// a YAML file (ser2net-style declarative port blocks) and overridden by flags
// in main.cc; validated before use. Libraries never read flags.
#ifndef ATBRIDGE_AGENT_CONFIG_AGENT_OPTIONS_H_
#define ATBRIDGE_AGENT_CONFIG_AGENT_OPTIONS_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/tls/credentials.h"

namespace atbridge::agent {

enum class Parity { kNone, kOdd, kEven };

// Serial line settings of one port.
struct SerialSettings {
  uint32_t baud = 115200;
  int data_bits = 8;  // 5..8
  Parity parity = Parity::kNone;
  int stop_bits = 1;  // 1 or 2
  bool rtscts = false;
};

// Write pacing for ports without hardware flow control: long commands are
// written `chunk_bytes` at a time with `gap` between chunks so the modem's
// UART FIFO is not overrun. chunk_bytes == 0 disables pacing.
struct Pacing {
  size_t chunk_bytes = 0;
  absl::Duration gap = absl::ZeroDuration();
};

// Chunk size of automatic pacing (see PortOptions::pacing_auto).
inline constexpr size_t kAutoPacingChunkBytes = 32;

struct PortOptions {
  std::string name;    // Unique per agent, [A-Za-z0-9_.-]+.
  std::string device;  // e.g. /dev/ttyACM0 or a sim link.
  SerialSettings serial;
  // Pacing; when unset ("auto") it is derived from the baud rate for ports
  // without RTS/CTS (kAutoPacingChunkBytes-byte chunks, gap = 1.1 x their
  // line time) and off with RTS/CTS.
  bool pacing_auto = true;
  Pacing pacing;
  std::string terminator = "\r\n";  // "\r", "\n" or "\r\n".
  std::map<std::string, std::string> labels;
  absl::Duration command_timeout = absl::Seconds(10);
  // Modem AT command buffer (CONFIG_AT_HOST_CMD_MAX_LEN).
  size_t max_command_bytes = 4096;
  // Where every byte is recorded (secrets redacted); empty = off.
  std::string transcript_file;
};

struct AgentOptions {
  std::string name;                       // Must equal the CN of our certificate.
  std::string listen = "127.0.0.1:7444";  // host:port; port 0 picks one.
  tls::TlsFiles tls;                      // ca_file, cert_file, key_file.
  std::string server;                     // Uplink target host:port; empty = none.
  std::string server_name_override;       // TLS name to expect from the server.
  absl::Duration lease_ttl = absl::Minutes(10);
  absl::Duration max_lease_ttl = absl::Hours(24);
  absl::Duration resync_timeout = absl::Seconds(1);
  absl::Duration reconnect_initial = absl::Milliseconds(200);
  absl::Duration reconnect_max = absl::Seconds(5);
  // Time to wait for the first identification of every port before printing
  // the readiness line.
  absl::Duration startup_identify_timeout = absl::Seconds(15);
  std::string transcript_dir;  // Per-port transcripts <dir>/<port>.log; empty = off.
  std::vector<PortOptions> ports;
};

// Reads a YAML config file. Unknown keys are errors (typos must not be
// silently ignored). Returns INVALID_ARGUMENT naming the key or line.
absl::StatusOr<AgentOptions> LoadAgentOptionsFile(const std::string& path);
absl::StatusOr<AgentOptions> ParseAgentOptionsYaml(const std::string& yaml_text);

// Parses "NAME=DEVICE[,key=value...]" (the --port flag) into `out`, e.g.
// "modem0=/dev/ttyACM0,baud=115200,flow=rtscts,label.board=nrf9151dk".
absl::Status ParsePortFlag(const std::string& spec, PortOptions* out);

// Fills derived defaults (auto pacing, transcript files) and checks
// everything; INVALID_ARGUMENT says what and where.
absl::Status FinalizeAndValidate(AgentOptions* options);

// Parses "500ms", "10s", "2m", "1h".
absl::StatusOr<absl::Duration> ParseDurationFlag(const std::string& text);

}  // namespace atbridge::agent

#endif  // ATBRIDGE_AGENT_CONFIG_AGENT_OPTIONS_H_
