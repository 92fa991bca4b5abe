// The serial side of one simulated modem: a pty master owned by an Asio
// stream_descriptor, the UART model (pacing, RX FIFO, flow control), the AT
// host framing (at::CommandFramer), answer latency, unplug/replug, and the
// transcript.
//
// UART model (baud > 0; one byte = 10 bit times):
//  - Output: answers are written to the master at baud/10 bytes/s in small
//    chunks released by a steady_timer.
//  - Input: received bytes enter an RX queue that the AT host drains at
//    baud/10 bytes/s (the drain is computed from the clock, so the level at
//    each arrival is exact however the event loop is scheduled). With flow
//    control the master is read only while the queue holds less than the
//    FIFO size, so a fast writer is held back by the pty, as RTS/CTS would;
//    nothing is lost. Without it, every byte arriving while the FIFO is full
//    is dropped, as a UART without RTS/CTS overruns.
//  - Like the nRF91 AT host, reception pauses while a command executes
//    (latency + sending the answer): bytes arriving meanwhile wait in the
//    FIFO (and overrun it without flow control). This holds with baud 0 too.
//
// Open/close (with a PortWatcher): like a real serial port, output sent
// while no tool has the port open is dropped, not queued for the next one.
// When the last tool closes (the master read fails with EIO), the line is
// reset (raw, nothing unread) and every answer still on its way is dropped
// (the paced TX queue, a write in progress, one waiting out its latency or
// the state file); the modem state and command bytes already received stay.
// Without a watcher (inotify unavailable) the pty holds its slave and
// unread answers wait for the next tool.
//
// Threading: everything runs on the one io_context thread; not thread-safe.
// Ownership: owns its Modem; borrows the Transcript and the PortWatcher
// (either may be null), which must outlive it. Pending handlers check a generation counter, so
// Unplug() and Shutdown() may be called at any time on that thread; the object must outlive the
// io_context's last run (the Simulator guarantees this).
#ifndef ATBRIDGE_SIM_MODEM_PORT_H_
#define ATBRIDGE_SIM_MODEM_PORT_H_

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/at/command_parser.h"
#include "common/at/transcript_text.h"
#include "common/pty/pty.h"
#include "sim/modem.h"
#include "sim/port_watcher.h"
#include "sim/sim_options.h"
#include "sim/transcript.h"

namespace atbridge::sim {

struct PortOptions {
  int baud = 0;  // 0: unpaced.
  bool flow_control = true;
  size_t fifo_bytes = 256;
  std::chrono::milliseconds latency{0};
  int unplug_after = 0;                          // 0: never.
  std::chrono::milliseconds replug_after{1000};  // 0: never.
  size_t max_command = 4096;

  static PortOptions FromOptions(const SimOptions& options);
};

class ModemPort {
 public:
  // Called after a command changed the modem's non-volatile state; must
  // call `persisted` (on the io_context thread, possibly right away) once
  // the change is stored. The command's answer waits for it.
  using StateChangedFn = std::function<void(ModemPort&, std::function<void()> persisted)>;

  ModemPort(boost::asio::io_context& io, const PortOptions& options, int index,
            std::string link_path, std::unique_ptr<Modem> modem, Transcript* transcript,
            PortWatcher* watcher, StateChangedFn on_state_changed);
  ~ModemPort();
  ModemPort(const ModemPort&) = delete;
  ModemPort& operator=(const ModemPort&) = delete;

  // Creates a fresh pty, points the link at it and starts serving. Errors
  // name the pty or link.
  absl::Status Plug();
  // Stops serving for good: closes the pty and removes the link.
  void Shutdown();

  Modem& modem() { return *modem_; }
  int index() const { return index_; }
  bool plugged() const { return plugged_; }
  const std::string& link_path() const { return link_path_; }
  // Bytes lost to RX FIFO overruns so far.
  uint64_t dropped_bytes() const { return dropped_bytes_; }

 private:
  using Clock = std::chrono::steady_clock;

  bool paced() const { return byte_time_.count() > 0; }
  void Unplug();
  void Close();
  void StartRead();
  void OnRead(const boost::system::error_code& ec, size_t n);
  // The last tool closed the port (see the file comment).
  void OnHangup();
  // Whether a tool has the port open now (always true without a watch);
  // takes pending opens first, so an open that already happened counts.
  bool ToolPresent();
  // Feeds due bytes to the framer and runs framed commands, until a command
  // is in flight, the queue is empty, or (paced) the next byte is not due.
  // Never starts a read (callers do, once their chunk is queued).
  void Pump(Clock::time_point now);
  void ArmConsumeTimer(Clock::time_point at);
  void HandleEvent(const at::FramerEvent& event);
  // Delivers an answer after the configured latency, unless the answer
  // epoch moved on (a hangup) by then.
  void Answer(absl::string_view bytes, uint64_t epoch);
  void Send(absl::string_view bytes, uint64_t epoch);
  void PumpTx();
  void Note(const std::string& text);

  boost::asio::io_context& io_;
  const PortOptions options_;
  const int index_;
  const std::string link_path_;
  std::unique_ptr<Modem> modem_;
  Transcript* const transcript_;
  PortWatcher* const watcher_;
  StateChangedFn on_state_changed_;
  std::chrono::nanoseconds byte_time_{0};
  size_t tx_chunk_ = 0;

  // Bumped by Plug/Unplug/Shutdown; handlers of an older generation return.
  uint64_t generation_ = 0;
  bool plugged_ = false;
  bool unplugged_once_ = false;
  uint64_t commands_seen_ = 0;
  pty::Pty pty_;
  int watch_ = 0;  // PortWatcher handle; 0: not watched.
  std::unique_ptr<boost::asio::posix::stream_descriptor> master_;
  // Bumped when the last tool closes: answers made before it are dropped.
  uint64_t answer_epoch_ = 0;

  // Input.
  std::array<char, 2048> read_buf_{};
  bool reading_ = false;
  bool read_failed_ = false;
  std::string rx_queue_;              // Received, not yet consumed.
  Clock::time_point consume_next_{};  // When the head byte is consumed (paced).
  boost::asio::steady_timer consume_timer_;
  bool consume_timer_armed_ = false;
  Clock::time_point consume_timer_at_{};
  at::CommandFramer framer_;
  std::vector<at::FramerEvent> events_;
  std::deque<at::FramerEvent> pending_;  // Framed, not yet executed.
  bool busy_ = false;                    // A command is in flight.
  uint64_t dropped_bytes_ = 0;
  at::StreamRedactor rx_filter_;

  // Output.
  std::string tx_queue_;
  std::string tx_inflight_;
  bool writing_ = false;
  bool response_pending_ = false;
  Clock::time_point tx_next_{};
  boost::asio::steady_timer tx_timer_;
  boost::asio::steady_timer latency_timer_;
  boost::asio::steady_timer replug_timer_;
};

}  // namespace atbridge::sim

#endif  // ATBRIDGE_SIM_MODEM_PORT_H_
