// Helpers shared by the command implementations.
#ifndef ATBRIDGE_CLIENT_COMMANDS_COMMON_H_
#define ATBRIDGE_CLIENT_COMMANDS_COMMON_H_

#include <google/protobuf/message.h>
#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "atbridge/v1/provisioning.pb.h"
#include "client/commands/context.h"

namespace atbridge::client {

// Largest input file accepted (credentials are < 4 KB on the modem).
inline constexpr size_t kMaxInputBytes = 64 * 1024;

// Prints `message` as JSON (core/output.h) on stdout.
void PrintJson(CommandContext& ctx, const google::protobuf::Message& message);

// Reads FILE, or stdin for "-". Usage error naming the file when it cannot be
// read or is larger than `max_bytes`.
absl::StatusOr<std::string> ReadInput(CommandContext& ctx, const std::string& path,
                                      size_t max_bytes = kMaxInputBytes);

// Writes `data` to `path` via a temporary file and rename, with `mode`
// (0600 for private keys). ALREADY_EXISTS unless `overwrite`.
absl::Status WriteFileAtomically(const std::string& path, const std::string& data, mode_t mode,
                                 bool overwrite);

// Creates `dir` and its parents (mode 0700 for new ones).
absl::Status MakeDirs(const std::string& dir);

// "key: value" lines with the keys padded to one column.
std::string KeyValues(const std::vector<std::pair<std::string, std::string>>& rows);

// A credentials table (TAG, TYPE, SHA256, SUBJECT, NOT_AFTER).
std::string CredentialsTable(
    const google::protobuf::RepeatedPtrField<v1::CredentialEntry>& entries);

// "alice (flashing) until 2026-...Z".
std::string LeaseText(const v1::Lease& lease);

// Steps as "validate ok 1ms, cfun_read ok 3ms, ...".
std::string StepsText(const google::protobuf::RepeatedPtrField<v1::Step>& steps);

}  // namespace atbridge::client

#endif  // ATBRIDGE_CLIENT_COMMANDS_COMMON_H_
