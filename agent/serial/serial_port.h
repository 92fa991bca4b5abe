// The one OS boundary of the agent's serial I/O: an open serial device with
// asynchronous reads and writes. The real one wraps boost::asio::serial_port;
// tests substitute scripted fakes.
//
// Threading: a SerialPort is used from the io_context thread that owns it;
// handlers run on that thread.
#ifndef ATBRIDGE_AGENT_SERIAL_SERIAL_PORT_H_
#define ATBRIDGE_AGENT_SERIAL_SERIAL_PORT_H_

#include <boost/asio/io_context.hpp>
#include <boost/system/error_code.hpp>
#include <memory>
#include <string>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "agent/config/agent_options.h"

namespace atbridge::agent {

class SerialPort {
 public:
  using IoHandler = absl::AnyInvocable<void(const boost::system::error_code&, size_t)>;

  virtual ~SerialPort() = default;

  // Reads at least one byte into [data, data+size). `data` must stay valid
  // until the handler runs. eof or an error means the device is gone.
  virtual void AsyncReadSome(char* data, size_t size, IoHandler handler) = 0;
  // Writes all of `data` (which must stay valid until the handler runs).
  virtual void AsyncWrite(absl::string_view data, IoHandler handler) = 0;
  // Closes the device; pending handlers complete with operation_aborted.
  virtual void Close() = 0;
};

// Opens a serial device. NOT_FOUND when the path does not exist (unplugged),
// UNAVAILABLE/PERMISSION_DENIED otherwise; the message names the device.
using SerialPortOpener = absl::AnyInvocable<absl::StatusOr<std::unique_ptr<SerialPort>>(
    boost::asio::io_context&, const std::string& device, const SerialSettings&)>;

// The real opener: boost::asio::serial_port with raw 8N1-style settings.
absl::StatusOr<std::unique_ptr<SerialPort>> OpenAsioSerialPort(boost::asio::io_context& io,
                                                               const std::string& device,
                                                               const SerialSettings& settings);

}  // namespace atbridge::agent

#endif  // ATBRIDGE_AGENT_SERIAL_SERIAL_PORT_H_
