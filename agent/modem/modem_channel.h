// ModemChannel: one serial port and the modem behind it.
//
// Owns the SerialPort, an at::ResponseParser and a command queue with exactly
// one command in flight. Every command has a deadline; a timeout abandons the
// command (its late reply is never given to the next one) and resynchronizes
// the link before the next command ("AT" probes, and a lone '"' probe when a
// quoted command may have lost its closing quote on a line without flow
// control). Long commands are paced (chunk + gap) on ports without RTS/CTS.
// All bytes read are fanned out to console watchers (an echoed secret
// %CMNG write redacted, see at::StreamRedactor). Raw console bytes (WriteRaw) take
// the port's Lock() like any operation, so they never land inside a
// credential transaction, and their answer is never taken for the next
// command's: after raw bytes that complete a command line the port waits for
// its final result (or a quiet window) before anything else is sent. Raw
// bytes that leave a partial line in the modem's buffer (a keystroke, half a
// PEM paste) keep the port until the console completes the line or, with
// another operation waiting, has been quiet for the quiet window; the line is
// then cleared by resynchronization (closing an open quote first, flow
// control or not) before the next command. A raw write that cannot finish
// in time (CTS held low) loses the port like a stalled command. A port that vanishes
// (EIO, EOF, unplug) fails every queued command UNAVAILABLE, is reopened with
// jittered exponential backoff, and the modem is identified again (AT+CGSN,
// +CGMI, +CGMM, +CGMR, +CFUN?) before commands are accepted.
//
// Threading: every method except Start()/Stop() must be called on the
// io_context thread that owns the channel; callbacks run on that thread.
// Instances are shared (asynchronous operations hold a reference).
#ifndef ATBRIDGE_AGENT_MODEM_MODEM_CHANNEL_H_
#define ATBRIDGE_AGENT_MODEM_MODEM_CHANNEL_H_

#include <boost/asio/async_result.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "agent/config/agent_options.h"
#include "agent/modem/transcript.h"
#include "agent/serial/serial_port.h"
#include "common/at/command_parser.h"
#include "common/at/response_parser.h"
#include "common/at/transcript_text.h"
#include "common/clock.h"
#include "common/random.h"

namespace atbridge::agent {

// One AT command to run.
struct AtCommand {
  std::string text;  // Without terminator, e.g. "AT+CFUN?".
  // Echo and info prefixes; when `expect.echo` is empty it is derived from
  // `text` (see ExpectationFor).
  at::CommandExpectation expect;
  absl::Duration timeout = absl::ZeroDuration();  // 0: the port's command_timeout.
};

// The answer to a command: lines + final result, and how long it took from
// the first byte written to the final result.
struct AtReply {
  at::Response response;
  absl::Duration elapsed;
};

using ReplyCallback = absl::AnyInvocable<void(absl::StatusOr<AtReply>)>;

// Echo = the command; info prefix = its name + ':' ("AT%CMNG=1" -> "%CMNG:").
at::CommandExpectation ExpectationFor(absl::string_view command);

enum class ChannelState {
  kOpening,  // Opening the device or identifying the modem.
  kReady,    // Identified; accepting commands.
  kDown,     // Gone; reopening with backoff.
  kStopped,  // Stop() was called.
};

const char* ChannelStateName(ChannelState state);

struct ModemIdentity {
  std::string imei;
  std::string manufacturer;
  std::string model;
  std::string firmware;
  int cfun = -1;
  absl::Time identified_at = absl::InfinitePast();
};

// Receives raw console output and port events. Called on the io thread; must
// not block.
class ConsoleWatcher {
 public:
  enum class Event { kPortDown, kPortUp };
  virtual ~ConsoleWatcher() = default;
  virtual void OnConsoleData(absl::string_view bytes) = 0;
  virtual void OnConsoleEvent(Event event, absl::string_view detail) = 0;
};

struct ChannelOptions {
  PortOptions port;
  absl::Duration resync_timeout = absl::Seconds(1);
  absl::Duration reconnect_initial = absl::Milliseconds(200);
  absl::Duration reconnect_max = absl::Seconds(5);
  int max_resync_probes = 6;
  // After raw console bytes that complete a command line, the port belongs
  // to their answer until its final result, or until the modem has been
  // quiet this long (at most the port's command_timeout in all); a reply
  // still coming after that is discarded as stale. Raw bytes that leave a
  // partial line keep the port until the line is complete or, while another
  // operation waits, the console has written nothing for this long; the
  // line is then erased by the resynchronization before the next command.
  absl::Duration console_reply_quiet = absl::Seconds(2);
};

class ModemChannel : public std::enable_shared_from_this<ModemChannel> {
 public:
  static std::shared_ptr<ModemChannel> Create(boost::asio::io_context& io, ChannelOptions options,
                                              SerialPortOpener opener, Clock& clock,
                                              Random& random);
  ~ModemChannel();
  ModemChannel(const ModemChannel&) = delete;
  ModemChannel& operator=(const ModemChannel&) = delete;

  // Opens the port and identifies the modem (asynchronously; thread-safe).
  void Start();
  // Closes the port and fails everything pending with CANCELLED (thread-safe;
  // takes effect on the io thread).
  void Stop();

  // Queues a command. `done` runs on the io thread with the reply, or with
  // UNAVAILABLE (port not ready / lost), DEADLINE_EXCEEDED (no final result
  // in time), DATA_LOSS (reply overflowed the line buffer), CANCELLED.
  // A CME/CMS/ERROR final result is NOT an error here: it is in the reply.
  void Submit(AtCommand command, ReplyCallback done);

  // Asio-style form of Submit: signature void(absl::StatusOr<AtReply>).
  template <typename CompletionToken>
  auto AsyncCommand(AtCommand command, CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void(absl::StatusOr<AtReply>)>(
        [this](auto handler, AtCommand c) {
          Submit(std::move(c), [h = std::move(handler)](absl::StatusOr<AtReply> r) mutable {
            std::move(h)(std::move(r));
          });
        },
        token, std::move(command));
  }

  // Writes raw console bytes between operations (it takes Lock(); paced like
  // commands). `done` runs when they have been written, or with UNAVAILABLE.
  // The lock is held on until the modem has answered what they complete, and
  // while they leave a partial line (see the class comment). `authorize`, if
  // set, runs under the lock just before the bytes are written; a non-OK
  // status is given to `done` and nothing is written.
  void WriteRaw(std::string bytes, absl::AnyInvocable<void(absl::Status)> done,
                absl::AnyInvocable<absl::Status()> authorize = nullptr);

  // Console fan-out. Watchers are held weakly: a destroyed watcher is skipped.
  int AddWatcher(std::weak_ptr<ConsoleWatcher> watcher);
  void RemoveWatcher(int id);

  // Called (io thread) whenever state or identity changes.
  void SetObserver(std::function<void()> observer);
  // Runs `done` once the first open+identify attempt has finished, whether it
  // succeeded or not (immediately if it already has).
  void WhenFirstAttemptDone(absl::AnyInvocable<void()> done);

  // Re-identifies the modem now (GetModemInfo with refresh). io thread.
  void Identify(absl::AnyInvocable<void(absl::Status)> done);

  // Exclusive use of the modem for a multi-command operation (a credential
  // transaction, an Execute): grants in FIFO order; `granted` runs on the io
  // thread; the holder must call Unlock() exactly once.
  void Lock(absl::AnyInvocable<void()> granted);
  void Unlock();

  template <typename CompletionToken>
  auto AsyncLock(CompletionToken&& token) {
    return boost::asio::async_initiate<CompletionToken, void()>(
        [this](auto handler) { Lock([h = std::move(handler)]() mutable { std::move(h)(); }); },
        token);
  }

  ChannelState state() const { return state_; }
  const ModemIdentity& identity() const { return identity_; }
  const std::string& last_error() const { return last_error_; }
  const PortOptions& port() const { return options_.port; }
  const std::string& name() const { return options_.port.name; }
  // Records the functional mode after a command changed it.
  void set_cfun(int cfun);
  boost::asio::io_context& io() { return io_; }

 private:
  struct Pending {
    AtCommand command;
    ReplyCallback done;
    bool internal = false;  // Identification: allowed while kOpening.
  };
  struct RawWrite {
    std::string bytes;
    absl::AnyInvocable<void(absl::Status)> done;
    absl::AnyInvocable<absl::Status()> authorize;
  };
  // A raw console write, which holds the port's lock in every phase but kNone.
  enum class RawPhase {
    kNone,
    kQueued,    // Waiting for the writer (or a resync).
    kWriting,   // Bytes going out.
    kAnswered,  // Its answer arrived; waiting for the write to complete.
    kAwaiting,  // Written; waiting for the final results it asked for.
    kPartial,   // Written and answered; a partial line is left in the modem.
  };
  enum class ProbeKind { kAt, kQuote };

  ModemChannel(boost::asio::io_context& io, ChannelOptions options, SerialPortOpener opener,
               Clock& clock, Random& random);

  void SubmitInternal(AtCommand command, ReplyCallback done);
  void Open();
  void StartIdentify(uint64_t generation);
  void OnIdentified(uint64_t generation, absl::StatusOr<ModemIdentity> result);
  void ScheduleReconnect();
  void PortLost(const absl::Status& why);
  void StartRead();
  void OnRead(absl::string_view data);
  void Pump();
  void BeginCommand();
  void RequestRawLock();
  void StartNextRaw();
  void BeginRaw();
  void OnRawDeadline(uint64_t seq);
  void OnRawWritten(uint64_t generation);
  void OnRawFinal();
  void ArmRawQuiet();
  void OnRawQuiet(uint64_t seq);
  void EndRaw();
  void ReleaseRaw();
  void ArmPartialQuiet();
  void OnPartialQuiet(uint64_t seq);
  void EmitRx(absl::string_view safe);
  void StartWrite(std::string data, bool paced, absl::AnyInvocable<void()> before_last_chunk,
                  absl::AnyInvocable<void()> written);
  void WriteNextChunk();
  void OnCommandDeadline(uint64_t seq);
  void CompleteInFlight(absl::StatusOr<AtReply> result);
  void StartResync();
  void SendProbe();
  void OnProbeDeadline(uint64_t seq);
  void OnProbeComplete(const at::Response& response);
  void FailAll(const absl::Status& status);
  void FinishIdentifyWaiters(const absl::Status& status);
  void SetState(ChannelState state);
  void Notify();
  void Deliver(ReplyCallback done, absl::StatusOr<AtReply> result);
  absl::Duration LineTime(size_t bytes) const;
  absl::Duration WriteTime(size_t bytes) const;

  boost::asio::io_context& io_;
  ChannelOptions options_;
  SerialPortOpener opener_;
  Clock& clock_;
  Random& random_;

  ChannelState state_ = ChannelState::kOpening;
  ModemIdentity identity_;
  std::string last_error_;
  std::unique_ptr<SerialPort> port_;
  uint64_t generation_ = 0;  // Bumped on every open/close; stale handlers check it.
  std::unique_ptr<Transcript> transcript_;
  at::ResponseParser parser_;
  char read_buf_[4096];

  std::deque<Pending> queue_;
  std::optional<Pending> in_flight_;
  absl::Time in_flight_started_;
  uint64_t seq_ = 0;             // Identifies the in-flight command or probe for timers.
  std::optional<RawWrite> raw_;  // Until written.
  // Raw writes waiting for the one in progress (or for the lock).
  std::deque<RawWrite> raw_queue_;
  bool raw_lock_requested_ = false;  // A Lock() for raw_queue_ is pending.
  RawPhase raw_phase_ = RawPhase::kNone;
  int raw_finals_expected_ = 0;
  absl::Time raw_written_at_;
  // Frames console bytes as the modem's AT host does, to count the command
  // lines they complete (each gets one final result).
  at::CommandFramer raw_framer_;
  // What watchers and the transcript may see of the modem's output.
  at::StreamRedactor rx_redactor_;

  // Writer state (one write sequence at a time).
  bool writing_ = false;
  std::string write_buf_;
  size_t write_off_ = 0;
  size_t write_chunk_ = 0;  // 0: whole buffer at once.
  absl::AnyInvocable<void()> before_last_chunk_;
  absl::AnyInvocable<void()> write_done_;

  // Resynchronization state.
  bool resync_needed_ = false;
  bool quote_risk_ = false;
  bool resyncing_ = false;
  ProbeKind probe_kind_ = ProbeKind::kAt;
  int probes_left_ = 0;
  size_t erase_bytes_ = 0;  // DELs to send before the next probe.

  boost::asio::steady_timer deadline_timer_;
  boost::asio::steady_timer pace_timer_;
  boost::asio::steady_timer reconnect_timer_;
  int reconnect_attempts_ = 0;

  bool locked_ = false;
  std::deque<absl::AnyInvocable<void()>> lock_waiters_;

  std::vector<absl::AnyInvocable<void(absl::Status)>> identify_waiters_;
  bool first_attempt_done_ = false;
  std::vector<absl::AnyInvocable<void()>> first_attempt_waiters_;
  bool down_notified_ = false;  // Watchers were told the port went down.

  int next_watcher_id_ = 1;
  std::map<int, std::weak_ptr<ConsoleWatcher>> watchers_;
  std::function<void()> observer_;
};

}  // namespace atbridge::agent

#endif  // ATBRIDGE_AGENT_MODEM_MODEM_CHANNEL_H_
