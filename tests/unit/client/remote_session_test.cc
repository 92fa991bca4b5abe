// RemoteSession against a scripted in-process agent (real gRPC over
// loopback mTLS, the real direct-mode backend): the OPENED handshake has a
// deadline, and the session's lease is renewed from its TTL on the local
// clock, with failed renewals retried while the lease holds.
#include "client/console/remote_session.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <mutex>
#include <vector>

#include "atbridge/v1/agent.grpc.pb.h"
#include "common/proto_time.h"
#include "common/tls/credentials.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/test_pki.h"

namespace atbridge::client {
namespace {

using ::testing::HasSubstr;

// The agent's clock runs an hour ahead of ours: nothing may depend on
// comparing the two.
const absl::Duration kAgentSkew = absl::Hours(1);

class ScriptedAgent final : public v1::Agent::CallbackService {
 public:
  // What Console does after reading `open`.
  bool answer_open = true;
  absl::Duration lease_ttl = absl::Seconds(1);
  // Renewals that fail (UNAVAILABLE) before they succeed; -1: all fail.
  int failing_renewals = 0;
  grpc::StatusCode failure_code = grpc::StatusCode::UNAVAILABLE;
  // Runs after each successful renewal, with their count.
  std::function<void(int)> on_renewed;

  std::vector<absl::Duration> requested_ttls() {
    std::lock_guard<std::mutex> lock(mu_);
    return ttls_;
  }
  int renewals() { return renewals_; }

  grpc::ServerBidiReactor<v1::ConsoleIn, v1::ConsoleOut>* Console(
      grpc::CallbackServerContext*) override {
    return new ConsoleReactor(this);
  }

  grpc::ServerUnaryReactor* RenewLease(grpc::CallbackServerContext* ctx,
                                       const v1::RenewLeaseRequest* req, v1::Lease* resp) override {
    auto* reactor = ctx->DefaultReactor();
    {
      std::lock_guard<std::mutex> lock(mu_);
      ttls_.push_back(FromProtoDuration(req->ttl()));
    }
    int n = ++renewals_;
    if (failing_renewals < 0 || n <= failing_renewals) {
      reactor->Finish(grpc::Status(failure_code, "scripted failure"));
      return reactor;
    }
    *resp = Lease();
    *resp->mutable_expires_at() =
        ToProtoTime(absl::Now() + kAgentSkew + FromProtoDuration(req->ttl()));
    reactor->Finish(grpc::Status::OK);
    int ok = ++successes_;
    if (on_renewed) on_renewed(ok);
    return reactor;
  }

  v1::Lease Lease() {
    v1::Lease l;
    l.set_port("modem0");
    l.set_owner("olga");
    l.set_lease_id("lease-1");
    const absl::Time agent_now = absl::Now() + kAgentSkew;
    *l.mutable_acquired_at() = ToProtoTime(agent_now);
    *l.mutable_expires_at() = ToProtoTime(agent_now + lease_ttl);
    return l;
  }

 private:
  class ConsoleReactor final : public grpc::ServerBidiReactor<v1::ConsoleIn, v1::ConsoleOut> {
   public:
    explicit ConsoleReactor(ScriptedAgent* agent) : agent_(agent) { StartRead(&in_); }
    void OnReadDone(bool ok) override {
      if (!ok) {
        FinishOnce(grpc::Status::OK);
        return;
      }
      if (first_ && agent_->answer_open) {
        auto* ev = out_.mutable_event();
        ev->set_kind(v1::ConsoleEvent::OPENED);
        ev->set_writable(true);
        *ev->mutable_lease() = agent_->Lease();
        StartWrite(&out_);
      }
      first_ = false;
      StartRead(&in_);
    }
    void OnWriteDone(bool) override {}
    void OnCancel() override { FinishOnce(grpc::Status::CANCELLED); }
    void OnDone() override { delete this; }

   private:
    void FinishOnce(const grpc::Status& s) {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return;
      finished_ = true;
      Finish(s);
    }
    ScriptedAgent* agent_;
    v1::ConsoleIn in_;
    v1::ConsoleOut out_;
    bool first_ = true;
    std::mutex mu_;
    bool finished_ = false;
  };

  std::mutex mu_;
  std::vector<absl::Duration> ttls_;
  std::atomic<int> renewals_{0};
  std::atomic<int> successes_{0};
};

class CtlRemoteSessionTest : public ::testing::Test {
 protected:
  void StartAgent() {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", tls::ServerCredentials(pki_.Server("bench1", "agent")),
                             &port);
    builder.RegisterService(&agent_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    auto files = testing::TestPki::WriteFiles(pki_.Client("olga", "operator"), dir_.path(), "olga");
    ResolvedConfig config;
    config.mode = Mode::kAgent;
    config.address = absl::StrCat("127.0.0.1:", port);
    config.ca = files.ca_file;
    config.cert = files.cert_file;
    config.key = files.key_file;
    config.timeout = timeout_;
    config.timeout_explicit = true;
    auto backend = CreateBackend(config);
    ASSERT_OK(backend.status());
    backend_ = *std::move(backend);
  }

  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
  }

  // Runs a writable session on "modem0" until it ends; returns how.
  absl::Status RunSession(absl::Duration bound = absl::Seconds(20)) {
    boost::asio::io_context io;
    absl::Status closed = absl::UnknownError("the session never ended");
    RemoteSession session(io, *backend_,
                          {.on_opened = [](const v1::ConsoleEvent&) {},
                           .on_data = {},
                           .on_event = {},
                           .on_closed =
                               [&](absl::Status s) {
                                 closed = std::move(s);
                                 io.stop();
                               }});
    close_ = [&io, &session] { boost::asio::post(io, [&session] { session.Close(); }); };
    v1::DeviceRef ref;
    ref.set_alias("modem0");
    absl::Status s = session.Open(ref, /*write=*/true, "test");
    if (!s.ok()) return s;
    // Only a guard against hanging the test; every test ends long before.
    boost::asio::steady_timer guard(io,
                                    std::chrono::milliseconds(absl::ToInt64Milliseconds(bound)));
    guard.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) ADD_FAILURE() << "the session did not end in time";
      if (!ec) io.stop();
    });
    const absl::Time start = absl::Now();
    io.run();
    took_ = absl::Now() - start;
    close_ = nullptr;
    return closed;
  }

  testing::TempDir dir_;
  testing::TestPki pki_;
  ScriptedAgent agent_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Backend> backend_;
  absl::Duration timeout_ = absl::Seconds(10);
  std::function<void()> close_;
  absl::Duration took_;
};

TEST_F(CtlRemoteSessionTest, APeerThatNeverOpensTheSessionTimesOut) {
  agent_.answer_open = false;
  timeout_ = absl::Milliseconds(300);
  StartAgent();
  absl::Status s = RunSession();
  EXPECT_THAT(s, testing::StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(s.message(), HasSubstr("did not open the session within 300ms"));
  EXPECT_GE(took_, absl::Milliseconds(300));
  EXPECT_LT(took_, absl::Seconds(5));
}

TEST_F(CtlRemoteSessionTest, RenewsFromTheTtlAndRetriesFailedRenewals) {
  agent_.failing_renewals = 2;
  std::function<void()>* close = &close_;
  agent_.on_renewed = [close](int ok) {
    if (ok == 2 && *close) (*close)();
  };
  StartAgent();
  EXPECT_OK(RunSession());
  EXPECT_EQ(agent_.renewals(), 4);
  for (absl::Duration ttl : agent_.requested_ttls()) EXPECT_EQ(ttl, absl::Seconds(1));
  // Two failures, then renewals half a TTL apart: well within the lease.
  EXPECT_LT(took_, absl::Seconds(3));
}

TEST_F(CtlRemoteSessionTest, EndsWithAClearErrorWhenTheLeaseCannotBeRenewedInTime) {
  agent_.failing_renewals = -1;
  StartAgent();
  absl::Status s = RunSession();
  EXPECT_THAT(s, testing::StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(s.message(), HasSubstr("could not renew the session's lease before it expired"));
  EXPECT_THAT(s.message(), HasSubstr("scripted failure"));
  EXPECT_GE(agent_.renewals(), 4);
  EXPECT_LT(took_, absl::Seconds(3)) << "the lease lasts 1 s";
}

TEST_F(CtlRemoteSessionTest, ARefusedRenewalIsNotRetried) {
  agent_.failing_renewals = -1;
  agent_.failure_code = grpc::StatusCode::FAILED_PRECONDITION;
  StartAgent();
  absl::Status s = RunSession();
  EXPECT_THAT(s, testing::StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(s.message(), HasSubstr("could not be renewed"));
  EXPECT_EQ(agent_.renewals(), 1);
}

}  // namespace
}  // namespace atbridge::client
