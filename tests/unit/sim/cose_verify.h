// Verifies COSE_Sign1 objects made by sim/crypto.h with OpenSSL (tests only).
#ifndef ATBRIDGE_TESTS_UNIT_SIM_COSE_VERIFY_H_
#define ATBRIDGE_TESTS_UNIT_SIM_COSE_VERIFY_H_

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <string>

#include "absl/strings/string_view.h"
#include "sim/crypto.h"

namespace atbridge::sim {

// True if `sig` (r || s, 64 bytes) is a valid ES256 signature of `message`
// by the key in `spki_der`.
inline bool VerifyEs256(absl::string_view spki_der, absl::string_view message,
                        absl::string_view sig) {
  if (sig.size() != 64) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(spki_der.data());
  EVP_PKEY* pkey = d2i_PUBKEY(nullptr, &p, static_cast<long>(spki_der.size()));  // NOLINT
  if (pkey == nullptr) return false;
  ECDSA_SIG* es = ECDSA_SIG_new();
  BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()), 32, nullptr);
  BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(sig.data()) + 32, 32, nullptr);
  ECDSA_SIG_set0(es, r, s);
  unsigned char* der = nullptr;
  int der_len = i2d_ECDSA_SIG(es, &der);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok =
      der_len > 0 && EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, pkey) == 1 &&
      EVP_DigestVerify(ctx, der, static_cast<size_t>(der_len),
                       reinterpret_cast<const unsigned char*>(message.data()), message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  OPENSSL_free(der);
  ECDSA_SIG_free(es);
  EVP_PKEY_free(pkey);
  return ok;
}

// A parsed COSE_Sign1 as CoseSign1() lays it out.
struct CoseParts {
  bool ok = false;
  bool detached = false;
  std::string payload;
  std::string signature;
};

inline CoseParts SplitCose(absl::string_view cose) {
  CoseParts parts;
  // d2 84 | 43 a1 01 26 | a1 04 41 21 | payload | 58 40 <64>
  static constexpr absl::string_view kHead("\xd2\x84\x43\xa1\x01\x26\xa1\x04\x41\x21", 10);
  if (cose.size() < kHead.size() + 1 + 66 || cose.substr(0, kHead.size()) != kHead) return parts;
  absl::string_view rest = cose.substr(kHead.size());
  absl::string_view tail = rest.substr(rest.size() - 66);
  if (tail.substr(0, 2) != absl::string_view("\x58\x40", 2)) return parts;
  parts.signature = std::string(tail.substr(2));
  absl::string_view payload = rest.substr(0, rest.size() - 66);
  if (payload == "\xf6") {
    parts.detached = true;
  } else {
    // bstr head: 0x40+n (n<24), 0x58 n, 0x59 nn.
    auto b0 = static_cast<unsigned char>(payload[0]);
    size_t head = 1;
    if (b0 == 0x58) head = 2;
    if (b0 == 0x59) head = 3;
    parts.payload = std::string(payload.substr(head));
  }
  parts.ok = true;
  return parts;
}

}  // namespace atbridge::sim

#endif  // ATBRIDGE_TESTS_UNIT_SIM_COSE_VERIFY_H_
