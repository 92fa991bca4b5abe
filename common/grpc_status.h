// The one place where absl::Status and grpc::Status are converted. The codes
// have the same numeric values; messages pass through unchanged.
#ifndef ATBRIDGE_COMMON_GRPC_STATUS_H_
#define ATBRIDGE_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"
#include "atbridge/v1/common.pb.h"

namespace atbridge {

// absl -> grpc.
grpc::Status ToGrpcStatus(const absl::Status& status);

// grpc -> absl.
absl::Status FromGrpcStatus(const grpc::Status& status);

// absl -> the RpcStatus message carried inside uplink streams, and back.
v1::RpcStatus ToRpcStatus(const absl::Status& status);
absl::Status FromRpcStatus(const v1::RpcStatus& status);

}  // namespace atbridge

#endif  // ATBRIDGE_COMMON_GRPC_STATUS_H_
