// Job reports: the job with every execution, its attempts, steps and
// transitions, rendered as JSON or CSV (one row per execution). Pure
// functions; no secret content ever reaches a report (the spec is redacted
// by BuildJob and executions carry none).
#ifndef ATBRIDGE_SERVER_JOBS_REPORT_H_
#define ATBRIDGE_SERVER_JOBS_REPORT_H_

#include <string>

#include "atbridge/v1/provisioning.pb.h"

namespace atbridge::server::jobs {

// A JSON document {"job": {...}, "executions": [...]} with snake_case keys,
// RFC 3339 times and state/status names as strings. `job` must include its
// executions (with history for the transition list).
std::string RenderJobReportJson(const v1::Job& job);

// RFC 4180 CSV with a header row: job_id, imei, agent, port, state, attempts,
// retries, last_status, last_status_message, sha256, queued_at, started_at,
// finished_at, reason.
std::string RenderJobReportCsv(const v1::Job& job);

// Quotes a CSV field when it holds a comma, quote, CR or LF.
std::string CsvField(const std::string& value);

}  // namespace atbridge::server::jobs

#endif  // ATBRIDGE_SERVER_JOBS_REPORT_H_
