// Certificates with OpenSSL 3: a dev CA, role certificates, CSR signing and
// certificate inspection. Used by tests (throwaway CAs), `atbridgectl pki`,
// and the server's CA that signs modem CSRs. No gRPC here.
#ifndef ATBRIDGE_COMMON_PKI_PKI_H_
#define ATBRIDGE_COMMON_PKI_PKI_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace atbridge::pki {

// A private key and its certificate, both PEM.
struct KeyAndCert {
  std::string key_pem;  // Secret: never log.
  std::string cert_pem;
};

// Options for CreateCa.
struct CaOptions {
  std::string common_name = "atbridge dev CA";
  std::string organization = "atbridge";
  absl::Duration validity = absl::Hours(24 * 3650);
};

// Creates a self-signed CA (EC P-256, basicConstraints CA:TRUE).
absl::StatusOr<KeyAndCert> CreateCa(const CaOptions& options);

// Key algorithm of an issued certificate.
enum class KeyType { kEcP256, kRsa2048, kEd25519 };

// Options for IssueCertificate.
struct IssueOptions {
  // Subject CN: the principal (user, agent or server name).
  std::string common_name;
  // Subject OU and (with role_uri) SAN URI urn:atbridge:role:<role>;
  // empty for none.
  std::string role;
  bool role_uri = true;
  // Subject alternative names.
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
  // Extended key usages.
  bool server_auth = false;
  bool client_auth = true;
  // The subject's key (the CA always signs with its own EC key).
  KeyType key_type = KeyType::kEcP256;
  // Validity window; defaults: one hour ago .. one year from now.
  std::optional<absl::Time> not_before;
  std::optional<absl::Time> not_after;
};

// Issues a key (EC P-256 unless asked otherwise) and a certificate signed by `ca`.
absl::StatusOr<KeyAndCert> IssueCertificate(const KeyAndCert& ca, const IssueOptions& options);

// Options for SignCsr.
struct SignCsrOptions {
  absl::Duration validity = absl::Hours(24 * 365);
  // The subject of the certificate is CN=<common_name> and nothing else.
  // Empty: the CSR's first CN (INVALID_ARGUMENT when it has none).
  std::string common_name;
  // Current time for the validity window (tests pass a fixed time).
  std::optional<absl::Time> now;
};

// Signs a device CSR as a client certificate. Accepts DER or PEM; verifies
// the CSR's self-signature and that its key is EC P-256 (what an nRF91
// generates), else INVALID_ARGUMENT. The certificate is built by the signer,
// never copied from the CSR: subject CN only (no OU, so no atbridge role),
// no SANs or requested extensions, basicConstraints CA:FALSE, keyUsage
// digitalSignature, extendedKeyUsage clientAuth. Returns PEM.
absl::StatusOr<std::string> SignCsr(const KeyAndCert& ca, absl::string_view csr,
                                    const SignCsrOptions& options);

// What a certificate says about itself.
struct CertificateInfo {
  std::string subject;      // RFC 2253, e.g. "CN=alice,OU=operator".
  std::string issuer;       // RFC 2253.
  std::string common_name;  // First CN.
  std::vector<std::string> organizational_units;
  std::vector<std::string> dns_names;
  std::vector<std::string> uris;
  absl::Time not_before;
  absl::Time not_after;
  bool is_ca = false;
};

// Parses the first certificate of a PEM string.
absl::StatusOr<CertificateInfo> ParseCertificate(absl::string_view pem);

// Parses a CSR (DER or PEM) and returns its subject (RFC 2253); fails when
// its self-signature does not verify.
absl::StatusOr<std::string> CsrSubject(absl::string_view csr);

// Checks that `cert_pem` chains to `ca_pem` and is valid at `at`.
absl::Status VerifyCertificate(absl::string_view ca_pem, absl::string_view cert_pem, absl::Time at);

// SHA-256 of `bytes`, 64 uppercase hex characters (as the modem reports it).
std::string Sha256Hex(absl::string_view bytes);

// DER <-> PEM for a CSR.
std::string CsrDerToPem(absl::string_view der);

}  // namespace atbridge::pki

#endif  // ATBRIDGE_COMMON_PKI_PKI_H_
