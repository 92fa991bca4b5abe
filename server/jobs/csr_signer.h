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
  // Verifies the CSR (DER or PEM: self-signature, EC P-256 key) and returns
  // a client certificate (PEM) for subject CN=`common_name` only, valid for
  // `validity_days` (0 = 365). Nothing else is taken from the CSR but its
  // public key (pki::SignCsr), so a device cannot obtain a certificate with
  // an atbridge role. INVALID_ARGUMENT for a bad CSR or common name.
  virtual absl::StatusOr<std::string> Sign(absl::string_view csr, const std::string& common_name,
                                           uint32_t validity_days) = 0;
  // The CA certificate (PEM) that signs.
  virtual const std::string& CaCertificatePem() const = 0;
};

// The common name a device certificate gets: the CN= attribute of the
// %KEYGEN `attributes` the server asked for (after {imei} substitution), else
// the IMEI. Never what the device's CSR says.
std::string DeviceCommonName(const std::string& attributes, const std::string& imei);

// INVALID_ARGUMENT when %KEYGEN `attributes` try to name an OU or an atbridge
// role (they would not reach the certificate, but asking is refused), or are
// not printable ASCII without '"'. `field` names the field in the message.
absl::Status CheckKeygenAttributes(const std::string& attributes, const std::string& field);

// A signer over `ca` (the CA private key is kept in memory, never logged).
// `clock` (not owned) must outlive the signer.
std::unique_ptr<CsrSigner> NewPkiCsrSigner(pki::KeyAndCert ca, const Clock* clock);

}  // namespace atbridge::server::jobs

#endif  // ATBRIDGE_SERVER_JOBS_CSR_SIGNER_H_
