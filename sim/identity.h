// Stable identities of simulated modems: IMEIs (Luhn check digit), device
// UUIDs and per-modem seeds. Pure functions; thread-safe.
#ifndef ATBRIDGE_SIM_IDENTITY_H_
#define ATBRIDGE_SIM_IDENTITY_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace atbridge::sim {

// Number of distinct 14-digit IMEI bodies.
inline constexpr uint64_t kImeiBodies = 100000000000000ULL;  // 10^14
// Modems per derived base: bases derived from different link dirs never
// overlap as long as count <= this.
inline constexpr uint64_t kModemsPerDerivedBase = 100000;

// Luhn check digit ('0'..'9') of a string of decimal digits.
char LuhnCheckDigit(absl::string_view digits);

// True for 15 decimal digits whose last one is the Luhn digit of the others.
bool IsValidImei(absl::string_view imei);

// Parses --imei-base: 14 digits, or a valid 15-digit IMEI (its check digit is
// dropped). Returns the 14-digit body as a number. INVALID_ARGUMENT otherwise.
absl::StatusOr<uint64_t> ParseImeiBase(absl::string_view text);

// Base derived from the absolute link directory: "35" + 7 digits of its
// SHA-256 + 5 zero digits, so different directories give disjoint IMEI ranges
// of kModemsPerDerivedBase and the same directory always gives the same.
uint64_t DeriveImeiBase(absl::string_view absolute_link_dir);

// The IMEI of modem `index`: body (base + index, 14 digits) + check digit.
std::string ImeiFor(uint64_t base, uint64_t index);

// A 16-byte id derived from `label` and `imei` (SHA-256 prefix) with the
// RFC 4122 version-4/variant bits set: stable for a given IMEI.
std::array<uint8_t, 16> DerivedUuid(absl::string_view label, absl::string_view imei);

// "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", lower case.
std::string FormatUuid(const std::array<uint8_t, 16>& uuid);

// A 64-bit seed from a text (SHA-256 prefix).
uint64_t SeedFrom(absl::string_view text);

}  // namespace atbridge::sim

#endif  // ATBRIDGE_SIM_IDENTITY_H_
