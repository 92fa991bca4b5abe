// The one place where absl::Status and grpc::Status are converted. The codes
// have the same numeric values; messages pass through unchanged.
//
// Typed details travel with a status as absl::Status payloads keyed by
// "type.googleapis.com/<full message name>" and holding the serialized
// message (common/status_details.h). They are carried as
// google.rpc.Status details: in grpc::Status::error_details() (the
// `grpc-status-details-bin` trailer) and in RpcStatus.details (streams).
#ifndef ATBRIDGE_COMMON_GRPC_STATUS_H_
#define ATBRIDGE_COMMON_GRPC_STATUS_H_

#include <google/protobuf/message.h>
#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"
#include "atbridge/v1/common.pb.h"
#include "common/status_details.h"

namespace atbridge {

// Serialized details larger than this are dropped from grpc::Status (they
// travel in a trailer, and peers refuse trailers over 8 KiB); the code and
// message still go through.
inline constexpr size_t kMaxGrpcStatusDetailsBytes = 4096;

// absl -> grpc, with the payloads as error_details.
grpc::Status ToGrpcStatus(const absl::Status& status);

// grpc -> absl, with error_details (if they parse) as payloads.
absl::Status FromGrpcStatus(const grpc::Status& status);

// absl -> the RpcStatus message carried inside uplink streams, and back,
// payloads included.
v1::RpcStatus ToRpcStatus(const absl::Status& status);
absl::Status FromRpcStatus(const v1::RpcStatus& status);

}  // namespace atbridge

#endif  // ATBRIDGE_COMMON_GRPC_STATUS_H_
