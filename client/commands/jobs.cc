// push, rotate, jobs list | show | watch | cancel | report (server only)
#include <fcntl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "client/commands/common.h"
#include "client/core/output.h"
#include "client/core/parse.h"
#include "client/core/progress.h"
#include "client/rpc/connection.h"
#include "common/grpc_status.h"
#include "common/proto_time.h"

namespace atbridge::client {

namespace {

bool IsTerminal(v1::ExecutionState s) {
  return s != v1::QUEUED && s != v1::IN_PROGRESS && s != v1::EXECUTION_STATE_UNSPECIFIED;
}

bool IsFailure(v1::ExecutionState s) {
  return s == v1::FAILED || s == v1::TIMED_OUT || s == v1::ROLLED_BACK || s == v1::CANCELED;
}

std::string ActionName(const v1::JobSpec& spec) {
  switch (spec.action_case()) {
    case v1::JobSpec::kWrite:
      return absl::StrCat("write ", CredentialTypeShortName(spec.write().type()), "@",
                          spec.write().sec_tag());
    case v1::JobSpec::kDelete:
      return absl::StrCat("delete ", CredentialTypeShortName(spec.delete_().type()), "@",
                          spec.delete_().sec_tag());
    case v1::JobSpec::kRotate:
      return absl::StrCat("rotate ", CredentialTypeShortName(spec.rotate().type()), "@",
                          spec.rotate().sec_tag());
    case v1::JobSpec::kKeygenAndSign:
      return absl::StrCat("keygen-and-sign @", spec.keygen_and_sign().sec_tag());
    case v1::JobSpec::kAtScript:
      return "at-script";
    case v1::JobSpec::ACTION_NOT_SET:
      break;
  }
  return "-";
}

// While alive, SIGINT and SIGTERM do not kill the process: they set a flag
// and run a callback (on a helper thread), e.g. cancelling a watch, so the
// command can restore the terminal line and say how to go on. The previous
// handlers come back at destruction. One instance at a time.
class Interrupts {
 public:
  Interrupts() {
    if (pipe2(pipe_, O_CLOEXEC) != 0) {
      pipe_[0] = pipe_[1] = -1;
      return;
    }
    write_fd_ = pipe_[1];
    struct sigaction sa = {};
    sa.sa_handler = [](int) {
      const char c = 'i';
      int saved = errno;
      (void)!write(write_fd_, &c, 1);
      errno = saved;
    };
    sigemptyset(&sa.sa_mask);
    // A blocked write to stderr resumes instead of failing with EINTR.
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, &old_int_);
    sigaction(SIGTERM, &sa, &old_term_);
    thread_ = std::thread([this] { Loop(); });
  }
  ~Interrupts() {
    if (pipe_[1] < 0) return;
    sigaction(SIGINT, &old_int_, nullptr);
    sigaction(SIGTERM, &old_term_, nullptr);
    const char c = 's';
    (void)!write(pipe_[1], &c, 1);
    thread_.join();
    close(pipe_[0]);
    close(pipe_[1]);
    write_fd_ = -1;
  }
  Interrupts(const Interrupts&) = delete;
  Interrupts& operator=(const Interrupts&) = delete;

  bool interrupted() const { return interrupted_; }
  // Runs `f` when a signal arrives, or now if one already did; empty clears.
  void OnInterrupt(std::function<void()> f) {
    std::lock_guard<std::mutex> lock(mu_);
    callback_ = std::move(f);
    if (interrupted_ && callback_) callback_();
  }

 private:
  void Loop() {
    for (;;) {
      char c;
      ssize_t n = read(pipe_[0], &c, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0 || c == 's') return;
      std::lock_guard<std::mutex> lock(mu_);
      interrupted_ = true;
      if (callback_) callback_();
    }
  }

  static inline int write_fd_ = -1;
  int pipe_[2] = {-1, -1};
  struct sigaction old_int_ = {};
  struct sigaction old_term_ = {};
  std::thread thread_;
  std::mutex mu_;
  std::function<void()> callback_;
  std::atomic<bool> interrupted_{false};
};

// What an interrupted wait reports: the job goes on; how to follow it.
absl::Status Interrupted(const std::string& job_id) {
  return WithHint(
      WithExitCode(WithWhat(absl::CancelledError(absl::StrCat(
                                "interrupted; stopped watching, the job keeps running on the "
                                "server")),
                            absl::StrCat("watch job ", job_id)),
                   kExitInterrupted),
      absl::StrCat("follow it again with 'atbridgectl jobs watch ", job_id, "'"));
}

template <typename Resp, typename Call>
absl::StatusOr<Resp> Unary(CommandContext& ctx, Backend& backend, Call&& call) {
  grpc::ClientContext c;
  SetDeadline(&c, backend.timeout());
  Resp resp;
  grpc::Status s = call(&c, &resp);
  if (!s.ok()) return FromGrpcStatus(s);
  return resp;
}

absl::StatusOr<std::pair<Backend*, v1::Provisioning::Stub*>> ServerFor(CommandContext& ctx,
                                                                       const char* command) {
  auto backend = ctx.backend();
  if (!backend.ok()) return backend.status();
  auto stub = (*backend)->Server(command);
  if (!stub.ok()) return stub.status();
  return std::make_pair(*backend, *stub);
}

// The outcome of a finished job as a status: OK, or exit 1 naming failures.
absl::Status JobOutcome(const v1::Job& job) {
  const v1::JobCounts& c = job.counts();
  const uint32_t failed = FailedCount(c);
  if (failed == 0 && job.state() != v1::JOB_ABORTED && job.state() != v1::JOB_CANCELED) {
    return absl::OkStatus();
  }
  const bool stopped = job.state() == v1::JOB_ABORTED || job.state() == v1::JOB_CANCELED;
  std::string label = stopped ? JobStateName(job.state()) : absl::StrCat(failed, " failed");
  std::string explanation = absl::StrCat(failed, " of ", c.total(), " executions did not succeed (",
                                         RenderCounts(c), ")");
  // A completed job's reason only repeats the counts; an aborted or canceled
  // one says why it stopped.
  if (stopped && !job.reason().empty()) absl::StrAppend(&explanation, "; ", job.reason());
  return WithHint(OperationFailed(absl::StrCat("job ", job.id()), label, explanation),
                  absl::StrCat("see 'atbridgectl jobs report ", job.id(), "'"));
}

// Streams the job's events with a progress bar on stderr until it ends;
// returns the final job (with executions). A signal stops the watch (not
// the job): the bar line is ended and Interrupted() returned.
absl::StatusOr<v1::Job> Watch(CommandContext& ctx, Backend& backend, v1::Provisioning::Stub* stub,
                              const std::string& job_id, Interrupts& interrupts) {
  // The bar is drawn (on stderr) only when both outputs are terminals;
  // otherwise plain lines, one per change, keep logs readable.
  ProgressReporter progress(ctx.err(), ctx.stdout_tty() && ctx.stderr_tty(),
                            absl::StrCat("job ", job_id));
  grpc::ClientContext call;  // No deadline: a job may run for hours; keepalive guards it.
  v1::WatchJobRequest req;
  req.set_job_id(job_id);
  auto reader = stub->WatchJob(&call, req);
  interrupts.OnInterrupt([&call] { call.TryCancel(); });
  v1::JobEvent ev;
  while (reader->Read(&ev)) {
    if (ev.has_execution() && ev.has_transition() && IsTerminal(ev.execution().state()) &&
        IsFailure(ev.execution().state())) {
      const v1::Execution& x = ev.execution();
      std::string why =
          x.last_status_message().empty() ? ev.transition().reason() : x.last_status_message();
      std::string where = PortText(x.agent(), x.port());
      progress.Note(absl::StrCat("  ", x.imei(), where.empty() ? "" : " ", where, " ",
                                 ExecutionStateName(x.state()), why.empty() ? "" : ": ", why));
    }
    progress.Update(ev.counts(), ev.job_state());
  }
  grpc::Status s = reader->Finish();
  interrupts.OnInterrupt(nullptr);
  progress.Finish();
  if (interrupts.interrupted()) return Interrupted(job_id);
  if (!s.ok()) return WithWhat(FromGrpcStatus(s), absl::StrCat("watch job ", job_id));
  v1::GetJobRequest get;
  get.set_job_id(job_id);
  get.set_include_executions(true);
  auto job =
      Unary<v1::Job>(ctx, backend, [&](auto* c, auto* resp) { return stub->GetJob(c, get, resp); });
  if (!job.ok()) return WithWhat(job.status(), absl::StrCat("get job ", job_id));
  return job;
}

// ---- push / rotate ----

struct PushOptions {
  std::string tag;
  std::string type;
  std::string file;
  std::vector<std::string> imeis;
  std::vector<std::string> labels;
  std::vector<std::string> agents;
  bool all = false;
  std::string name;
  uint32_t max_concurrency = 0;
  uint32_t per_minute = 0;
  uint32_t max_attempts = 0;
  double abort_percent = 0;
  uint32_t abort_min = 0;
  std::string execution_timeout;
  bool dry_run = false;
  std::string idempotency_key;
  bool strict = false;
  bool force = false;
  bool wait = false;
  bool json = false;
};

absl::Status RunPush(CommandContext& ctx, const PushOptions& o, bool rotate) {
  const char* command = rotate ? "rotate" : "push";
  ctx.RequireRole("automation or operator");
  auto tag = ParseSecTag(o.tag);
  if (!tag.ok()) return tag.status();
  auto type = ParseCredentialType(o.type);
  if (!type.ok()) return type.status();
  auto labels = ParseLabels(o.labels);
  if (!labels.ok()) return labels.status();
  for (const auto& i : o.imeis) {
    if (!IsImei(i)) return UsageError(absl::StrCat("--imei '", i, "' is not 15 digits"));
  }
  if (o.imeis.empty() && labels->empty() && o.agents.empty() && !o.all) {
    return UsageError(absl::StrCat(
        "choose the target devices: --imei, --label KEY=VALUE, --agent-name, or --all"));
  }
  v1::JobSpec spec;
  spec.set_name(o.name.empty()
                    ? absl::StrCat(command, " ", CredentialTypeShortName(*type), "@", *tag)
                    : o.name);
  auto content = ReadInput(ctx, o.file);
  if (!content.ok()) return content.status();
  v1::WriteOptions options;
  options.set_strict(o.strict);
  options.set_force(o.force);
  if (rotate) {
    spec.mutable_rotate()->set_sec_tag(*tag);
    spec.mutable_rotate()->set_type(*type);
    spec.mutable_rotate()->set_content(*std::move(content));
    *spec.mutable_rotate()->mutable_options() = options;
  } else {
    spec.mutable_write()->set_sec_tag(*tag);
    spec.mutable_write()->set_type(*type);
    spec.mutable_write()->set_content(*std::move(content));
    *spec.mutable_write()->mutable_options() = options;
  }
  v1::TargetSelector* sel = spec.mutable_selector();
  for (const auto& i : o.imeis) sel->add_imeis(i);
  for (const auto& [k, v] : *labels) (*sel->mutable_labels())[k] = v;
  for (const auto& a : o.agents) sel->add_agents(a);
  sel->set_all(o.all);
  spec.mutable_rollout()->set_max_concurrency(o.max_concurrency);
  spec.mutable_rollout()->set_per_minute(o.per_minute);
  spec.mutable_retry()->set_max_attempts(o.max_attempts);
  if (o.abort_percent < 0 || o.abort_percent > 100) {
    return UsageError("--abort-percent must be 0..100");
  }
  spec.mutable_abort()->set_failure_percent(o.abort_percent);
  spec.mutable_abort()->set_min_executed(o.abort_min);
  if (!o.execution_timeout.empty()) {
    auto d = ParsePositiveDuration(o.execution_timeout);
    if (!d.ok()) return UsageError(absl::StrCat("--execution-timeout: ", d.status().message()));
    *spec.mutable_execution_timeout() = ToProtoDuration(*d);
  }
  spec.set_dry_run(o.dry_run);
  spec.set_idempotency_key(o.idempotency_key);

  auto server = ServerFor(ctx, command);
  if (!server.ok()) return server.status();
  Backend* backend = server->first;
  v1::Provisioning::Stub* stub = server->second;
  v1::CreateJobRequest req;
  *req.mutable_spec() = std::move(spec);
  // From here a Ctrl-C must not leave the terminal line drawn over or the
  // job id unknown.
  std::optional<Interrupts> interrupts;
  if (o.wait) interrupts.emplace();
  auto job = Unary<v1::Job>(ctx, *backend,
                            [&](auto* c, auto* resp) { return stub->CreateJob(c, req, resp); });
  if (!job.ok()) return WithWhat(job.status(), absl::StrCat("create the ", command, " job"));
  if (!o.wait) {
    if (o.json) {
      PrintJson(ctx, *job);
    } else {
      ctx.out() << "created job " << job->id() << " (" << job->spec().name() << ", "
                << job->counts().total() << " device(s)"
                << (job->spec().dry_run() ? ", dry run" : "") << ")\n";
      ctx.err() << "follow it with 'atbridgectl jobs watch " << job->id() << "'\n";
    }
    return absl::OkStatus();
  }
  ctx.err() << "created job " << job->id() << " (" << job->counts().total() << " device(s))"
            << std::endl;
  if (interrupts->interrupted()) return Interrupted(job->id());
  auto done = Watch(ctx, *backend, stub, job->id(), *interrupts);
  if (!done.ok()) return done.status();
  if (o.json) {
    PrintJson(ctx, *done);
  } else {
    ctx.out() << RenderPlainLine(absl::StrCat("job ", done->id()), done->counts(), done->state())
              << "\n";
  }
  return JobOutcome(*done);
}

void AddPushFlags(CLI::App* cmd, PushOptions* o) {
  cmd->add_option("TAG", o->tag, "security tag 0..2147483647")->required();
  cmd->add_option("TYPE", o->type, absl::StrCat("credential type: ", CredentialTypeHelp(), ", ..."))
      ->required();
  cmd->add_option("FILE", o->file, "content: PEM, hex PSK or text; - reads stdin")->required();
  const std::string targets = "Targets";
  cmd->add_option("--imei", o->imeis, "a device by IMEI (repeatable)")->group(targets);
  cmd->add_option("--label", o->labels, "devices with label KEY=VALUE (repeatable; all must match)")
      ->group(targets);
  cmd->add_option("--agent-name", o->agents, "devices on this agent (repeatable)")->group(targets);
  cmd->add_flag("--all", o->all, "every known device")->group(targets);
  const std::string rollout = "Rollout";
  cmd->add_option("--name", o->name, "job name")->group(rollout);
  cmd->add_option("--max-concurrency", o->max_concurrency, "devices at once (default 10)")
      ->group(rollout);
  cmd->add_option("--per-minute", o->per_minute, "starts per minute (default unlimited)")
      ->group(rollout);
  cmd->add_option("--max-attempts", o->max_attempts, "attempts per device (default 3)")
      ->group(rollout);
  cmd->add_option("--abort-percent", o->abort_percent, "abort when this % of finished ones failed")
      ->group(rollout);
  cmd->add_option("--abort-min", o->abort_min, "... once at least this many finished")
      ->group(rollout);
  cmd->add_option("--execution-timeout", o->execution_timeout, "per attempt (default 120s)")
      ->group(rollout);
  cmd->add_flag("--dry-run", o->dry_run, "resolve targets and validate only; touch no device")
      ->group(rollout);
  cmd->add_option("--idempotency-key", o->idempotency_key,
                  "the same key returns the existing job instead of a new one")
      ->group(rollout);
  cmd->add_flag("--strict", o->strict, "refuse content that needs repair");
  cmd->add_flag("--force", o->force, "write even where the same content is stored");
  cmd->add_flag("-w,--wait", o->wait,
                "watch the job with a progress bar until it ends; exit 1 if any device failed");
  cmd->add_flag("--json", o->json, "print JSON (Job)");
}

// ---- jobs ----

absl::Status RunList(CommandContext& ctx, const std::string& state, uint32_t limit, bool json) {
  ctx.RequireRole("viewer");
  v1::ListJobsRequest req;
  if (!state.empty()) {
    auto s = ParseJobState(state);
    if (!s.ok()) return s.status();
    req.set_state(*s);
  }
  req.set_limit(limit);
  auto server = ServerFor(ctx, "jobs list");
  if (!server.ok()) return server.status();
  Backend* backend = server->first;
  v1::Provisioning::Stub* stub = server->second;
  auto r = Unary<v1::ListJobsResponse>(
      ctx, *backend, [&](auto* c, auto* resp) { return stub->ListJobs(c, req, resp); });
  if (!r.ok()) return WithWhat(r.status(), "list jobs");
  if (json) {
    PrintJson(ctx, *r);
    return absl::OkStatus();
  }
  Table t({"ID", "NAME", "ACTION", "STATE", "DONE", "FAILED", "CREATED_BY", "CREATED"});
  for (const auto& j : r->jobs()) {
    t.AddRow({j.id(), j.spec().name(), ActionName(j.spec()), JobStateName(j.state()),
              absl::StrCat(DoneCount(j.counts()), "/", j.counts().total()),
              absl::StrCat(FailedCount(j.counts())), j.created_by(),
              FormatTimestamp(j.created_at())});
  }
  if (t.rows() == 0) {
    ctx.err() << "no jobs\n";
  } else {
    ctx.out() << t.Render();
  }
  return absl::OkStatus();
}

Table ExecutionsTable(const v1::Job& job) {
  Table t({"IMEI", "DEVICE", "STATE", "ATTEMPTS", "STATUS", "SHA256", "FINISHED"});
  for (const auto& x : job.executions()) {
    std::string status =
        x.last_status_code() == 0
            ? ""
            : absl::StrCat(
                  absl::StatusCodeToString(static_cast<absl::StatusCode>(x.last_status_code())),
                  ": ", x.last_status_message());
    t.AddRow({x.imei(), PortText(x.agent(), x.port()), ExecutionStateName(x.state()),
              absl::StrCat(x.attempts()), status, x.sha256(), FormatTimestamp(x.finished_at())});
  }
  return t;
}

absl::StatusOr<v1::Job> GetJob(CommandContext& ctx, Backend& backend, v1::Provisioning::Stub* stub,
                               const std::string& id) {
  v1::GetJobRequest req;
  req.set_job_id(id);
  req.set_include_executions(true);
  auto job =
      Unary<v1::Job>(ctx, backend, [&](auto* c, auto* resp) { return stub->GetJob(c, req, resp); });
  if (!job.ok()) return WithWhat(job.status(), absl::StrCat("get job ", id));
  return job;
}

absl::Status RunShow(CommandContext& ctx, const std::string& id, bool json) {
  ctx.RequireRole("viewer");
  auto server = ServerFor(ctx, "jobs show");
  if (!server.ok()) return server.status();
  Backend* backend = server->first;
  v1::Provisioning::Stub* stub = server->second;
  auto job = GetJob(ctx, *backend, stub, id);
  if (!job.ok()) return job.status();
  if (json) {
    PrintJson(ctx, *job);
    return absl::OkStatus();
  }
  const v1::JobSpec& spec = job->spec();
  ctx.out() << KeyValues({{"id", job->id()},
                          {"name", spec.name()},
                          {"action", ActionName(spec)},
                          {"state", JobStateName(job->state())},
                          {"progress", RenderPlainLine("executions", job->counts(), job->state())},
                          {"created by", job->created_by()},
                          {"created", FormatTimestamp(job->created_at())},
                          {"finished", FormatTimestamp(job->finished_at())},
                          {"dry run", spec.dry_run() ? "yes" : "no"},
                          {"reason", job->reason()}});
  ctx.out() << "executions:\n" << ExecutionsTable(*job).Render();
  return absl::OkStatus();
}

absl::Status RunWatch(CommandContext& ctx, const std::string& id, bool json) {
  ctx.RequireRole("viewer");
  auto server = ServerFor(ctx, "jobs watch");
  if (!server.ok()) return server.status();
  Backend* backend = server->first;
  v1::Provisioning::Stub* stub = server->second;
  Interrupts interrupts;
  auto job = Watch(ctx, *backend, stub, id, interrupts);
  if (!job.ok()) return job.status();
  if (json) {
    PrintJson(ctx, *job);
  } else {
    ctx.out() << RenderPlainLine(absl::StrCat("job ", job->id()), job->counts(), job->state())
              << "\n";
  }
  return JobOutcome(*job);
}

absl::Status RunCancel(CommandContext& ctx, const std::string& id, const std::string& reason,
                       bool json) {
  ctx.RequireRole("automation or operator");
  auto server = ServerFor(ctx, "jobs cancel");
  if (!server.ok()) return server.status();
  Backend* backend = server->first;
  v1::Provisioning::Stub* stub = server->second;
  v1::CancelJobRequest req;
  req.set_job_id(id);
  req.set_reason(reason);
  auto job = Unary<v1::Job>(ctx, *backend,
                            [&](auto* c, auto* resp) { return stub->CancelJob(c, req, resp); });
  if (!job.ok()) return WithWhat(job.status(), absl::StrCat("cancel job ", id));
  if (json) {
    PrintJson(ctx, *job);
  } else {
    ctx.out() << "canceled job " << job->id() << ": "
              << RenderPlainLine("executions", job->counts(), job->state()) << "\n";
  }
  return absl::OkStatus();
}

absl::Status RunReport(CommandContext& ctx, const std::string& id, const std::string& format) {
  ctx.RequireRole("viewer");
  if (format != "table" && format != "json" && format != "csv") {
    return UsageError(absl::StrCat("--format '", format, "' is not table, json or csv"));
  }
  auto server = ServerFor(ctx, "jobs report");
  if (!server.ok()) return server.status();
  Backend* backend = server->first;
  v1::Provisioning::Stub* stub = server->second;
  if (format == "table") {
    auto job = GetJob(ctx, *backend, stub, id);
    if (!job.ok()) return job.status();
    ctx.out() << ExecutionsTable(*job).Render();
    return absl::OkStatus();
  }
  v1::GetJobReportRequest req;
  req.set_job_id(id);
  req.set_format(format == "csv" ? v1::REPORT_FORMAT_CSV : v1::REPORT_FORMAT_JSON);
  auto report = Unary<v1::JobReport>(
      ctx, *backend, [&](auto* c, auto* resp) { return stub->GetJobReport(c, req, resp); });
  if (!report.ok()) return WithWhat(report.status(), absl::StrCat("report job ", id));
  ctx.out() << report->content();
  if (!report->content().empty() && report->content().back() != '\n') ctx.out() << "\n";
  return absl::OkStatus();
}

}  // namespace

void AddJobCommands(CLI::App& app, CommandContext& ctx) {
  auto push = std::make_shared<PushOptions>();
  CLI::App* p = app.add_subcommand(
      "push", "write a credential to many devices as a server job (rollout, retries, report)");
  AddPushFlags(p, push.get());
  p->footer("\nExample: atbridgectl push 42 root-ca ca.pem --label rack=3 --wait");
  p->callback([&ctx, push] { ctx.SetAction([&ctx, push] { return RunPush(ctx, *push, false); }); });

  auto rotate = std::make_shared<PushOptions>();
  CLI::App* r = app.add_subcommand(
      "rotate",
      "replace a credential on many devices as a server job; a failed write restores the old one");
  AddPushFlags(r, rotate.get());
  r->callback(
      [&ctx, rotate] { ctx.SetAction([&ctx, rotate] { return RunPush(ctx, *rotate, true); }); });

  CLI::App* jobs = app.add_subcommand("jobs", "server jobs: list, show, watch, cancel, report");
  jobs->require_subcommand(1);

  struct ListArgs {
    std::string state;
    uint32_t limit = 0;
    bool json = false;
  };
  auto list = std::make_shared<ListArgs>();
  CLI::App* l = jobs->add_subcommand("list", "list jobs, newest first");
  l->add_option("--state", list->state, "in-progress, completed, canceled or aborted");
  l->add_option("--limit", list->limit, "at most this many (default 50)");
  l->add_flag("--json", list->json, "print JSON (ListJobsResponse)");
  l->callback([&ctx, list] {
    ctx.SetAction([&ctx, list] { return RunList(ctx, list->state, list->limit, list->json); });
  });

  struct IdArgs {
    std::string id;
    std::string reason;
    std::string format = "table";
    bool json = false;
  };
  auto show = std::make_shared<IdArgs>();
  CLI::App* s = jobs->add_subcommand("show", "show a job and its executions");
  s->add_option("JOB", show->id, "job id")->required();
  s->add_flag("--json", show->json, "print JSON (Job)");
  s->callback(
      [&ctx, show] { ctx.SetAction([&ctx, show] { return RunShow(ctx, show->id, show->json); }); });

  auto watch = std::make_shared<IdArgs>();
  CLI::App* w = jobs->add_subcommand(
      "watch", "follow a job with a progress bar until it ends; exit 1 if any device failed");
  w->add_option("JOB", watch->id, "job id")->required();
  w->add_flag("--json", watch->json, "print the final job as JSON (Job)");
  w->callback([&ctx, watch] {
    ctx.SetAction([&ctx, watch] { return RunWatch(ctx, watch->id, watch->json); });
  });

  auto cancel = std::make_shared<IdArgs>();
  CLI::App* c = jobs->add_subcommand(
      "cancel", "cancel a job: queued executions are canceled, running ones finish");
  c->add_option("JOB", cancel->id, "job id")->required();
  c->add_option("--reason", cancel->reason, "why");
  c->add_flag("--json", cancel->json, "print JSON (Job)");
  c->callback([&ctx, cancel] {
    ctx.SetAction(
        [&ctx, cancel] { return RunCancel(ctx, cancel->id, cancel->reason, cancel->json); });
  });

  auto report = std::make_shared<IdArgs>();
  CLI::App* rp = jobs->add_subcommand("report", "a job's per-device report");
  rp->add_option("JOB", report->id, "job id")->required();
  rp->add_option("--format", report->format, "table (default), json or csv");
  rp->callback([&ctx, report] {
    ctx.SetAction([&ctx, report] { return RunReport(ctx, report->id, report->format); });
  });
}

}  // namespace atbridge::client
