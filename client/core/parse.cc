#include "client/core/parse.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "client/core/errors.h"

namespace atbridge::client {

namespace {

bool IsNameChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-' ||
         c == ':';
}

bool IsName(absl::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

struct TypeName {
  v1::CredentialType type;
  const char* short_name;
  const char* alias;  // nrfcredstore's name, when it differs from the proto's.
};

constexpr TypeName kTypeNames[] = {
    {v1::ROOT_CA_CERT, "root-ca", "ROOT_CA"},
    {v1::CLIENT_CERT, "client-cert", "CLIENT_CERT"},
    {v1::CLIENT_PRIVATE_KEY, "client-key", "CLIENT_KEY"},
    {v1::PSK, "psk", "PSK"},
    {v1::PSK_IDENTITY, "psk-identity", "PSK_IDENTITY"},
    {v1::PUBLIC_KEY, "public-key", "PUBLIC_KEY"},
    {v1::DEVICE_IDENTITY_PUBLIC_KEY, "device-identity-public-key", "IDENTITY_KEY"},
    {v1::RESERVED_7, "reserved-7", "RESERVED"},
    {v1::ENDORSEMENT_KEY, "endorsement-key", "ENDORSEMENT_KEY"},
    {v1::OWNERSHIP_KEY, "ownership-key", "OWNERSHIP_KEY"},
    {v1::NORDIC_IDENTITY_ROOT_CA, "nordic-identity-root-ca", "NORDIC_ID_ROOT_CA"},
    {v1::NORDIC_BASE_PUBLIC_KEY, "nordic-base-public-key", "NORDIC_PUBLIC_KEY"},
};

}  // namespace

bool IsImei(absl::string_view text) {
  if (text.size() != 15) return false;
  for (char c : text) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::StatusOr<v1::DeviceRef> ParseDeviceRef(absl::string_view text) {
  v1::DeviceRef ref;
  if (text.empty()) return UsageError("DEVICE is empty: give an IMEI, agent/port, or an alias");
  if (IsImei(text)) {
    ref.set_imei(std::string(text));
    return ref;
  }
  if (size_t slash = text.find('/'); slash != absl::string_view::npos) {
    absl::string_view agent = text.substr(0, slash);
    absl::string_view port = text.substr(slash + 1);
    if (!IsName(agent) || !IsName(port)) {
      return UsageError(absl::StrCat("DEVICE '", text,
                                     "' is not agent/port (names are letters, digits, '_', '.', "
                                     "'-', ':')"));
    }
    ref.mutable_port()->set_agent(std::string(agent));
    ref.mutable_port()->set_port(std::string(port));
    return ref;
  }
  if (text.size() > 256) return UsageError("DEVICE is longer than 256 characters");
  for (char c : text) {
    if (!absl::ascii_isgraph(static_cast<unsigned char>(c))) {
      return UsageError(absl::StrCat("DEVICE '", absl::CEscape(text),
                                     "' has a space or control character; an alias is printable "
                                     "ASCII without spaces"));
    }
  }
  if (size_t eq = text.find('='); eq != absl::string_view::npos) {
    if (eq == 0 || eq + 1 == text.size()) {
      return UsageError(absl::StrCat("DEVICE '", text, "' is not a key=value label"));
    }
  }
  ref.set_alias(std::string(text));
  return ref;
}

std::string DeviceRefText(const v1::DeviceRef& ref) {
  switch (ref.ref_case()) {
    case v1::DeviceRef::kImei:
      return ref.imei();
    case v1::DeviceRef::kPort:
      return absl::StrCat(ref.port().agent(), "/", ref.port().port());
    case v1::DeviceRef::kAlias:
      return ref.alias();
    case v1::DeviceRef::REF_NOT_SET:
      break;
  }
  return "(no device)";
}

absl::StatusOr<v1::CredentialType> ParseCredentialType(absl::string_view text) {
  int number = -1;
  if (absl::SimpleAtoi(text, &number)) {
    if (number < 0 || number > 11) {
      return UsageError(absl::StrCat("credential type ", text, " is not 0..11"));
    }
    return static_cast<v1::CredentialType>(number);
  }
  std::string upper = absl::AsciiStrToUpper(text);
  absl::StrReplaceAll({{"-", "_"}}, &upper);
  v1::CredentialType parsed;
  if (v1::CredentialType_Parse(upper, &parsed)) return parsed;
  for (const TypeName& t : kTypeNames) {
    std::string short_upper = absl::AsciiStrToUpper(t.short_name);
    absl::StrReplaceAll({{"-", "_"}}, &short_upper);
    if (upper == short_upper || upper == t.alias) return t.type;
  }
  return UsageError(absl::StrCat("unknown credential type '", text, "' (use ", CredentialTypeHelp(),
                                 ", or a number 0..11)"));
}

std::string CredentialTypeShortName(v1::CredentialType type) {
  for (const TypeName& t : kTypeNames) {
    if (t.type == type) return t.short_name;
  }
  return absl::StrCat("type-", static_cast<int>(type));
}

std::string CredentialTypeHelp() {
  std::vector<std::string> names;
  for (int i = 0; i <= 4; ++i) {
    names.push_back(absl::StrCat(kTypeNames[i].short_name, "=", i));
  }
  return absl::StrJoin(names, ", ");
}

absl::StatusOr<uint32_t> ParseSecTag(absl::string_view text) {
  uint64_t tag = 0;
  if (!absl::SimpleAtoi(text, &tag) || tag > 2147483647u) {
    return UsageError(absl::StrCat("security tag '", text, "' is not a number 0..2147483647"));
  }
  return static_cast<uint32_t>(tag);
}

absl::StatusOr<std::pair<std::string, std::string>> ParseLabel(absl::string_view text) {
  size_t eq = text.find('=');
  if (eq == absl::string_view::npos || eq == 0 || eq + 1 == text.size()) {
    return UsageError(absl::StrCat("label '", text, "' is not key=value"));
  }
  return std::make_pair(std::string(text.substr(0, eq)), std::string(text.substr(eq + 1)));
}

absl::StatusOr<std::map<std::string, std::string>> ParseLabels(
    const std::vector<std::string>& texts) {
  std::map<std::string, std::string> labels;
  for (const std::string& t : texts) {
    auto kv = ParseLabel(t);
    if (!kv.ok()) return kv.status();
    labels[kv->first] = kv->second;
  }
  return labels;
}

absl::StatusOr<v1::JobState> ParseJobState(absl::string_view text) {
  std::string upper = absl::AsciiStrToUpper(text);
  absl::StrReplaceAll({{"-", "_"}}, &upper);
  v1::JobState state;
  if (v1::JobState_Parse(upper, &state) || v1::JobState_Parse("JOB_" + upper, &state)) {
    if (state != v1::JOB_STATE_UNSPECIFIED) return state;
  }
  return UsageError(
      absl::StrCat("job state '", text, "' is not in-progress, completed, canceled or aborted"));
}

}  // namespace atbridge::client
