// A throwaway PKI made at test time: a CA, a server certificate valid for
// 127.0.0.1/localhost/atbridge.test, and certificates per role on demand.
#ifndef ATBRIDGE_TESTS_TESTING_TEST_PKI_H_
#define ATBRIDGE_TESTS_TESTING_TEST_PKI_H_

#include <string>
#include <utility>
#include <vector>

#include "common/pki/pki.h"
#include "common/tls/credentials.h"

namespace atbridge::testing {

class TestPki {
 public:
  // Creates the CA. Aborts on failure (tests cannot go on without it).
  TestPki();

  const pki::KeyAndCert& ca() const { return ca_; }

  // Material for a server/agent endpoint named `name` (serverAuth+clientAuth,
  // SANs 127.0.0.1, localhost, atbridge.test, `name`).
  tls::TlsMaterial Server(const std::string& name = "atbridge-server",
                          const std::string& role = "server") const;

  // Material for a client with CN `name` and `role` ("operator", ...; empty
  // for a certificate without a role).
  tls::TlsMaterial Client(const std::string& name, const std::string& role) const;

  // Material from custom issue options (expired certs etc.).
  tls::TlsMaterial Issue(const pki::IssueOptions& options) const;

  // Writes material as ca.pem, <prefix>.pem, <prefix>.key under `dir`.
  static tls::TlsFiles WriteFiles(const tls::TlsMaterial& m, const std::string& dir,
                                  const std::string& prefix);

 private:
  pki::KeyAndCert ca_;
};

// A PKCS#10 CSR (DER) for `subject` entries ({"CN", "alice"}, {"OU", ...}),
// optionally asking for a SAN URI extension, with a fresh key of `key_type`
// ("P-256", as an nRF91 makes, "P-384", or "RSA").
std::string MakeTestCsr(const std::vector<std::pair<std::string, std::string>>& subject,
                        const std::string& san_uri = "", const std::string& key_type = "P-256");

}  // namespace atbridge::testing

#endif  // ATBRIDGE_TESTS_TESTING_TEST_PKI_H_
