#include "server/service/metrics_http.h"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/log.h"

namespace atbridge::server::service {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

constexpr size_t kMaxRequestBytes = 8192;
constexpr auto kIdleTimeout = std::chrono::seconds(5);

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, MetricsHttpServer::Render render)
      : strand_(asio::make_strand(socket.get_executor())),
        socket_(std::move(socket)),
        timer_(strand_),
        in_(kMaxRequestBytes),
        render_(std::move(render)) {}

  void Begin() {
    auto self = shared_from_this();
    asio::post(strand_, [self] {
      self->timer_.expires_after(kIdleTimeout);
      self->timer_.async_wait([self](const boost::system::error_code& ec) {
        if (!ec) self->Close();
      });
      asio::async_read_until(
          self->socket_, self->in_, "\r\n\r\n",
          asio::bind_executor(self->strand_, [self](const boost::system::error_code& ec, size_t) {
            self->OnRequest(ec);
          }));
    });
  }

 private:
  void OnRequest(const boost::system::error_code& ec) {
    if (ec) return Close();
    std::string head(asio::buffers_begin(in_.data()), asio::buffers_end(in_.data()));
    const std::string line = head.substr(0, head.find("\r\n"));
    std::string status = "200 OK";
    std::string type = "text/plain; version=0.0.4; charset=utf-8";
    std::string body;
    if (!absl::StartsWith(line, "GET ")) {
      status = "405 Method Not Allowed";
      type = "text/plain";
      body = "only GET\n";
    } else if (!absl::StartsWith(line, "GET /metrics ") && !absl::StartsWith(line, "GET / ")) {
      status = "404 Not Found";
      type = "text/plain";
      body = "try /metrics\n";
    } else {
      body = render_();
    }
    out_ = absl::StrCat("HTTP/1.1 ", status, "\r\nContent-Type: ", type,
                        "\r\nContent-Length: ", body.size(), "\r\nConnection: close\r\n\r\n", body);
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(out_),
                      asio::bind_executor(strand_, [self](const boost::system::error_code&,
                                                          size_t) { self->Close(); }));
  }

  void Close() {
    boost::system::error_code ignored;
    timer_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  asio::strand<asio::any_io_executor> strand_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  asio::streambuf in_;
  std::string out_;
  MetricsHttpServer::Render render_;
};

}  // namespace

struct MetricsHttpServer::State : std::enable_shared_from_this<MetricsHttpServer::State> {
  State(asio::io_context& io, Render r)
      : strand(asio::make_strand(io)), acceptor(strand), retry(strand), render(std::move(r)) {}

  void Accept() {
    auto self = shared_from_this();
    acceptor.async_accept(asio::bind_executor(
        strand, [self](const boost::system::error_code& ec, tcp::socket socket) {
          if (self->stopped || ec == asio::error::operation_aborted) return;
          if (!ec) {
            std::make_shared<Connection>(std::move(socket), self->render)->Begin();
            self->Accept();
            return;
          }
          // A lasting error (EMFILE) must not spin a pool worker: pause.
          self->retry.expires_after(std::chrono::milliseconds(100));
          self->retry.async_wait([self](const boost::system::error_code& wait_ec) {
            if (!wait_ec && !self->stopped) self->Accept();
          });
        }));
  }

  asio::strand<asio::io_context::executor_type> strand;
  tcp::acceptor acceptor;
  asio::steady_timer retry;
  Render render;
  bool stopped = false;  // Owned by strand.
};

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    asio::io_context& io, const std::string& listen, Render render) {
  const size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port)) {
    return absl::InvalidArgumentError(absl::StrCat("metrics_listen ", listen, " is not host:port"));
  }
  std::string host = listen.substr(0, colon);
  host = std::string(absl::StripSuffix(absl::StripPrefix(host, "["), "]"));
  if (host == "localhost") host = "127.0.0.1";
  boost::system::error_code ec;
  const asio::ip::address address = asio::ip::make_address(host, ec);
  if (ec)
    return absl::InvalidArgumentError(absl::StrCat("metrics_listen ", listen, ": ", ec.message()));
  auto state = std::make_shared<State>(io, std::move(render));
  const tcp::endpoint endpoint(address, static_cast<uint16_t>(port));
  state->acceptor.open(endpoint.protocol(), ec);
  if (!ec) state->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) state->acceptor.bind(endpoint, ec);
  if (!ec) state->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("metrics: cannot listen on ", listen, ": ", ec.message()));
  }
  const int bound = state->acceptor.local_endpoint(ec).port();
  asio::post(state->strand, [state] { state->Accept(); });
  return std::unique_ptr<MetricsHttpServer>(new MetricsHttpServer(std::move(state), bound));
}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

void MetricsHttpServer::Stop() {
  if (!state_) return;
  asio::post(state_->strand, [state = state_] {
    state->stopped = true;
    boost::system::error_code ignored;
    state->acceptor.close(ignored);
    state->retry.cancel();
  });
  state_.reset();
}

std::string RenderMetrics(const MetricsSnapshot& m) {
  std::string out;
  absl::StrAppend(&out,
                  "# HELP atbridge_jobs_active Jobs being run (not finished).\n"
                  "# TYPE atbridge_jobs_active gauge\n"
                  "atbridge_jobs_active ",
                  m.jobs_active, "\n");
  absl::StrAppend(&out,
                  "# HELP atbridge_executions Executions of the jobs being run, by state.\n"
                  "# TYPE atbridge_executions gauge\n");
  for (const auto& [state, n] : m.executions) {
    absl::StrAppend(&out, "atbridge_executions{state=\"", state, "\"} ", n, "\n");
  }
  absl::StrAppend(&out,
                  "# HELP atbridge_agents Agents known to the inventory.\n"
                  "# TYPE atbridge_agents gauge\n"
                  "atbridge_agents ",
                  m.agents_known, "\n",
                  "# HELP atbridge_agents_connected Agents with an open uplink.\n"
                  "# TYPE atbridge_agents_connected gauge\n"
                  "atbridge_agents_connected ",
                  m.agents_connected, "\n");
  return out;
}

}  // namespace atbridge::server::service
