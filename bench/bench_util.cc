#include "bench/bench_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/pki/pki.h"
#include "common/status/errors.h"
#include "common/status/status_macros.h"

namespace atbridge::bench {

namespace {

absl::Status WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  if (!out) return PosixError(errno, absl::StrCat("write ", path));
  return absl::OkStatus();
}

bool HasFinal(absl::string_view buf) {
  return absl::EndsWith(buf, "OK\r\n") || absl::EndsWith(buf, "ERROR\r\n") ||
         (absl::StrContains(buf, "ERROR: ") && absl::EndsWith(buf, "\r\n"));
}

}  // namespace

absl::StatusOr<BenchPki> MakeBenchPki() {
  ASSIGN_OR_RETURN(pki::KeyAndCert ca, pki::CreateCa({.common_name = "atbridge bench CA"}));
  BenchPki p;
  p.ca_cert_pem = ca.cert_pem;
  p.ca_key_pem = ca.key_pem;
  return p;
}

absl::StatusOr<tls::TlsFiles> BenchPki::Issue(const std::string& dir, const std::string& name,
                                              const std::string& role, bool server) {
  pki::KeyAndCert ca{.key_pem = ca_key_pem, .cert_pem = ca_cert_pem};
  pki::IssueOptions o;
  o.common_name = name;
  o.role = role;
  o.server_auth = server;
  o.client_auth = true;
  if (server) {
    o.dns_names = {"localhost"};
    o.ip_addresses = {"127.0.0.1"};
  }
  ASSIGN_OR_RETURN(pki::KeyAndCert kc, pki::IssueCertificate(ca, o));
  tls::TlsFiles f{.ca_file = dir + "/ca.pem",
                  .cert_file = dir + "/" + name + ".pem",
                  .key_file = dir + "/" + name + ".key"};
  RETURN_IF_ERROR(WriteFile(f.ca_file, ca_cert_pem));
  RETURN_IF_ERROR(WriteFile(f.cert_file, kc.cert_pem));
  RETURN_IF_ERROR(WriteFile(f.key_file, kc.key_pem));
  return f;
}

Stats Summarize(std::vector<absl::Duration> samples) {
  Stats s;
  s.n = samples.size();
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  auto at = [&](double q) {
    auto i = static_cast<size_t>(std::lround(q * static_cast<double>(samples.size() - 1)));
    return samples[std::min(i, samples.size() - 1)];
  };
  s.min = samples.front();
  s.max = samples.back();
  s.p50 = at(0.50);
  s.p90 = at(0.90);
  s.p99 = at(0.99);
  absl::Duration total;
  for (auto d : samples) total += d;
  s.mean = total / static_cast<int64_t>(samples.size());
  return s;
}

std::string FormatMs(absl::Duration d) {
  return absl::StrFormat("%.3f", absl::ToDoubleMilliseconds(d));
}

absl::StatusOr<RawAtClient> RawAtClient::OpenPty(const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (fd < 0) return PosixError(errno, absl::StrCat("open ", path));
  termios t;
  if (tcgetattr(fd, &t) == 0) {
    cfmakeraw(&t);
    cfsetspeed(&t, B115200);
    tcsetattr(fd, TCSANOW, &t);
  }
  tcflush(fd, TCIOFLUSH);
  return RawAtClient(fd);
}

absl::StatusOr<int> PickFreeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return PosixError(errno, "socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int err = errno;
    close(fd);
    return PosixError(err, "bind 127.0.0.1:0");
  }
  close(fd);
  return static_cast<int>(ntohs(addr.sin_port));
}

absl::StatusOr<RawAtClient> RawAtClient::ConnectTcp(int port, absl::Duration timeout) {
  absl::Time deadline = absl::Now() + timeout;
  absl::Duration backoff = absl::Milliseconds(5);
  while (true) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return PosixError(errno, "socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      return RawAtClient(fd);
    }
    int err = errno;
    close(fd);
    // The daemon may not be listening yet: retry with backoff until the deadline.
    if (absl::Now() > deadline) return PosixError(err, absl::StrCat("connect 127.0.0.1:", port));
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(backoff));
    backoff = std::min(backoff * 2, absl::Milliseconds(100));
  }
}

RawAtClient::~RawAtClient() {
  if (fd_ >= 0) close(fd_);
}

absl::StatusOr<std::string> RawAtClient::RoundTrip(const std::string& command,
                                                   absl::Duration timeout) {
  std::string out = command + "\r\n";
  size_t off = 0;
  while (off < out.size()) {
    ssize_t n = write(fd_, out.data() + off, out.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return PosixError(errno, "write");
    off += static_cast<size_t>(n);
  }
  std::string in;
  absl::Time deadline = absl::Now() + timeout;
  char buf[4096];
  while (!HasFinal(in)) {
    int ms = static_cast<int>(absl::ToInt64Milliseconds(deadline - absl::Now()));
    if (ms <= 0) return absl::DeadlineExceededError(absl::StrCat("no answer to ", command));
    pollfd p{.fd = fd_, .events = POLLIN, .revents = 0};
    int r = poll(&p, 1, ms);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    ssize_t n = read(fd_, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) return absl::UnavailableError("connection closed");
    in.append(buf, static_cast<size_t>(n));
  }
  return in;
}

}  // namespace atbridge::bench
