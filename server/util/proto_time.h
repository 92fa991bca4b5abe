// Conversions between absl time types and google.protobuf Timestamp/Duration,
// and the integer microseconds the store keeps. Pure functions; thread-safe.
#ifndef ATBRIDGE_SERVER_UTIL_PROTO_TIME_H_
#define ATBRIDGE_SERVER_UTIL_PROTO_TIME_H_

#include <google/protobuf/duration.pb.h>
#include <google/protobuf/timestamp.pb.h>

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace atbridge::server {

// absl::Time -> Timestamp. Infinite or pre-epoch-unset times give an empty
// (0) timestamp.
inline google::protobuf::Timestamp ToProtoTime(absl::Time t) {
  google::protobuf::Timestamp out;
  if (t == absl::InfinitePast() || t == absl::InfiniteFuture()) return out;
  const int64_t nanos = absl::ToUnixNanos(t);
  int64_t secs = nanos / 1'000'000'000;
  int64_t rem = nanos % 1'000'000'000;
  if (rem < 0) {
    rem += 1'000'000'000;
    --secs;
  }
  out.set_seconds(secs);
  out.set_nanos(static_cast<int32_t>(rem));
  return out;
}

// Timestamp -> absl::Time; an unset (all zero) timestamp gives InfinitePast.
inline absl::Time FromProtoTime(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return absl::InfinitePast();
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

inline bool IsSet(const google::protobuf::Timestamp& t) {
  return t.seconds() != 0 || t.nanos() != 0;
}

inline google::protobuf::Duration ToProtoDuration(absl::Duration d) {
  google::protobuf::Duration out;
  if (d == absl::InfiniteDuration() || d == -absl::InfiniteDuration()) return out;
  const int64_t nanos = absl::ToInt64Nanoseconds(d);
  out.set_seconds(nanos / 1'000'000'000);
  out.set_nanos(static_cast<int32_t>(nanos % 1'000'000'000));
  return out;
}

inline absl::Duration FromProtoDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

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
