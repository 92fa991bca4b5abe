#include "common/status_details.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace atbridge {

std::string StatusDetailTypeUrl(const google::protobuf::Message& message) {
  return absl::StrCat("type.googleapis.com/", message.GetDescriptor()->full_name());
}

void SetStatusDetail(absl::Status* status, const google::protobuf::Message& detail) {
  if (status->ok()) return;
  status->SetPayload(StatusDetailTypeUrl(detail), absl::Cord(detail.SerializeAsString()));
}

bool GetStatusDetail(const absl::Status& status, google::protobuf::Message* detail) {
  auto payload = status.GetPayload(StatusDetailTypeUrl(*detail));
  if (!payload.has_value()) return false;
  return detail->ParseFromString(std::string(*payload));
}

}  // namespace atbridge
