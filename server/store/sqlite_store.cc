#include "server/store/sqlite_store.h"

#include <sqlite3.h>

#include <map>
#include <mutex>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "server/util/proto_time.h"

namespace atbridge::server::store {

bool IsTerminal(v1::ExecutionState state) {
  switch (state) {
    case v1::SUCCEEDED:
    case v1::SKIPPED:
    case v1::FAILED:
    case v1::TIMED_OUT:
    case v1::CANCELED:
    case v1::ROLLED_BACK:
      return true;
    default:
      return false;
  }
}

absl::StatusOr<std::unique_ptr<Store>> OpenStore(const std::string& url) {
  constexpr absl::string_view kSqlite = "sqlite:";
  if (absl::StartsWith(url, kSqlite)) {
    std::string path = url.substr(kSqlite.size());
    if (path.empty()) return absl::InvalidArgumentError("store URL \"sqlite:\" names no file");
    return OpenSqliteStore(path);
  }
  if (absl::StartsWith(url, "postgresql:") || absl::StartsWith(url, "postgres:")) {
    return absl::UnimplementedError(absl::StrCat("store URL ", RedactStoreUrl(url),
                                                 ": PostgreSQL is not implemented in this build"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("store URL \"", RedactStoreUrl(url), "\": expected sqlite:<path>"));
}

std::string RedactStoreUrl(const std::string& url_in) {
  std::string url = url_in;
  // scheme://user:password@host/... : the user info goes.
  const size_t scheme_end = url.find("://");
  if (scheme_end != std::string::npos) {
    const size_t authority = scheme_end + 3;
    size_t authority_end = url.find_first_of("/?#", authority);
    if (authority_end == std::string::npos) authority_end = url.size();
    const size_t at = url.rfind('@', authority_end == 0 ? 0 : authority_end - 1);
    if (at != std::string::npos && at >= authority) url.replace(authority, at - authority, "***");
  }
  // Query parameters (password=, sslpassword=, ...) go entirely.
  const size_t query = url.find('?');
  if (query != std::string::npos) url = absl::StrCat(url.substr(0, query), "?***");
  // Key-value DSNs: "... password=secret ...".
  std::string lower = absl::AsciiStrToLower(url);
  for (size_t pos = lower.find("password"); pos != std::string::npos;
       pos = lower.find("password", pos + 1)) {
    size_t eq = lower.find_first_not_of(" \t", pos + 8);
    if (eq == std::string::npos || lower[eq] != '=') continue;
    size_t begin = lower.find_first_not_of(" \t", eq + 1);
    if (begin == std::string::npos) begin = url.size();
    size_t end = begin;
    if (end < url.size() && (url[end] == '\'' || url[end] == '"')) {
      const size_t close = url.find(url[end], end + 1);
      end = close == std::string::npos ? url.size() : close + 1;
    } else {
      while (end < url.size() && url[end] != ' ' && url[end] != '\t' && url[end] != '&' &&
             url[end] != ';') {
        ++end;
      }
    }
    url.replace(begin, end - begin, "***");
    lower = absl::AsciiStrToLower(url);
  }
  return url;
}

namespace {

// Migrations from version i to i+1 are kMigrations[i].
constexpr const char* kMigrations[] = {
    R"sql(
CREATE TABLE agents(
  name TEXT PRIMARY KEY,
  version TEXT NOT NULL,
  peer TEXT NOT NULL,
  connected_at INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  port_count INTEGER NOT NULL);
CREATE TABLE devices(
  imei TEXT PRIMARY KEY,
  agent TEXT NOT NULL,
  port TEXT NOT NULL,
  model TEXT NOT NULL,
  firmware TEXT NOT NULL,
  manufacturer TEXT NOT NULL,
  alias TEXT NOT NULL,
  last_seen INTEGER NOT NULL);
CREATE TABLE device_labels(
  imei TEXT NOT NULL,
  kind INTEGER NOT NULL,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY(imei, kind, key));
CREATE TABLE credentials(
  imei TEXT NOT NULL,
  sec_tag INTEGER NOT NULL,
  type INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  subject TEXT NOT NULL,
  issuer TEXT NOT NULL,
  not_after INTEGER NOT NULL,
  PRIMARY KEY(imei, sec_tag, type));
CREATE TABLE jobs(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE,
  idempotency_key TEXT UNIQUE,
  spec BLOB NOT NULL,
  state INTEGER NOT NULL,
  creator TEXT NOT NULL,
  creator_role INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  finished_at INTEGER NOT NULL,
  reason TEXT NOT NULL);
CREATE INDEX jobs_state ON jobs(state, seq);
CREATE INDEX jobs_unfinished ON jobs(finished_at, seq);
CREATE TABLE executions(
  job_id TEXT NOT NULL REFERENCES jobs(id),
  imei TEXT NOT NULL,
  state INTEGER NOT NULL,
  data BLOB NOT NULL,
  has_rollback INTEGER NOT NULL,
  rollback_content BLOB NOT NULL,
  rollback_sha256 TEXT NOT NULL,
  PRIMARY KEY(job_id, imei));
CREATE INDEX executions_state ON executions(state, job_id);
CREATE TABLE transitions(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id TEXT NOT NULL,
  imei TEXT NOT NULL,
  from_state INTEGER NOT NULL,
  to_state INTEGER NOT NULL,
  at INTEGER NOT NULL,
  attempt INTEGER NOT NULL,
  reason TEXT NOT NULL);
CREATE INDEX transitions_exec ON transitions(job_id, imei, id);
CREATE TABLE audit(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  principal TEXT NOT NULL,
  role INTEGER NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  imei TEXT NOT NULL,
  result TEXT NOT NULL,
  detail TEXT NOT NULL);
CREATE INDEX audit_at ON audit(at);
CREATE INDEX audit_imei ON audit(imei, at);
)sql",
    // v2: engine progress that must survive a restart (ExecutionRecord).
    R"sql(
ALTER TABLE executions ADD COLUMN stage INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN cause_code INTEGER NOT NULL DEFAULT 0;
ALTER TABLE executions ADD COLUMN cause_message TEXT NOT NULL DEFAULT '';
ALTER TABLE executions ADD COLUMN signed_cert TEXT NOT NULL DEFAULT '';
ALTER TABLE executions ADD COLUMN offline_wait_until INTEGER NOT NULL DEFAULT 0;
)sql",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kSqliteSchemaVersion);

constexpr int kLabelPort = 0;
constexpr int kLabelServer = 1;

// A prepared statement, reset on destruction so a cached statement is
// reusable. Column/bind indexes are 1-based for bind, 0-based for columns.
class Stmt {
 public:
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  ~Stmt() {
    if (s_ == nullptr) return;
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Stmt(Stmt&& other) noexcept : s_(std::exchange(other.s_, nullptr)) {}
  Stmt& operator=(Stmt&&) = delete;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  Stmt& Bind(int i, const std::string& v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindBlob(int i, const std::string& v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindNull(int i) {
    sqlite3_bind_null(s_, i);
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE or an error code.
  int Step() { return sqlite3_step(s_); }

  int64_t Int(int col) const { return sqlite3_column_int64(s_, col); }
  std::string Text(int col) const {
    const unsigned char* p = sqlite3_column_text(s_, col);
    int n = sqlite3_column_bytes(s_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n)) : "";
  }
  std::string Blob(int col) const {
    const void* p = sqlite3_column_blob(s_, col);
    int n = sqlite3_column_bytes(s_, col);
    return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(n)) : "";
  }

 private:
  sqlite3_stmt* s_;
};

class SqliteStore final : public Store {
 public:
  SqliteStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~SqliteStore() override {
    for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);
    sqlite3_close(db_);
  }

  absl::Status Init() {
    std::lock_guard<std::mutex> lock(mu_);
    sqlite3_busy_timeout(db_, 5000);
    {
      // The pragma answers with the mode now in effect; a file system
      // without shared memory support, for one, stays in another mode.
      ASSIGN_OR_RETURN(auto st, PrepareLocked("PRAGMA journal_mode=WAL"));
      const int rc = st.Step();
      if (rc != SQLITE_ROW) return Error(rc, "enable WAL");
      if (!absl::EqualsIgnoreCase(st.Text(0), "wal")) {
        return absl::FailedPreconditionError(
            absl::StrCat("database ", path_, " cannot use write-ahead logging (journal mode is ",
                         st.Text(0), ")"));
      }
    }
    // "Every transition is committed before it is acted on": with WAL,
    // synchronous=NORMAL may lose the last commits on power loss; FULL syncs
    // the log at every commit.
    RETURN_IF_ERROR(ExecLocked("PRAGMA synchronous=FULL", "set synchronous"));
    // Scrubbed secrets (job specs, rotation copies) are overwritten with
    // zeros rather than left in free pages.
    RETURN_IF_ERROR(ExecLocked("PRAGMA secure_delete=ON", "enable secure_delete"));
    RETURN_IF_ERROR(ExecLocked("PRAGMA foreign_keys=ON", "enable foreign keys"));
    int version = 0;
    {
      ASSIGN_OR_RETURN(auto st, PrepareLocked("PRAGMA user_version"));
      if (st.Step() == SQLITE_ROW) version = static_cast<int>(st.Int(0));
    }
    if (version > kSqliteSchemaVersion) {
      return absl::FailedPreconditionError(absl::StrCat("database ", path_, " has schema version ",
                                                        version, ", newer than this server's ",
                                                        kSqliteSchemaVersion));
    }
    for (int v = version; v < kSqliteSchemaVersion; ++v) {
      RETURN_IF_ERROR(ExecLocked("BEGIN IMMEDIATE", "begin migration"));
      absl::Status s = ExecLocked(kMigrations[v], absl::StrCat("migrate schema to ", v + 1));
      if (s.ok()) {
        s = ExecLocked(absl::StrCat("PRAGMA user_version=", v + 1), "set schema version");
      }
      if (!s.ok()) {
        (void)ExecLocked("ROLLBACK", "rollback migration");
        return s;
      }
      RETURN_IF_ERROR(ExecLocked("COMMIT", "commit migration"));
    }
    return absl::OkStatus();
  }

  // ---- JobStore ----

  absl::Status CreateJob(const JobRecord& job, const JobUpdate& initial) override {
    std::lock_guard<std::mutex> lock(mu_);
    return InTransaction("create job " + job.id, [&]() -> absl::Status {
      ASSIGN_OR_RETURN(auto st,
                       PrepareLocked("INSERT INTO jobs(id, idempotency_key, spec, state, creator, "
                                     "creator_role, created_at, finished_at, reason) "
                                     "VALUES(?,?,?,?,?,?,?,?,?)"));
      st.Bind(1, job.id);
      if (job.spec.idempotency_key().empty()) {
        st.BindNull(2);
      } else {
        st.Bind(2, job.spec.idempotency_key());
      }
      st.BindBlob(3, job.spec.SerializeAsString())
          .Bind(4, job.state)
          .Bind(5, job.creator.principal())
          .Bind(6, job.creator.role())
          .Bind(7, ToUnixMicrosOrZero(job.created_at))
          .Bind(8, ToUnixMicrosOrZero(job.finished_at))
          .Bind(9, job.reason);
      int rc = st.Step();
      if (rc == SQLITE_CONSTRAINT) {
        return absl::AlreadyExistsError(
            absl::StrCat("job ", job.id, " or its idempotency key already exists"));
      }
      if (rc != SQLITE_DONE) return Error(rc, "insert job " + job.id);
      return ApplyLocked(job.id, initial);
    });
  }

  absl::Status Commit(const std::string& job_id, const JobUpdate& update) override {
    std::lock_guard<std::mutex> lock(mu_);
    RETURN_IF_ERROR(InTransaction("commit job " + job_id, [&]() -> absl::Status {
      ASSIGN_OR_RETURN(auto st, PrepareLocked("SELECT 1 FROM jobs WHERE id=?"));
      st.Bind(1, job_id);
      if (st.Step() != SQLITE_ROW) return absl::NotFoundError(absl::StrCat("no job ", job_id));
      return ApplyLocked(job_id, update);
    }));
    if (update.scrubs_secrets) {
      // The old pages (secret bytes included) are still in the WAL: copy the
      // log into the database (where secure_delete zeroed them) and truncate
      // it. The commit itself is durable already, so a failure here is only
      // logged by the caller's next error, never returned.
      (void)ExecLocked("PRAGMA wal_checkpoint(TRUNCATE)", "checkpoint the WAL");
    }
    return absl::OkStatus();
  }

  absl::StatusOr<JobRecord> GetJob(const std::string& job_id) override {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(auto st, PrepareLocked(absl::StrCat(kJobColumns, " WHERE id=?")));
    st.Bind(1, job_id);
    int rc = st.Step();
    if (rc == SQLITE_ROW) return ReadJob(st);
    if (rc == SQLITE_DONE) return absl::NotFoundError(absl::StrCat("no job ", job_id));
    return Error(rc, "read job " + job_id);
  }

  absl::StatusOr<std::optional<JobRecord>> FindJobByIdempotencyKey(
      const std::string& key) override {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(auto st, PrepareLocked(absl::StrCat(kJobColumns, " WHERE idempotency_key=?")));
    st.Bind(1, key);
    int rc = st.Step();
    if (rc == SQLITE_ROW) {
      ASSIGN_OR_RETURN(JobRecord job, ReadJob(st));
      return std::optional<JobRecord>(std::move(job));
    }
    if (rc == SQLITE_DONE) return std::optional<JobRecord>();
    return Error(rc, "find job by idempotency key");
  }

  absl::StatusOr<std::vector<JobRecord>> ListJobs(v1::JobState state, int limit) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<JobRecord> out;
    if (state == v1::JOB_STATE_UNSPECIFIED) {
      ASSIGN_OR_RETURN(auto st,
                       PrepareLocked(absl::StrCat(kJobColumns, " ORDER BY seq DESC LIMIT ?")));
      st.Bind(1, limit);
      return ReadJobs(st, "list jobs");
    }
    ASSIGN_OR_RETURN(auto st, PrepareLocked(absl::StrCat(
                                  kJobColumns, " WHERE state=? ORDER BY seq DESC LIMIT ?")));
    st.Bind(1, state).Bind(2, limit);
    return ReadJobs(st, "list jobs");
  }

  absl::StatusOr<std::vector<JobRecord>> ListUnfinishedJobs() override {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(auto st,
                     PrepareLocked(absl::StrCat(kJobColumns, " WHERE finished_at=0 ORDER BY seq")));
    return ReadJobs(st, "list unfinished jobs");
  }

  absl::StatusOr<std::vector<ExecutionRecord>> ListExecutions(const std::string& job_id,
                                                              bool with_history) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<ExecutionRecord> out;
    std::map<std::string, size_t> index;
    {
      ASSIGN_OR_RETURN(auto st,
                       PrepareLocked("SELECT imei, data, has_rollback, rollback_content, "
                                     "rollback_sha256, stage, cause_code, cause_message, "
                                     "signed_cert, offline_wait_until FROM executions WHERE "
                                     "job_id=? ORDER BY imei"));
      st.Bind(1, job_id);
      int rc;
      while ((rc = st.Step()) == SQLITE_ROW) {
        ExecutionRecord r;
        if (!r.execution.ParseFromString(st.Blob(1))) {
          return absl::DataLossError(absl::StrCat("execution ", job_id, "/", st.Text(0), " in ",
                                                  path_, " does not parse"));
        }
        r.has_rollback = st.Int(2) != 0;
        r.rollback_content = st.Blob(3);
        r.rollback_sha256 = st.Text(4);
        r.stage = static_cast<uint32_t>(st.Int(5));
        r.cause_code = static_cast<int>(st.Int(6));
        r.cause_message = st.Text(7);
        r.signed_cert = st.Text(8);
        r.offline_wait_until = FromUnixMicrosOrPast(st.Int(9));
        index[st.Text(0)] = out.size();
        out.push_back(std::move(r));
      }
      if (rc != SQLITE_DONE) return Error(rc, "list executions of " + job_id);
    }
    if (with_history) {
      ASSIGN_OR_RETURN(auto st, PrepareLocked("SELECT imei, from_state, to_state, at, attempt, "
                                              "reason FROM transitions WHERE job_id=? ORDER BY "
                                              "id"));
      st.Bind(1, job_id);
      int rc;
      while ((rc = st.Step()) == SQLITE_ROW) {
        auto it = index.find(st.Text(0));
        if (it == index.end()) continue;
        v1::ExecutionTransition* t = out[it->second].execution.add_history();
        t->set_from(static_cast<v1::ExecutionState>(st.Int(1)));
        t->set_to(static_cast<v1::ExecutionState>(st.Int(2)));
        *t->mutable_at() = ToProtoTime(FromUnixMicrosOrPast(st.Int(3)));
        t->set_attempt(static_cast<uint32_t>(st.Int(4)));
        t->set_reason(st.Text(5));
      }
      if (rc != SQLITE_DONE) return Error(rc, "list transitions of " + job_id);
    }
    return out;
  }

  // ---- InventoryStore ----

  absl::Status UpsertAgent(const AgentRecord& a) override {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(auto st,
                     PrepareLocked("INSERT INTO agents(name, version, peer, connected_at, "
                                   "last_seen, port_count) VALUES(?,?,?,?,?,?) ON CONFLICT(name) "
                                   "DO UPDATE SET version=excluded.version, peer=excluded.peer, "
                                   "connected_at=excluded.connected_at, "
                                   "last_seen=excluded.last_seen, port_count=excluded.port_count"));
    st.Bind(1, a.name)
        .Bind(2, a.version)
        .Bind(3, a.peer)
        .Bind(4, ToUnixMicrosOrZero(a.connected_at))
        .Bind(5, ToUnixMicrosOrZero(a.last_seen))
        .Bind(6, a.port_count);
    int rc = st.Step();
    if (rc != SQLITE_DONE) return Error(rc, "upsert agent " + a.name);
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<AgentRecord>> ListAgents() override {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(auto st, PrepareLocked("SELECT name, version, peer, connected_at, last_seen, "
                                            "port_count FROM agents ORDER BY name"));
    std::vector<AgentRecord> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      AgentRecord a;
      a.name = st.Text(0);
      a.version = st.Text(1);
      a.peer = st.Text(2);
      a.connected_at = FromUnixMicrosOrPast(st.Int(3));
      a.last_seen = FromUnixMicrosOrPast(st.Int(4));
      a.port_count = static_cast<uint32_t>(st.Int(5));
      out.push_back(std::move(a));
    }
    if (rc != SQLITE_DONE) return Error(rc, "list agents");
    return out;
  }

  absl::Status UpsertDevices(const std::vector<DeviceRecord>& devices) override {
    std::lock_guard<std::mutex> lock(mu_);
    return InTransaction("upsert devices", [&]() -> absl::Status {
      for (const DeviceRecord& d : devices) {
        {
          ASSIGN_OR_RETURN(
              auto st,
              PrepareLocked("INSERT INTO devices(imei, agent, port, model, firmware, "
                            "manufacturer, alias, last_seen) VALUES(?,?,?,?,?,?,?,?) "
                            "ON CONFLICT(imei) DO UPDATE SET agent=excluded.agent, "
                            "port=excluded.port, model=excluded.model, "
                            "firmware=excluded.firmware, manufacturer=excluded.manufacturer, "
                            "alias=excluded.alias, last_seen=excluded.last_seen"));
          st.Bind(1, d.imei)
              .Bind(2, d.agent)
              .Bind(3, d.port)
              .Bind(4, d.model)
              .Bind(5, d.firmware)
              .Bind(6, d.manufacturer)
              .Bind(7, d.alias)
              .Bind(8, ToUnixMicrosOrZero(d.last_seen));
          int rc = st.Step();
          if (rc != SQLITE_DONE) return Error(rc, "upsert device " + d.imei);
        }
        {
          ASSIGN_OR_RETURN(auto st, PrepareLocked("DELETE FROM device_labels WHERE imei=?"));
          st.Bind(1, d.imei);
          int rc = st.Step();
          if (rc != SQLITE_DONE) return Error(rc, "clear labels of " + d.imei);
        }
        for (int kind : {kLabelPort, kLabelServer}) {
          const auto& labels = kind == kLabelPort ? d.port_labels : d.server_labels;
          for (const auto& [k, v] : labels) {
            ASSIGN_OR_RETURN(auto st, PrepareLocked("INSERT INTO device_labels(imei, kind, key, "
                                                    "value) VALUES(?,?,?,?)"));
            st.Bind(1, d.imei).Bind(2, kind).Bind(3, k).Bind(4, v);
            int rc = st.Step();
            if (rc != SQLITE_DONE) return Error(rc, "insert label of " + d.imei);
          }
        }
      }
      return absl::OkStatus();
    });
  }

  absl::StatusOr<std::vector<DeviceRecord>> ListDevices() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<DeviceRecord> out;
    std::map<std::string, size_t> index;
    {
      ASSIGN_OR_RETURN(auto st, PrepareLocked("SELECT imei, agent, port, model, firmware, "
                                              "manufacturer, alias, last_seen FROM devices ORDER "
                                              "BY imei"));
      int rc;
      while ((rc = st.Step()) == SQLITE_ROW) {
        DeviceRecord d;
        d.imei = st.Text(0);
        d.agent = st.Text(1);
        d.port = st.Text(2);
        d.model = st.Text(3);
        d.firmware = st.Text(4);
        d.manufacturer = st.Text(5);
        d.alias = st.Text(6);
        d.last_seen = FromUnixMicrosOrPast(st.Int(7));
        index[d.imei] = out.size();
        out.push_back(std::move(d));
      }
      if (rc != SQLITE_DONE) return Error(rc, "list devices");
    }
    ASSIGN_OR_RETURN(auto st, PrepareLocked("SELECT imei, kind, key, value FROM device_labels"));
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      auto it = index.find(st.Text(0));
      if (it == index.end()) continue;
      DeviceRecord& d = out[it->second];
      (st.Int(1) == kLabelPort ? d.port_labels : d.server_labels)[st.Text(2)] = st.Text(3);
    }
    if (rc != SQLITE_DONE) return Error(rc, "list device labels");
    return out;
  }

  absl::StatusOr<std::map<std::string, std::vector<v1::CredentialEntry>>> ListAllCredentials()
      override {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(auto st, PrepareLocked("SELECT imei, sec_tag, type, sha256, subject, issuer, "
                                            "not_after FROM credentials ORDER BY imei, sec_tag, "
                                            "type"));
    std::map<std::string, std::vector<v1::CredentialEntry>> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      v1::CredentialEntry e;
      e.set_sec_tag(static_cast<uint32_t>(st.Int(1)));
      e.set_type(static_cast<v1::CredentialType>(st.Int(2)));
      e.set_sha256(st.Text(3));
      e.set_subject(st.Text(4));
      e.set_issuer(st.Text(5));
      if (st.Int(6) != 0) *e.mutable_not_after() = ToProtoTime(FromUnixMicrosOrPast(st.Int(6)));
      out[st.Text(0)].push_back(std::move(e));
    }
    if (rc != SQLITE_DONE) return Error(rc, "list credentials");
    return out;
  }

  absl::Status ReplaceCredentials(const std::string& imei,
                                  const std::vector<v1::CredentialEntry>& entries) override {
    std::lock_guard<std::mutex> lock(mu_);
    return InTransaction("replace credentials of " + imei, [&]() -> absl::Status {
      ASSIGN_OR_RETURN(auto st, PrepareLocked("DELETE FROM credentials WHERE imei=?"));
      st.Bind(1, imei);
      int rc = st.Step();
      if (rc != SQLITE_DONE) return Error(rc, "clear credentials of " + imei);
      for (const auto& e : entries) RETURN_IF_ERROR(UpsertCredentialLocked(imei, e));
      return absl::OkStatus();
    });
  }

  absl::Status UpsertCredential(const std::string& imei, const v1::CredentialEntry& e) override {
    std::lock_guard<std::mutex> lock(mu_);
    return UpsertCredentialLocked(imei, e);
  }

  absl::Status DeleteCredential(const std::string& imei, uint32_t sec_tag,
                                v1::CredentialType type) override {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(
        auto st, PrepareLocked("DELETE FROM credentials WHERE imei=? AND sec_tag=? AND type=?"));
    st.Bind(1, imei).Bind(2, sec_tag).Bind(3, type);
    int rc = st.Step();
    if (rc != SQLITE_DONE) return Error(rc, "delete credential of " + imei);
    return absl::OkStatus();
  }

  // ---- AuditStore ----

  absl::StatusOr<int64_t> AppendAudit(const AuditEntry& entry) override {
    std::lock_guard<std::mutex> lock(mu_);
    return AppendAuditLocked(entry);
  }

  absl::Status AppendAudits(const std::vector<AuditEntry>& entries) override {
    std::lock_guard<std::mutex> lock(mu_);
    return InTransaction("append audit records", [&]() -> absl::Status {
      for (const AuditEntry& e : entries) RETURN_IF_ERROR(AppendAuditLocked(e).status());
      return absl::OkStatus();
    });
  }

  absl::StatusOr<std::vector<v1::AuditRecord>> QueryAudit(const v1::QueryAuditRequest& q) override {
    std::lock_guard<std::mutex> lock(mu_);
    return QueryAuditLocked(q);
  }

 private:
  absl::StatusOr<int64_t> AppendAuditLocked(const AuditEntry& entry) {
    const v1::AuditRecord& r = entry.record;
    ASSIGN_OR_RETURN(auto st, PrepareLocked("INSERT INTO audit(at, principal, role, action, "
                                            "target, imei, result, detail) "
                                            "VALUES(?,?,?,?,?,?,?,?)"));
    st.Bind(1, ToUnixMicrosOrZero(FromProtoTime(r.at())))
        .Bind(2, r.principal())
        .Bind(3, r.role())
        .Bind(4, r.action())
        .Bind(5, r.target())
        .Bind(6, entry.imei)
        .Bind(7, r.result())
        .Bind(8, r.detail());
    int rc = st.Step();
    if (rc != SQLITE_DONE) return Error(rc, "append audit record");
    return static_cast<int64_t>(sqlite3_last_insert_rowid(db_));
  }

  absl::StatusOr<std::vector<v1::AuditRecord>> QueryAuditLocked(const v1::QueryAuditRequest& q) {
    // Fixed SQL with "match anything" sentinels keeps one cached statement.
    ASSIGN_OR_RETURN(auto st,
                     PrepareLocked("SELECT id, at, principal, role, action, target, result, detail "
                                   "FROM audit WHERE at>=? AND (?='' OR principal=?) AND "
                                   "(?='' OR imei=?) AND (?='' OR action=?) "
                                   "ORDER BY id DESC LIMIT ?"));
    int64_t since = IsSet(q.since()) ? ToUnixMicrosOrZero(FromProtoTime(q.since())) : 0;
    st.Bind(1, since)
        .Bind(2, q.principal())
        .Bind(3, q.principal())
        .Bind(4, q.imei())
        .Bind(5, q.imei())
        .Bind(6, q.action())
        .Bind(7, q.action())
        .Bind(8, q.limit() == 0 ? 100 : static_cast<int64_t>(q.limit()));
    std::vector<v1::AuditRecord> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      v1::AuditRecord r;
      r.set_id(st.Int(0));
      *r.mutable_at() = ToProtoTime(FromUnixMicrosOrPast(st.Int(1)));
      r.set_principal(st.Text(2));
      r.set_role(static_cast<v1::Role>(st.Int(3)));
      r.set_action(st.Text(4));
      r.set_target(st.Text(5));
      r.set_result(st.Text(6));
      r.set_detail(st.Text(7));
      out.push_back(std::move(r));
    }
    if (rc != SQLITE_DONE) return Error(rc, "query audit");
    return out;
  }

  static constexpr const char* kJobColumns =
      "SELECT id, spec, state, creator, creator_role, created_at, finished_at, reason FROM jobs";

  absl::Status Error(int rc, const std::string& what) const {
    std::string msg =
        absl::StrCat(what, " in ", path_, ": ", sqlite3_errmsg(db_), " (", sqlite3_errstr(rc), ")");
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) return absl::UnavailableError(msg);
    if (rc == SQLITE_CORRUPT || rc == SQLITE_NOTADB) return absl::DataLossError(msg);
    return absl::InternalError(msg);
  }

  absl::Status ExecLocked(const std::string& sql, const std::string& what) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errstr(rc);
      sqlite3_free(err);
      return absl::InternalError(absl::StrCat(what, " in ", path_, ": ", msg));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<Stmt> PrepareLocked(const std::string& sql) {
    auto it = stmts_.find(sql);
    if (it == stmts_.end()) {
      sqlite3_stmt* s = nullptr;
      int rc = sqlite3_prepare_v3(db_, sql.c_str(), static_cast<int>(sql.size()),
                                  SQLITE_PREPARE_PERSISTENT, &s, nullptr);
      if (rc != SQLITE_OK) return Error(rc, "prepare statement");
      it = stmts_.emplace(sql, s).first;
    }
    return absl::StatusOr<Stmt>(absl::in_place, it->second);
  }

  // Runs `fn` in a transaction. Whatever fails (fn or the COMMIT itself:
  // SQLITE_BUSY, a deferred constraint, an I/O error), the transaction is
  // rolled back, so the connection is never left inside it and the next
  // call can BEGIN again.
  template <typename Fn>
  absl::Status InTransaction(const std::string& what, Fn fn) {
    RETURN_IF_ERROR(ExecLocked("BEGIN IMMEDIATE", "begin " + what));
    absl::Status s = fn();
    if (s.ok()) s = ExecLocked("COMMIT", "commit " + what);
    if (!s.ok() && sqlite3_get_autocommit(db_) == 0) {
      (void)ExecLocked("ROLLBACK", "rollback " + what);
    }
    return s;
  }

  absl::Status ApplyLocked(const std::string& job_id, const JobUpdate& u) {
    for (const ExecutionRecord& r : u.executions) {
      v1::Execution e = r.execution;
      e.clear_history();
      ASSIGN_OR_RETURN(
          auto st,
          PrepareLocked("INSERT INTO executions(job_id, imei, state, data, has_rollback, "
                        "rollback_content, rollback_sha256, stage, cause_code, cause_message, "
                        "signed_cert, offline_wait_until) VALUES(?,?,?,?,?,?,?,?,?,?,?,?) "
                        "ON CONFLICT(job_id, imei) DO UPDATE "
                        "SET state=excluded.state, data=excluded.data, "
                        "has_rollback=excluded.has_rollback, "
                        "rollback_content=excluded.rollback_content, "
                        "rollback_sha256=excluded.rollback_sha256, stage=excluded.stage, "
                        "cause_code=excluded.cause_code, cause_message=excluded.cause_message, "
                        "signed_cert=excluded.signed_cert, "
                        "offline_wait_until=excluded.offline_wait_until"));
      st.Bind(1, job_id)
          .Bind(2, e.imei())
          .Bind(3, e.state())
          .BindBlob(4, e.SerializeAsString())
          .Bind(5, r.has_rollback ? 1 : 0)
          .BindBlob(6, r.rollback_content)
          .Bind(7, r.rollback_sha256)
          .Bind(8, static_cast<int64_t>(r.stage))
          .Bind(9, static_cast<int64_t>(r.cause_code))
          .Bind(10, r.cause_message)
          .Bind(11, r.signed_cert)
          .Bind(12, ToUnixMicrosOrZero(r.offline_wait_until));
      int rc = st.Step();
      if (rc != SQLITE_DONE)
        return Error(rc, absl::StrCat("upsert execution ", job_id, "/", e.imei()));
    }
    for (const auto& [imei, t] : u.transitions) {
      ASSIGN_OR_RETURN(auto st, PrepareLocked("INSERT INTO transitions(job_id, imei, from_state, "
                                              "to_state, at, attempt, reason) "
                                              "VALUES(?,?,?,?,?,?,?)"));
      st.Bind(1, job_id)
          .Bind(2, imei)
          .Bind(3, t.from())
          .Bind(4, t.to())
          .Bind(5, ToUnixMicrosOrZero(FromProtoTime(t.at())))
          .Bind(6, t.attempt())
          .Bind(7, t.reason());
      int rc = st.Step();
      if (rc != SQLITE_DONE)
        return Error(rc, absl::StrCat("append transition ", job_id, "/", imei));
    }
    if (u.job.has_value()) {
      const JobRecord& j = *u.job;
      ASSIGN_OR_RETURN(auto st, PrepareLocked("UPDATE jobs SET spec=?, state=?, finished_at=?, "
                                              "reason=? WHERE id=?"));
      st.BindBlob(1, j.spec.SerializeAsString())
          .Bind(2, j.state)
          .Bind(3, ToUnixMicrosOrZero(j.finished_at))
          .Bind(4, j.reason)
          .Bind(5, job_id);
      int rc = st.Step();
      if (rc != SQLITE_DONE) return Error(rc, "update job " + job_id);
    }
    return absl::OkStatus();
  }

  // A job row; DATA_LOSS naming the job when its spec does not parse (a
  // job silently read with an empty spec would run as "no action").
  absl::StatusOr<JobRecord> ReadJob(const Stmt& st) const {
    JobRecord j;
    j.id = st.Text(0);
    if (!j.spec.ParseFromString(st.Blob(1))) {
      return absl::DataLossError(
          absl::StrCat("job ", j.id, " in ", path_, ": its stored spec does not parse"));
    }
    j.state = static_cast<v1::JobState>(st.Int(2));
    j.creator.set_principal(st.Text(3));
    j.creator.set_role(static_cast<v1::Role>(st.Int(4)));
    j.created_at = FromUnixMicrosOrPast(st.Int(5));
    j.finished_at = FromUnixMicrosOrPast(st.Int(6));
    j.reason = st.Text(7);
    return j;
  }

  absl::StatusOr<std::vector<JobRecord>> ReadJobs(Stmt& st, const std::string& what) {
    std::vector<JobRecord> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      ASSIGN_OR_RETURN(JobRecord job, ReadJob(st));
      out.push_back(std::move(job));
    }
    if (rc != SQLITE_DONE) return Error(rc, what);
    return out;
  }

  absl::Status UpsertCredentialLocked(const std::string& imei, const v1::CredentialEntry& e) {
    ASSIGN_OR_RETURN(auto st,
                     PrepareLocked("INSERT INTO credentials(imei, sec_tag, type, sha256, subject, "
                                   "issuer, not_after) VALUES(?,?,?,?,?,?,?) "
                                   "ON CONFLICT(imei, sec_tag, type) DO UPDATE SET "
                                   "sha256=excluded.sha256, subject=excluded.subject, "
                                   "issuer=excluded.issuer, not_after=excluded.not_after"));
    st.Bind(1, imei)
        .Bind(2, e.sec_tag())
        .Bind(3, e.type())
        .Bind(4, e.sha256())
        .Bind(5, e.subject())
        .Bind(6, e.issuer())
        .Bind(7, IsSet(e.not_after()) ? ToUnixMicrosOrZero(FromProtoTime(e.not_after())) : 0);
    int rc = st.Step();
    if (rc != SQLITE_DONE) return Error(rc, "upsert credential of " + imei);
    return absl::OkStatus();
  }

  std::mutex mu_;
  sqlite3* db_;
  const std::string path_;
  std::map<std::string, sqlite3_stmt*> stmts_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("open database ", path, ": ", msg));
  }
  auto store = std::make_unique<SqliteStore>(db, path);
  RETURN_IF_ERROR(store->Init());
  return store;
}

}  // namespace atbridge::server::store
