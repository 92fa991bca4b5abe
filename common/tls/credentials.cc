#include "common/tls/credentials.h"

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status/errors.h"
#include "common/status/status_macros.h"

namespace atbridge::tls {

namespace {

absl::StatusOr<std::string> ReadPemFile(const std::string& path, absl::string_view what) {
  if (path.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no ", what, " file given"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return PosixError(errno, absl::StrCat("open ", what, " file ", path));
  std::ostringstream buf;
  buf << in.rdbuf();
  std::string data = buf.str();
  if (!absl::StrContains(data, "-----BEGIN ")) {
    return absl::InvalidArgumentError(absl::StrCat(what, " file ", path, " holds no PEM data"));
  }
  return data;
}

int Millis(absl::Duration d) { return static_cast<int>(absl::ToInt64Milliseconds(d)); }

}  // namespace

absl::StatusOr<TlsMaterial> LoadTlsMaterial(const TlsFiles& files) {
  TlsMaterial m;
  ASSIGN_OR_RETURN(m.ca_pem, ReadPemFile(files.ca_file, "CA certificate"));
  ASSIGN_OR_RETURN(m.cert_pem, ReadPemFile(files.cert_file, "certificate"));
  ASSIGN_OR_RETURN(m.key_pem, ReadPemFile(files.key_file, "private key"));
  return m;
}

std::shared_ptr<grpc::ServerCredentials> ServerCredentials(const TlsMaterial& material) {
  grpc::SslServerCredentialsOptions opts(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  opts.pem_root_certs = material.ca_pem;
  opts.pem_key_cert_pairs.push_back({material.key_pem, material.cert_pem});
  return grpc::SslServerCredentials(opts);
}

std::shared_ptr<grpc::ChannelCredentials> ChannelCredentials(const TlsMaterial& material) {
  grpc::SslCredentialsOptions opts;
  opts.pem_root_certs = material.ca_pem;
  opts.pem_private_key = material.key_pem;
  opts.pem_cert_chain = material.cert_pem;
  return grpc::SslCredentials(opts);
}

std::shared_ptr<grpc::Channel> CreateChannel(const std::string& target, const TlsMaterial& material,
                                             const ChannelOptions& options) {
  grpc::ChannelArguments args;
  if (!options.server_name_override.empty()) {
    args.SetSslTargetNameOverride(options.server_name_override);
  }
  if (options.keepalive_time > absl::ZeroDuration()) {
    // See grpc-notes.md §4: MAX_PINGS_WITHOUT_DATA must be 0 or keepalive
    // silently stops after two pings on an idle stream.
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, Millis(options.keepalive_time));
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, Millis(options.keepalive_timeout));
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  }
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, Millis(options.max_reconnect_backoff));
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  // Not a backoff floor: in gRPC 1.51 this is the least time one connection
  // attempt (TCP and TLS handshake) may take before it is abandoned
  // (grpc-notes.md §5). 1 s failed every attempt over a slow WAN link; keep
  // gRPC's 20 s. Refused connections still fail at once and back off.
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 20000);
  return grpc::CreateCustomChannel(target, ChannelCredentials(material), args);
}

void ApplyServerKeepalive(grpc::ServerBuilder& builder, absl::Duration min_ping_interval,
                          absl::Duration keepalive_time, absl::Duration keepalive_timeout) {
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             Millis(min_ping_interval));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, Millis(keepalive_time));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, Millis(keepalive_timeout));
}

}  // namespace atbridge::tls
