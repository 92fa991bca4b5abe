// Signs modem CSRs with the server's CA (keygen-and-sign jobs and
// Provisioning.GenerateKey with sign). No gRPC.
#ifndef ATBRIDGE_SERVER_JOBS_CSR_SIGNER_H_
#define ATBRIDGE_SERVER_JOBS_CSR_SIGNER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/clock.h"
#include "common/pki/pki.h"

namespace atbridge::server::jobs {

// Thread-safety: implementations are thread-safe.
class CsrSigner {
 public:
  virtual ~CsrSigner() = default;
  // Verifies the CSR (DER or PEM) and returns a client certificate (PEM)
  // valid for `validity_days` (0 = 365). INVALID_ARGUMENT for a bad CSR.
  virtual absl::StatusOr<std::string> Sign(absl::string_view csr, uint32_t validity_days) = 0;
  // The CA certificate (PEM) that signs.
  virtual const std::string& CaCertificatePem() const = 0;
};

// A signer over `ca` (the CA private key is kept in memory, never logged).
// `clock` (not owned) must outlive the signer.
std::unique_ptr<CsrSigner> NewPkiCsrSigner(pki::KeyAndCert ca, const Clock* clock);

}  // namespace atbridge::server::jobs

#endif  // ATBRIDGE_SERVER_JOBS_CSR_SIGNER_H_
