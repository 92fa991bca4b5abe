// SQLite implementation of store::Store: one connection in WAL mode with a
// busy timeout, prepared statements cached per SQL text, one transaction per
// call, schema versioned with PRAGMA user_version.
//
// Thread-safety: thread-safe; calls are serialized on an internal mutex (a
// single connection), which is ample for one server process. Errors carry the
// SQLite message and the database path.
#ifndef ATBRIDGE_SERVER_STORE_SQLITE_STORE_H_
#define ATBRIDGE_SERVER_STORE_SQLITE_STORE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/store/store.h"

namespace atbridge::server::store {

// Current schema version written to PRAGMA user_version.
inline constexpr int kSqliteSchemaVersion = 2;

// Opens (creating if needed) the database at `path` and migrates its schema.
// FAILED_PRECONDITION if the file has a newer schema than this build knows.
absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path);

}  // namespace atbridge::server::store

#endif  // ATBRIDGE_SERVER_STORE_SQLITE_STORE_H_
