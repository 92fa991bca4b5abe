// The cryptography inside a simulated modem: client key pairs and CSRs for
// %KEYGEN, the per-modem identity key that signs COSE_Sign1 objects, and the
// small CBOR encoder those need (nrf91-at-credentials.md §5).
//
// Private keys never leave this module except as the PEM a modem stores in
// its own NVM (the type-2 %CMNG entry); nothing here logs. Functions are
// thread-safe (OpenSSL 3 is); objects are not shared between threads.
#ifndef ATBRIDGE_SIM_CRYPTO_H_
#define ATBRIDGE_SIM_CRYPTO_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace atbridge::sim {

// Minimal CBOR (RFC 8949) writer: definite lengths only.
class CborWriter {
 public:
  CborWriter& Uint(uint64_t v);
  CborWriter& Int(int64_t v);
  CborWriter& Bytes(absl::string_view b);
  CborWriter& Text(absl::string_view t);
  CborWriter& ArrayHeader(uint64_t n);
  CborWriter& MapHeader(uint64_t n);
  CborWriter& Tag(uint64_t tag);
  CborWriter& Null();
  // Appends already-encoded CBOR.
  CborWriter& Raw(absl::string_view encoded);
  const std::string& data() const { return out_; }

 private:
  void Head(int major, uint64_t v);
  std::string out_;
};

// SHA-256 of `bytes`, raw 32 bytes.
std::string Sha256Raw(absl::string_view bytes);

// Whether every certificate in `pem` carries a public key the nRF91's TLS
// stack supports: RSA (1024..4096 bits) or EC on P-256/P-384. A modem answers
// +CME ERROR: 527 for others (e.g. Ed25519), however well-formed the PEM.
bool ModemSupportsCertificateKeys(absl::string_view pem);

// An EC P-256 key that signs COSE objects deterministically (the nonce is
// derived from the key and the digest), so the same message always gives the
// same signature: attestation tokens are stable across restarts. Derived
// from a secret seed text; the same seed always gives the same key.
class IdentityKey {
 public:
  static absl::StatusOr<std::unique_ptr<IdentityKey>> Derive(absl::string_view seed);
  ~IdentityKey();
  IdentityKey(const IdentityKey&) = delete;
  IdentityKey& operator=(const IdentityKey&) = delete;

  // ECDSA P-256 over a 32-byte digest: r || s, 64 bytes (COSE format).
  absl::StatusOr<std::string> SignDigest(absl::string_view digest32) const;
  // SubjectPublicKeyInfo DER of the public key (for verifiers and tests).
  const std::string& public_key_der() const { return public_der_; }

 private:
  IdentityKey() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string public_der_;
};

// COSE_Sign1 (CBOR tag 18) with protected {1: -7} (ES256) and unprotected
// {4: h'21'} (key id: identity key). `payload` is embedded as a bstr, or,
// when `detached` is true, null is written and the signature still covers it.
absl::StatusOr<std::string> CoseSign1(const IdentityKey& key, absl::string_view payload,
                                      bool detached);

// The Sig_structure ["Signature1", protected, h'', payload] a COSE_Sign1
// made by CoseSign1 signs (exposed for verifiers in tests).
std::string CoseSigStructure(absl::string_view payload);

// A freshly generated EC P-256 client key pair (%KEYGEN key type 2).
class ClientKey {
 public:
  static absl::StatusOr<std::unique_ptr<ClientKey>> Generate();
  ~ClientKey();
  ClientKey(const ClientKey&) = delete;
  ClientKey& operator=(const ClientKey&) = delete;

  // PKCS#8 PEM of the private key: what the modem stores as the type-2 entry.
  // Secret.
  absl::StatusOr<std::string> PrivateKeyPem() const;
  // SubjectPublicKeyInfo DER.
  absl::StatusOr<std::string> PublicKeyDer() const;
  // A PKCS#10 CSR (DER) signed with ecdsa-with-SHA256. `subject` holds
  // (field, value) pairs such as {"CN","dev1"}; `key_usage` is empty or a
  // 9-character bit string (digitalSignature .. decipherOnly) added as a
  // requested keyUsage extension.
  absl::StatusOr<std::string> CsrDer(
      const std::vector<std::pair<std::string, std::string>>& subject,
      absl::string_view key_usage) const;

 private:
  ClientKey() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Parses "%KEYGEN attributes" text like "CN=dev1,O=Lab" into (field, value)
// pairs, checking each field is a known X.509 name attribute and values are
// non-empty printable text. INVALID_ARGUMENT otherwise.
absl::StatusOr<std::vector<std::pair<std::string, std::string>>> ParseSubjectAttributes(
    absl::string_view text);

}  // namespace atbridge::sim

#endif  // ATBRIDGE_SIM_CRYPTO_H_
