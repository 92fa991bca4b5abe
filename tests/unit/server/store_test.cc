// SQLite store on a temp file: job/execution/transition round trips,
// idempotency keys, unfinished jobs, inventory, credentials, audit queries,
// reopening, schema versioning and store URLs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "server/store/sqlite_store.h"
#include "server/util/proto_time.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace atbridge::server::store {
namespace {

using ::atbridge::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }
  void Open() {
    store_.reset();
    auto s = OpenSqliteStore(path_);
    ASSERT_OK(s);
    store_ = *std::move(s);
  }

  static JobRecord Job(const std::string& id, const std::string& key = "") {
    JobRecord j;
    j.id = id;
    j.spec.set_name("job " + id);
    j.spec.mutable_write()->set_sec_tag(42);
    j.spec.mutable_write()->set_content("secret-ish");
    j.spec.set_idempotency_key(key);
    j.creator.set_principal("alice");
    j.creator.set_role(v1::ROLE_OPERATOR);
    j.created_at = absl::FromUnixSeconds(1'800'000'000);
    return j;
  }

  static JobUpdate Initial(const std::vector<std::string>& imeis) {
    JobUpdate u;
    for (const auto& imei : imeis) {
      ExecutionRecord r;
      r.execution.set_imei(imei);
      r.execution.set_state(v1::QUEUED);
      u.executions.push_back(r);
      v1::ExecutionTransition t;
      t.set_to(v1::QUEUED);
      t.set_reason("queued");
      *t.mutable_at() = ToProtoTime(absl::FromUnixSeconds(1'800'000'000));
      u.transitions.emplace_back(imei, t);
    }
    return u;
  }

  atbridge::testing::TempDir dir_;
  std::string path_ = dir_.File("store.db");
  std::unique_ptr<Store> store_;
};

TEST_F(StoreTest, JobRoundTripWithExecutionsAndTransitions) {
  ASSERT_OK(store_->CreateJob(Job("j1"), Initial({"111", "222"})));
  ASSERT_OK_AND_ASSIGN(JobRecord j, store_->GetJob("j1"));
  EXPECT_EQ(j.spec.name(), "job j1");
  EXPECT_EQ(j.spec.write().content(), "secret-ish");
  EXPECT_EQ(j.creator.principal(), "alice");
  EXPECT_EQ(j.creator.role(), v1::ROLE_OPERATOR);
  EXPECT_EQ(j.created_at, absl::FromUnixSeconds(1'800'000'000));
  EXPECT_EQ(j.finished_at, absl::InfinitePast());
  EXPECT_EQ(j.state, v1::JOB_IN_PROGRESS);

  // A transition with a changed execution.
  JobUpdate u;
  ExecutionRecord r;
  r.execution.set_imei("111");
  r.execution.set_state(v1::IN_PROGRESS);
  r.execution.set_attempts(1);
  r.execution.add_steps()->set_name("write");
  r.execution.add_history()->set_reason("must not be stored inline");
  r.has_rollback = true;
  r.rollback_content = "old";
  r.rollback_sha256 = "ABC";
  u.executions.push_back(r);
  v1::ExecutionTransition t;
  t.set_from(v1::QUEUED);
  t.set_to(v1::IN_PROGRESS);
  t.set_attempt(1);
  t.set_reason("attempt 1 started");
  *t.mutable_at() = ToProtoTime(absl::FromUnixSeconds(1'800'000'010));
  u.transitions.emplace_back("111", t);
  ASSERT_OK(store_->Commit("j1", u));

  ASSERT_OK_AND_ASSIGN(auto execs, store_->ListExecutions("j1", /*with_history=*/true));
  ASSERT_THAT(execs, SizeIs(2));
  EXPECT_EQ(execs[0].execution.imei(), "111");
  EXPECT_EQ(execs[0].execution.state(), v1::IN_PROGRESS);
  EXPECT_EQ(execs[0].execution.steps(0).name(), "write");
  EXPECT_TRUE(execs[0].has_rollback);
  EXPECT_EQ(execs[0].rollback_content, "old");
  EXPECT_EQ(execs[0].rollback_sha256, "ABC");
  ASSERT_THAT(execs[0].execution.history(), SizeIs(2));
  EXPECT_EQ(execs[0].execution.history(0).to(), v1::QUEUED);
  EXPECT_EQ(execs[0].execution.history(1).reason(), "attempt 1 started");
  EXPECT_EQ(FromProtoTime(execs[0].execution.history(1).at()),
            absl::FromUnixSeconds(1'800'000'010));
  ASSERT_OK_AND_ASSIGN(auto plain, store_->ListExecutions("j1", /*with_history=*/false));
  EXPECT_THAT(plain[0].execution.history(), SizeIs(0));

  // The job row itself.
  JobUpdate finish;
  JobRecord done = j;
  done.state = v1::JOB_COMPLETED;
  done.finished_at = absl::FromUnixSeconds(1'800'000'100);
  done.reason = "all good";
  done.spec.mutable_write()->set_content("<redacted>");
  finish.job = done;
  ASSERT_OK(store_->Commit("j1", finish));
  ASSERT_OK_AND_ASSIGN(j, store_->GetJob("j1"));
  EXPECT_EQ(j.state, v1::JOB_COMPLETED);
  EXPECT_EQ(j.reason, "all good");
  EXPECT_EQ(j.spec.write().content(), "<redacted>");
  EXPECT_EQ(j.finished_at, absl::FromUnixSeconds(1'800'000'100));
}

TEST_F(StoreTest, MissingJobsAreNotFound) {
  EXPECT_THAT(store_->GetJob("nope"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(store_->Commit("nope", JobUpdate{}), StatusIs(absl::StatusCode::kNotFound));
}

TEST_F(StoreTest, IdempotencyKeysAndIdsAreUnique) {
  ASSERT_OK(store_->CreateJob(Job("j1", "key-1"), Initial({"1"})));
  ASSERT_OK(store_->CreateJob(Job("j2"), Initial({"1"})));
  ASSERT_OK(store_->CreateJob(Job("j3"), Initial({"1"})));  // Empty keys do not collide.
  EXPECT_THAT(store_->CreateJob(Job("j4", "key-1"), Initial({"1"})),
              StatusIs(absl::StatusCode::kAlreadyExists));
  EXPECT_THAT(store_->CreateJob(Job("j1"), Initial({"1"})),
              StatusIs(absl::StatusCode::kAlreadyExists));
  // The failed create left nothing behind.
  EXPECT_THAT(store_->GetJob("j4"), StatusIs(absl::StatusCode::kNotFound));
  ASSERT_OK_AND_ASSIGN(auto found, store_->FindJobByIdempotencyKey("key-1"));
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->id, "j1");
  ASSERT_OK_AND_ASSIGN(auto none, store_->FindJobByIdempotencyKey("other"));
  EXPECT_FALSE(none.has_value());
}

TEST_F(StoreTest, ListJobsAndUnfinishedJobs) {
  ASSERT_OK(store_->CreateJob(Job("a"), Initial({"1"})));
  ASSERT_OK(store_->CreateJob(Job("b"), Initial({"1"})));
  ASSERT_OK(store_->CreateJob(Job("c"), Initial({"1"})));
  JobRecord b = Job("b");
  b.state = v1::JOB_CANCELED;
  b.finished_at = absl::FromUnixSeconds(1'800'000'500);
  JobUpdate u;
  u.job = b;
  ASSERT_OK(store_->Commit("b", u));
  ASSERT_OK_AND_ASSIGN(auto all, store_->ListJobs(v1::JOB_STATE_UNSPECIFIED, 10));
  ASSERT_THAT(all, SizeIs(3));
  EXPECT_EQ(all[0].id, "c");
  EXPECT_EQ(all[2].id, "a");
  ASSERT_OK_AND_ASSIGN(auto limited, store_->ListJobs(v1::JOB_STATE_UNSPECIFIED, 1));
  EXPECT_THAT(limited, SizeIs(1));
  ASSERT_OK_AND_ASSIGN(auto canceled, store_->ListJobs(v1::JOB_CANCELED, 10));
  ASSERT_THAT(canceled, SizeIs(1));
  EXPECT_EQ(canceled[0].id, "b");
  ASSERT_OK_AND_ASSIGN(auto unfinished, store_->ListUnfinishedJobs());
  ASSERT_THAT(unfinished, SizeIs(2));
  EXPECT_EQ(unfinished[0].id, "a");
  EXPECT_EQ(unfinished[1].id, "c");
}

TEST_F(StoreTest, EverythingSurvivesReopen) {
  ASSERT_OK(store_->CreateJob(Job("j1", "k"), Initial({"111"})));
  AgentRecord a{.name = "agent-1",
                .version = "0.1",
                .peer = "ipv4:127.0.0.1:5555",
                .connected_at = absl::FromUnixSeconds(1'800'000'000),
                .last_seen = absl::FromUnixSeconds(1'800'000'001),
                .port_count = 4};
  ASSERT_OK(store_->UpsertAgent(a));
  Open();
  ASSERT_OK_AND_ASSIGN(JobRecord j, store_->GetJob("j1"));
  EXPECT_EQ(j.spec.idempotency_key(), "k");
  ASSERT_OK_AND_ASSIGN(auto execs, store_->ListExecutions("j1", true));
  ASSERT_THAT(execs, SizeIs(1));
  EXPECT_THAT(execs[0].execution.history(), SizeIs(1));
  ASSERT_OK_AND_ASSIGN(auto agents, store_->ListAgents());
  ASSERT_THAT(agents, SizeIs(1));
  EXPECT_EQ(agents[0].peer, "ipv4:127.0.0.1:5555");
  EXPECT_EQ(agents[0].port_count, 4u);
  EXPECT_EQ(agents[0].last_seen, absl::FromUnixSeconds(1'800'000'001));
}

TEST_F(StoreTest, DevicesWithLabelsRoundTrip) {
  DeviceRecord d;
  d.imei = "351234567890123";
  d.agent = "agent-1";
  d.port = "modem0";
  d.model = "nRF9151";
  d.firmware = "mfw_nrf91x1_2.0.2";
  d.manufacturer = "Nordic Semiconductor ASA";
  d.port_labels = {{"board", "nrf9151dk"}, {"rack", "3"}};
  d.server_labels = {{"rack", "4"}, {"owner", "qa"}};
  d.alias = "bench-a";
  d.last_seen = absl::FromUnixSeconds(1'800'000'000);
  ASSERT_OK(store_->UpsertDevices({d}));
  d.port = "modem1";
  d.server_labels.erase("owner");
  ASSERT_OK(store_->UpsertDevices({d}));
  Open();
  ASSERT_OK_AND_ASSIGN(auto devices, store_->ListDevices());
  ASSERT_THAT(devices, SizeIs(1));
  EXPECT_EQ(devices[0].port, "modem1");
  EXPECT_EQ(devices[0].alias, "bench-a");
  EXPECT_EQ(devices[0].port_labels.at("board"), "nrf9151dk");
  EXPECT_EQ(devices[0].server_labels.size(), 1u);
  EXPECT_EQ(devices[0].server_labels.at("rack"), "4");
  EXPECT_EQ(devices[0].firmware, "mfw_nrf91x1_2.0.2");
}

TEST_F(StoreTest, CredentialsReplaceUpsertDelete) {
  v1::CredentialEntry ca;
  ca.set_sec_tag(42);
  ca.set_type(v1::ROOT_CA_CERT);
  ca.set_sha256("AA");
  ca.set_subject("CN=root");
  *ca.mutable_not_after() = ToProtoTime(absl::FromUnixSeconds(1'900'000'000));
  v1::CredentialEntry key;
  key.set_sec_tag(42);
  key.set_type(v1::CLIENT_PRIVATE_KEY);
  key.set_sha256("BB");
  ASSERT_OK(store_->ReplaceCredentials("1", {ca, key}));
  ASSERT_OK(store_->ReplaceCredentials("2", {ca}));
  ca.set_sha256("CC");
  ASSERT_OK(store_->UpsertCredential("1", ca));
  ASSERT_OK(store_->DeleteCredential("1", 42, v1::CLIENT_PRIVATE_KEY));
  ASSERT_OK(store_->DeleteCredential("1", 99, v1::PSK));  // Absent: fine.
  ASSERT_OK_AND_ASSIGN(auto all, store_->ListAllCredentials());
  ASSERT_THAT(all["1"], SizeIs(1));
  EXPECT_EQ(all["1"][0].sha256(), "CC");
  EXPECT_EQ(all["1"][0].subject(), "CN=root");
  EXPECT_EQ(FromProtoTime(all["1"][0].not_after()), absl::FromUnixSeconds(1'900'000'000));
  ASSERT_THAT(all["2"], SizeIs(1));
  ASSERT_OK(store_->ReplaceCredentials("2", {}));
  ASSERT_OK_AND_ASSIGN(all, store_->ListAllCredentials());
  EXPECT_EQ(all.count("2"), 0u);
}

TEST_F(StoreTest, AuditQueryFiltersNewestFirst) {
  auto add = [&](int64_t at, const std::string& who, const std::string& action,
                 const std::string& imei, const std::string& result) {
    AuditEntry e;
    *e.record.mutable_at() = ToProtoTime(absl::FromUnixSeconds(at));
    e.record.set_principal(who);
    e.record.set_role(v1::ROLE_OPERATOR);
    e.record.set_action(action);
    e.record.set_target(imei);
    e.record.set_result(result);
    e.imei = imei;
    return store_->AppendAudit(e);
  };
  ASSERT_OK_AND_ASSIGN(int64_t id1, add(100, "alice", "Execute", "1", "OK"));
  ASSERT_OK_AND_ASSIGN(int64_t id2, add(200, "bob", "CreateJob", "", "PERMISSION_DENIED"));
  ASSERT_OK_AND_ASSIGN(int64_t id3, add(300, "alice", "WriteCredential", "2", "OK"));
  EXPECT_LT(id1, id2);
  EXPECT_LT(id2, id3);
  v1::QueryAuditRequest q;
  ASSERT_OK_AND_ASSIGN(auto all, store_->QueryAudit(q));
  ASSERT_THAT(all, SizeIs(3));
  EXPECT_EQ(all[0].action(), "WriteCredential");
  q.set_principal("alice");
  ASSERT_OK_AND_ASSIGN(auto alice, store_->QueryAudit(q));
  EXPECT_THAT(alice, SizeIs(2));
  q.set_imei("1");
  ASSERT_OK_AND_ASSIGN(auto one, store_->QueryAudit(q));
  ASSERT_THAT(one, SizeIs(1));
  EXPECT_EQ(one[0].action(), "Execute");
  v1::QueryAuditRequest since;
  *since.mutable_since() = ToProtoTime(absl::FromUnixSeconds(150));
  since.set_limit(1);
  ASSERT_OK_AND_ASSIGN(auto recent, store_->QueryAudit(since));
  ASSERT_THAT(recent, SizeIs(1));
  EXPECT_EQ(recent[0].principal(), "alice");
  v1::QueryAuditRequest by_action;
  by_action.set_action("CreateJob");
  ASSERT_OK_AND_ASSIGN(auto denied, store_->QueryAudit(by_action));
  ASSERT_THAT(denied, SizeIs(1));
  EXPECT_EQ(denied[0].result(), "PERMISSION_DENIED");
}

TEST_F(StoreTest, AuditBatchesAreAppendedInOrder) {
  std::vector<AuditEntry> batch(3);
  for (int i = 0; i < 3; ++i) {
    *batch[i].record.mutable_at() = ToProtoTime(absl::FromUnixSeconds(100 + i));
    batch[i].record.set_principal("alice");
    batch[i].record.set_action("JobExecution");
    batch[i].record.set_detail(absl::StrCat("record ", i));
    batch[i].imei = absl::StrCat("35000000000000", i);
  }
  ASSERT_OK(store_->AppendAudits(batch));
  ASSERT_OK(store_->AppendAudits({}));
  ASSERT_OK_AND_ASSIGN(auto all, store_->QueryAudit(v1::QueryAuditRequest()));
  ASSERT_THAT(all, SizeIs(3));
  EXPECT_EQ(all[0].detail(), "record 2") << "newest first";
  EXPECT_EQ(all[2].detail(), "record 0");
  v1::QueryAuditRequest q;
  q.set_imei("350000000000001");
  ASSERT_OK_AND_ASSIGN(auto one, store_->QueryAudit(q));
  ASSERT_THAT(one, SizeIs(1));
  EXPECT_EQ(one[0].detail(), "record 1");
}

TEST_F(StoreTest, UsesWalAndRefusesNewerSchema) {
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_STREQ(reinterpret_cast<const char*>(sqlite3_column_text(st, 0)), "wal");
  sqlite3_finalize(st);
  ASSERT_EQ(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, nullptr), SQLITE_OK);
  ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(st, 0), kSqliteSchemaVersion);
  sqlite3_finalize(st);
  ASSERT_EQ(sqlite3_exec(db, "PRAGMA user_version=99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_THAT(OpenSqliteStore(path_),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("schema version 99")));
}

// Runs SQL on the database file through a second connection.
void ExecRaw(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "") << " in " << sql;
  sqlite3_free(err);
  sqlite3_close(db);
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

TEST_F(StoreTest, AFailedCommitLeavesNoTransactionOpen) {
  ASSERT_OK(store_->CreateJob(Job("j1"), Initial({"111"})));
  // A deferred foreign key makes COMMIT itself fail (and SQLite then keeps
  // the transaction open) whenever a transition with reason "boom" is added.
  ExecRaw(path_, R"sql(
    CREATE TABLE sabotage_parent(id INTEGER PRIMARY KEY);
    CREATE TABLE sabotage(x INTEGER REFERENCES sabotage_parent(id) DEFERRABLE INITIALLY DEFERRED);
    CREATE TRIGGER sabotage_t AFTER INSERT ON transitions WHEN NEW.reason = 'boom'
    BEGIN INSERT INTO sabotage VALUES(1); END;)sql");
  JobUpdate bad;
  v1::ExecutionTransition t;
  t.set_from(v1::QUEUED);
  t.set_to(v1::IN_PROGRESS);
  t.set_reason("boom");
  bad.transitions.emplace_back("111", t);
  EXPECT_THAT(store_->Commit("j1", bad), Not(::atbridge::testing::IsOk()));
  // The connection is usable again: the next commits BEGIN and COMMIT.
  JobUpdate good;
  t.set_reason("fine");
  good.transitions.emplace_back("111", t);
  EXPECT_OK(store_->Commit("j1", good));
  EXPECT_OK(store_->CreateJob(Job("j2"), Initial({"222"})));
  ASSERT_OK_AND_ASSIGN(auto execs, store_->ListExecutions("j1", true));
  ASSERT_THAT(execs, SizeIs(1));
  ASSERT_THAT(execs[0].execution.history(), SizeIs(2)) << "the failed commit left nothing";
  EXPECT_EQ(execs[0].execution.history(1).reason(), "fine");
}

TEST_F(StoreTest, AJobWhoseSpecDoesNotParseIsDataLossNamingIt) {
  ASSERT_OK(store_->CreateJob(Job("j-bad"), Initial({"111"})));
  ASSERT_OK(store_->CreateJob(Job("j-good"), Initial({"222"})));
  ExecRaw(path_, "UPDATE jobs SET spec = x'ffffffff' WHERE id = 'j-bad'");
  EXPECT_THAT(store_->GetJob("j-bad"), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("j-bad")));
  EXPECT_THAT(store_->ListUnfinishedJobs(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("j-bad")));
  EXPECT_THAT(store_->ListJobs(v1::JOB_STATE_UNSPECIFIED, 10),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("j-bad")));
  EXPECT_OK(store_->GetJob("j-good"));
}

TEST_F(StoreTest, EngineProgressRoundTripsAndOldSchemasMigrate) {
  // A version 1 database: the executions table without the progress columns.
  store_.reset();
  ExecRaw(path_, R"sql(
    ALTER TABLE executions DROP COLUMN stage;
    ALTER TABLE executions DROP COLUMN cause_code;
    ALTER TABLE executions DROP COLUMN cause_message;
    ALTER TABLE executions DROP COLUMN signed_cert;
    ALTER TABLE executions DROP COLUMN offline_wait_until;
    PRAGMA user_version = 1;)sql");
  Open();
  ASSERT_OK(store_->CreateJob(Job("j1"), Initial({"111"})));
  JobUpdate u;
  ExecutionRecord r;
  r.execution.set_imei("111");
  r.execution.set_state(v1::IN_PROGRESS);
  r.stage = 8;
  r.cause_code = 3;
  r.cause_message = "+CME ERROR: 527";
  r.signed_cert = "-----BEGIN CERTIFICATE-----";
  r.offline_wait_until = absl::FromUnixSeconds(1'800'000'120);
  u.executions.push_back(r);
  ASSERT_OK(store_->Commit("j1", u));
  Open();
  ASSERT_OK_AND_ASSIGN(auto execs, store_->ListExecutions("j1", false));
  ASSERT_THAT(execs, SizeIs(1));
  EXPECT_EQ(execs[0].stage, 8u);
  EXPECT_EQ(execs[0].cause_code, 3);
  EXPECT_EQ(execs[0].cause_message, "+CME ERROR: 527");
  EXPECT_EQ(execs[0].signed_cert, "-----BEGIN CERTIFICATE-----");
  EXPECT_EQ(execs[0].offline_wait_until, absl::FromUnixSeconds(1'800'000'120));
}

TEST_F(StoreTest, ScrubbedSecretsLeaveNoCopyInTheDatabaseFiles) {
  const std::string secret = "5ec7e75ec7e75ec7e75ec7e75ec7e75e";
  JobRecord j = Job("j1");
  j.spec.mutable_write()->set_type(v1::PSK);
  j.spec.mutable_write()->set_content(secret);
  ASSERT_OK(store_->CreateJob(j, Initial({"111"})));
  // A few more commits so the job row's page sits in the WAL more than once.
  for (int i = 0; i < 3; ++i) {
    JobUpdate u;
    u.job = j;
    ASSERT_OK(store_->Commit("j1", u));
  }
  EXPECT_THAT(ReadAll(path_) + ReadAll(path_ + "-wal"), HasSubstr(secret));
  JobUpdate scrub;
  j.spec.mutable_write()->set_content("<redacted 32 bytes>");
  j.finished_at = absl::FromUnixSeconds(1'800'000'100);
  j.state = v1::JOB_COMPLETED;
  scrub.job = j;
  scrub.scrubs_secrets = true;
  ASSERT_OK(store_->Commit("j1", scrub));
  EXPECT_EQ(ReadAll(path_ + "-wal").size(), 0u) << "the WAL is checkpointed and truncated";
  EXPECT_THAT(ReadAll(path_), Not(HasSubstr(secret))) << "secure_delete zeroed the old cell";
  ASSERT_OK_AND_ASSIGN(JobRecord back, store_->GetJob("j1"));
  EXPECT_EQ(back.spec.write().content(), "<redacted 32 bytes>");
}

TEST(RedactStoreUrlTest, CredentialsNeverShow) {
  EXPECT_EQ(RedactStoreUrl("sqlite:/var/lib/atbridge/atbridge.db"),
            "sqlite:/var/lib/atbridge/atbridge.db");
  EXPECT_EQ(RedactStoreUrl("postgresql://atb:hunter2@db:5432/atbridge"),
            "postgresql://***@db:5432/atbridge");
  EXPECT_EQ(RedactStoreUrl("postgres://db/atbridge?user=atb&password=hunter2"),
            "postgres://db/atbridge?***");
  EXPECT_EQ(RedactStoreUrl("postgresql:host=db user=atb password=hunter2 dbname=x"),
            "postgresql:host=db user=atb password=*** dbname=x");
  EXPECT_EQ(RedactStoreUrl("postgresql:password = 'hun ter2' host=db"),
            "postgresql:password = *** host=db");
  for (const std::string url :
       {"postgresql://atb:hunter2@db/atbridge", "postgres://u:hunter2@h",
        "postgresql:host=db password=hunter2", "mysql://root:hunter2@db/x"}) {
    auto s = OpenStore(url);
    ASSERT_FALSE(s.ok()) << url;
    EXPECT_THAT(s.status().message(), Not(HasSubstr("hunter2"))) << url;
  }
}

TEST(OpenStoreTest, Urls) {
  atbridge::testing::TempDir dir;
  EXPECT_OK(OpenStore("sqlite:" + dir.File("a.db")));
  EXPECT_THAT(OpenStore("sqlite:"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(OpenStore("postgresql://db/atbridge"), StatusIs(absl::StatusCode::kUnimplemented));
  EXPECT_THAT(OpenStore("mysql://x"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(OpenStore("sqlite:" + dir.File("no/such/dir/a.db")),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST(IsTerminalTest, States) {
  EXPECT_FALSE(IsTerminal(v1::QUEUED));
  EXPECT_FALSE(IsTerminal(v1::IN_PROGRESS));
  for (auto s :
       {v1::SUCCEEDED, v1::SKIPPED, v1::FAILED, v1::TIMED_OUT, v1::CANCELED, v1::ROLLED_BACK}) {
    EXPECT_TRUE(IsTerminal(s));
  }
}

}  // namespace
}  // namespace atbridge::server::store
