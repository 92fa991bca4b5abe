#include "sim/identity.h"

#include <openssl/sha.h>

#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace atbridge::sim {
namespace {

std::array<uint8_t, SHA256_DIGEST_LENGTH> Sha256(absl::string_view bytes) {
  std::array<uint8_t, SHA256_DIGEST_LENGTH> digest{};
  SHA256(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), digest.data());
  return digest;
}

uint64_t First64(const std::array<uint8_t, SHA256_DIGEST_LENGTH>& digest) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | digest[i];
  return v;
}

bool AllDigits(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return !s.empty();
}

}  // namespace

char LuhnCheckDigit(absl::string_view digits) {
  // Double every second digit starting from the rightmost one of the body.
  int sum = 0;
  bool dbl = true;
  for (size_t i = digits.size(); i-- > 0;) {
    int d = digits[i] - '0';
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return static_cast<char>('0' + (10 - sum % 10) % 10);
}

bool IsValidImei(absl::string_view imei) {
  return imei.size() == 15 && AllDigits(imei) && LuhnCheckDigit(imei.substr(0, 14)) == imei[14];
}

absl::StatusOr<uint64_t> ParseImeiBase(absl::string_view text) {
  if (!AllDigits(text) || (text.size() != 14 && text.size() != 15)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--imei-base \"", text, "\": expected 14 digits or a 15-digit IMEI"));
  }
  if (text.size() == 15 && !IsValidImei(text)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--imei-base ", text, ": the Luhn check digit should be ",
                     std::string(1, LuhnCheckDigit(text.substr(0, 14)))));
  }
  uint64_t body = 0;
  if (!absl::SimpleAtoi(text.substr(0, 14), &body)) {
    return absl::InvalidArgumentError(absl::StrCat("--imei-base ", text, ": not a number"));
  }
  return body;
}

uint64_t DeriveImeiBase(absl::string_view absolute_link_dir) {
  uint64_t h = First64(Sha256(absl::StrCat("atbridge-sim imei base:", absolute_link_dir)));
  return 35000000000000ULL + (h % 10000000ULL) * kModemsPerDerivedBase;
}

std::string ImeiFor(uint64_t base, uint64_t index) {
  std::string body = absl::StrFormat("%014d", (base + index) % kImeiBodies);
  return body + LuhnCheckDigit(body);
}

std::array<uint8_t, 16> DerivedUuid(absl::string_view label, absl::string_view imei) {
  auto digest = Sha256(absl::StrCat("atbridge-sim ", label, ":", imei));
  std::array<uint8_t, 16> uuid{};
  for (int i = 0; i < 16; ++i) uuid[i] = digest[i];
  uuid[6] = static_cast<uint8_t>((uuid[6] & 0x0f) | 0x40);
  uuid[8] = static_cast<uint8_t>((uuid[8] & 0x3f) | 0x80);
  return uuid;
}

std::string FormatUuid(const std::array<uint8_t, 16>& uuid) {
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    absl::StrAppendFormat(&out, "%02x", uuid[i]);
  }
  return out;
}

uint64_t SeedFrom(absl::string_view text) { return First64(Sha256(text)); }

}  // namespace atbridge::sim
