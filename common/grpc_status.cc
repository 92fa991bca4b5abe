#include "common/grpc_status.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace atbridge {

namespace {

absl::StatusCode ClampCode(int code) {
  if (code < 0 || code > static_cast<int>(absl::StatusCode::kUnauthenticated)) {
    return absl::StatusCode::kUnknown;
  }
  return static_cast<absl::StatusCode>(code);
}

void AddPayloads(const v1::RpcStatus& from, absl::Status* to) {
  for (const auto& any : from.details()) {
    if (!any.type_url().empty()) to->SetPayload(any.type_url(), absl::Cord(any.value()));
  }
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  const auto code = static_cast<grpc::StatusCode>(status.code());
  v1::RpcStatus rpc = ToRpcStatus(status);
  if (rpc.details_size() > 0) {
    std::string details = rpc.SerializeAsString();
    if (details.size() <= kMaxGrpcStatusDetailsBytes) {
      return grpc::Status(code, rpc.message(), std::move(details));
    }
  }
  return grpc::Status(code, std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status out(ClampCode(status.error_code()), status.error_message());
  if (!status.error_details().empty()) {
    v1::RpcStatus rpc;
    if (rpc.ParseFromString(status.error_details())) AddPayloads(rpc, &out);
  }
  return out;
}

v1::RpcStatus ToRpcStatus(const absl::Status& status) {
  v1::RpcStatus out;
  out.set_code(static_cast<int>(status.code()));
  out.set_message(std::string(status.message()));
  status.ForEachPayload([&out](absl::string_view type_url, const absl::Cord& payload) {
    google::protobuf::Any* any = out.add_details();
    any->set_type_url(std::string(type_url));
    any->set_value(std::string(payload));
  });
  return out;
}

absl::Status FromRpcStatus(const v1::RpcStatus& status) {
  if (status.code() == 0) return absl::OkStatus();
  absl::Status out(ClampCode(status.code()), status.message());
  AddPayloads(status, &out);
  return out;
}

}  // namespace atbridge
