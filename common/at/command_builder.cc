#include "common/at/command_builder.h"

#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/at/byte_text.h"

namespace atbridge::at {

namespace {

bool IsValidName(absl::string_view name) {
  if (name.empty()) return true;
  if (name[0] != '+' && name[0] != '%' && name[0] != '#') return false;
  if (name.size() < 2) return false;
  for (char c : name.substr(1)) {
    if (!absl::ascii_isupper(static_cast<unsigned char>(c)) &&
        !absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

// Checks a quoted argument byte by byte. `allow_lf` admits LF (payloads).
// The message names the argument and the offending byte by position, never
// the content around it.
absl::Status CheckQuotedBytes(absl::string_view value, absl::string_view what, bool allow_lf) {
  for (size_t i = 0; i < value.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(value[i]);
    if (c == '\n' && allow_lf) continue;
    if (c >= 0x20 && c <= 0x7e && c != '"') continue;
    return absl::InvalidArgumentError(
        absl::StrCat(what, " byte ", i, " is ", DescribeByte(c),
                     c == '"'                 ? " (a quote would end the AT string argument)"
                     : c == '\r' || c == '\n' ? " (a line ending would end the AT command)"
                                              : ""));
  }
  return absl::OkStatus();
}

absl::Status CheckSecTag(uint32_t sec_tag) {
  if (sec_tag > kMaxUserSecTag) {
    return absl::InvalidArgumentError(absl::StrCat("sec_tag ", sec_tag, " is out of range 0..",
                                                   kMaxUserSecTag,
                                                   " (larger tags belong to the modem)"));
  }
  return absl::OkStatus();
}

}  // namespace

CommandBuilder::CommandBuilder(absl::string_view name) : name_(name) {
  if (!IsValidName(name)) {
    // The name is not user content; it is safe to show, but escaped.
    error_ = absl::InvalidArgumentError(absl::StrCat("command name \"", EscapeForMessage(name, 32),
                                                     "\" must match [+%#][A-Z0-9]+"));
  }
}

CommandBuilder& CommandBuilder::Int(int64_t value) {
  args_.push_back(absl::StrCat(value));
  return *this;
}

CommandBuilder& CommandBuilder::Quoted(absl::string_view value, absl::string_view what) {
  absl::Status status = CheckQuotedBytes(value, what, /*allow_lf=*/false);
  if (!status.ok()) {
    if (error_.ok()) error_ = std::move(status);
    return *this;
  }
  args_.push_back(absl::StrCat("\"", value, "\""));
  return *this;
}

CommandBuilder& CommandBuilder::QuotedPayload(absl::string_view value, absl::string_view what) {
  absl::Status status = CheckQuotedBytes(value, what, /*allow_lf=*/true);
  if (!status.ok()) {
    if (error_.ok()) error_ = std::move(status);
    return *this;
  }
  args_.push_back(absl::StrCat("\"", value, "\""));
  return *this;
}

CommandBuilder& CommandBuilder::Empty() {
  args_.emplace_back();
  return *this;
}

absl::StatusOr<std::string> CommandBuilder::Set() const {
  if (!error_.ok()) return error_;
  if (name_.empty()) {
    return absl::InvalidArgumentError("bare AT has no set form");
  }
  return absl::StrCat("AT", name_, "=", absl::StrJoin(args_, ","));
}

absl::StatusOr<std::string> CommandBuilder::Read() const {
  if (!error_.ok()) return error_;
  if (name_.empty()) return absl::InvalidArgumentError("bare AT has no read form");
  if (!args_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("AT", name_, "? takes no arguments"));
  }
  return absl::StrCat("AT", name_, "?");
}

absl::StatusOr<std::string> CommandBuilder::Test() const {
  if (!error_.ok()) return error_;
  if (name_.empty()) return absl::InvalidArgumentError("bare AT has no test form");
  if (!args_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("AT", name_, "=? takes no arguments"));
  }
  return absl::StrCat("AT", name_, "=?");
}

absl::StatusOr<std::string> CommandBuilder::Action() const {
  if (!error_.ok()) return error_;
  if (!args_.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("AT", name_, " (action) takes no arguments; use Set()"));
  }
  return absl::StrCat("AT", name_);
}

absl::Status ValidateRawCommand(absl::string_view command, size_t max_bytes) {
  if (command.empty()) return absl::InvalidArgumentError("command is empty");
  if (command.size() > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("command is ", command.size(),
                                                   " bytes, longer than the limit of ", max_bytes));
  }
  if (command.size() < 2 || absl::AsciiStrToUpper(command.substr(0, 2)) != "AT") {
    return absl::InvalidArgumentError("command must start with \"AT\"");
  }
  size_t quotes = 0;
  size_t last_quote = 0;
  for (size_t i = 0; i < command.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(command[i]);
    if (c < 0x20 || c > 0x7e) {
      return absl::InvalidArgumentError(
          absl::StrCat("command byte ", i, " is ", DescribeByte(c),
                       " (only printable ASCII; one call is one command line)"));
    }
    if (c == '"') {
      ++quotes;
      last_quote = i;
    }
  }
  if (quotes % 2 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("command has an unbalanced quote (byte ", last_quote, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> CmngWrite(uint32_t sec_tag, int type, absl::string_view content) {
  if (absl::Status s = CheckSecTag(sec_tag); !s.ok()) return s;
  if (type < 0 || type > 11) {
    return absl::InvalidArgumentError(
        absl::StrCat("credential type ", type, " is out of range 0..11"));
  }
  if (content.empty()) return absl::InvalidArgumentError("content is empty");
  return CommandBuilder("%CMNG")
      .Int(kCmngWrite)
      .Int(sec_tag)
      .Int(type)
      .QuotedPayload(content, "content")
      .Set();
}

std::string CmngList(std::optional<uint32_t> sec_tag, std::optional<int> type) {
  std::string out = absl::StrCat("AT%CMNG=", kCmngList);
  if (sec_tag.has_value()) {
    absl::StrAppend(&out, ",", *sec_tag);
    if (type.has_value()) absl::StrAppend(&out, ",", *type);
  }
  return out;
}

std::string CmngRead(uint32_t sec_tag, int type) {
  return absl::StrCat("AT%CMNG=", kCmngRead, ",", sec_tag, ",", type);
}

std::string CmngDelete(uint32_t sec_tag, int type) {
  return absl::StrCat("AT%CMNG=", kCmngDelete, ",", sec_tag, ",", type);
}

absl::StatusOr<std::string> Keygen(uint32_t sec_tag, int key_type, int format,
                                   absl::string_view attributes, absl::string_view key_usage) {
  if (absl::Status s = CheckSecTag(sec_tag); !s.ok()) return s;
  if (key_type != 2 && key_type != 8) {
    return absl::InvalidArgumentError(absl::StrCat(
        "key_type ", key_type, " is not supported (2 = client key pair, 8 = endorsement key)"));
  }
  if (format != 0 && format != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("format ", format, " is not supported (0 = CSR, 1 = public key)"));
  }
  if (!key_usage.empty()) {
    if (key_usage.size() != 9) {
      return absl::InvalidArgumentError(absl::StrCat(
          "key_usage must be 9 characters of '0'/'1', got ", key_usage.size(), " characters"));
    }
    for (size_t i = 0; i < key_usage.size(); ++i) {
      if (key_usage[i] != '0' && key_usage[i] != '1') {
        return absl::InvalidArgumentError(absl::StrCat(
            "key_usage byte ", i, " is ", DescribeByte(static_cast<unsigned char>(key_usage[i])),
            " (must be '0' or '1')"));
      }
    }
  }
  CommandBuilder builder("%KEYGEN");
  builder.Int(sec_tag).Int(key_type).Int(format);
  if (!attributes.empty()) {
    builder.Quoted(attributes, "attributes");
  } else if (!key_usage.empty()) {
    builder.Empty();
  }
  if (!key_usage.empty()) builder.Quoted(key_usage, "key_usage");
  return builder.Set();
}

std::string CfunSet(int mode) { return absl::StrCat("AT+CFUN=", mode); }

std::string CfunRead() { return "AT+CFUN?"; }

}  // namespace atbridge::at
