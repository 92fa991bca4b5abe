// Typed details on an absl::Status, without gRPC: a payload keyed by
// "type.googleapis.com/<full message name>" holding the serialized message
// (e.g. the WriteReport of a failed credential write). common/grpc_status.h
// carries them across gRPC as google.rpc.Status details; code that links no
// gRPC (the server's job engine) reads them with this header alone.
#ifndef ATBRIDGE_COMMON_STATUS_DETAILS_H_
#define ATBRIDGE_COMMON_STATUS_DETAILS_H_

#include <google/protobuf/message.h>

#include <string>

#include "absl/status/status.h"

namespace atbridge {

// "type.googleapis.com/atbridge.v1.WriteReport" for a WriteReport.
std::string StatusDetailTypeUrl(const google::protobuf::Message& message);

// Attaches `detail` to a non-OK status (replacing one of the same type); a
// no-op on OK.
void SetStatusDetail(absl::Status* status, const google::protobuf::Message& detail);

// Fills `detail` from the payload of its type; false if there is none or it
// does not parse.
bool GetStatusDetail(const absl::Status& status, google::protobuf::Message* detail);

}  // namespace atbridge

#endif  // ATBRIDGE_COMMON_STATUS_DETAILS_H_
