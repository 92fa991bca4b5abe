#include "client/core/output.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"

namespace atbridge::client {

void Table::AddRow(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

std::string Table::Render() const {
  std::vector<size_t> width(headers_.size(), 0);
  auto cell = [](const std::string& s) -> const std::string& {
    static const std::string dash = "-";
    return s.empty() ? dash : s;
  };
  for (size_t i = 0; i < headers_.size(); ++i) width[i] = headers_[i].size();
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], cell(row[i]).size());
  }
  std::string out;
  auto line = [&](const std::vector<std::string>& cells, bool header) {
    std::string l;
    for (size_t i = 0; i < cells.size(); ++i) {
      const std::string& c = header ? cells[i] : cell(cells[i]);
      l += c;
      if (i + 1 < cells.size()) l.append(width[i] - c.size() + 2, ' ');
    }
    absl::StripTrailingAsciiWhitespace(&l);
    out += l;
    out += '\n';
  };
  line(headers_, true);
  for (const auto& row : rows_) line(row, false);
  return out;
}

std::string CsvField(absl::string_view field) {
  if (field.find_first_of(",\"\r\n") == absl::string_view::npos) return std::string(field);
  return absl::StrCat("\"", absl::StrReplaceAll(field, {{"\"", "\"\""}}), "\"");
}

std::string Table::RenderCsv() const {
  std::string out;
  auto line = [&](const std::vector<std::string>& cells) {
    std::vector<std::string> fields;
    fields.reserve(cells.size());
    for (const auto& c : cells) fields.push_back(CsvField(c));
    absl::StrAppend(&out, absl::StrJoin(fields, ","), "\r\n");
  };
  line(headers_);
  for (const auto& row : rows_) line(row);
  return out;
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  std::string out;
  auto status = google::protobuf::util::MessageToJsonString(message, &out, options);
  if (!status.ok()) {
    // Only invalid UTF-8 in a string field can fail; say so in valid JSON.
    return absl::StrCat("{\"error\": \"cannot render ", message.GetTypeName(), " as JSON\"}\n");
  }
  if (out.empty() || out.back() != '\n') out.push_back('\n');
  return out;
}

std::string FormatTimestamp(const google::protobuf::Timestamp& ts) {
  if (ts.seconds() == 0 && ts.nanos() == 0) return "";
  absl::Time t = absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

std::string FormatProtoDuration(const google::protobuf::Duration& d) {
  absl::Duration x = absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
  if (x == absl::ZeroDuration()) return "";
  if (x >= absl::Seconds(1)) {
    x = absl::Trunc(x, absl::Milliseconds(10));
  } else if (x >= absl::Milliseconds(1)) {
    x = absl::Trunc(x, absl::Milliseconds(1));
  } else {
    x = absl::Trunc(x, absl::Microseconds(1));
  }
  return absl::FormatDuration(x);
}

std::string FormatLabels(const std::map<std::string, std::string>& labels) {
  return absl::StrJoin(labels, ",", absl::PairFormatter("="));
}

std::string FormatLabels(const google::protobuf::Map<std::string, std::string>& labels) {
  return FormatLabels(std::map<std::string, std::string>(labels.begin(), labels.end()));
}

namespace {

std::string Humanize(std::string name, absl::string_view prefix) {
  if (absl::StartsWith(name, prefix)) name = name.substr(prefix.size());
  absl::AsciiStrToLower(&name);
  absl::StrReplaceAll({{"_", "-"}}, &name);
  return name;
}

}  // namespace

std::string ExecutionStateName(v1::ExecutionState state) {
  return Humanize(v1::ExecutionState_Name(state), "");
}
std::string JobStateName(v1::JobState state) { return Humanize(v1::JobState_Name(state), "JOB_"); }
std::string PortStateName(v1::PortState state) {
  return Humanize(v1::PortState_Name(state), "PORT_STATE_");
}
std::string RoleName(v1::Role role) { return Humanize(v1::Role_Name(role), "ROLE_"); }

uint32_t DoneCount(const v1::JobCounts& c) {
  return c.succeeded() + c.skipped() + c.failed() + c.timed_out() + c.canceled() + c.rolled_back();
}

uint32_t FailedCount(const v1::JobCounts& c) {
  return c.failed() + c.timed_out() + c.rolled_back() + c.canceled();
}

std::string PortText(const std::string& agent, const std::string& port) {
  if (agent.empty()) return port;
  return absl::StrCat(agent, "/", port);
}

}  // namespace atbridge::client
