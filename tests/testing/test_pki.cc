#include "tests/testing/test_pki.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

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

std::string MakeTestCsr(const std::vector<std::pair<std::string, std::string>>& subject,
                        const std::string& san_uri, const std::string& key_type) {
  EVP_PKEY* key = key_type == "RSA" ? EVP_RSA_gen(2048) : EVP_EC_gen(key_type.c_str());
  X509_REQ* req = X509_REQ_new();
  X509_NAME* name = X509_NAME_new();
  for (const auto& [field, value] : subject) {
    X509_NAME_add_entry_by_txt(name, field.c_str(), MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(value.c_str()), -1, -1, 0);
  }
  X509_REQ_set_subject_name(req, name);
  X509_REQ_set_pubkey(req, key);
  if (!san_uri.empty()) {
    STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION* ext =
        X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, ("URI:" + san_uri).c_str());
    sk_X509_EXTENSION_push(exts, ext);
    X509_REQ_add_extensions(req, exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  }
  X509_REQ_sign(req, key, EVP_sha256());
  unsigned char* der = nullptr;
  int n = i2d_X509_REQ(req, &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(n));
  OPENSSL_free(der);
  X509_NAME_free(name);
  X509_REQ_free(req);
  EVP_PKEY_free(key);
  return out;
}

}  // namespace atbridge::testing
