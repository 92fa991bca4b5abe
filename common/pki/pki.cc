#include "common/pki/pki.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status/status_macros.h"

namespace atbridge::pki {

namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free_all(b); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct ReqFree {
  void operator()(X509_REQ* r) const { X509_REQ_free(r); }
};
struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* s) const { X509_STORE_CTX_free(s); }
};
struct GensFree {
  void operator()(GENERAL_NAMES* g) const { GENERAL_NAMES_free(g); }
};

using BioPtr = std::unique_ptr<BIO, BioFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using ReqPtr = std::unique_ptr<X509_REQ, ReqFree>;

// The OpenSSL error queue as text, emptied.
std::string OpensslErrors() {
  std::string out;
  unsigned long err;  // NOLINT(google-runtime-int): OpenSSL API type.
  while ((err = ERR_get_error()) != 0) {
    char buf[256];
    ERR_error_string_n(err, buf, sizeof(buf));
    if (!out.empty()) out += "; ";
    out += buf;
  }
  return out.empty() ? "unknown OpenSSL error" : out;
}

absl::Status SslError(absl::string_view what) {
  return absl::InternalError(absl::StrCat(what, ": ", OpensslErrors()));
}

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);  // NOLINT(google-runtime-int)
  return std::string(data, static_cast<size_t>(len));
}

BioPtr MemBio(absl::string_view data) {
  return BioPtr(BIO_new_mem_buf(data.data(), static_cast<int>(data.size())));
}

absl::StatusOr<PkeyPtr> NewEcKey() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return SslError("generate P-256 key");
  return key;
}

absl::StatusOr<PkeyPtr> NewKey(KeyType type) {
  switch (type) {
    case KeyType::kEcP256:
      return NewEcKey();
    case KeyType::kRsa2048: {
      PkeyPtr key(EVP_RSA_gen(2048));
      if (!key) return SslError("generate RSA-2048 key");
      return key;
    }
    case KeyType::kEd25519: {
      PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"));
      if (!key) return SslError("generate Ed25519 key");
      return key;
    }
  }
  return absl::InvalidArgumentError("unknown key type");
}

absl::StatusOr<std::string> KeyToPem(EVP_PKEY* key) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
    return SslError("encode private key");
  }
  return BioToString(bio.get());
}

absl::StatusOr<std::string> CertToPem(X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(bio.get(), cert)) return SslError("encode certificate");
  return BioToString(bio.get());
}

absl::StatusOr<X509Ptr> ParseX509(absl::string_view pem) {
  BioPtr bio = MemBio(pem);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not a PEM certificate");
  }
  return cert;
}

absl::StatusOr<PkeyPtr> ParseKey(absl::string_view pem) {
  BioPtr bio = MemBio(pem);
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not a PEM private key");
  }
  return key;
}

absl::Status SetValidity(X509* cert, absl::Time not_before, absl::Time not_after) {
  if (!ASN1_TIME_set(X509_getm_notBefore(cert), absl::ToTimeT(not_before)) ||
      !ASN1_TIME_set(X509_getm_notAfter(cert), absl::ToTimeT(not_after))) {
    return SslError("set validity");
  }
  return absl::OkStatus();
}

absl::Status SetRandomSerial(X509* cert) {
  unsigned char bytes[16];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) return SslError("random serial");
  bytes[0] &= 0x7f;  // Positive.
  std::unique_ptr<BIGNUM, decltype(&BN_free)> bn(BN_bin2bn(bytes, sizeof(bytes), nullptr),
                                                 &BN_free);
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert))) {
    return SslError("set serial");
  }
  return absl::OkStatus();
}

absl::Status AddExt(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (ext == nullptr) return SslError(absl::StrCat("extension ", OBJ_nid2sn(nid), "=", value));
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (!ok) return SslError("add extension");
  return absl::OkStatus();
}

absl::Status AddName(X509_NAME* name, const char* field, const std::string& value) {
  if (value.empty()) return absl::OkStatus();
  if (!X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(value.data()),
                                  static_cast<int>(value.size()), -1, 0)) {
    return SslError(absl::StrCat("subject ", field));
  }
  return absl::OkStatus();
}

std::string NameToString(const X509_NAME* name) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB);
  return BioToString(bio.get());
}

absl::Time AsnTimeToAbsl(const ASN1_TIME* t) {
  struct tm tm_value = {};
  if (!ASN1_TIME_to_tm(t, &tm_value)) return absl::InfinitePast();
  return absl::FromTM(tm_value, absl::UTCTimeZone());
}

absl::StatusOr<ReqPtr> ParseCsr(absl::string_view csr) {
  ReqPtr req;
  if (csr.find("-----BEGIN") != absl::string_view::npos) {
    BioPtr bio = MemBio(csr);
    req.reset(PEM_read_bio_X509_REQ(bio.get(), nullptr, nullptr, nullptr));
  } else {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(csr.data());
    // NOLINTNEXTLINE(google-runtime-int): OpenSSL API type.
    req.reset(d2i_X509_REQ(nullptr, &p, static_cast<long>(csr.size())));
  }
  if (!req) {
    ERR_clear_error();
    return absl::InvalidArgumentError("not a PKCS#10 certificate signing request");
  }
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req.get());
  if (pub == nullptr || X509_REQ_verify(req.get(), pub) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError("CSR self-signature does not verify");
  }
  return req;
}

std::string FirstCommonName(const X509_NAME* name) {
  int i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (i < 0) return "";
  const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i));
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

// A device certificate's CN: 1..64 printable ASCII characters (RFC 5280's
// upper bound for commonName).
absl::Status CheckCommonName(const std::string& cn) {
  if (cn.empty()) return absl::InvalidArgumentError("the certificate needs a common name (CN)");
  if (cn.size() > 64) {
    return absl::InvalidArgumentError("the common name is longer than 64 characters");
  }
  for (char c : cn) {
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError("the common name must be printable ASCII");
    }
  }
  return absl::OkStatus();
}

// nRF91 modems generate EC P-256 keys; anything else in a device CSR is not
// from a modem.
absl::Status CheckDeviceKey(EVP_PKEY* key) {
  char group[64] = {};
  size_t len = 0;
  if (key == nullptr || !EVP_PKEY_is_a(key, "EC") ||
      !EVP_PKEY_get_group_name(key, group, sizeof(group), &len) ||
      (std::string(group, len) != "prime256v1" && std::string(group, len) != "P-256")) {
    ERR_clear_error();
    return absl::InvalidArgumentError("the CSR's key is not EC P-256 (what nRF91 modems generate)");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<KeyAndCert> CreateCa(const CaOptions& options) {
  ASSIGN_OR_RETURN(PkeyPtr key, NewEcKey());
  X509Ptr cert(X509_new());
  if (!cert || !X509_set_version(cert.get(), 2)) return SslError("new certificate");
  RETURN_IF_ERROR(SetRandomSerial(cert.get()));
  absl::Time now = absl::Now();
  RETURN_IF_ERROR(SetValidity(cert.get(), now - absl::Hours(1), now + options.validity));
  X509_NAME* name = X509_get_subject_name(cert.get());
  RETURN_IF_ERROR(AddName(name, "O", options.organization));
  RETURN_IF_ERROR(AddName(name, "CN", options.common_name));
  if (!X509_set_issuer_name(cert.get(), name) || !X509_set_pubkey(cert.get(), key.get())) {
    return SslError("CA names");
  }
  RETURN_IF_ERROR(AddExt(cert.get(), cert.get(), NID_basic_constraints, "critical,CA:TRUE"));
  RETURN_IF_ERROR(AddExt(cert.get(), cert.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
  RETURN_IF_ERROR(AddExt(cert.get(), cert.get(), NID_subject_key_identifier, "hash"));
  if (!X509_sign(cert.get(), key.get(), EVP_sha256())) return SslError("sign CA");
  KeyAndCert out;
  ASSIGN_OR_RETURN(out.key_pem, KeyToPem(key.get()));
  ASSIGN_OR_RETURN(out.cert_pem, CertToPem(cert.get()));
  return out;
}

absl::StatusOr<KeyAndCert> IssueCertificate(const KeyAndCert& ca, const IssueOptions& options) {
  if (options.common_name.empty()) {
    return absl::InvalidArgumentError("certificate needs a common name");
  }
  ASSIGN_OR_RETURN(X509Ptr ca_cert, ParseX509(ca.cert_pem));
  ASSIGN_OR_RETURN(PkeyPtr ca_key, ParseKey(ca.key_pem));
  ASSIGN_OR_RETURN(PkeyPtr key, NewKey(options.key_type));
  X509Ptr cert(X509_new());
  if (!cert || !X509_set_version(cert.get(), 2)) return SslError("new certificate");
  RETURN_IF_ERROR(SetRandomSerial(cert.get()));
  absl::Time now = absl::Now();
  RETURN_IF_ERROR(SetValidity(cert.get(), options.not_before.value_or(now - absl::Hours(1)),
                              options.not_after.value_or(now + absl::Hours(24 * 365))));
  X509_NAME* name = X509_get_subject_name(cert.get());
  RETURN_IF_ERROR(AddName(name, "OU", options.role));
  RETURN_IF_ERROR(AddName(name, "CN", options.common_name));
  if (!X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get())) ||
      !X509_set_pubkey(cert.get(), key.get())) {
    return SslError("certificate names");
  }
  RETURN_IF_ERROR(AddExt(cert.get(), ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE"));
  RETURN_IF_ERROR(
      AddExt(cert.get(), ca_cert.get(), NID_key_usage,
             options.key_type == KeyType::kEcP256    ? "critical,digitalSignature,keyAgreement"
             : options.key_type == KeyType::kRsa2048 ? "critical,digitalSignature,keyEncipherment"
                                                     : "critical,digitalSignature"));
  std::vector<std::string> eku;
  if (options.server_auth) eku.push_back("serverAuth");
  if (options.client_auth) eku.push_back("clientAuth");
  if (!eku.empty()) {
    RETURN_IF_ERROR(AddExt(cert.get(), ca_cert.get(), NID_ext_key_usage, absl::StrJoin(eku, ",")));
  }
  std::vector<std::string> sans;
  for (const auto& d : options.dns_names) sans.push_back(absl::StrCat("DNS:", d));
  for (const auto& ip : options.ip_addresses) sans.push_back(absl::StrCat("IP:", ip));
  if (!options.role.empty() && options.role_uri) {
    sans.push_back(absl::StrCat("URI:urn:atbridge:role:", options.role));
  }
  if (!sans.empty()) {
    RETURN_IF_ERROR(
        AddExt(cert.get(), ca_cert.get(), NID_subject_alt_name, absl::StrJoin(sans, ",")));
  }
  RETURN_IF_ERROR(AddExt(cert.get(), ca_cert.get(), NID_authority_key_identifier, "keyid"));
  if (!X509_sign(cert.get(), ca_key.get(), EVP_sha256())) return SslError("sign certificate");
  KeyAndCert out;
  ASSIGN_OR_RETURN(out.key_pem, KeyToPem(key.get()));
  ASSIGN_OR_RETURN(out.cert_pem, CertToPem(cert.get()));
  return out;
}

absl::StatusOr<std::string> SignCsr(const KeyAndCert& ca, absl::string_view csr,
                                    const SignCsrOptions& options) {
  ASSIGN_OR_RETURN(ReqPtr req, ParseCsr(csr));
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req.get());
  RETURN_IF_ERROR(CheckDeviceKey(pub));
  std::string cn = options.common_name;
  if (cn.empty()) cn = FirstCommonName(X509_REQ_get_subject_name(req.get()));
  RETURN_IF_ERROR(CheckCommonName(cn));
  ASSIGN_OR_RETURN(X509Ptr ca_cert, ParseX509(ca.cert_pem));
  ASSIGN_OR_RETURN(PkeyPtr ca_key, ParseKey(ca.key_pem));
  X509Ptr cert(X509_new());
  if (!cert || !X509_set_version(cert.get(), 2)) return SslError("new certificate");
  RETURN_IF_ERROR(SetRandomSerial(cert.get()));
  absl::Time now = options.now.value_or(absl::Now());
  RETURN_IF_ERROR(SetValidity(cert.get(), now - absl::Hours(1), now + options.validity));
  // The subject is built here, never copied from the CSR: an OU (or any
  // other attribute) asked for by whoever produced the CSR would otherwise
  // become an atbridge role (common/tls/identity.h).
  RETURN_IF_ERROR(AddName(X509_get_subject_name(cert.get()), "CN", cn));
  if (!X509_set_issuer_name(cert.get(), X509_get_subject_name(ca_cert.get())) ||
      !X509_set_pubkey(cert.get(), pub)) {
    return SslError("certificate from CSR");
  }
  RETURN_IF_ERROR(AddExt(cert.get(), ca_cert.get(), NID_basic_constraints, "critical,CA:FALSE"));
  RETURN_IF_ERROR(AddExt(cert.get(), ca_cert.get(), NID_key_usage, "critical,digitalSignature"));
  RETURN_IF_ERROR(AddExt(cert.get(), ca_cert.get(), NID_ext_key_usage, "clientAuth"));
  RETURN_IF_ERROR(AddExt(cert.get(), ca_cert.get(), NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(AddExt(cert.get(), ca_cert.get(), NID_authority_key_identifier, "keyid"));
  if (!X509_sign(cert.get(), ca_key.get(), EVP_sha256())) return SslError("sign certificate");
  return CertToPem(cert.get());
}

absl::StatusOr<CertificateInfo> ParseCertificate(absl::string_view pem) {
  ASSIGN_OR_RETURN(X509Ptr cert, ParseX509(pem));
  CertificateInfo info;
  info.subject = NameToString(X509_get_subject_name(cert.get()));
  info.issuer = NameToString(X509_get_issuer_name(cert.get()));
  X509_NAME* subject = X509_get_subject_name(cert.get());
  for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0;) {
    const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
    if (info.common_name.empty()) {
      info.common_name.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                              static_cast<size_t>(ASN1_STRING_length(s)));
    }
  }
  for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_organizationalUnitName, i)) >= 0;) {
    const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
    info.organizational_units.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                           static_cast<size_t>(ASN1_STRING_length(s)));
  }
  std::unique_ptr<GENERAL_NAMES, GensFree> gens(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  if (gens) {
    for (int i = 0; i < sk_GENERAL_NAME_num(gens.get()); ++i) {
      const GENERAL_NAME* gen = sk_GENERAL_NAME_value(gens.get(), i);
      if (gen->type == GEN_URI || gen->type == GEN_DNS) {
        const ASN1_IA5STRING* s =
            gen->type == GEN_URI ? gen->d.uniformResourceIdentifier : gen->d.dNSName;
        std::string value(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                          static_cast<size_t>(ASN1_STRING_length(s)));
        (gen->type == GEN_URI ? info.uris : info.dns_names).push_back(std::move(value));
      }
    }
  }
  info.not_before = AsnTimeToAbsl(X509_get0_notBefore(cert.get()));
  info.not_after = AsnTimeToAbsl(X509_get0_notAfter(cert.get()));
  info.is_ca = X509_check_ca(cert.get()) > 0;
  return info;
}

absl::StatusOr<std::string> CsrSubject(absl::string_view csr) {
  ASSIGN_OR_RETURN(ReqPtr req, ParseCsr(csr));
  return NameToString(X509_REQ_get_subject_name(req.get()));
}

absl::Status VerifyCertificate(absl::string_view ca_pem, absl::string_view cert_pem,
                               absl::Time at) {
  ASSIGN_OR_RETURN(X509Ptr ca, ParseX509(ca_pem));
  ASSIGN_OR_RETURN(X509Ptr cert, ParseX509(cert_pem));
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  if (!store || !ctx || !X509_STORE_add_cert(store.get(), ca.get()) ||
      !X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr)) {
    return SslError("verify setup");
  }
  X509_STORE_CTX_set_time(ctx.get(), 0, absl::ToTimeT(at));
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("certificate does not verify: ", X509_verify_cert_error_string(err)));
  }
  return absl::OkStatus();
}

std::string Sha256Hex(absl::string_view bytes) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest);
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(2 * SHA256_DIGEST_LENGTH);
  for (unsigned char b : digest) {
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

std::string CsrDerToPem(absl::string_view der) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  // NOLINTNEXTLINE(google-runtime-int): OpenSSL API type.
  ReqPtr req(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
  if (!req) {
    ERR_clear_error();
    return "";
  }
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509_REQ(bio.get(), req.get())) return "";
  return BioToString(bio.get());
}

}  // namespace atbridge::pki
