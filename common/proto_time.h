// absl::Time / absl::Duration <-> google.protobuf.Timestamp / Duration.
#ifndef ATBRIDGE_COMMON_PROTO_TIME_H_
#define ATBRIDGE_COMMON_PROTO_TIME_H_

#include <google/protobuf/duration.pb.h>
#include <google/protobuf/timestamp.pb.h>

#include "absl/time/time.h"

namespace atbridge {

google::protobuf::Timestamp ToProtoTime(absl::Time t);
// An unset (0, 0) Timestamp maps to the Unix epoch.
absl::Time FromProtoTime(const google::protobuf::Timestamp& ts);

google::protobuf::Duration ToProtoDuration(absl::Duration d);
absl::Duration FromProtoDuration(const google::protobuf::Duration& d);

}  // namespace atbridge

#endif  // ATBRIDGE_COMMON_PROTO_TIME_H_
