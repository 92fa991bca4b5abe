#include "server/jobs/csr_signer.h"

#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace atbridge::server::jobs {

namespace {

class PkiCsrSigner final : public CsrSigner {
 public:
  PkiCsrSigner(pki::KeyAndCert ca, const Clock* clock) : ca_(std::move(ca)), clock_(clock) {}

  absl::StatusOr<std::string> Sign(absl::string_view csr, const std::string& common_name,
                                   uint32_t validity_days) override {
    if (common_name.empty()) {
      return absl::InvalidArgumentError("sign CSR: the server names no common name");
    }
    pki::SignCsrOptions options;
    options.common_name = common_name;
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

// "key=value" pairs of %KEYGEN attributes (comma-separated, as the modem
// takes them), keys trimmed and upper-cased.
std::vector<std::pair<std::string, std::string>> AttributePairs(const std::string& attributes) {
  std::vector<std::pair<std::string, std::string>> out;
  for (absl::string_view part : absl::StrSplit(attributes, ',', absl::SkipWhitespace())) {
    std::pair<absl::string_view, absl::string_view> kv =
        absl::StrSplit(part, absl::MaxSplits('=', 1));
    out.emplace_back(absl::AsciiStrToUpper(absl::StripAsciiWhitespace(kv.first)),
                     std::string(absl::StripAsciiWhitespace(kv.second)));
  }
  return out;
}

}  // namespace

std::string DeviceCommonName(const std::string& attributes, const std::string& imei) {
  for (const auto& [key, value] : AttributePairs(attributes)) {
    if ((key == "CN" || key == "COMMONNAME" || key == "2.5.4.3") && !value.empty()) return value;
  }
  return imei;
}

absl::Status CheckKeygenAttributes(const std::string& attributes, const std::string& field) {
  for (char c : attributes) {
    if (c < 0x20 || c > 0x7e || c == '"') {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": must be printable ASCII without '\"'"));
    }
  }
  for (const auto& [key, value] : AttributePairs(attributes)) {
    if (key == "OU" || key == "ORGANIZATIONALUNITNAME" || key == "2.5.4.11") {
      return absl::InvalidArgumentError(
          absl::StrCat(field,
                       ": may not set an OU (the OU names an atbridge role; signed device "
                       "certificates carry a CN only)"));
    }
    if ((key == "CN" || key == "COMMONNAME" || key == "2.5.4.3") &&
        absl::StrReplaceAll(value, {{"{imei}", "000000000000000"}}).size() > 64) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": the CN is longer than 64 characters"));
    }
    if (absl::StrContains(absl::AsciiStrToLower(value), "urn:atbridge:role") ||
        absl::StrContains(absl::AsciiStrToLower(key), "urn:atbridge:role")) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": may not name an atbridge role (urn:atbridge:role:...)"));
    }
  }
  return absl::OkStatus();
}

std::unique_ptr<CsrSigner> NewPkiCsrSigner(pki::KeyAndCert ca, const Clock* clock) {
  return std::make_unique<PkiCsrSigner>(std::move(ca), clock);
}

}  // namespace atbridge::server::jobs
