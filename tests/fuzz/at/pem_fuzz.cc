// libFuzzer target: NormalizePem and ModemAcceptsCertificatePem.
//
// Invariants checked (abort on violation):
//  - a successful normalization is canonical: no CR, no trailing newline, no
//    '"'; normalizing it again gives the same content, the same number of
//    blocks and no repairs; for certificates the modem check accepts it;
//  - whatever the modem check accepts, NormalizePem accepts too;
//  - errors are INVALID_ARGUMENT and name a PEM line.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/match.h"
#include "common/at/pem.h"

namespace {

#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (false)

using atbridge::at::ModemAcceptsCertificatePem;
using atbridge::at::NormalizePem;
using atbridge::at::PemKind;

void Check(const std::string& input, PemKind kind) {
  auto first = NormalizePem(input, kind);
  if (!first.ok()) {
    FUZZ_CHECK(first.status().code() == absl::StatusCode::kInvalidArgument);
    FUZZ_CHECK(absl::StartsWith(first.status().message(), "PEM line "));
    return;
  }
  const std::string& content = first->content;
  FUZZ_CHECK(first->blocks >= 1);
  FUZZ_CHECK(content.find('\r') == std::string::npos);
  FUZZ_CHECK(content.find('"') == std::string::npos);
  FUZZ_CHECK(!content.empty() && content.back() != '\n');
  FUZZ_CHECK(first->repairs.empty() == (content == input));
  auto second = NormalizePem(content, kind);
  FUZZ_CHECK(second.ok());
  FUZZ_CHECK(second->content == content);
  FUZZ_CHECK(second->repairs.empty());
  FUZZ_CHECK(second->blocks == first->blocks);
  if (kind == PemKind::kCertificates) {
    FUZZ_CHECK(ModemAcceptsCertificatePem(content));
    FUZZ_CHECK(ModemAcceptsCertificatePem(content + "\n"));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 64 * 1024) return 0;
  const std::string input(reinterpret_cast<const char*>(data), size);
  Check(input, PemKind::kCertificates);
  Check(input, PemKind::kPrivateKey);
  for (bool crlf : {false, true}) {
    if (ModemAcceptsCertificatePem(input, {.accept_crlf = crlf})) {
      FUZZ_CHECK(NormalizePem(input, PemKind::kCertificates).ok());
    }
  }
  return 0;
}
