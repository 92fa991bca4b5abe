// DTE side: building AT commands that cannot carry a second command.
//
// Every argument has a policy: integers are formatted, strings are quoted and
// must not contain '"', CR, LF, NUL or other control characters; PEM payloads
// may contain LF (and nothing else below 0x20). Anything else fails closed
// with INVALID_ARGUMENT naming the argument and the offending byte by its
// zero-based offset ("content byte 17 is '\"'"), never the content around it,
// and no command is produced.
#ifndef ATBRIDGE_COMMON_AT_COMMAND_BUILDER_H_
#define ATBRIDGE_COMMON_AT_COMMAND_BUILDER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace atbridge::at {

// Builds "AT<name>=<arg>,<arg>..." (set), "AT<name>?" (read), "AT<name>=?"
// (test) or "AT<name>" (action). `name` is e.g. "+CFUN" or "%CMNG" and must
// match [+%#][A-Z0-9]+ (or be empty for bare "AT").
class CommandBuilder {
 public:
  explicit CommandBuilder(absl::string_view name);

  CommandBuilder& Int(int64_t value);
  // A quoted string argument: printable ASCII 0x20..0x7E except '"'.
  CommandBuilder& Quoted(absl::string_view value, absl::string_view what = "argument");
  // A quoted PEM/text payload: printable ASCII and LF; no '"', CR, NUL.
  CommandBuilder& QuotedPayload(absl::string_view value, absl::string_view what = "content");
  // An empty parameter (",,").
  CommandBuilder& Empty();

  // Results without terminator. Fail with the first argument error.
  absl::StatusOr<std::string> Set() const;
  absl::StatusOr<std::string> Read() const;
  absl::StatusOr<std::string> Test() const;
  absl::StatusOr<std::string> Action() const;

 private:
  std::string name_;
  std::vector<std::string> args_;
  absl::Status error_;
};

// Validates a free-form command typed by a user (Execute): must start with
// "AT" (any case), be printable ASCII (0x20..0x7E) with balanced quotes, and
// be at most `max_bytes` long. CR/LF/control bytes are refused, so one call
// is one command.
absl::Status ValidateRawCommand(absl::string_view command, size_t max_bytes = 4096);

// %CMNG opcodes.
inline constexpr int kCmngWrite = 0;
inline constexpr int kCmngList = 1;
inline constexpr int kCmngRead = 2;
inline constexpr int kCmngDelete = 3;

// Largest user security tag.
inline constexpr uint32_t kMaxUserSecTag = 2147483647u;

// AT%CMNG=0,<tag>,<type>,"<content>". Validates tag range, type 0..11 and
// the payload policy; the content is written byte-exact.
absl::StatusOr<std::string> CmngWrite(uint32_t sec_tag, int type, absl::string_view content);
// AT%CMNG=1[,<tag>[,<type>]]. A type without a tag is ignored (the modem's
// syntax has no type-only filter).
std::string CmngList(std::optional<uint32_t> sec_tag = std::nullopt,
                     std::optional<int> type = std::nullopt);
// AT%CMNG=2,<tag>,<type>.
std::string CmngRead(uint32_t sec_tag, int type);
// AT%CMNG=3,<tag>,<type>.
std::string CmngDelete(uint32_t sec_tag, int type);
// AT%KEYGEN=<tag>,<key_type>,<format>[,"<attributes>"[,"<key_usage>"]].
// key_type 2 = client key pair (or 8 = endorsement key); format 0 = CSR,
// 1 = public key; key_usage, when given, is 9 characters of '0'/'1' (an
// empty attributes argument is then left empty: AT%KEYGEN=7,2,0,,"101010000").
absl::StatusOr<std::string> Keygen(uint32_t sec_tag, int key_type, int format,
                                   absl::string_view attributes = "",
                                   absl::string_view key_usage = "");
// AT+CFUN=<mode> / AT+CFUN?
std::string CfunSet(int mode);
std::string CfunRead();

}  // namespace atbridge::at

#endif  // ATBRIDGE_COMMON_AT_COMMAND_BUILDER_H_
