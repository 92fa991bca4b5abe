// --state-file: the modems' NVM (credentials including %KEYGEN private keys,
// and CFUN), as JSON, keyed by IMEI so a modem finds its state again after a
// restart with the same link dir (or --imei-base):
//   {"version": 1, "modems": {"<imei>": {"cfun": 4,
//     "credentials": [{"tag": 16842753, "type": 0, "content_b64": "..."}]}}}
// Content is base64url (byte-exact, any bytes). The file holds secrets: it is
// created with mode 0600.
//
// Not thread-safe; used from the simulator's io_context thread.
#ifndef ATBRIDGE_SIM_STATE_FILE_H_
#define ATBRIDGE_SIM_STATE_FILE_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sim/modem.h"

namespace atbridge::sim {

// IMEI -> state.
using StateMap = std::map<std::string, ModemState>;

// Reads `path`. A missing file is an empty map; a malformed one is
// INVALID_ARGUMENT naming the path (never silently discarded).
absl::StatusOr<StateMap> LoadStateFile(const std::string& path);

// Writes `states` atomically: a temporary file in the same directory, then
// rename over `path`.
absl::Status SaveStateFile(const std::string& path, const StateMap& states);

}  // namespace atbridge::sim

#endif  // ATBRIDGE_SIM_STATE_FILE_H_
