#include "common/grpc_status.h"

#include <string>

namespace atbridge {

namespace {

absl::StatusCode ClampCode(int code) {
  if (code < 0 || code > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    return absl::StatusCode::kUnknown;
  }
  return static_cast<absl::StatusCode>(code);
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(ClampCode(status.error_code()), status.error_message());
}

v1::RpcStatus ToRpcStatus(const absl::Status& status) {
  v1::RpcStatus out;
  out.set_code(static_cast<int>(status.code()));
  out.set_message(std::string(status.message()));
  return out;
}

absl::Status FromRpcStatus(const v1::RpcStatus& status) {
  if (status.code() == 0) return absl::OkStatus();
  return absl::Status(ClampCode(status.code()), status.message());
}

}  // namespace atbridge
