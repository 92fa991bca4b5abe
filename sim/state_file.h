// --state-file: the modems' NVM (credentials including %KEYGEN private keys,
// and CFUN), as JSON, keyed by IMEI so a modem finds its state again after a
// restart with the same link dir (or --imei-base):
//   {"version": 1, "modems": {"<imei>": {"cfun": 4,
//     "credentials": [{"tag": 16842753, "type": 0, "content_b64": "..."}]}}}
// Content is base64url (byte-exact, any bytes). The file holds secrets: it is
// created with mode 0600. Entries of IMEIs not simulated in this run are
// kept.
//
// Not thread-safe; used from the simulator's io_context thread.
#ifndef ATBRIDGE_SIM_STATE_FILE_H_
#define ATBRIDGE_SIM_STATE_FILE_H_

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sim/modem.h"

namespace atbridge::sim {

class StateFile {
 public:
  // Reads `path`. A missing file is empty; a malformed one is
  // INVALID_ARGUMENT naming the path (never silently discarded).
  static absl::StatusOr<std::unique_ptr<StateFile>> Open(const std::string& path);

  // The stored state of `imei`, if any.
  std::optional<ModemState> Get(const std::string& imei) const;

  // Replaces `imei`'s state in memory. Only this modem is re-serialized; the
  // others' JSON is cached, so a change never re-encodes the whole fleet.
  void Set(const std::string& imei, const ModemState& state);
  // Rewrites the file atomically (a temporary file in the same directory,
  // then rename) if anything was Set since the last Save.
  absl::Status Save();
  // Set + Save.
  absl::Status Put(const std::string& imei, const ModemState& state);
  bool dirty() const { return dirty_; }

  size_t size() const { return states_.size(); }

 private:
  explicit StateFile(std::string path) : path_(std::move(path)) {}

  std::string path_;
  std::map<std::string, ModemState> states_;
  std::map<std::string, std::string> json_;  // IMEI -> its JSON object text.
  bool dirty_ = false;
};

}  // namespace atbridge::sim

#endif  // ATBRIDGE_SIM_STATE_FILE_H_
