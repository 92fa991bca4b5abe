// A minimal Prometheus text endpoint: plain HTTP/1.1 on a loopback address
// (the options validation refuses others: there is no TLS here), answering
// `GET /metrics` with the text exposition format and closing the
// connection. One request per connection, requests over 8 KiB or idle for
// 5 s are dropped. No dependency beyond Asio.
//
// Thread-safety: Start/Stop from the controlling thread; connections run on
// the worker pool's io_context, each on its own strand. `render` is called
// on a worker thread and must be thread-safe.
#ifndef ATBRIDGE_SERVER_SERVICE_METRICS_HTTP_H_
#define ATBRIDGE_SERVER_SERVICE_METRICS_HTTP_H_

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace atbridge::server::service {

class MetricsHttpServer {
 public:
  using Render = std::function<std::string()>;

  // Binds `listen` ("127.0.0.1:9464"; port 0 picks one) and starts
  // accepting. UNAVAILABLE when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(boost::asio::io_context& io,
                                                                  const std::string& listen,
                                                                  Render render);
  ~MetricsHttpServer();  // Stop().
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  int port() const { return port_; }
  // Stops accepting (open connections finish on their own). Idempotent.
  void Stop();

 private:
  struct State;
  explicit MetricsHttpServer(std::shared_ptr<State> state, int port)
      : state_(std::move(state)), port_(port) {}

  std::shared_ptr<State> state_;
  int port_;
};

// The server's metrics in the Prometheus text format (pure, for tests).
struct MetricsSnapshot {
  size_t jobs_active = 0;
  // By execution state name (queued, in_progress, succeeded, ...) of the jobs
  // being run.
  std::vector<std::pair<std::string, uint64_t>> executions;
  size_t agents_known = 0;
  size_t agents_connected = 0;
};
std::string RenderMetrics(const MetricsSnapshot& m);

}  // namespace atbridge::server::service

#endif  // ATBRIDGE_SERVER_SERVICE_METRICS_HTTP_H_
