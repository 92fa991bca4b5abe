#include <fcntl.h>
#include <termios.h>
#include <unistd.h>

#include <boost/asio/read.hpp>
#include <boost/asio/serial_port.hpp>
#include <boost/asio/write.hpp>

#include "absl/strings/str_cat.h"
#include "agent/serial/serial_port.h"
#include "common/status/errors.h"

namespace atbridge::agent {

namespace {

namespace asio = boost::asio;

class AsioSerialPort final : public SerialPort {
 public:
  explicit AsioSerialPort(asio::io_context& io) : port_(io) {}
  ~AsioSerialPort() override { Close(); }

  boost::system::error_code Open(const std::string& device, const SerialSettings& s) {
    boost::system::error_code ec;
    port_.open(device, ec);
    if (ec) return ec;
    using SP = asio::serial_port_base;
    port_.set_option(SP::baud_rate(s.baud), ec);
    if (!ec) port_.set_option(SP::character_size(static_cast<unsigned>(s.data_bits)), ec);
    if (!ec) {
      port_.set_option(SP::parity(s.parity == Parity::kNone  ? SP::parity::none
                                  : s.parity == Parity::kOdd ? SP::parity::odd
                                                             : SP::parity::even),
                       ec);
    }
    if (!ec) {
      port_.set_option(SP::stop_bits(s.stop_bits == 2 ? SP::stop_bits::two : SP::stop_bits::one),
                       ec);
    }
    if (!ec) {
      port_.set_option(
          SP::flow_control(s.rtscts ? SP::flow_control::hardware : SP::flow_control::none), ec);
    }
    if (!ec) {
      // Drop whatever a previous user left in the buffers: stale output of a
      // modem must not be taken for the answer to our first command.
      ::tcflush(port_.native_handle(), TCIOFLUSH);
    }
    if (ec) Close();
    return ec;
  }

  void AsyncReadSome(char* data, size_t size, IoHandler handler) override {
    port_.async_read_some(asio::buffer(data, size),
                          [h = std::move(handler)](const boost::system::error_code& ec,
                                                   size_t n) mutable { h(ec, n); });
  }

  void AsyncWrite(absl::string_view data, IoHandler handler) override {
    asio::async_write(port_, asio::buffer(data.data(), data.size()),
                      [h = std::move(handler)](const boost::system::error_code& ec,
                                               size_t n) mutable { h(ec, n); });
  }

  void Close() override {
    if (port_.is_open()) {
      boost::system::error_code ignored;
      port_.cancel(ignored);
      port_.close(ignored);
    }
  }

 private:
  asio::serial_port port_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SerialPort>> OpenAsioSerialPort(asio::io_context& io,
                                                               const std::string& device,
                                                               const SerialSettings& settings) {
  auto port = std::make_unique<AsioSerialPort>(io);
  boost::system::error_code ec = port->Open(device, settings);
  if (ec) return FromErrorCode(ec, absl::StrCat("open ", device));
  return port;
}

}  // namespace atbridge::agent
