#include "agent/modem/modem_ops.h"

#include <boost/asio/use_awaitable.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/at/cme.h"
#include "common/at/command_builder.h"
#include "common/at/credential_types.h"
#include "common/at/modem_responses.h"
#include "common/at/pem.h"
#include "common/grpc_status.h"
#include "common/pki/pki.h"
#include "common/proto_time.h"
#include "common/status/errors.h"

namespace atbridge::agent {

namespace asio = boost::asio;

namespace {

// Records steps with their timing into a report.
class Steps {
 public:
  Steps(Clock& clock, google::protobuf::RepeatedPtrField<v1::Step>* out)
      : clock_(clock), out_(out) {}

  void Start(std::string name) {
    name_ = std::move(name);
    started_ = clock_.Now();
  }
  void Ok(std::string detail = "") { Add(v1::STEP_OK, std::move(detail)); }
  void Skipped(std::string detail) { Add(v1::STEP_SKIPPED, std::move(detail)); }
  void Failed(const absl::Status& status) {
    Add(v1::STEP_FAILED,
        absl::StrCat(absl::StatusCodeToString(status.code()), ": ", status.message()));
  }

 private:
  void Add(v1::StepStatus status, std::string detail) {
    v1::Step* s = out_->Add();
    s->set_name(name_);
    s->set_status(status);
    s->set_detail(std::move(detail));
    *s->mutable_elapsed() = ToProtoDuration(clock_.Now() - started_);
  }

  Clock& clock_;
  google::protobuf::RepeatedPtrField<v1::Step>* out_;
  std::string name_;
  absl::Time started_;
};

Awaitable<absl::StatusOr<AtReply>> Cmd(const OpContext& ctx, std::string text,
                                       absl::Duration timeout = absl::ZeroDuration()) {
  AtCommand c{.text = std::move(text), .expect = {}, .timeout = timeout};
  co_return co_await ctx.channel->AsyncCommand(std::move(c), asio::use_awaitable);
}

// The status of a completed command: OK, or the typed error of its final.
absl::Status FinalStatus(const AtReply& reply, absl::string_view context) {
  return at::StatusFromFinal(reply.response.final, context);
}

std::string PortContext(const OpContext& ctx) { return ctx.channel->name(); }

std::string TagType(uint32_t tag, int type) {
  return absl::StrCat("sec_tag ", tag, " type ", type, " (", at::CredentialTypeName(type), ")");
}

struct CfunState {
  int before = -1;
  bool changed = false;
};

// AT+CFUN?, and AT+CFUN=4 when the modem is active (credentials can only be
// written or deleted offline).
Awaitable<absl::Status> EnsureOffline(const OpContext& ctx, Steps& steps, CfunState* st) {
  steps.Start("cfun_read");
  auto r = co_await Cmd(ctx, "AT+CFUN?");
  absl::Status s =
      r.ok() ? FinalStatus(*r, absl::StrCat("AT+CFUN? on ", PortContext(ctx))) : r.status();
  absl::StatusOr<int> mode = s.ok() ? at::ParseCfun(r->response.lines) : absl::StatusOr<int>(s);
  if (!mode.ok()) {
    steps.Failed(mode.status());
    co_return mode.status();
  }
  st->before = *mode;
  ctx.channel->set_cfun(*mode);
  steps.Ok(absl::StrCat("CFUN=", *mode));
  steps.Start("cfun_offline");
  if (!at::IsActiveCfun(*mode)) {
    steps.Skipped(absl::StrCat("modem already offline (CFUN=", *mode, ")"));
    co_return absl::OkStatus();
  }
  r = co_await Cmd(ctx, at::CfunSet(4));
  s = r.ok() ? FinalStatus(*r, absl::StrCat("AT+CFUN=4 on ", PortContext(ctx))) : r.status();
  if (!s.ok()) {
    steps.Failed(s);
    co_return s;
  }
  st->changed = true;
  ctx.channel->set_cfun(4);
  steps.Ok(absl::StrCat("CFUN=", *mode, " -> 4"));
  co_return absl::OkStatus();
}

// Puts back the functional mode found by EnsureOffline, whatever happened.
Awaitable<absl::Status> RestoreCfun(const OpContext& ctx, Steps& steps, const CfunState& st,
                                    bool leave_offline) {
  if (st.before < 0) co_return absl::OkStatus();  // Never read: nothing to restore.
  steps.Start("restore_cfun");
  if (!st.changed) {
    steps.Skipped("mode was not changed");
    co_return absl::OkStatus();
  }
  if (leave_offline) {
    steps.Skipped(absl::StrCat("left in CFUN=4 as asked (was ", st.before, ")"));
    co_return absl::OkStatus();
  }
  auto r = co_await Cmd(ctx, at::CfunSet(st.before));
  absl::Status s =
      r.ok() ? FinalStatus(*r, absl::StrCat("AT+CFUN=", st.before, " on ", PortContext(ctx)))
             : r.status();
  if (!s.ok()) {
    steps.Failed(s);
    co_return s;
  }
  ctx.channel->set_cfun(st.before);
  steps.Ok(absl::StrCat("CFUN=4 -> ", st.before));
  co_return absl::OkStatus();
}

// The status of an operation after its CFUN restore: the operation's own
// status (its code is the retry contract) with a failed restore added to the
// message, or the restore's failure when the operation itself succeeded.
absl::Status WithRestore(absl::Status status, const absl::Status& restored,
                         absl::string_view done_what) {
  if (restored.ok()) return status;
  if (status.ok()) {
    // Retrying is safe: a write is then skipped and the restore retried.
    return Annotate(restored,
                    absl::StrCat(done_what, ", but restoring the functional mode failed"));
  }
  return absl::Status(
      status.code(), absl::StrCat(status.message(), "; restoring the functional mode also failed: ",
                                  restored.message()));
}

// The modem's entry for (tag, type), or nullopt.
Awaitable<absl::StatusOr<std::optional<at::CmngEntry>>> FindEntry(const OpContext& ctx,
                                                                  uint32_t tag, int type) {
  auto r = co_await Cmd(ctx, at::CmngList(tag, type));
  if (!r.ok()) co_return r.status();
  absl::Status s =
      FinalStatus(*r, absl::StrCat("list ", TagType(tag, type), " on ", PortContext(ctx)));
  if (!s.ok()) co_return s;
  auto entries = at::ParseCmngList(r->response.lines);
  if (!entries.ok()) co_return entries.status();
  for (const auto& e : *entries) {
    if (e.sec_tag == tag && e.type == type) co_return std::optional<at::CmngEntry>(e);
  }
  co_return std::optional<at::CmngEntry>();
}

void FillEntry(uint32_t tag, int type, const std::string& sha, absl::string_view content,
               v1::CredentialEntry* entry) {
  entry->set_sec_tag(tag);
  entry->set_type(static_cast<v1::CredentialType>(type));
  entry->set_sha256(sha);
  if (at::IsCertificateType(type) && !content.empty()) {
    at::PemCertSummary summary;
    if (at::SummarizeCertificatePem(content, &summary)) {
      entry->set_subject(summary.subject);
      entry->set_issuer(summary.issuer);
      *entry->mutable_not_after() = ToProtoTime(absl::FromUnixSeconds(summary.not_after_unix));
    }
  }
}

absl::Status ValidateTag(uint32_t tag) {
  if (tag > at::kMaxUserSecTag) {
    return absl::InvalidArgumentError(absl::StrCat(
        "sec_tag ", tag, " is reserved for the modem (user tags are 0..", at::kMaxUserSecTag, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PreparedWrite> PrepareWrite(const v1::WriteCredentialRequest& request,
                                           const PortOptions& port) {
  const uint32_t tag = request.sec_tag();
  const int type = static_cast<int>(request.type());
  if (absl::Status s = ValidateTag(tag); !s.ok()) return s;
  if (type < 0 || type > at::kTypePskIdentity) {
    return absl::InvalidArgumentError(absl::StrCat(
        "type ", type, " (", at::CredentialTypeName(type),
        ") cannot be written: writable types are 0 root CA, 1 client certificate, 2 client "
        "private key, 3 PSK, 4 PSK identity"));
  }
  if (request.content().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("empty content for ", TagType(tag, type)));
  }
  PreparedWrite out;
  if (at::IsCertificateType(type) || type == at::kTypeClientPrivateKey) {
    auto normalized = at::NormalizePem(request.content(), type == at::kTypeClientPrivateKey
                                                              ? at::PemKind::kPrivateKey
                                                              : at::PemKind::kCertificates);
    if (!normalized.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(TagType(tag, type), ": ", normalized.status().message()));
    }
    if (request.options().strict() && !normalized->repairs.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(TagType(tag, type), ": content needs repairs and strict mode is on: ",
                       absl::StrJoin(normalized->repairs, "; ")));
    }
    out.content = std::move(normalized->content);
    out.repairs = std::move(normalized->repairs);
  } else {
    if (absl::Status s = at::ValidateContentShape(type, request.content()); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(TagType(tag, type), ": ", s.message()));
    }
    out.content = request.content();
  }
  auto command = at::CmngWrite(tag, type, out.content);
  if (!command.ok()) return command.status();
  out.command = *std::move(command);
  const size_t total = out.command.size() + port.terminator.size();
  if (total > port.max_command_bytes) {
    const size_t overhead = total - out.content.size();
    return absl::InvalidArgumentError(absl::StrCat(
        "the write command for ", TagType(tag, type), " is ", total, " bytes (", out.content.size(),
        " bytes of content + ", overhead, " of command), but the modem's AT command buffer on ",
        port.name, " holds ", port.max_command_bytes, " bytes: content must be at most ",
        port.max_command_bytes > overhead ? port.max_command_bytes - overhead : 0,
        " bytes (split a CA chain across tags, or raise max_command_bytes if the modem "
        "firmware has a larger buffer)"));
  }
  out.sha256 = pki::Sha256Hex(out.content);
  return out;
}

v1::AtResult ToAtResult(const AtReply& reply) {
  v1::AtResult out;
  for (const auto& l : reply.response.lines) out.add_lines(l);
  const at::FinalResult& f = reply.response.final;
  switch (f.kind) {
    case at::FinalKind::kOk:
      out.set_final(v1::FINAL_RESULT_OK);
      break;
    case at::FinalKind::kError:
      out.set_final(v1::FINAL_RESULT_ERROR);
      break;
    case at::FinalKind::kCmeError:
    case at::FinalKind::kCmeText:
      out.set_final(v1::FINAL_RESULT_CME_ERROR);
      break;
    case at::FinalKind::kCmsError:
      out.set_final(v1::FINAL_RESULT_CMS_ERROR);
      break;
    case at::FinalKind::kNone:
      break;
  }
  out.set_code(f.code);
  out.set_final_line(f.line);
  if (f.kind == at::FinalKind::kCmeError) {
    if (const at::CmeInfo* info = at::LookupCme(f.code)) {
      out.set_explanation(absl::StrCat(info->name, ": ", info->explanation));
    }
  } else if (f.kind == at::FinalKind::kError) {
    out.set_explanation(
        "the modem gives no reason with plain ERROR; AT+CMEE=1 enables error codes");
  }
  *out.mutable_elapsed() = ToProtoDuration(reply.elapsed);
  return out;
}

Awaitable<absl::StatusOr<v1::AtResult>> RunExecute(OpContext ctx, v1::ExecuteRequest request) {
  const PortOptions& port = ctx.channel->port();
  if (absl::Status s = at::ValidateRawCommand(request.command(),
                                              port.max_command_bytes - port.terminator.size());
      !s.ok()) {
    co_return s;
  }
  const absl::Duration timeout = FromProtoDuration(request.timeout());
  if (timeout < absl::ZeroDuration() || timeout > kMaxExecuteTimeout) {
    co_return absl::InvalidArgumentError(absl::StrCat(
        "timeout ", absl::FormatDuration(timeout), " is out of range (0 for the port's ",
        absl::FormatDuration(port.command_timeout), ", at most ",
        absl::FormatDuration(kMaxExecuteTimeout), ")"));
  }
  auto r = co_await Cmd(ctx, request.command(), timeout);
  if (!r.ok()) co_return r.status();
  // Keep the known functional mode current when someone switches it by hand.
  std::string upper = absl::AsciiStrToUpper(request.command());
  int mode;
  if (r->response.final.ok() && absl::StartsWith(upper, "AT+CFUN=") &&
      absl::SimpleAtoi(absl::string_view(upper).substr(8), &mode)) {
    ctx.channel->set_cfun(mode);
  }
  co_return ToAtResult(*r);
}

Awaitable<absl::StatusOr<v1::ListCredentialsResponse>> RunListCredentials(
    OpContext ctx, v1::ListCredentialsRequest request) {
  std::optional<uint32_t> tag;
  if (request.has_sec_tag()) tag = request.sec_tag();
  auto r = co_await Cmd(ctx, at::CmngList(tag));
  if (!r.ok()) co_return r.status();
  if (absl::Status s = FinalStatus(*r, absl::StrCat("list credentials on ", PortContext(ctx)));
      !s.ok()) {
    co_return s;
  }
  auto entries = at::ParseCmngList(r->response.lines);
  if (!entries.ok()) co_return entries.status();
  v1::ListCredentialsResponse out;
  for (const auto& e : *entries) FillEntry(e.sec_tag, e.type, e.sha256, "", out.add_entries());
  co_return out;
}

Awaitable<absl::StatusOr<v1::ReadCredentialResponse>> RunReadCredential(
    OpContext ctx, v1::ReadCredentialRequest request) {
  const uint32_t tag = request.sec_tag();
  const int type = static_cast<int>(request.type());
  if (!at::IsReadableType(type)) {
    co_return absl::PermissionDeniedError(
        absl::StrCat(TagType(tag, type), " is never readable: secrets stay in the modem"));
  }
  auto r = co_await Cmd(ctx, at::CmngRead(tag, type));
  if (!r.ok()) co_return r.status();
  if (absl::Status s =
          FinalStatus(*r, absl::StrCat("read ", TagType(tag, type), " on ", PortContext(ctx)));
      !s.ok()) {
    co_return s;
  }
  if (r->response.lines.empty()) {
    co_return absl::NotFoundError(
        absl::StrCat(TagType(tag, type), " is empty on ", PortContext(ctx)));
  }
  auto entry = at::ParseCmngLine(r->response.lines.front());
  if (!entry.ok()) co_return entry.status();
  v1::ReadCredentialResponse out;
  const std::string content = entry->content.value_or("");
  FillEntry(tag, type, entry->sha256, content, out.mutable_entry());
  out.set_content(content);
  co_return out;
}

namespace {

// Compare, write, verify (steps 3-5 of the transaction), with the modem
// already offline.
Awaitable<absl::Status> WriteBody(const OpContext& ctx, const v1::WriteCredentialRequest& request,
                                  const PreparedWrite& prepared, Steps& steps,
                                  v1::WriteReport* report) {
  const uint32_t tag = request.sec_tag();
  const int type = static_cast<int>(request.type());
  const std::string what = absl::StrCat(TagType(tag, type), " on ", PortContext(ctx));
  steps.Start("compare");
  auto existing = co_await FindEntry(ctx, tag, type);
  if (!existing.ok()) {
    steps.Failed(existing.status());
    co_return existing.status();
  }
  if (existing->has_value() && (*existing)->sha256 == prepared.sha256 &&
      !request.options().force()) {
    steps.Skipped("already present with the same SHA-256");
    report->set_skipped(true);
    FillEntry(tag, type, prepared.sha256, prepared.content, report->mutable_entry());
    co_return absl::OkStatus();
  }
  steps.Ok(existing->has_value()
               ? absl::StrCat("replacing ", (*existing)->sha256.substr(0, 16), "...")
               : "slot is empty");
  steps.Start("write");
  const bool rtscts = ctx.channel->port().serial.rtscts;
  auto w = co_await Cmd(ctx, prepared.command);
  bool unanswered = false;
  if (!w.ok()) {
    if (w.status().code() != absl::StatusCode::kDeadlineExceeded) {
      steps.Failed(w.status());
      co_return w.status();
    }
    // The answer never came; the verify step decides what happened.
    unanswered = true;
    steps.Failed(w.status());
  } else if (absl::Status s = FinalStatus(*w, absl::StrCat("write ", what)); !s.ok()) {
    if (w->response.final.kind == at::FinalKind::kCmeError && w->response.final.code == 527 &&
        !rtscts) {
      // The content passed OpenSSL here; on a line without flow control the
      // likeliest cause is bytes dropped on the way.
      absl::Status loss = absl::DataLossError(absl::StrCat(
          "write ", what,
          ": the modem rejected content that validated locally (+CME ERROR: 527) "
          "on a port without flow control: bytes were probably dropped on the UART; check the "
          "port's pacing"));
      steps.Failed(loss);
      co_return loss;
    }
    steps.Failed(s);
    co_return s;
  } else {
    steps.Ok(absl::StrCat(prepared.content.size(), " bytes in ",
                          absl::FormatDuration(absl::Trunc(w->elapsed, absl::Milliseconds(1)))));
  }
  steps.Start("verify");
  auto after = co_await FindEntry(ctx, tag, type);
  if (!after.ok()) {
    steps.Failed(after.status());
    co_return after.status();
  }
  if (!after->has_value() || (*after)->sha256 != prepared.sha256) {
    absl::Status loss = absl::DataLossError(absl::StrCat(
        "verify ", what, ": the modem reports ",
        after->has_value() ? absl::StrCat("SHA-256 ", (*after)->sha256) : std::string("no entry"),
        " but ", prepared.sha256, " was written",
        unanswered ? " (and the write was never answered)" : "",
        rtscts ? ""
               : "; bytes were probably dropped on a UART without flow control (check pacing)"));
    steps.Failed(loss);
    co_return loss;
  }
  steps.Ok(unanswered ? "write answer was lost, but the stored SHA-256 matches"
                      : "stored SHA-256 matches");
  FillEntry(tag, type, prepared.sha256, prepared.content, report->mutable_entry());
  co_return absl::OkStatus();
}

}  // namespace

Awaitable<absl::StatusOr<v1::WriteReport>> RunWriteCredential(OpContext ctx,
                                                              v1::WriteCredentialRequest request) {
  v1::WriteReport report;
  Steps steps(ctx.clock, report.mutable_steps());
  const absl::Time t0 = ctx.clock.Now();
  report.set_cfun_before(-1);
  // Whatever happened, the caller gets the report: on failure it rides on
  // the status (common/grpc_status.h) and reaches the client as the call's
  // error details.
  auto failed = [&](absl::Status status) {
    *report.mutable_elapsed() = ToProtoDuration(ctx.clock.Now() - t0);
    SetStatusDetail(&status, report);
    return status;
  };
  steps.Start("validate");
  auto prepared = PrepareWrite(request, ctx.channel->port());
  if (!prepared.ok()) {
    steps.Failed(prepared.status());
    co_return failed(prepared.status());
  }
  report.set_sha256(prepared->sha256);
  report.set_content_bytes(static_cast<uint32_t>(prepared->content.size()));
  for (const auto& r : prepared->repairs) report.add_repairs(r);
  steps.Ok(
      absl::StrCat(prepared->content.size(), " bytes, SHA-256 ", prepared->sha256,
                   prepared->repairs.empty()
                       ? ""
                       : absl::StrCat("; repaired: ", absl::StrJoin(prepared->repairs, "; "))));
  if (request.options().dry_run()) {
    steps.Start("compare");
    auto existing = co_await FindEntry(ctx, request.sec_tag(), static_cast<int>(request.type()));
    if (!existing.ok()) {
      steps.Failed(existing.status());
      co_return failed(existing.status());
    }
    bool same = existing->has_value() && (*existing)->sha256 == prepared->sha256;
    report.set_skipped(same);
    steps.Skipped(same ? "dry run: already present" : "dry run: would write");
    *report.mutable_elapsed() = ToProtoDuration(ctx.clock.Now() - t0);
    co_return report;
  }
  CfunState cfun;
  absl::Status status = co_await EnsureOffline(ctx, steps, &cfun);
  report.set_cfun_before(cfun.before);
  if (status.ok()) {
    status = co_await WriteBody(ctx, request, *prepared, steps, &report);
  }
  absl::Status restored = co_await RestoreCfun(ctx, steps, cfun, request.options().leave_offline());
  status = WithRestore(std::move(status), restored, "credential written and verified");
  if (!status.ok()) co_return failed(std::move(status));
  *report.mutable_elapsed() = ToProtoDuration(ctx.clock.Now() - t0);
  co_return report;
}

Awaitable<absl::StatusOr<v1::DeleteCredentialResponse>> RunDeleteCredential(
    OpContext ctx, v1::DeleteCredentialRequest request) {
  v1::DeleteCredentialResponse out;
  Steps steps(ctx.clock, out.mutable_steps());
  const uint32_t tag = request.sec_tag();
  const int type = static_cast<int>(request.type());
  if (absl::Status s = ValidateTag(tag); !s.ok()) co_return s;
  if (type < 0 || type > at::kMaxCredentialType) {
    co_return absl::InvalidArgumentError(
        absl::StrCat("credential type ", type, " does not exist (0..11)"));
  }
  CfunState cfun;
  absl::Status status = co_await EnsureOffline(ctx, steps, &cfun);
  if (status.ok()) {
    steps.Start("delete");
    auto r = co_await Cmd(ctx, at::CmngDelete(tag, type));
    status = r.ok() ? FinalStatus(
                          *r, absl::StrCat("delete ", TagType(tag, type), " on ", PortContext(ctx)))
                    : r.status();
    if (status.code() == absl::StatusCode::kNotFound && request.ignore_missing()) {
      steps.Skipped("nothing stored there");
      out.set_skipped(true);
      status = absl::OkStatus();
    } else if (status.ok()) {
      steps.Ok();
    } else {
      steps.Failed(status);
    }
  }
  absl::Status restored = co_await RestoreCfun(ctx, steps, cfun, false);
  status = WithRestore(std::move(status), restored, "credential deleted");
  if (!status.ok()) co_return status;
  co_return out;
}

Awaitable<absl::StatusOr<v1::GenerateKeyResponse>> RunGenerateKey(OpContext ctx,
                                                                  v1::GenerateKeyRequest request) {
  v1::GenerateKeyResponse out;
  Steps steps(ctx.clock, out.mutable_steps());
  if (absl::Status s = ValidateTag(request.sec_tag()); !s.ok()) co_return s;
  if (!request.key_usage().empty() &&
      (request.key_usage().size() != 9 ||
       request.key_usage().find_first_not_of("01") != std::string::npos)) {
    co_return absl::InvalidArgumentError(absl::StrCat(
        "key_usage must be 9 characters of 0/1 (e.g. 101010000), got '", request.key_usage(), "'"));
  }
  auto command = at::Keygen(request.sec_tag(), 2, 0, request.attributes(), request.key_usage());
  if (!command.ok()) co_return command.status();
  CfunState cfun;
  absl::Status status = co_await EnsureOffline(ctx, steps, &cfun);
  if (status.ok()) {
    steps.Start("keygen");
    // Key generation takes seconds on a real modem.
    auto r = co_await Cmd(ctx, *command, absl::Seconds(60));
    status = r.ok() ? FinalStatus(*r, absl::StrCat("key generation at sec_tag ", request.sec_tag(),
                                                   " on ", PortContext(ctx)))
                    : r.status();
    if (status.ok()) {
      absl::StatusOr<at::SignedBlob> blob = at::ParseKeygen(r->response.lines);
      if (!blob.ok()) {
        status = blob.status();
      } else if (std::string pem = pki::CsrDerToPem(blob->body); pem.empty()) {
        status = absl::DataLossError("the modem's %KEYGEN answer is not a PKCS#10 CSR");
      } else {
        out.set_csr_der(blob->body);
        out.set_csr_pem(pem);
        out.set_cose(blob->cose);
        steps.Ok(absl::StrCat("CSR of ", blob->body.size(), " bytes"));
      }
    }
    if (!status.ok()) steps.Failed(status);
  }
  absl::Status restored = co_await RestoreCfun(ctx, steps, cfun, false);
  status = WithRestore(std::move(status), restored, "key generated");
  if (!status.ok()) co_return status;
  co_return out;
}

}  // namespace atbridge::agent
