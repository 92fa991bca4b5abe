#include "server/jobs/csr_signer.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace atbridge::server::jobs {

namespace {

class PkiCsrSigner final : public CsrSigner {
 public:
  PkiCsrSigner(pki::KeyAndCert ca, const Clock* clock) : ca_(std::move(ca)), clock_(clock) {}

  absl::StatusOr<std::string> Sign(absl::string_view csr, uint32_t validity_days) override {
    pki::SignCsrOptions options;
    options.validity = absl::Hours(24) * (validity_days == 0 ? 365 : validity_days);
    options.now = clock_->Now();
    auto cert = pki::SignCsr(ca_, csr, options);
    if (!cert.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("sign CSR with the server CA: ", cert.status().message()));
    }
    return cert;
  }

  const std::string& CaCertificatePem() const override { return ca_.cert_pem; }

 private:
  const pki::KeyAndCert ca_;
  const Clock* clock_;
};

}  // namespace

std::unique_ptr<CsrSigner> NewPkiCsrSigner(pki::KeyAndCert ca, const Clock* clock) {
  return std::make_unique<PkiCsrSigner>(std::move(ca), clock);
}

}  // namespace atbridge::server::jobs
