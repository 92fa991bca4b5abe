// The server's durable state behind interfaces: jobs with their executions
// and transitions, the inventory (agents, devices, credentials) and the audit
// log. The default implementation is SQLite (sqlite_store.h); the interfaces
// avoid anything SQLite-specific so a PostgreSQL implementation (claiming
// executions with SELECT ... FOR UPDATE SKIP LOCKED across replicas) can be
// added behind the same calls.
//
// Thread-safety: implementations are thread-safe. Every method is one
// transaction: it either fully happens or returns an error and changes
// nothing. Errors: NOT_FOUND for missing rows, ALREADY_EXISTS for a duplicate
// job id or idempotency key, INTERNAL/UNAVAILABLE for database failures
// (messages name the operation and the database).
#ifndef ATBRIDGE_SERVER_STORE_STORE_H_
#define ATBRIDGE_SERVER_STORE_STORE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "atbridge/v1/common.pb.h"
#include "atbridge/v1/provisioning.pb.h"

namespace atbridge::server::store {

// A job row. `spec` holds the full spec, secret content included, for as long
// as the job runs; it is never returned to callers unredacted (see
// jobs/job_spec.h RedactSpec) and is scrubbed when the job ends.
struct JobRecord {
  std::string id;
  v1::JobSpec spec;
  v1::JobState state = v1::JOB_IN_PROGRESS;
  v1::Actor creator;
  absl::Time created_at = absl::InfinitePast();
  absl::Time finished_at = absl::InfinitePast();  // InfinitePast: not finished.
  std::string reason;
};

// One execution row. `execution.history` is not stored here: transitions
// are their own rows, appended by Commit and returned by ListExecutions when
// asked.
struct ExecutionRecord {
  v1::Execution execution;
  // Rotate: the entry found before the first write, to restore on failure
  // (readable, i.e. non-secret, types only).
  bool has_rollback = false;
  std::string rollback_content;
  std::string rollback_sha256;
  // Engine progress that must survive a restart, committed before it is
  // acted on: where the attempt is (an engine-defined stage number, 0 = the
  // action's start; e.g. "rolling back"), the failure being rolled back,
  // the certificate signed for a keygen-and-sign execution (public data:
  // a resumed or retried attempt writes it instead of generating a new key),
  // and the end of the offline wait once one was used (InfinitePast: never).
  uint32_t stage = 0;
  int cause_code = 0;
  std::string cause_message;
  std::string signed_cert;
  absl::Time offline_wait_until = absl::InfinitePast();
};

// One atomic change to a job: executions to upsert (full snapshots), their
// transitions to append, and optionally the job row itself.
struct JobUpdate {
  std::vector<ExecutionRecord> executions;
  std::vector<std::pair<std::string, v1::ExecutionTransition>> transitions;  // (imei, t)
  std::optional<JobRecord> job;
  // The update removes secret content (a scrubbed spec): the store also
  // makes sure no copy of the old bytes stays in its files (e.g. SQLite
  // checkpoints and truncates its write-ahead log).
  bool scrubs_secrets = false;
};

class JobStore {
 public:
  virtual ~JobStore() = default;

  // Inserts `job` and `initial` (its executions and first transitions)
  // atomically. ALREADY_EXISTS if the id or the spec's idempotency key exists.
  virtual absl::Status CreateJob(const JobRecord& job, const JobUpdate& initial) = 0;
  // Applies `update` to job `job_id` atomically. NOT_FOUND if no such job.
  virtual absl::Status Commit(const std::string& job_id, const JobUpdate& update) = 0;
  // One job. NOT_FOUND if absent.
  virtual absl::StatusOr<JobRecord> GetJob(const std::string& job_id) = 0;
  // The job created with this idempotency key, if any.
  virtual absl::StatusOr<std::optional<JobRecord>> FindJobByIdempotencyKey(
      const std::string& key) = 0;
  // Jobs newest first; `state` UNSPECIFIED means all; at most `limit`.
  virtual absl::StatusOr<std::vector<JobRecord>> ListJobs(v1::JobState state, int limit) = 0;
  // Jobs with executions that are not terminal or a job row not finished
  // (what a restarted engine must resume), oldest first.
  virtual absl::StatusOr<std::vector<JobRecord>> ListUnfinishedJobs() = 0;
  // Executions of a job by IMEI, with `history` filled when asked.
  virtual absl::StatusOr<std::vector<ExecutionRecord>> ListExecutions(const std::string& job_id,
                                                                      bool with_history) = 0;
};

// An agent as persisted (connection state is not persisted: after a restart
// every agent is offline until it dials in again).
struct AgentRecord {
  std::string name;
  std::string version;
  std::string peer;
  absl::Time connected_at = absl::InfinitePast();
  absl::Time last_seen = absl::InfinitePast();
  uint32_t port_count = 0;
};

// A device (modem) as persisted, keyed by IMEI.
struct DeviceRecord {
  std::string imei;
  std::string agent;  // Where it was last seen.
  std::string port;
  std::string model;
  std::string firmware;
  std::string manufacturer;
  std::map<std::string, std::string> port_labels;    // From the agent config.
  std::map<std::string, std::string> server_labels;  // Set through UpdateDevice.
  std::string alias;
  absl::Time last_seen = absl::InfinitePast();
};

class InventoryStore {
 public:
  virtual ~InventoryStore() = default;

  virtual absl::Status UpsertAgent(const AgentRecord& agent) = 0;
  virtual absl::StatusOr<std::vector<AgentRecord>> ListAgents() = 0;
  // Upserts devices in one transaction.
  virtual absl::Status UpsertDevices(const std::vector<DeviceRecord>& devices) = 0;
  virtual absl::StatusOr<std::vector<DeviceRecord>> ListDevices() = 0;
  // Credentials of every device, by IMEI, sorted by (sec_tag, type).
  virtual absl::StatusOr<std::map<std::string, std::vector<v1::CredentialEntry>>>
  ListAllCredentials() = 0;
  // Replaces what is known about a device's credentials (a fresh listing).
  virtual absl::Status ReplaceCredentials(const std::string& imei,
                                          const std::vector<v1::CredentialEntry>& entries) = 0;
  // Sets one entry (after a verified write).
  virtual absl::Status UpsertCredential(const std::string& imei,
                                        const v1::CredentialEntry& entry) = 0;
  // Removes one entry (after a delete); OK if it was not there.
  virtual absl::Status DeleteCredential(const std::string& imei, uint32_t sec_tag,
                                        v1::CredentialType type) = 0;
};

// An audit record plus the IMEI it concerns (indexed for queries).
struct AuditEntry {
  v1::AuditRecord record;  // `id` is assigned by Append.
  std::string imei;
};

class AuditStore {
 public:
  virtual ~AuditStore() = default;
  // Appends a record; returns its id.
  virtual absl::StatusOr<int64_t> AppendAudit(const AuditEntry& entry) = 0;
  // Appends records in order, all or none, in one transaction (one sync of
  // the log for the lot).
  virtual absl::Status AppendAudits(const std::vector<AuditEntry>& entries) = 0;
  // Records matching the query, newest first (limit 0 = 100).
  virtual absl::StatusOr<std::vector<v1::AuditRecord>> QueryAudit(
      const v1::QueryAuditRequest& query) = 0;
};

// Everything the server persists.
class Store : public JobStore, public InventoryStore, public AuditStore {
 public:
  ~Store() override = default;
};

// Opens the store named by `url`: "sqlite:<path>" (created if missing, WAL).
// INVALID_ARGUMENT for an unknown scheme ("postgresql:" is reserved for a
// future implementation and refused with UNIMPLEMENTED). Error messages name
// the URL only as RedactStoreUrl shows it.
absl::StatusOr<std::unique_ptr<Store>> OpenStore(const std::string& url);

// A store URL safe to log or return: credentials (the user info of
// "scheme://user:password@host", "password=" parameters) and query strings
// are replaced by "***".
std::string RedactStoreUrl(const std::string& url);

// Terminal execution states (no further transitions).
bool IsTerminal(v1::ExecutionState state);

}  // namespace atbridge::server::store

#endif  // ATBRIDGE_SERVER_STORE_STORE_H_
