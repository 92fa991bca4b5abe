#include "tests/testing/test_pki.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace atbridge::testing {

namespace {

void WriteOrDie(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  if (!out) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::abort();
  }
}

}  // namespace

TestPki::TestPki() {
  auto ca = pki::CreateCa({.common_name = "atbridge test CA"});
  if (!ca.ok()) {
    std::fprintf(stderr, "test CA: %s\n", ca.status().ToString().c_str());
    std::abort();
  }
  ca_ = *std::move(ca);
}

tls::TlsMaterial TestPki::Issue(const pki::IssueOptions& options) const {
  auto kc = pki::IssueCertificate(ca_, options);
  if (!kc.ok()) {
    std::fprintf(stderr, "test cert: %s\n", kc.status().ToString().c_str());
    std::abort();
  }
  return tls::TlsMaterial{.ca_pem = ca_.cert_pem, .cert_pem = kc->cert_pem, .key_pem = kc->key_pem};
}

tls::TlsMaterial TestPki::Server(const std::string& name, const std::string& role) const {
  pki::IssueOptions o;
  o.common_name = name;
  o.role = role;
  o.dns_names = {"localhost", "atbridge.test", name};
  o.ip_addresses = {"127.0.0.1"};
  o.server_auth = true;
  o.client_auth = true;
  return Issue(o);
}

tls::TlsMaterial TestPki::Client(const std::string& name, const std::string& role) const {
  pki::IssueOptions o;
  o.common_name = name;
  o.role = role;
  return Issue(o);
}

tls::TlsFiles TestPki::WriteFiles(const tls::TlsMaterial& m, const std::string& dir,
                                  const std::string& prefix) {
  tls::TlsFiles f{.ca_file = dir + "/ca.pem",
                  .cert_file = dir + "/" + prefix + ".pem",
                  .key_file = dir + "/" + prefix + ".key"};
  WriteOrDie(f.ca_file, m.ca_pem);
  WriteOrDie(f.cert_file, m.cert_pem);
  WriteOrDie(f.key_file, m.key_pem);
  return f;
}

}  // namespace atbridge::testing
