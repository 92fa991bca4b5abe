// libFuzzer target: CommandFramer + ParseCommandLine (the simulator's input
// path), with the builders and RedactSecrets on what comes out.
//
// Invariants checked (abort on violation):
//  - framing does not depend on how the bytes were split (whole vs
//    fuzzer-chosen chunks) and the framer ends with the same pending bytes;
//  - a framed command is at most max_command_bytes, has a byte above 0x20
//    and no NUL; when the input has no BS/DEL (which edit the line without
//    touching the quote state, as at_host.c does) and no NUL (a quoted NUL
//    cuts the command short), its quotes pair up and it contains CR/LF only
//    inside them;
//  - a parsed command has a well-formed name; quoted parameters hold no '"';
//  - extended commands whose parameters the builder accepts round-trip:
//    Build -> Parse gives the same name, type and parameters;
//  - RedactSecrets output never contains the quoted content of a type 2/3
//    %CMNG write that was parsed from a single-command line.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "common/at/command_builder.h"
#include "common/at/command_parser.h"
#include "common/at/credential_types.h"

namespace {

#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (false)

using atbridge::at::AtCommand;
using atbridge::at::AtParam;
using atbridge::at::CommandFramer;
using atbridge::at::CommandFramerOptions;
using atbridge::at::FramerEvent;

bool IsBuilderName(const std::string& name) {
  if (name.size() < 2 || (name[0] != '+' && name[0] != '%' && name[0] != '#')) return false;
  for (size_t i = 1; i < name.size(); ++i) {
    const char c = name[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

bool SameParams(const std::vector<AtParam>& a, const std::vector<AtParam>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].kind != b[i].kind) return false;
    if (a[i].kind == AtParam::Kind::kNumber && a[i].number != b[i].number) return false;
    if (a[i].kind == AtParam::Kind::kString && a[i].text != b[i].text) return false;
  }
  return true;
}

// Rebuilds `command` with CommandBuilder when it can and checks the result
// parses back to the same thing.
void CheckRoundTrip(const AtCommand& command) {
  if (!IsBuilderName(command.name)) return;
  atbridge::at::CommandBuilder builder(command.name);
  for (const AtParam& p : command.params) {
    switch (p.kind) {
      case AtParam::Kind::kEmpty:
        builder.Empty();
        break;
      case AtParam::Kind::kNumber:
        builder.Int(p.number);
        break;
      case AtParam::Kind::kString:
        builder.QuotedPayload(p.text);
        break;
      case AtParam::Kind::kRaw:
        return;  // No builder form for raw tokens.
    }
  }
  absl::StatusOr<std::string> built;
  switch (command.type) {
    case AtCommand::Type::kAction:
      built = builder.Action();
      break;
    case AtCommand::Type::kRead:
      built = builder.Read();
      break;
    case AtCommand::Type::kTest:
      built = builder.Test();
      break;
    case AtCommand::Type::kSet:
      // "AT+X=" (no params) and "AT+X=" (one empty param) are the same text.
      if (command.params.size() == 1 && command.params[0].kind == AtParam::Kind::kEmpty) return;
      built = builder.Set();
      break;
  }
  if (!built.ok()) return;  // e.g. CR inside a quoted string: refused, fine.
  auto reparsed = atbridge::at::ParseCommandLine(*built);
  FUZZ_CHECK(reparsed.ok());
  FUZZ_CHECK(reparsed->size() == 1);
  FUZZ_CHECK((*reparsed)[0].name == command.name);
  FUZZ_CHECK((*reparsed)[0].type == command.type);
  FUZZ_CHECK(SameParams((*reparsed)[0].params, command.params));
}

void CheckCommand(const std::string& line, size_t max_bytes, bool edited) {
  FUZZ_CHECK(!line.empty() && line.size() <= max_bytes);
  FUZZ_CHECK(line.find('\0') == std::string::npos);
  bool printable = false;
  bool quoted = false;
  for (char c : line) {
    if (static_cast<unsigned char>(c) > 0x20) printable = true;
    if (c == '"') quoted = !quoted;
    if (!edited && (c == '\r' || c == '\n')) FUZZ_CHECK(quoted);
  }
  FUZZ_CHECK(printable);
  if (!edited) FUZZ_CHECK(!quoted);

  auto commands = atbridge::at::ParseCommandLine(line);
  if (!commands.ok()) {
    FUZZ_CHECK(commands.status().code() == absl::StatusCode::kInvalidArgument);
    return;
  }
  FUZZ_CHECK(!commands->empty());
  for (const AtCommand& command : *commands) {
    for (const AtParam& p : command.params) {
      if (p.kind == AtParam::Kind::kString) FUZZ_CHECK(p.text.find('"') == std::string::npos);
      if (p.kind == AtParam::Kind::kRaw) FUZZ_CHECK(!p.text.empty());
    }
    CheckRoundTrip(command);
    // A parsed secret write must not survive redaction.
    if (commands->size() == 1 && command.name == "%CMNG" && command.params.size() >= 4 &&
        command.params[0].kind == AtParam::Kind::kNumber && command.params[0].number == 0 &&
        command.params[1].kind == AtParam::Kind::kNumber &&
        command.params[2].kind == AtParam::Kind::kNumber &&
        (command.params[2].number == 2 || command.params[2].number == 3) &&
        command.params[3].kind == AtParam::Kind::kString && command.params[3].text.size() >= 24) {
      const std::string redacted = atbridge::at::RedactSecrets(line);
      FUZZ_CHECK(redacted.find(command.params[3].text) == std::string::npos);
    }
  }
  (void)atbridge::at::ValidateRawCommand(line);
}

std::vector<std::string> Frame(const std::string& bytes, const std::vector<size_t>& sizes,
                               size_t max_bytes, size_t* pending) {
  CommandFramerOptions options;
  options.max_command_bytes = max_bytes;
  CommandFramer framer(options);
  std::vector<std::string> out;
  size_t pos = 0;
  auto feed = [&](const std::string& chunk) {
    std::vector<FramerEvent> events;
    framer.Feed(chunk, &events);
    for (const FramerEvent& e : events) {
      if (e.type == FramerEvent::Type::kOverflow) {
        FUZZ_CHECK(e.bytes > max_bytes);
        FUZZ_CHECK(e.command.empty());
        out.push_back("overflow " + std::to_string(e.bytes));
      } else {
        out.push_back(e.command);
      }
    }
  };
  for (size_t size : sizes) {
    if (pos >= bytes.size()) break;
    size = std::min(size, bytes.size() - pos);
    feed(bytes.substr(pos, size));
    pos += size;
  }
  if (pos < bytes.size()) feed(bytes.substr(pos));
  FUZZ_CHECK(framer.pending_bytes() <= max_bytes);
  *pending = framer.pending_bytes();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  const size_t max_bytes = fdp.ConsumeIntegralInRange<size_t>(1, 4096);
  std::vector<size_t> sizes;
  sizes.reserve(32);
  const int splits = fdp.ConsumeIntegralInRange<int>(0, 32);
  for (int i = 0; i < splits; ++i) sizes.push_back(fdp.ConsumeIntegralInRange<size_t>(0, 64));
  const std::string bytes = fdp.ConsumeRemainingBytesAsString();

  size_t pending_whole = 0;
  size_t pending_split = 0;
  const std::vector<std::string> whole = Frame(bytes, {}, max_bytes, &pending_whole);
  const std::vector<std::string> split = Frame(bytes, sizes, max_bytes, &pending_split);
  FUZZ_CHECK(whole == split);
  FUZZ_CHECK(pending_whole == pending_split);
  const bool edited = bytes.find_first_of(std::string("\b\x7f\0", 3)) != std::string::npos;
  for (const std::string& line : whole) {
    if (absl::StartsWith(line, "overflow ")) continue;
    CheckCommand(line, max_bytes, edited);
  }
  // The raw input as one line, too (the parser must not crash on anything).
  (void)atbridge::at::ParseCommandLine(bytes);
  (void)atbridge::at::RedactSecrets(bytes);
  return 0;
}
