#include "server/jobs/job_spec.h"

#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/pki/pki.h"
#include "server/jobs/csr_signer.h"
#include "server/util/proto_time.h"

namespace atbridge::server::jobs {

namespace {

absl::Status Invalid(absl::string_view field, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("job spec ", field, ": ", why));
}

absl::Status CheckTagAndType(absl::string_view action, uint32_t sec_tag, int type) {
  if (sec_tag > kMaxSecTag) {
    return Invalid(absl::StrCat(action, ".sec_tag"),
                   absl::StrCat(sec_tag, " is above ", kMaxSecTag, " (modem-reserved tags)"));
  }
  if (type < 0 || type > 11) {
    return Invalid(absl::StrCat(action, ".type"), absl::StrCat(type, " is not a %CMNG type 0..11"));
  }
  return absl::OkStatus();
}

absl::Status CheckDuration(absl::string_view field, const google::protobuf::Duration& d,
                           absl::Duration max) {
  absl::Duration v = FromProtoDuration(d);
  if (v < absl::ZeroDuration()) return Invalid(field, "must not be negative");
  if (v > max) return Invalid(field, absl::StrCat("must be at most ", absl::FormatDuration(max)));
  return absl::OkStatus();
}

absl::Status CheckCommand(size_t i, const std::string& command) {
  const std::string field = absl::StrCat("at_script.commands[", i, "]");
  if (command.empty()) return Invalid(field, "is empty");
  if (command.size() > kMaxCommandBytes) {
    return Invalid(field, absl::StrCat("is longer than ", kMaxCommandBytes, " bytes"));
  }
  for (char c : command) {
    if (c < 0x20 || c > 0x7e) {
      return Invalid(field, "must be printable ASCII on one line (no CR/LF)");
    }
  }
  if (!absl::StartsWithIgnoreCase(command, "AT")) return Invalid(field, "must start with AT");
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateJobSpec(const v1::JobSpec& spec, const ContentValidator& validator,
                             bool have_signer) {
  if (spec.name().size() > 200) return Invalid("name", "is longer than 200 characters");
  if (spec.idempotency_key().size() > 200) {
    return Invalid("idempotency_key", "is longer than 200 characters");
  }
  switch (spec.action_case()) {
    case v1::JobSpec::kWrite: {
      const auto& a = spec.write();
      absl::Status s = CheckTagAndType("write", a.sec_tag(), a.type());
      if (!s.ok()) return s;
      auto v = validator.Validate(a.type(), a.content(), a.options().strict());
      if (!v.ok()) return Invalid("write.content", v.status().message());
      break;
    }
    case v1::JobSpec::kDelete: {
      absl::Status s = CheckTagAndType("delete", spec.delete_().sec_tag(), spec.delete_().type());
      if (!s.ok()) return s;
      break;
    }
    case v1::JobSpec::kRotate: {
      const auto& a = spec.rotate();
      absl::Status s = CheckTagAndType("rotate", a.sec_tag(), a.type());
      if (!s.ok()) return s;
      auto v = validator.Validate(a.type(), a.content(), a.options().strict());
      if (!v.ok()) return Invalid("rotate.content", v.status().message());
      if (a.options().dry_run()) return Invalid("rotate.options.dry_run", "use JobSpec.dry_run");
      break;
    }
    case v1::JobSpec::kKeygenAndSign: {
      const auto& a = spec.keygen_and_sign();
      if (a.sec_tag() > kMaxSecTag) {
        return Invalid("keygen_and_sign.sec_tag", absl::StrCat(a.sec_tag(), " is out of range"));
      }
      absl::Status attrs =
          CheckKeygenAttributes(a.attributes(), "job spec keygen_and_sign.attributes");
      if (!attrs.ok()) return attrs;
      if (a.validity_days() > 3650 * 3) {
        return Invalid("keygen_and_sign.validity_days", "must be at most 10950");
      }
      if (!have_signer) {
        return absl::FailedPreconditionError(
            "keygen-and-sign needs the server's CA (configure ca_cert_file and ca_key_file)");
      }
      break;
    }
    case v1::JobSpec::kAtScript: {
      const auto& a = spec.at_script();
      if (a.commands().empty()) return Invalid("at_script.commands", "is empty");
      if (static_cast<size_t>(a.commands_size()) > kMaxScriptCommands) {
        return Invalid("at_script.commands", absl::StrCat("has more than ", kMaxScriptCommands));
      }
      for (int i = 0; i < a.commands_size(); ++i) {
        absl::Status s = CheckCommand(static_cast<size_t>(i), a.commands(i));
        if (!s.ok()) return s;
      }
      break;
    }
    case v1::JobSpec::ACTION_NOT_SET:
      return Invalid("action", "is not set (write, delete, rotate, keygen_and_sign, at_script)");
  }
  if (spec.rollout().max_concurrency() > kMaxConcurrencyLimit) {
    return Invalid("rollout.max_concurrency", absl::StrCat("is above ", kMaxConcurrencyLimit));
  }
  if (spec.retry().max_attempts() > kMaxAttemptsLimit) {
    return Invalid("retry.max_attempts", absl::StrCat("is above ", kMaxAttemptsLimit));
  }
  absl::Status s =
      CheckDuration("retry.initial_backoff", spec.retry().initial_backoff(), absl::Hours(1));
  if (!s.ok()) return s;
  s = CheckDuration("retry.max_backoff", spec.retry().max_backoff(), absl::Hours(24));
  if (!s.ok()) return s;
  const double m = spec.retry().multiplier();
  if (!std::isfinite(m) || (m != 0 && (m < 1.0 || m > 10.0))) {
    return Invalid("retry.multiplier", "must be 0 (default 2) or within 1..10");
  }
  const double p = spec.abort().failure_percent();
  if (!std::isfinite(p) || p < 0 || p > 100) {
    return Invalid("abort.failure_percent", "must be within 0..100");
  }
  s = CheckDuration("execution_timeout", spec.execution_timeout(), absl::Hours(24));
  if (!s.ok()) return s;
  return absl::OkStatus();
}

v1::JobSpec WithDefaults(const v1::JobSpec& spec, const JobDefaults& d) {
  v1::JobSpec out = spec;
  if (out.rollout().max_concurrency() == 0) {
    out.mutable_rollout()->set_max_concurrency(d.max_concurrency);
  }
  v1::RetryPolicy* r = out.mutable_retry();
  if (r->max_attempts() == 0) r->set_max_attempts(d.max_attempts);
  if (FromProtoDuration(r->initial_backoff()) == absl::ZeroDuration()) {
    *r->mutable_initial_backoff() = ToProtoDuration(d.initial_backoff);
  }
  if (FromProtoDuration(r->max_backoff()) == absl::ZeroDuration()) {
    *r->mutable_max_backoff() = ToProtoDuration(d.max_backoff);
  }
  if (FromProtoDuration(r->max_backoff()) < FromProtoDuration(r->initial_backoff())) {
    *r->mutable_max_backoff() = r->initial_backoff();
  }
  if (r->multiplier() == 0) r->set_multiplier(d.multiplier);
  if (FromProtoDuration(out.execution_timeout()) == absl::ZeroDuration()) {
    *out.mutable_execution_timeout() = ToProtoDuration(d.execution_timeout);
  }
  return out;
}

bool SpecHasSecret(const v1::JobSpec& spec) {
  if (spec.has_write()) {
    return IsSecretCredentialType(spec.write().type()) && !spec.write().content().empty() &&
           !absl::StartsWith(spec.write().content(), "<redacted");
  }
  if (spec.has_rotate()) {
    return IsSecretCredentialType(spec.rotate().type()) && !spec.rotate().content().empty() &&
           !absl::StartsWith(spec.rotate().content(), "<redacted");
  }
  if (spec.has_at_script()) {
    for (const std::string& command : spec.at_script().commands()) {
      if (RedactCommand(command) != command) return true;
    }
  }
  return false;
}

v1::JobSpec RedactSpec(const v1::JobSpec& spec) {
  v1::JobSpec out = spec;
  auto redact = [](std::string* content) {
    if (content->empty() || absl::StartsWith(*content, "<redacted")) return;
    *content = absl::StrCat("<redacted ", content->size(), " bytes>");
  };
  if (out.has_write() && IsSecretCredentialType(out.write().type())) {
    redact(out.mutable_write()->mutable_content());
  }
  if (out.has_rotate() && IsSecretCredentialType(out.rotate().type())) {
    redact(out.mutable_rotate()->mutable_content());
  }
  if (out.has_at_script()) {
    // An AT script may write a PSK or a key with %CMNG itself.
    for (std::string& command : *out.mutable_at_script()->mutable_commands()) {
      command = RedactCommand(command);
    }
  }
  return out;
}

std::string ActionName(const v1::JobSpec& spec) {
  switch (spec.action_case()) {
    case v1::JobSpec::kWrite:
      return "write";
    case v1::JobSpec::kDelete:
      return "delete";
    case v1::JobSpec::kRotate:
      return "rotate";
    case v1::JobSpec::kKeygenAndSign:
      return "keygen-and-sign";
    case v1::JobSpec::kAtScript:
      return "at-script";
    case v1::JobSpec::ACTION_NOT_SET:
      break;
  }
  return "none";
}

std::string DescribeAction(const v1::JobSpec& spec, const ContentValidator& validator) {
  auto content_summary = [&](int type, const std::string& content, bool strict) {
    if (IsSecretCredentialType(type)) return absl::StrCat(" (", content.size(), " bytes)");
    auto v = validator.Validate(type, content, strict);
    if (!v.ok()) return absl::StrCat(" (", content.size(), " bytes)");
    std::string out =
        absl::StrCat(" (", v->normalized.size(), " bytes, sha256 ", pki::Sha256Hex(v->normalized));
    if (!v->repairs.empty()) absl::StrAppend(&out, ", ", v->repairs.size(), " repair(s)");
    return out + ")";
  };
  switch (spec.action_case()) {
    case v1::JobSpec::kWrite: {
      const auto& a = spec.write();
      return absl::StrCat("write ", CredentialTypeLabel(a.type()), " at sec_tag ", a.sec_tag(),
                          content_summary(a.type(), a.content(), a.options().strict()));
    }
    case v1::JobSpec::kDelete:
      return absl::StrCat("delete ", CredentialTypeLabel(spec.delete_().type()), " at sec_tag ",
                          spec.delete_().sec_tag());
    case v1::JobSpec::kRotate: {
      const auto& a = spec.rotate();
      return absl::StrCat("rotate ", CredentialTypeLabel(a.type()), " at sec_tag ", a.sec_tag(),
                          content_summary(a.type(), a.content(), a.options().strict()),
                          IsReadableCredentialType(a.type())
                              ? ", keeping the old entry for rollback"
                              : ", without rollback (type not readable)");
    }
    case v1::JobSpec::kKeygenAndSign: {
      const auto& a = spec.keygen_and_sign();
      return absl::StrCat("generate a key at sec_tag ", a.sec_tag(),
                          ", sign its CSR with the server CA and write the client certificate",
                          a.write_ca() ? " and the CA certificate" : "");
    }
    case v1::JobSpec::kAtScript:
      return absl::StrCat("run ", spec.at_script().commands_size(), " AT command(s) starting with ",
                          RedactCommand(spec.at_script().commands(0)));
    case v1::JobSpec::ACTION_NOT_SET:
      break;
  }
  return "do nothing";
}

void AddToCounts(v1::JobCounts* c, v1::ExecutionState state, int delta) {
  auto add = [delta](uint32_t v) { return static_cast<uint32_t>(static_cast<int>(v) + delta); };
  switch (state) {
    case v1::QUEUED:
      c->set_queued(add(c->queued()));
      break;
    case v1::IN_PROGRESS:
      c->set_in_progress(add(c->in_progress()));
      break;
    case v1::SUCCEEDED:
      c->set_succeeded(add(c->succeeded()));
      break;
    case v1::SKIPPED:
      c->set_skipped(add(c->skipped()));
      break;
    case v1::FAILED:
      c->set_failed(add(c->failed()));
      break;
    case v1::TIMED_OUT:
      c->set_timed_out(add(c->timed_out()));
      break;
    case v1::CANCELED:
      c->set_canceled(add(c->canceled()));
      break;
    case v1::ROLLED_BACK:
      c->set_rolled_back(add(c->rolled_back()));
      break;
    default:
      return;
  }
  c->set_total(add(c->total()));
}

v1::Job BuildJob(const store::JobRecord& record,
                 const std::vector<store::ExecutionRecord>& executions, bool include_executions) {
  v1::Job job;
  job.set_id(record.id);
  *job.mutable_spec() = RedactSpec(record.spec);
  job.set_state(record.state);
  job.set_created_by(record.creator.principal());
  *job.mutable_created_at() = ToProtoTime(record.created_at);
  *job.mutable_finished_at() = ToProtoTime(record.finished_at);
  job.set_reason(record.reason);
  for (const auto& e : executions) {
    AddToCounts(job.mutable_counts(), e.execution.state(), 1);
    if (include_executions) *job.add_executions() = e.execution;
  }
  return job;
}

std::string ExecutionStateName(v1::ExecutionState state) { return v1::ExecutionState_Name(state); }

std::string JobStateName(v1::JobState state) { return v1::JobState_Name(state); }

std::string StatusCodeName(int code) {
  if (code < 0 || code > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    return absl::StrCat("CODE_", code);
  }
  std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name;
}

}  // namespace atbridge::server::jobs
