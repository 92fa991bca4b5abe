#include "client/rpc/connection.h"

#include <chrono>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "client/core/errors.h"
#include "common/tls/credentials.h"
#include "common/tls/identity.h"

namespace atbridge::client {

absl::StatusOr<std::shared_ptr<grpc::Channel>> Dial(const ResolvedConfig& config) {
  if (config.mode == Mode::kNone) {
    return WithHint(
        UsageError("no server or agent to talk to"),
        "pass --server HOST:PORT (or --agent HOST:PORT for one agent directly), set "
        "ATBRIDGE_SERVER, or put 'server:' in the config file (atbridgectl config show)");
  }
  if (config.ca.empty() || config.cert.empty() || config.key.empty()) {
    std::string missing;
    if (config.ca.empty()) absl::StrAppend(&missing, " --ca");
    if (config.cert.empty()) absl::StrAppend(&missing, " --cert");
    if (config.key.empty()) absl::StrAppend(&missing, " --key");
    return WithHint(UsageError(absl::StrCat("mutual TLS needs a CA, a certificate and a key; "
                                            "missing:",
                                            missing)),
                    "run 'atbridgectl pki init' for a dev CA and certificates, or set "
                    "ATBRIDGE_CA/ATBRIDGE_CERT/ATBRIDGE_KEY");
  }
  auto material = tls::LoadTlsMaterial({config.ca, config.cert, config.key});
  if (!material.ok()) {
    return WithHint(UsageError(material.status().message()),
                    "check --ca, --cert and --key (atbridgectl config show)");
  }
  tls::ChannelOptions options;
  options.server_name_override = config.server_name;
  options.keepalive_time = kKeepaliveTime;
  return tls::CreateChannel(config.address, *material, options);
}

std::string IdentityText(const std::string& cert_file) {
  std::ifstream in(cert_file);
  if (!in) return "";
  std::stringstream buf;
  buf << in.rdbuf();
  auto id = tls::IdentityFromCertificate(buf.str());
  if (!id.ok()) return "";
  return id->ToString();
}

void SetDeadline(grpc::ClientContext* ctx, absl::Duration timeout) {
  ctx->set_deadline(std::chrono::system_clock::now() +
                    std::chrono::duration_cast<std::chrono::system_clock::duration>(
                        absl::ToChronoNanoseconds(timeout)));
}

}  // namespace atbridge::client
