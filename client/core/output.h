// Output formatting: aligned tables for people, CSV, and JSON for machines.
//
// JSON is always protobuf's JSON mapping with the proto field names
// (snake_case), every field present (defaults included) and enums by name,
// so field names are stable and match proto/atbridge/v1. Pure functions.
#ifndef ATBRIDGE_CLIENT_CORE_OUTPUT_H_
#define ATBRIDGE_CLIENT_CORE_OUTPUT_H_

#include <google/protobuf/duration.pb.h>
#include <google/protobuf/message.h>
#include <google/protobuf/timestamp.pb.h>

#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "atbridge/v1/provisioning.pb.h"

namespace atbridge::client {

// A table with a header row; columns are padded to the widest cell and
// separated by two spaces (kubectl style). Empty cells print as "-".
class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void AddRow(std::vector<std::string> cells);
  size_t rows() const { return rows_.size(); }
  // The table, each line ending in '\n'; no trailing spaces.
  std::string Render() const;
  // The same data as CSV (RFC 4180), header first.
  std::string RenderCsv() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

// One CSV field, quoted when it holds a comma, quote, CR or LF.
std::string CsvField(absl::string_view field);

// The message as pretty JSON (see header comment), ending in '\n'.
std::string ToJson(const google::protobuf::Message& message);

// "2026-11-26T12:00:00Z"; "" for an unset timestamp.
std::string FormatTimestamp(const google::protobuf::Timestamp& ts);
// "1.25s", "40ms"; "" for zero.
std::string FormatProtoDuration(const google::protobuf::Duration& d);
// "k=v,k2=v2" sorted by key.
std::string FormatLabels(const google::protobuf::Map<std::string, std::string>& labels);
std::string FormatLabels(const std::map<std::string, std::string>& labels);

// Enum names for people: "SUCCEEDED" -> "succeeded", "JOB_IN_PROGRESS" ->
// "in-progress", "ROOT_CA_CERT" stays the proto name.
std::string ExecutionStateName(v1::ExecutionState state);
std::string JobStateName(v1::JobState state);
std::string PortStateName(v1::PortState state);
std::string RoleName(v1::Role role);

// Executions finished (any terminal state) and those that failed (FAILED,
// TIMED_OUT, ROLLED_BACK, CANCELED).
uint32_t DoneCount(const v1::JobCounts& c);
uint32_t FailedCount(const v1::JobCounts& c);

// "agent/port" of a lease or device.
std::string PortText(const std::string& agent, const std::string& port);

}  // namespace atbridge::client

#endif  // ATBRIDGE_CLIENT_CORE_OUTPUT_H_
