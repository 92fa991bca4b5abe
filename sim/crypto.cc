#include "sim/crypto.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status/status_macros.h"

namespace atbridge::sim {
namespace {

struct BnFree {
  void operator()(BIGNUM* p) const { BN_clear_free(p); }
};
struct BnCtxFree {
  void operator()(BN_CTX* p) const { BN_CTX_free(p); }
};
struct PointFree {
  void operator()(EC_POINT* p) const { EC_POINT_free(p); }
};
struct GroupFree {
  void operator()(EC_GROUP* p) const { EC_GROUP_free(p); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* p) const { EVP_PKEY_CTX_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct ReqFree {
  void operator()(X509_REQ* p) const { X509_REQ_free(p); }
};
struct ParamBldFree {
  void operator()(OSSL_PARAM_BLD* p) const { OSSL_PARAM_BLD_free(p); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};

using BnPtr = std::unique_ptr<BIGNUM, BnFree>;
using BnCtxPtr = std::unique_ptr<BN_CTX, BnCtxFree>;
using PointPtr = std::unique_ptr<EC_POINT, PointFree>;
using GroupPtr = std::unique_ptr<EC_GROUP, GroupFree>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// An OpenSSL failure as a status; the error queue is cleared (its text never
// contains key material).
absl::Status SslError(absl::string_view what) {
  unsigned long err = ERR_get_error();  // NOLINT(google-runtime-int): OpenSSL API type.
  char buf[256] = {0};
  if (err != 0) ERR_error_string_n(err, buf, sizeof(buf));
  ERR_clear_error();
  return absl::InternalError(absl::StrCat(what, " failed", err != 0 ? ": " : "", buf));
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  long len = BIO_get_mem_data(bio, &data);  // NOLINT(google-runtime-int): OpenSSL API type.
  return std::string(data, static_cast<size_t>(len));
}

absl::StatusOr<std::string> PublicDer(EVP_PKEY* pkey) {
  int len = i2d_PUBKEY(pkey, nullptr);
  if (len <= 0) return SslError("encode public key");
  std::string der(static_cast<size_t>(len), '\0');
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_PUBKEY(pkey, &p) != len) return SslError("encode public key");
  return der;
}

}  // namespace

// ---- CBOR ----

void CborWriter::Head(int major, uint64_t v) {
  auto m = static_cast<uint8_t>(major << 5);
  if (v < 24) {
    out_.push_back(static_cast<char>(m | v));
  } else if (v <= 0xff) {
    out_.push_back(static_cast<char>(m | 24));
    out_.push_back(static_cast<char>(v));
  } else if (v <= 0xffff) {
    out_.push_back(static_cast<char>(m | 25));
    for (int s = 8; s >= 0; s -= 8) out_.push_back(static_cast<char>((v >> s) & 0xff));
  } else if (v <= 0xffffffffULL) {
    out_.push_back(static_cast<char>(m | 26));
    for (int s = 24; s >= 0; s -= 8) out_.push_back(static_cast<char>((v >> s) & 0xff));
  } else {
    out_.push_back(static_cast<char>(m | 27));
    for (int s = 56; s >= 0; s -= 8) out_.push_back(static_cast<char>((v >> s) & 0xff));
  }
}

CborWriter& CborWriter::Uint(uint64_t v) {
  Head(0, v);
  return *this;
}
CborWriter& CborWriter::Int(int64_t v) {
  if (v >= 0) {
    Head(0, static_cast<uint64_t>(v));
  } else {
    Head(1, static_cast<uint64_t>(-(v + 1)));
  }
  return *this;
}
CborWriter& CborWriter::Bytes(absl::string_view b) {
  Head(2, b.size());
  out_.append(b.data(), b.size());
  return *this;
}
CborWriter& CborWriter::Text(absl::string_view t) {
  Head(3, t.size());
  out_.append(t.data(), t.size());
  return *this;
}
CborWriter& CborWriter::ArrayHeader(uint64_t n) {
  Head(4, n);
  return *this;
}
CborWriter& CborWriter::MapHeader(uint64_t n) {
  Head(5, n);
  return *this;
}
CborWriter& CborWriter::Tag(uint64_t tag) {
  Head(6, tag);
  return *this;
}
CborWriter& CborWriter::Null() {
  out_.push_back(static_cast<char>(0xf6));
  return *this;
}
CborWriter& CborWriter::Raw(absl::string_view encoded) {
  out_.append(encoded.data(), encoded.size());
  return *this;
}

std::string Sha256Raw(absl::string_view bytes) {
  std::string digest(SHA256_DIGEST_LENGTH, '\0');
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(),
         reinterpret_cast<unsigned char*>(digest.data()));
  return digest;
}

// ---- IdentityKey ----

struct IdentityKey::Impl {
  GroupPtr group;
  BnPtr order;
  BnPtr d;
  std::string d_bytes;  // 32 bytes, big-endian. Secret.
};

IdentityKey::~IdentityKey() {
  if (impl_) OPENSSL_cleanse(impl_->d_bytes.data(), impl_->d_bytes.size());
}

absl::StatusOr<std::unique_ptr<IdentityKey>> IdentityKey::Derive(absl::string_view seed) {
  std::unique_ptr<IdentityKey> key(new IdentityKey());
  key->impl_ = std::make_unique<Impl>();
  Impl& k = *key->impl_;
  k.group.reset(EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1));
  k.order.reset(BN_new());
  k.d.reset(BN_new());
  BnCtxPtr ctx(BN_CTX_new());
  if (!k.group || !k.order || !k.d || !ctx ||
      !EC_GROUP_get_order(k.group.get(), k.order.get(), ctx.get())) {
    return SslError("identity key setup");
  }
  // d = H(seed) mod (n - 1) + 1, never zero.
  std::string h = Sha256Raw(absl::StrCat("atbridge-sim identity key:", seed));
  BnPtr hb(BN_bin2bn(reinterpret_cast<const unsigned char*>(h.data()), 32, nullptr));
  BnPtr n1(BN_dup(k.order.get()));
  if (!hb || !n1 || !BN_sub_word(n1.get(), 1) ||
      !BN_mod(k.d.get(), hb.get(), n1.get(), ctx.get()) || !BN_add_word(k.d.get(), 1)) {
    return SslError("identity key derivation");
  }
  k.d_bytes.assign(32, '\0');
  BN_bn2binpad(k.d.get(), reinterpret_cast<unsigned char*>(k.d_bytes.data()), 32);

  PointPtr q(EC_POINT_new(k.group.get()));
  if (!q || !EC_POINT_mul(k.group.get(), q.get(), k.d.get(), nullptr, nullptr, ctx.get())) {
    return SslError("identity public key");
  }
  unsigned char pub[65];
  size_t pub_len = EC_POINT_point2oct(k.group.get(), q.get(), POINT_CONVERSION_UNCOMPRESSED, pub,
                                      sizeof(pub), ctx.get());
  if (pub_len != sizeof(pub)) return SslError("identity public key encoding");

  std::unique_ptr<OSSL_PARAM_BLD, ParamBldFree> bld(OSSL_PARAM_BLD_new());
  if (!bld ||
      !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
      !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, pub, pub_len)) {
    return SslError("identity key params");
  }
  std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld.get()));
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> pctx(
      EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (!params || !pctx || EVP_PKEY_fromdata_init(pctx.get()) <= 0 ||
      EVP_PKEY_fromdata(pctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) <= 0) {
    return SslError("identity public key import");
  }
  PkeyPtr pkey(raw);
  ASSIGN_OR_RETURN(key->public_der_, PublicDer(pkey.get()));
  return key;
}

absl::StatusOr<std::string> IdentityKey::SignDigest(absl::string_view digest32) const {
  if (digest32.size() != 32) return absl::InvalidArgumentError("SignDigest needs 32 bytes");
  const Impl& k = *impl_;
  BnCtxPtr ctx(BN_CTX_new());
  BnPtr z(BN_bin2bn(reinterpret_cast<const unsigned char*>(digest32.data()), 32, nullptr));
  BnPtr kk(BN_new()), r(BN_new()), s(BN_new()), x(BN_new()), tmp(BN_new()), kinv(BN_new());
  PointPtr rp(EC_POINT_new(k.group.get()));
  if (!ctx || !z || !kk || !r || !s || !x || !tmp || !kinv || !rp) return SslError("sign setup");
  for (int counter = 0; counter < 100; ++counter) {
    // Deterministic nonce: H(d || digest || counter) mod n.
    std::string seed = absl::StrCat("atbridge-sim nonce:", k.d_bytes, digest32, counter);
    std::string kh = Sha256Raw(seed);
    OPENSSL_cleanse(seed.data(), seed.size());
    BnPtr kh_bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(kh.data()), 32, nullptr));
    if (!kh_bn || !BN_mod(kk.get(), kh_bn.get(), k.order.get(), ctx.get())) {
      return SslError("sign nonce");
    }
    if (BN_is_zero(kk.get())) continue;
    if (!EC_POINT_mul(k.group.get(), rp.get(), kk.get(), nullptr, nullptr, ctx.get()) ||
        !EC_POINT_get_affine_coordinates(k.group.get(), rp.get(), x.get(), nullptr, ctx.get()) ||
        !BN_nnmod(r.get(), x.get(), k.order.get(), ctx.get())) {
      return SslError("sign r");
    }
    if (BN_is_zero(r.get())) continue;
    // s = k^-1 (z + r d) mod n
    if (!BN_mod_inverse(kinv.get(), kk.get(), k.order.get(), ctx.get()) ||
        !BN_mod_mul(tmp.get(), r.get(), k.d.get(), k.order.get(), ctx.get()) ||
        !BN_mod_add(tmp.get(), tmp.get(), z.get(), k.order.get(), ctx.get()) ||
        !BN_mod_mul(s.get(), kinv.get(), tmp.get(), k.order.get(), ctx.get())) {
      return SslError("sign s");
    }
    if (BN_is_zero(s.get())) continue;
    std::string sig(64, '\0');
    BN_bn2binpad(r.get(), reinterpret_cast<unsigned char*>(sig.data()), 32);
    BN_bn2binpad(s.get(), reinterpret_cast<unsigned char*>(sig.data()) + 32, 32);
    return sig;
  }
  return absl::InternalError("sign: no usable nonce");
}

// ---- COSE ----

namespace {
// Protected header {1: -7} (alg: ES256).
std::string ProtectedHeader() { return CborWriter().MapHeader(1).Uint(1).Int(-7).data(); }
}  // namespace

std::string CoseSigStructure(absl::string_view payload) {
  return CborWriter()
      .ArrayHeader(4)
      .Text("Signature1")
      .Bytes(ProtectedHeader())
      .Bytes("")
      .Bytes(payload)
      .data();
}

absl::StatusOr<std::string> CoseSign1(const IdentityKey& key, absl::string_view payload,
                                      bool detached) {
  ASSIGN_OR_RETURN(std::string sig, key.SignDigest(Sha256Raw(CoseSigStructure(payload))));
  CborWriter w;
  w.Tag(18).ArrayHeader(4).Bytes(ProtectedHeader());
  w.MapHeader(1).Uint(4).Bytes("\x21");
  if (detached) {
    w.Null();
  } else {
    w.Bytes(payload);
  }
  w.Bytes(sig);
  return w.data();
}

// ---- ClientKey ----

struct ClientKey::Impl {
  PkeyPtr pkey;
};

ClientKey::~ClientKey() = default;

absl::StatusOr<std::unique_ptr<ClientKey>> ClientKey::Generate() {
  std::unique_ptr<ClientKey> key(new ClientKey());
  key->impl_ = std::make_unique<Impl>();
  key->impl_->pkey.reset(EVP_EC_gen("P-256"));
  if (!key->impl_->pkey) return SslError("P-256 key generation");
  return key;
}

absl::StatusOr<std::string> ClientKey::PrivateKeyPem() const {
  std::unique_ptr<BIO, BioFree> bio(BIO_new(BIO_s_mem()));
  if (!bio || !PEM_write_bio_PrivateKey(bio.get(), impl_->pkey.get(), nullptr, nullptr, 0, nullptr,
                                        nullptr)) {
    return SslError("private key encoding");
  }
  return BioContents(bio.get());
}

absl::StatusOr<std::string> ClientKey::PublicKeyDer() const { return PublicDer(impl_->pkey.get()); }

absl::StatusOr<std::string> ClientKey::CsrDer(
    const std::vector<std::pair<std::string, std::string>>& subject,
    absl::string_view key_usage) const {
  std::unique_ptr<X509_REQ, ReqFree> req(X509_REQ_new());
  if (!req || !X509_REQ_set_version(req.get(), 0)) return SslError("CSR setup");
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  for (const auto& [field, value] : subject) {
    if (!X509_NAME_add_entry_by_txt(name, field.c_str(), MBSTRING_UTF8,
                                    reinterpret_cast<const unsigned char*>(value.data()),
                                    static_cast<int>(value.size()), -1, 0)) {
      return absl::InvalidArgumentError(absl::StrCat("CSR subject field ", field, " rejected"));
    }
  }
  if (!X509_REQ_set_pubkey(req.get(), impl_->pkey.get())) return SslError("CSR public key");
  if (!key_usage.empty()) {
    static constexpr const char* kBits[9] = {
        "digitalSignature", "nonRepudiation", "keyEncipherment", "dataEncipherment", "keyAgreement",
        "keyCertSign",      "cRLSign",        "encipherOnly",    "decipherOnly"};
    std::vector<std::string> names;
    for (size_t i = 0; i < key_usage.size() && i < 9; ++i) {
      if (key_usage[i] == '1') names.emplace_back(kBits[i]);
    }
    if (!names.empty()) {
      std::string value = absl::StrCat("critical,", absl::StrJoin(names, ","));
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, nullptr, NID_key_usage, value.c_str());
      STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
      bool ok = ext != nullptr && exts != nullptr && sk_X509_EXTENSION_push(exts, ext) > 0;
      if (ok) {
        ext = nullptr;  // Owned by exts now.
        ok = X509_REQ_add_extensions(req.get(), exts) == 1;
      }
      if (ext != nullptr) X509_EXTENSION_free(ext);
      if (exts != nullptr) sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
      if (!ok) return SslError("CSR keyUsage extension");
    }
  }
  if (X509_REQ_sign(req.get(), impl_->pkey.get(), EVP_sha256()) <= 0) return SslError("CSR sign");
  int len = i2d_X509_REQ(req.get(), nullptr);
  if (len <= 0) return SslError("CSR encoding");
  std::string der(static_cast<size_t>(len), '\0');
  auto* p = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_X509_REQ(req.get(), &p) != len) return SslError("CSR encoding");
  return der;
}

absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseSubjectAttributes(
    absl::string_view text) {
  static constexpr const char* kFields[] = {
      "C",   "ST",           "L",     "O",      "OU",          "CN", "SN", "GN", "DC",
      "UID", "emailAddress", "title", "street", "serialNumber"};
  std::vector<std::pair<std::string, std::string>> out;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    size_t eq = part.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("attribute \"", part, "\" has no '='"));
    }
    std::string field(absl::StripAsciiWhitespace(part.substr(0, eq)));
    std::string value(part.substr(eq + 1));
    bool known = false;
    for (const char* f : kFields) {
      if (absl::EqualsIgnoreCase(field, f)) {
        field = f;
        known = true;
        break;
      }
    }
    if (!known) return absl::InvalidArgumentError(absl::StrCat("unknown attribute ", field));
    if (value.empty() || value.size() > 64) {
      return absl::InvalidArgumentError(absl::StrCat("attribute ", field, ": bad length"));
    }
    for (char c : value) {
      if (c < 0x20 || c > 0x7e || c == '"') {
        return absl::InvalidArgumentError(absl::StrCat("attribute ", field, ": bad character"));
      }
    }
    if (field == "C" && value.size() != 2) {
      return absl::InvalidArgumentError("attribute C: two letters expected");
    }
    out.emplace_back(std::move(field), std::move(value));
  }
  return out;
}

bool ModemSupportsCertificateKeys(absl::string_view pem) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  int count = 0;
  while (true) {
    std::unique_ptr<X509, decltype(&X509_free)> cert(
        PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
    if (!cert) break;
    ++count;
    EVP_PKEY* key = X509_get0_pubkey(cert.get());
    if (key == nullptr) return false;
    switch (EVP_PKEY_get_base_id(key)) {
      case EVP_PKEY_RSA: {
        int bits = EVP_PKEY_get_bits(key);
        if (bits < 1024 || bits > 4096) return false;
        break;
      }
      case EVP_PKEY_EC: {
        char curve[64] = {0};
        size_t len = 0;
        if (!EVP_PKEY_get_utf8_string_param(key, "group", curve, sizeof(curve), &len)) return false;
        std::string c(curve, len);
        if (c != "prime256v1" && c != "secp384r1") return false;
        break;
      }
      default:
        return false;
    }
  }
  ERR_clear_error();
  return count > 0;
}

}  // namespace atbridge::sim
