#include "server/jobs/report.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/jobs/job_spec.h"
#include "server/util/proto_time.h"

namespace atbridge::server::jobs {

namespace {

std::string Time(const google::protobuf::Timestamp& t) { return FormatRfc3339(FromProtoTime(t)); }

nlohmann::json CountsJson(const v1::JobCounts& c) {
  return {
      {"total", c.total()},         {"queued", c.queued()},     {"in_progress", c.in_progress()},
      {"succeeded", c.succeeded()}, {"skipped", c.skipped()},   {"failed", c.failed()},
      {"timed_out", c.timed_out()}, {"canceled", c.canceled()}, {"rolled_back", c.rolled_back()}};
}

// The last transition's reason says best why an execution is where it is.
std::string LastReason(const v1::Execution& e) {
  if (e.history().empty()) return e.last_status_message();
  return e.history(e.history_size() - 1).reason();
}

uint32_t Retries(const v1::Execution& e) { return e.attempts() > 0 ? e.attempts() - 1 : 0; }

}  // namespace

std::string RenderJobReportJson(const v1::Job& job) {
  nlohmann::json j;
  const v1::JobSpec& spec = job.spec();
  j["job"] = {
      {"id", job.id()},
      {"name", spec.name()},
      {"action", ActionName(spec)},
      {"state", JobStateName(job.state())},
      {"reason", job.reason()},
      {"created_by", job.created_by()},
      {"created_at", Time(job.created_at())},
      {"finished_at", Time(job.finished_at())},
      {"dry_run", spec.dry_run()},
      {"max_concurrency", spec.rollout().max_concurrency()},
      {"per_minute", spec.rollout().per_minute()},
      {"max_attempts", spec.retry().max_attempts()},
      {"counts", CountsJson(job.counts())},
  };
  nlohmann::json execs = nlohmann::json::array();
  for (const v1::Execution& e : job.executions()) {
    nlohmann::json steps = nlohmann::json::array();
    for (const v1::Step& s : e.steps()) {
      steps.push_back({{"name", s.name()},
                       {"status", v1::StepStatus_Name(s.status())},
                       {"detail", s.detail()}});
    }
    nlohmann::json history = nlohmann::json::array();
    for (const v1::ExecutionTransition& t : e.history()) {
      history.push_back({{"from", ExecutionStateName(t.from())},
                         {"to", ExecutionStateName(t.to())},
                         {"at", Time(t.at())},
                         {"attempt", t.attempt()},
                         {"reason", t.reason()}});
    }
    nlohmann::json repairs = nlohmann::json::array();
    for (const std::string& r : e.repairs()) repairs.push_back(r);
    execs.push_back({
        {"imei", e.imei()},
        {"agent", e.agent()},
        {"port", e.port()},
        {"state", ExecutionStateName(e.state())},
        {"attempts", e.attempts()},
        {"retries", Retries(e)},
        {"last_status", StatusCodeName(e.last_status_code())},
        {"last_status_message", e.last_status_message()},
        {"sha256", e.sha256()},
        {"repairs", repairs},
        {"queued_at", Time(e.queued_at())},
        {"started_at", Time(e.started_at())},
        {"finished_at", Time(e.finished_at())},
        {"reason", LastReason(e)},
        {"steps", steps},
        {"history", history},
    });
  }
  j["executions"] = std::move(execs);
  // Replace invalid UTF-8 (from a misbehaving agent) instead of throwing.
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

std::string CsvField(const std::string& value) {
  if (value.find_first_of(",\"\r\n") == std::string::npos) return value;
  std::string out = "\"";
  for (char c : value) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

std::string RenderJobReportCsv(const v1::Job& job) {
  std::string out =
      "job_id,imei,agent,port,state,attempts,retries,last_status,last_status_message,sha256,"
      "queued_at,started_at,finished_at,reason\r\n";
  for (const v1::Execution& e : job.executions()) {
    std::vector<std::string> row = {job.id(),
                                    e.imei(),
                                    e.agent(),
                                    e.port(),
                                    ExecutionStateName(e.state()),
                                    absl::StrCat(e.attempts()),
                                    absl::StrCat(Retries(e)),
                                    StatusCodeName(e.last_status_code()),
                                    e.last_status_message(),
                                    e.sha256(),
                                    Time(e.queued_at()),
                                    Time(e.started_at()),
                                    Time(e.finished_at()),
                                    LastReason(e)};
    for (auto& f : row) f = CsvField(f);
    absl::StrAppend(&out, absl::StrJoin(row, ","), "\r\n");
  }
  return out;
}

}  // namespace atbridge::server::jobs
