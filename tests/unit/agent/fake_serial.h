// An in-process serial line for ModemChannel tests: bytes the channel writes
// go to a scripted modem; the modem's answers complete the channel's reads.
// Everything runs on the test's io_context.
#ifndef ATBRIDGE_TESTS_UNIT_AGENT_FAKE_SERIAL_H_
#define ATBRIDGE_TESTS_UNIT_AGENT_FAKE_SERIAL_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/serial/serial_port.h"
#include "common/at/command_parser.h"

namespace atbridge::testing {

// The modem side of the line.
class FakeLine : public std::enable_shared_from_this<FakeLine> {
 public:
  explicit FakeLine(boost::asio::io_context& io) : io_(io) {}

  // Bytes from the modem to the host.
  void Send(std::string bytes) {
    to_host_ += bytes;
    Flush();
  }
  // Breaks the line: the pending read fails with EIO, as on an unplug.
  void Break() {
    broken_ = true;
    Flush();
  }

  // Called with every command the host sends (framed like an nRF91 AT host);
  // returns the answer to send, or nullopt for none.
  std::function<std::optional<std::string>(const std::string&)> on_command;
  // Every raw byte the host wrote, for assertions.
  std::string from_host;
  std::vector<std::string> commands;
  std::vector<size_t> write_sizes;
  // Bytes for which this returns true are lost on the way to the modem.
  std::function<bool(char)> drop_byte;
  // While true the modem ignores input (executing a command).
  bool busy = false;
  // While true the modem holds CTS low: writes take nothing and never
  // complete (until the port is closed).
  bool stall_writes = false;
  int opens = 0;
  int failing_opens = 0;  // Opens to refuse with ENOENT first.

  // SerialPort side.
  void Read(char* data, size_t size, agent::SerialPort::IoHandler h) {
    buf_ = data;
    size_ = size;
    read_ = std::move(h);
    Flush();
  }
  void Write(absl::string_view data, agent::SerialPort::IoHandler h) {
    if (stall_writes) {
      stalled_.push_back(std::move(h));
      return;
    }
    from_host += std::string(data);
    write_sizes.push_back(data.size());
    std::string kept;
    for (char c : data) {
      if (drop_byte && drop_byte(c)) continue;
      if (!busy) kept.push_back(c);  // A busy AT host is not reading.
    }
    std::vector<at::FramerEvent> events;
    framer_.Feed(kept, &events);
    size_t n = data.size();
    boost::asio::post(io_, [h = std::move(h), n]() mutable { h({}, n); });
    for (auto& e : events) {
      if (e.type != at::FramerEvent::Type::kCommand) continue;
      commands.push_back(e.command);
      if (on_command) {
        auto answer = on_command(e.command);
        if (answer) Send(*answer);
      }
    }
  }
  void Close() {
    for (auto& h : stalled_) {
      boost::asio::post(
          io_, [h = std::move(h)]() mutable { h(boost::asio::error::operation_aborted, 0); });
    }
    stalled_.clear();
    if (read_) {
      auto h = std::move(read_);
      read_ = nullptr;
      boost::asio::post(
          io_, [h = std::move(h)]() mutable { h(boost::asio::error::operation_aborted, 0); });
    }
  }
  void ResetFramer() { framer_.Reset(); }

 private:
  void Flush() {
    if (!read_) return;
    if (broken_) {
      auto h = std::move(read_);
      read_ = nullptr;
      broken_ = false;
      boost::asio::post(io_, [h = std::move(h)]() mutable {
        h(boost::system::error_code(EIO, boost::system::system_category()), 0);
      });
      return;
    }
    if (to_host_.empty()) return;
    size_t n = std::min(size_, to_host_.size());
    to_host_.copy(buf_, n);
    to_host_.erase(0, n);
    auto h = std::move(read_);
    read_ = nullptr;
    boost::asio::post(io_, [h = std::move(h), n]() mutable { h({}, n); });
  }

  boost::asio::io_context& io_;
  at::CommandFramer framer_;
  std::string to_host_;
  bool broken_ = false;
  char* buf_ = nullptr;
  size_t size_ = 0;
  agent::SerialPort::IoHandler read_;
  std::vector<agent::SerialPort::IoHandler> stalled_;
};

class FakeSerialPort final : public agent::SerialPort {
 public:
  explicit FakeSerialPort(std::shared_ptr<FakeLine> line) : line_(std::move(line)) {}
  ~FakeSerialPort() override { Close(); }
  void AsyncReadSome(char* data, size_t size, IoHandler h) override {
    line_->Read(data, size, std::move(h));
  }
  void AsyncWrite(absl::string_view data, IoHandler h) override {
    line_->Write(data, std::move(h));
  }
  void Close() override { line_->Close(); }

 private:
  std::shared_ptr<FakeLine> line_;
};

inline agent::SerialPortOpener FakeOpener(std::shared_ptr<FakeLine> line) {
  return
      [line](boost::asio::io_context&, const std::string& device,
             const agent::SerialSettings&) -> absl::StatusOr<std::unique_ptr<agent::SerialPort>> {
        ++line->opens;
        if (line->failing_opens > 0) {
          --line->failing_opens;
          return absl::NotFoundError("open " + device + ": No such file or directory");
        }
        line->ResetFramer();
        return std::unique_ptr<agent::SerialPort>(new FakeSerialPort(line));
      };
}

// A well-behaved nRF91: answers identification and simple commands.
inline std::optional<std::string> StandardAnswer(const std::string& cmd) {
  if (cmd == "AT" || cmd == "AT+CMEE=1") return std::string("OK\r\n");
  if (cmd == "AT+CGSN=1") return std::string("+CGSN: \"352656100000017\"\r\nOK\r\n");
  if (cmd == "AT+CGMI") return std::string("Nordic Semiconductor ASA\r\nOK\r\n");
  if (cmd == "AT+CGMM") return std::string("nRF9160-SICA\r\nOK\r\n");
  if (cmd == "AT+CGMR") return std::string("mfw_nrf9160_1.3.5\r\nOK\r\n");
  if (cmd == "AT+CFUN?") return std::string("+CFUN: 4\r\nOK\r\n");
  return std::nullopt;
}

}  // namespace atbridge::testing

#endif  // ATBRIDGE_TESTS_UNIT_AGENT_FAKE_SERIAL_H_
