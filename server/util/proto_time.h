// The integer microseconds the store keeps, RFC 3339 formatting, and the
// protobuf time conversions from common/proto_time.h. Pure; thread-safe.
#ifndef ATBRIDGE_SERVER_UTIL_PROTO_TIME_H_
#define ATBRIDGE_SERVER_UTIL_PROTO_TIME_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "common/proto_time.h"

namespace atbridge::server {

// The conversions live in common/proto_time.h (same semantics: unset <->
// InfinitePast); the store's representation is below.
using ::atbridge::FromProtoDuration;
using ::atbridge::FromProtoTime;
using ::atbridge::IsSet;
using ::atbridge::ToProtoDuration;
using ::atbridge::ToProtoTime;

// Store representation: Unix microseconds; InfinitePast maps to 0 ("unset").
inline int64_t ToUnixMicrosOrZero(absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return 0;
  return absl::ToUnixMicros(t);
}
inline absl::Time FromUnixMicrosOrPast(int64_t us) {
  return us == 0 ? absl::InfinitePast() : absl::FromUnixMicros(us);
}

// RFC 3339 UTC with milliseconds, or "" when unset.
inline std::string FormatRfc3339(absl::Time t) {
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return "";
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

}  // namespace atbridge::server

#endif  // ATBRIDGE_SERVER_UTIL_PROTO_TIME_H_
