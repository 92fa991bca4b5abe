// absl::Time / absl::Duration <-> google.protobuf.Timestamp / Duration.
// Pure functions; thread-safe. No gRPC (the server's job engine uses them).
#ifndef ATBRIDGE_COMMON_PROTO_TIME_H_
#define ATBRIDGE_COMMON_PROTO_TIME_H_

#include <google/protobuf/duration.pb.h>
#include <google/protobuf/timestamp.pb.h>

#include "absl/time/time.h"

namespace atbridge {

// absl::Time -> Timestamp. Infinite times give an unset (0, 0) timestamp.
google::protobuf::Timestamp ToProtoTime(absl::Time t);
// Timestamp -> absl::Time; an unset (0, 0) timestamp gives InfinitePast.
absl::Time FromProtoTime(const google::protobuf::Timestamp& ts);
// Whether a timestamp is set (not (0, 0)).
bool IsSet(const google::protobuf::Timestamp& ts);

// absl::Duration -> Duration; infinite durations give 0.
google::protobuf::Duration ToProtoDuration(absl::Duration d);
absl::Duration FromProtoDuration(const google::protobuf::Duration& d);

}  // namespace atbridge

#endif  // ATBRIDGE_COMMON_PROTO_TIME_H_
