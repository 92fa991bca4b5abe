// Parsing of what users type: DEVICE, credential types, security tags,
// labels, job states. Pure functions; errors are usage errors (exit 2) that
// say what was expected.
#ifndef ATBRIDGE_CLIENT_CORE_PARSE_H_
#define ATBRIDGE_CLIENT_CORE_PARSE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "atbridge/v1/common.pb.h"
#include "atbridge/v1/provisioning.pb.h"

namespace atbridge::client {

// DEVICE: a 15-digit IMEI, "agent/port", or an alias (a server-side alias,
// or a "key=value" label that matches one device; in direct mode a plain
// port name).
absl::StatusOr<v1::DeviceRef> ParseDeviceRef(absl::string_view text);
// Back to text: "351234567890123", "bench1/modem0", "rack=3".
std::string DeviceRefText(const v1::DeviceRef& ref);
// 15 ASCII digits.
bool IsImei(absl::string_view text);

// A credential type: a number 0..11, the proto name (ROOT_CA_CERT), an
// nrfcredstore name (CLIENT_KEY) or a short name (root-ca, client-cert,
// client-key, psk, psk-identity, public-key, ...), case-insensitive.
absl::StatusOr<v1::CredentialType> ParseCredentialType(absl::string_view text);
// "root-ca", "client-cert", "client-key", "psk", "psk-identity", ...
std::string CredentialTypeShortName(v1::CredentialType type);
// The short names, for help texts.
std::string CredentialTypeHelp();

// A security tag 0..2147483647.
absl::StatusOr<uint32_t> ParseSecTag(absl::string_view text);

// "key=value" -> {key, value}; both non-empty.
absl::StatusOr<std::pair<std::string, std::string>> ParseLabel(absl::string_view text);
absl::StatusOr<std::map<std::string, std::string>> ParseLabels(
    const std::vector<std::string>& texts);

// "in-progress"/"IN_PROGRESS"/"completed"/"canceled"/"aborted" -> JobState.
absl::StatusOr<v1::JobState> ParseJobState(absl::string_view text);

}  // namespace atbridge::client

#endif  // ATBRIDGE_CLIENT_CORE_PARSE_H_
