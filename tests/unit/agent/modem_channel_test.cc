#include "agent/modem/modem_channel.h"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <mutex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "agent/modem/modem_ops.h"
#include "common/clock.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/random.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/unit/agent/fake_serial.h"

namespace atbridge::agent {
namespace {

using ::atbridge::testing::FakeLine;
using ::atbridge::testing::StandardAnswer;

class ModemChannelTest : public ::testing::Test {
 protected:
  ModemChannelTest()
      : work_(boost::asio::make_work_guard(io_)),
        line_(std::make_shared<FakeLine>(io_)),
        random_(NewSeededRandom(1)) {
    line_->on_command = [this](const std::string& cmd) -> std::optional<std::string> {
      if (extra_) {
        if (auto a = extra_(cmd)) return a;
      }
      return StandardAnswer(cmd);
    };
  }

  ~ModemChannelTest() override {
    if (channel_) channel_->Stop();
    OnIo([] {});
    work_.reset();
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }

  void Start(const std::function<void(ChannelOptions&)>& tweak = nullptr) {
    ChannelOptions o;
    o.port.name = "modem0";
    o.port.device = "/dev/fake0";
    o.port.serial.rtscts = true;
    o.port.command_timeout = absl::Milliseconds(150);
    o.resync_timeout = absl::Milliseconds(100);
    o.reconnect_initial = absl::Milliseconds(10);
    o.reconnect_max = absl::Milliseconds(50);
    if (tweak) tweak(o);
    channel_ = ModemChannel::Create(io_, o, testing::FakeOpener(line_), SystemClock(), *random_);
    thread_ = std::thread([this] { io_.run(); });
    channel_->Start();
    absl::Notification first;
    OnIo([&] { channel_->WhenFirstAttemptDone([&first] { first.Notify(); }); });
    first.WaitForNotification();
  }

  // Runs fn on the io thread and waits for it.
  void OnIo(std::function<void()> fn) {
    absl::Notification done;
    boost::asio::post(io_, [&] {
      fn();
      done.Notify();
    });
    done.WaitForNotification();
  }

  absl::StatusOr<AtReply> Command(const std::string& text) {
    absl::Notification done;
    absl::StatusOr<AtReply> result;
    OnIo([&] {
      channel_->Submit(AtCommand{.text = text}, [&](absl::StatusOr<AtReply> r) {
        result = std::move(r);
        done.Notify();
      });
    });
    done.WaitForNotification();
    return result;
  }

  ChannelState State() {
    ChannelState s;
    OnIo([&] { s = channel_->state(); });
    return s;
  }

  // Waits (on the channel's observer) until the state is `want`.
  bool WaitForState(ChannelState want, absl::Duration timeout = absl::Seconds(5)) {
    auto reached = std::make_shared<absl::Notification>();
    OnIo([&] {
      if (channel_->state() == want) {
        reached->Notify();
        return;
      }
      channel_->SetObserver([this, want, reached] {
        if (channel_->state() == want && !reached->HasBeenNotified()) reached->Notify();
      });
    });
    return reached->WaitForNotificationWithTimeout(timeout);
  }

  boost::asio::io_context io_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
  std::shared_ptr<FakeLine> line_;
  std::unique_ptr<Random> random_;
  std::shared_ptr<ModemChannel> channel_;
  std::function<std::optional<std::string>(const std::string&)> extra_;
};

TEST_F(ModemChannelTest, IdentifiesTheModemOnOpen) {
  Start();
  EXPECT_EQ(State(), ChannelState::kReady);
  ModemIdentity id;
  OnIo([&] { id = channel_->identity(); });
  EXPECT_EQ(id.imei, "352656100000017");
  EXPECT_EQ(id.manufacturer, "Nordic Semiconductor ASA");
  EXPECT_EQ(id.model, "nRF9160-SICA");
  EXPECT_EQ(id.firmware, "mfw_nrf9160_1.3.5");
  EXPECT_EQ(id.cfun, 4);
  // Numeric error codes are switched on before anything else.
  ASSERT_GE(line_->commands.size(), 2u);
  EXPECT_EQ(line_->commands[1], "AT+CMEE=1");
}

TEST_F(ModemChannelTest, UrcsStayOutOfResponses) {
  extra_ = [](const std::string& cmd) -> std::optional<std::string> {
    if (cmd == "AT+CEREG?") {
      return std::string("+CEREG: 5,\"76C1\"\r\n%XSIM: 1\r\n\r\nOK\r\n");
    }
    return std::nullopt;
  };
  Start();
  ASSERT_OK_AND_ASSIGN(AtReply r, Command("AT+CEREG?"));
  ASSERT_EQ(r.response.lines.size(), 1u);
  EXPECT_EQ(r.response.lines[0], "+CEREG: 5,\"76C1\"");
  EXPECT_TRUE(r.response.final.ok());
}

TEST_F(ModemChannelTest, ALateReplyIsNeverGivenToTheNextCommand) {
  extra_ = [this](const std::string& cmd) -> std::optional<std::string> {
    if (cmd == "AT+SLOW") {
      // The modem executes for 400 ms (ignoring input, as an AT host does),
      // far past the 150 ms deadline, then answers.
      line_->busy = true;
      auto t = std::make_shared<boost::asio::steady_timer>(io_, std::chrono::milliseconds(400));
      t->async_wait([this, t](const boost::system::error_code&) {
        line_->busy = false;
        line_->Send("+SLOW: 1\r\nOK\r\n");
      });
    }
    return std::nullopt;
  };
  Start();
  EXPECT_THAT(Command("AT+SLOW"), testing::StatusIs(absl::StatusCode::kDeadlineExceeded));
  ASSERT_OK_AND_ASSIGN(AtReply r, Command("AT+CGMM"));
  ASSERT_EQ(r.response.lines.size(), 1u);
  EXPECT_EQ(r.response.lines[0], "nRF9160-SICA");
}

TEST_F(ModemChannelTest, ALostClosingQuoteIsClosedBeforeTheNextCommand) {
  // On a line without flow control the closing quote of a write is lost: the
  // modem takes everything after it as quoted data and never answers.
  bool armed = true;
  Start([](ChannelOptions& o) { o.port.serial.rtscts = false; });
  // Drop exactly the closing quote of the next write.
  int quotes = 0;
  line_->drop_byte = [&quotes, &armed](char c) {
    if (!armed || c != '"') return false;
    if (++quotes == 2) {
      armed = false;
      return true;
    }
    return false;
  };
  extra_ = [](const std::string& cmd) -> std::optional<std::string> {
    if (absl::StartsWith(cmd, "AT%CMNG=0")) {
      return std::string(absl::StrContains(cmd, "\r") ? "+CME ERROR: 527\r\n" : "OK\r\n");
    }
    return std::nullopt;
  };
  EXPECT_THAT(Command("AT%CMNG=0,1,4,\"identity\""),
              testing::StatusIs(absl::StatusCode::kDeadlineExceeded));
  ASSERT_OK_AND_ASSIGN(AtReply r, Command("AT+CGMR"));
  ASSERT_EQ(r.response.lines.size(), 1u);
  EXPECT_EQ(r.response.lines[0], "mfw_nrf9160_1.3.5");
  // The channel sent a lone quote to close the modem's open string.
  EXPECT_TRUE(absl::StrContains(line_->from_host, "\r\n\"\r\n"));
}

TEST_F(ModemChannelTest, APortThatBreaksFailsPendingCommandsAndComesBack) {
  extra_ = [](const std::string& cmd) -> std::optional<std::string> {
    if (cmd == "AT+HANG") return std::string();  // Never answered.
    return std::nullopt;
  };
  Start([](ChannelOptions& o) { o.port.command_timeout = absl::Seconds(10); });
  absl::Notification failed;
  absl::Status status;
  OnIo([&] {
    channel_->Submit(AtCommand{.text = "AT+HANG"}, [&](const absl::StatusOr<AtReply>& r) {
      status = r.status();
      failed.Notify();
    });
    line_->Break();
  });
  failed.WaitForNotification();
  EXPECT_THAT(status, testing::StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_TRUE(WaitForState(ChannelState::kReady));
  EXPECT_EQ(line_->opens, 2);
  ASSERT_OK_AND_ASSIGN(AtReply r, Command("AT+CGMM"));
  EXPECT_TRUE(r.response.final.ok());
}

TEST_F(ModemChannelTest, OpenIsRetriedWithBackoffUntilTheDeviceAppears) {
  line_->failing_opens = 3;
  Start();
  ASSERT_TRUE(WaitForState(ChannelState::kReady));
  EXPECT_EQ(line_->opens, 4);
}

TEST_F(ModemChannelTest, CommandsOnADownPortFailFast) {
  line_->failing_opens = 1000;
  Start([](ChannelOptions& o) { o.reconnect_initial = absl::Seconds(5); });
  EXPECT_THAT(Command("AT"), testing::StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(ModemChannelTest, LongCommandsArePacedInChunks) {
  extra_ = [](const std::string& cmd) -> std::optional<std::string> {
    if (absl::StartsWith(cmd, "AT+LONG=")) return std::string("OK\r\n");
    return std::nullopt;
  };
  Start([](ChannelOptions& o) {
    o.port.serial.rtscts = false;
    o.port.pacing = Pacing{.chunk_bytes = 16, .gap = absl::Milliseconds(1)};
  });
  line_->write_sizes.clear();
  ASSERT_OK_AND_ASSIGN(AtReply r, Command("AT+LONG=" + std::string(100, '7')));
  EXPECT_TRUE(r.response.final.ok());
  ASSERT_GE(line_->write_sizes.size(), 7u);
  for (size_t n : line_->write_sizes) EXPECT_LE(n, 16u);
}

TEST_F(ModemChannelTest, LockGrantsInOrder) {
  Start();
  std::vector<int> order;
  absl::Notification all;
  OnIo([&] {
    for (int i = 0; i < 3; ++i) {
      channel_->Lock([&, i] {
        order.push_back(i);
        channel_->Unlock();
        if (order.size() == 3) all.Notify();
      });
    }
  });
  all.WaitForNotification();
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
}

// Collects what console watchers see.
class CollectingWatcher final : public ConsoleWatcher {
 public:
  void OnConsoleData(absl::string_view bytes) override { absl::StrAppend(&data, bytes); }
  void OnConsoleEvent(Event, absl::string_view) override {}
  std::string data;
};

TEST_F(ModemChannelTest, RawBytesWaitWhileATransactionHoldsThePort) {
  extra_ = [](const std::string& cmd) -> std::optional<std::string> {
    if (cmd == "AT+RAW") return std::string("OK\r\n");
    return std::nullopt;
  };
  Start();
  absl::Notification locked;
  OnIo([&] { channel_->Lock([&locked] { locked.Notify(); }); });
  locked.WaitForNotification();
  // Console bytes arrive in the middle of the transaction.
  absl::Notification raw_done;
  absl::Status raw_status = absl::UnknownError("not called");
  OnIo([&] {
    channel_->WriteRaw("AT+RAW\r\n", [&](absl::Status s) {
      raw_status = s;
      raw_done.Notify();
    });
  });
  // The transaction's own commands go on and get their own answers.
  for (const char* cmd : {"AT+CGMM", "AT+CGMR"}) {
    ASSERT_OK_AND_ASSIGN(AtReply r, Command(cmd));
    EXPECT_EQ(r.response.lines.size(), 1u) << cmd;
  }
  std::string sent;
  OnIo([&] { sent = line_->from_host; });
  EXPECT_FALSE(absl::StrContains(sent, "AT+RAW")) << sent;
  EXPECT_FALSE(raw_done.HasBeenNotified());
  // Only when the transaction ends do the console bytes go.
  OnIo([&] { channel_->Unlock(); });
  raw_done.WaitForNotification();
  EXPECT_OK(raw_status);
  OnIo([&] { sent = line_->from_host; });
  EXPECT_TRUE(absl::EndsWith(sent, "AT+CGMR\r\nAT+RAW\r\n")) << sent;
}

TEST_F(ModemChannelTest, ACommandAfterRawBytesGetsItsOwnAnswer) {
  extra_ = [this](const std::string& cmd) -> std::optional<std::string> {
    if (cmd == "AT+RAW") {
      // The modem executes the console's command for 50 ms (not reading,
      // as an AT host does), then answers it.
      line_->busy = true;
      auto t = std::make_shared<boost::asio::steady_timer>(io_, std::chrono::milliseconds(50));
      t->async_wait([this, t](const boost::system::error_code&) {
        line_->busy = false;
        line_->Send("OK\r\n");
      });
    }
    return std::nullopt;
  };
  Start();
  absl::Notification done;
  absl::StatusOr<AtReply> reply;
  OnIo([&] {
    channel_->WriteRaw("AT+RAW\r", [](absl::Status) {});
    channel_->Submit(AtCommand{.text = "AT+CGMM"}, [&](absl::StatusOr<AtReply> r) {
      reply = std::move(r);
      done.Notify();
    });
  });
  done.WaitForNotification();
  ASSERT_OK(reply.status());
  ASSERT_EQ(reply->response.lines.size(), 1u);
  EXPECT_EQ(reply->response.lines[0], "nRF9160-SICA");
  EXPECT_TRUE(reply->response.final.ok());
}

TEST_F(ModemChannelTest, AConsoleLineTypedInPiecesIsOneCommand) {
  Start([](ChannelOptions& o) { o.console_reply_quiet = absl::Milliseconds(30); });
  absl::Notification written;
  OnIo([&] { channel_->WriteRaw("AT+CG", [&](absl::Status) { written.Notify(); }); });
  written.WaitForNotification();
  // The modem now holds "AT+CG". A pause longer than the quiet window, with
  // nobody else waiting for the port, does not clear it (someone typing).
  absl::SleepFor(absl::Milliseconds(100));
  // The line completed by the next bytes is one command, answered once.
  absl::Notification again;
  OnIo([&] { channel_->WriteRaw("MM\r\n", [&](absl::Status) { again.Notify(); }); });
  again.WaitForNotification();
  ASSERT_OK_AND_ASSIGN(AtReply r, Command("AT+CGMR"));
  ASSERT_EQ(r.response.lines.size(), 1u);
  EXPECT_EQ(r.response.lines[0], "mfw_nrf9160_1.3.5");
  std::vector<std::string> commands;
  OnIo([&] { commands = line_->commands; });
  ASSERT_GE(commands.size(), 2u);
  EXPECT_EQ(commands[commands.size() - 2], "AT+CGMM");
  EXPECT_EQ(commands.back(), "AT+CGMR");
}

// A PEM paste split across console messages: the first part leaves the
// modem inside the quoted PEM. Another operation's command must not be sent
// into it; it waits until the console completes the line.
TEST_F(ModemChannelTest, APartialConsoleLineKeepsThePortUntilTheLineIsComplete) {
  extra_ = [](const std::string& cmd) -> std::optional<std::string> {
    if (absl::StartsWith(cmd, "AT%CMNG=0")) return std::string("OK\r\n");
    return std::nullopt;
  };
  Start();  // console_reply_quiet: 2 s.
  absl::Notification first;
  OnIo([&] {
    channel_->WriteRaw("AT%CMNG=0,42,0,\"-----BEGIN", [&](absl::Status) { first.Notify(); });
  });
  first.WaitForNotification();
  // A transaction (the job engine's ListCredentials, say) wants the port.
  absl::Notification granted;
  absl::Notification replied;
  absl::StatusOr<AtReply> reply;
  OnIo([&] {
    channel_->Lock([&] {
      granted.Notify();
      channel_->Submit(AtCommand{.text = "AT+CGMM"}, [&](absl::StatusOr<AtReply> r) {
        reply = std::move(r);
        channel_->Unlock();
        replied.Notify();
      });
    });
  });
  EXPECT_FALSE(granted.WaitForNotificationWithTimeout(absl::Milliseconds(300)));
  std::string sent;
  OnIo([&] { sent = line_->from_host; });
  // Nothing after the console's bytes.
  EXPECT_TRUE(absl::EndsWith(sent, "AT%CMNG=0,42,0,\"-----BEGIN")) << sent;
  // The rest of the paste comes; the console's line is one command.
  OnIo([&] { channel_->WriteRaw(" CERTIFICATE-----\n\"\r\n", [](absl::Status) {}); });
  replied.WaitForNotification();
  ASSERT_OK(reply.status());
  ASSERT_EQ(reply->response.lines.size(), 1u);
  EXPECT_EQ(reply->response.lines[0], "nRF9160-SICA");
  std::vector<std::string> commands;
  OnIo([&] { commands = line_->commands; });
  ASSERT_GE(commands.size(), 2u);
  EXPECT_EQ(commands[commands.size() - 2], "AT%CMNG=0,42,0,\"-----BEGIN CERTIFICATE-----\n\"");
  EXPECT_EQ(commands.back(), "AT+CGMM");
}

// The console leaves a partial line and goes quiet while a command waits:
// after the quiet window the line is erased (and an open quote closed, on a
// port with RTS/CTS too) before the command, which gets its own answer; the
// console's half command is never executed nor joined to the next one.
TEST_F(ModemChannelTest, APartialConsoleLineIsClearedAfterTheQuietWindow) {
  extra_ = [](const std::string& cmd) -> std::optional<std::string> {
    if (StandardAnswer(cmd)) return std::nullopt;
    return std::string("ERROR\r\n");  // Anything else, as a modem would.
  };
  Start([](ChannelOptions& o) { o.console_reply_quiet = absl::Milliseconds(50); });
  for (const char* partial : {"AT%CMNG=0,42,0,\"-----BEGIN", "AT+CFUN=4"}) {
    SCOPED_TRACE(partial);
    size_t before = 0;
    absl::Notification written;
    OnIo([&] {
      before = line_->commands.size();
      channel_->WriteRaw(partial, [&](absl::Status) { written.Notify(); });
    });
    written.WaitForNotification();
    absl::Time start = absl::Now();
    ASSERT_OK_AND_ASSIGN(AtReply r, Command("AT+CGMM"));
    EXPECT_GE(absl::Now() - start, absl::Milliseconds(40));
    ASSERT_EQ(r.response.lines.size(), 1u);
    EXPECT_EQ(r.response.lines[0], "nRF9160-SICA");
    std::vector<std::string> commands;
    OnIo([&] { commands = line_->commands; });
    ASSERT_GT(commands.size(), before);
    EXPECT_EQ(commands.back(), "AT+CGMM");
    for (size_t i = before; i < commands.size(); ++i) {
      EXPECT_FALSE(absl::StrContains(commands[i], "CMNG")) << commands[i];
      EXPECT_FALSE(absl::StrContains(commands[i], "CFUN=4")) << commands[i];
    }
  }
}

// Console bytes are authorized again when they get the port: the lease may
// have been released while they waited behind a transaction.
TEST_F(ModemChannelTest, RawBytesAreAuthorizedWhenTheyGetThePort) {
  Start();
  absl::Notification locked;
  OnIo([&] { channel_->Lock([&locked] { locked.Notify(); }); });
  locked.WaitForNotification();
  bool allowed = true;
  int checks = 0;
  absl::Notification raw_done;
  absl::Status raw_status;
  OnIo([&] {
    channel_->WriteRaw(
        "AT+RAW\r\n",
        [&](absl::Status s) {
          raw_status = s;
          raw_done.Notify();
        },
        [&]() -> absl::Status {
          ++checks;
          return allowed ? absl::OkStatus() : absl::FailedPreconditionError("lease released");
        });
  });
  OnIo([&] {
    EXPECT_EQ(checks, 0);  // Not while the transaction holds the port.
    allowed = false;       // The lease is force-released meanwhile.
    channel_->Unlock();
  });
  raw_done.WaitForNotification();
  EXPECT_THAT(raw_status, testing::StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_EQ(checks, 1);
  std::string sent;
  OnIo([&] { sent = line_->from_host; });
  EXPECT_FALSE(absl::StrContains(sent, "AT+RAW")) << sent;
  // The port is free again.
  absl::Notification relocked;
  OnIo([&] { channel_->Lock([&relocked] { relocked.Notify(); }); });
  ASSERT_TRUE(relocked.WaitForNotificationWithTimeout(absl::Seconds(2)));
  OnIo([&] { channel_->Unlock(); });
  ASSERT_OK_AND_ASSIGN(AtReply r, Command("AT+CGMM"));
  EXPECT_TRUE(r.response.final.ok());
}

// CTS held low: console bytes that cannot be written do not hold the port
// for ever; the port is lost ("write stalled") and comes back.
TEST_F(ModemChannelTest, AStalledRawWriteLosesThePortInsteadOfHoldingIt) {
  Start();
  absl::Notification raw_done;
  absl::Status raw_status;
  OnIo([&] {
    line_->stall_writes = true;
    channel_->WriteRaw("AT+CFUN?\r\n", [&](absl::Status s) {
      raw_status = s;
      raw_done.Notify();
    });
  });
  // Another operation waits for the port meanwhile.
  absl::Notification granted;
  OnIo([&] { channel_->Lock([&granted] { granted.Notify(); }); });
  ASSERT_TRUE(raw_done.WaitForNotificationWithTimeout(absl::Seconds(3)));
  EXPECT_THAT(raw_status, testing::StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(std::string(raw_status.message()), ::testing::HasSubstr("write stalled"));
  ASSERT_TRUE(granted.WaitForNotificationWithTimeout(absl::Seconds(3)));
  OnIo([&] {
    line_->stall_writes = false;
    channel_->Unlock();
  });
  ASSERT_TRUE(WaitForState(ChannelState::kReady));
  ASSERT_OK_AND_ASSIGN(AtReply r, Command("AT+CGMM"));
  EXPECT_TRUE(r.response.final.ok());
}

TEST_F(ModemChannelTest, AnUnansweredConsoleCommandReleasesThePortAfterTheQuietWindow) {
  extra_ = [](const std::string& cmd) -> std::optional<std::string> {
    if (cmd == "AT+SILENT") return std::string();
    return std::nullopt;
  };
  Start([](ChannelOptions& o) { o.console_reply_quiet = absl::Milliseconds(50); });
  OnIo([&] { channel_->WriteRaw("AT+SILENT\r\n", [](absl::Status) {}); });
  ASSERT_OK_AND_ASSIGN(AtReply r, Command("AT+CGMM"));
  ASSERT_EQ(r.response.lines.size(), 1u);
  EXPECT_EQ(r.response.lines[0], "nRF9160-SICA");
}

// A write whose answer never comes, on a modem that echoes commands (ATE1):
// the PSK must appear nowhere — not in the status, the report, the log, the
// transcript or what console watchers see.
TEST_F(ModemChannelTest, ATimedOutPskWriteLeaksItNowhere) {
  const std::string psk = "c0ffee5ec2e7a11ce0ddba11deadbeef";
  testing::TempDir dir;
  std::mutex log_mu;
  std::string logged;
  log::SetLevel(log::Level::kDebug);
  log::SetSinkForTesting([&](log::Level, absl::string_view m) {
    std::lock_guard<std::mutex> lock(log_mu);
    absl::StrAppend(&logged, m, "\n");
  });
  extra_ = [this](const std::string& cmd) -> std::optional<std::string> {
    if (absl::StartsWith(cmd, "AT%CMNG=0")) {
      // Echoed back in two pieces, then never answered.
      line_->Send(cmd.substr(0, 20));
      line_->Send(cmd.substr(20) + "\r\n");
      return std::string();
    }
    if (absl::StartsWith(cmd, "AT%CMNG=1")) return std::string("OK\r\n");
    return std::nullopt;
  };
  Start([&dir](ChannelOptions& o) { o.port.transcript_file = dir.File("modem0.log"); });
  auto watcher = std::make_shared<CollectingWatcher>();
  OnIo([&] { channel_->AddWatcher(watcher); });

  v1::WriteCredentialRequest req;
  req.set_port("modem0");
  req.set_sec_tag(7);
  req.set_type(v1::PSK);
  req.set_content(psk);
  absl::Notification done;
  absl::StatusOr<v1::WriteReport> result;
  Clock& clock = SystemClock();
  OnIo([&] {
    boost::asio::co_spawn(io_, RunWriteCredential(OpContext{channel_, clock}, req),
                          [&](const std::exception_ptr&, absl::StatusOr<v1::WriteReport> r) {
                            result = std::move(r);
                            done.Notify();
                          });
  });
  done.WaitForNotification();
  log::SetSinkForTesting(nullptr);
  log::SetLevel(log::Level::kInfo);

  // Unanswered, then not found by verify: DATA_LOSS, with the report.
  ASSERT_THAT(result, testing::StatusIs(absl::StatusCode::kDataLoss));
  EXPECT_THAT(std::string(result.status().message()), ::testing::Not(::testing::HasSubstr(psk)));
  v1::WriteReport report;
  ASSERT_TRUE(GetStatusDetail(result.status(), &report));
  std::vector<std::string> names;
  for (const auto& step : report.steps()) {
    names.push_back(step.name());
    EXPECT_THAT(step.detail(), ::testing::Not(::testing::HasSubstr(psk))) << step.name();
  }
  EXPECT_THAT(names, ::testing::Contains("write"));
  EXPECT_THAT(names, ::testing::Contains("verify"));
  EXPECT_THAT(report.DebugString(), ::testing::Not(::testing::HasSubstr(psk)));
  {
    std::lock_guard<std::mutex> lock(log_mu);
    EXPECT_THAT(logged, ::testing::HasSubstr("no final result within the deadline"));
    EXPECT_THAT(logged, ::testing::Not(::testing::HasSubstr(psk))) << logged;
  }
  std::string seen;
  OnIo([&] { seen = watcher->data; });
  EXPECT_THAT(seen, ::testing::HasSubstr("redacted"));
  EXPECT_THAT(seen, ::testing::Not(::testing::HasSubstr(psk.substr(0, 8)))) << seen;
  std::string transcript = testing::ReadFileOrDie(dir.File("modem0.log"));
  EXPECT_THAT(transcript, ::testing::Not(::testing::HasSubstr(psk.substr(0, 8)))) << transcript;
}

TEST(ExpectationForTest, DerivesEchoAndInfoPrefix) {
  at::CommandExpectation e = ExpectationFor("AT%cmng=1,16842753");
  EXPECT_EQ(e.echo, "AT%cmng=1,16842753");
  ASSERT_EQ(e.info_prefixes.size(), 1u);
  EXPECT_EQ(e.info_prefixes[0], "%CMNG:");
  EXPECT_TRUE(ExpectationFor("AT").info_prefixes.empty());
  EXPECT_EQ(ExpectationFor("AT+CFUN?").info_prefixes[0], "+CFUN:");
}

}  // namespace
}  // namespace atbridge::agent
