// Internal to common/at: describing bytes and untrusted text in error
// messages without echoing content. Not part of the public API.
#ifndef ATBRIDGE_COMMON_AT_BYTE_TEXT_H_
#define ATBRIDGE_COMMON_AT_BYTE_TEXT_H_

#include <string>

#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"

namespace atbridge::at {

// A byte as a human reads it: "'\"'", "CR (0x0D)", "NUL (0x00)",
// "control byte 0x1B", "non-ASCII byte 0xC3", "'x'".
inline std::string DescribeByte(unsigned char c) {
  switch (c) {
    case '"':
      return "'\"'";
    case '\r':
      return "CR (0x0D)";
    case '\n':
      return "LF (0x0A)";
    case '\0':
      return "NUL (0x00)";
    case '\t':
      return "TAB (0x09)";
    default:
      break;
  }
  if (c < 0x20 || c == 0x7f) return absl::StrFormat("control byte 0x%02X", c);
  if (c >= 0x80) return absl::StrFormat("non-ASCII byte 0x%02X", c);
  return absl::StrFormat("'%c'", c);
}

// Non-secret text for a message: printable ASCII kept, everything else as
// \xNN, cut after `max_bytes` input bytes with "...".
inline std::string EscapeForMessage(absl::string_view text, size_t max_bytes) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (i == max_bytes) {
      out += "...";
      break;
    }
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      out += absl::StrFormat("\\x%02X", c);
    }
  }
  return out;
}

}  // namespace atbridge::at

#endif  // ATBRIDGE_COMMON_AT_BYTE_TEXT_H_
