// Small helpers shared by the benchmark programs: a throwaway PKI on disk,
// latency statistics, and a raw pty/TCP AT client.
#ifndef ATBRIDGE_BENCH_BENCH_UTIL_H_
#define ATBRIDGE_BENCH_BENCH_UTIL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/tls/credentials.h"

namespace atbridge::bench {

// CA + certificates written under `dir`: ca.pem, <name>.pem/.key per entry.
struct BenchPki {
  tls::TlsMaterial ca_only;
  absl::StatusOr<tls::TlsFiles> Issue(const std::string& dir, const std::string& name,
                                      const std::string& role, bool server);
  std::string ca_key_pem;
  std::string ca_cert_pem;
};
absl::StatusOr<BenchPki> MakeBenchPki();

struct Stats {
  size_t n = 0;
  absl::Duration min, p50, p90, p99, max, mean;
};
Stats Summarize(std::vector<absl::Duration> samples);
std::string FormatMs(absl::Duration d);  // "0.123"

// A raw AT client over a file descriptor (pty or TCP socket): writes a
// command + CRLF and reads until a final result line.
// A loopback TCP port that was free a moment ago (the kernel's choice for
// 127.0.0.1:0), for a daemon that must be given a port number.
absl::StatusOr<int> PickFreeLoopbackPort();

class RawAtClient {
 public:
  static absl::StatusOr<RawAtClient> OpenPty(const std::string& path);
  // Connects to 127.0.0.1:`port`, retrying until `timeout`: for a daemon
  // (ser2net) that prints no readiness line, a refused connect is the only
  // sign that it is not listening yet.
  static absl::StatusOr<RawAtClient> ConnectTcp(int port, absl::Duration timeout);
  RawAtClient(RawAtClient&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  ~RawAtClient();
  // Sends `command` and waits for the final result; returns the whole answer.
  absl::StatusOr<std::string> RoundTrip(const std::string& command,
                                        absl::Duration timeout = absl::Seconds(10));

 private:
  explicit RawAtClient(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace atbridge::bench

#endif  // ATBRIDGE_BENCH_BENCH_UTIL_H_
