#include "sim/sim_options.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/status/status_macros.h"
#include "sim/identity.h"

namespace atbridge::sim {
namespace {

absl::Status Bad(absl::string_view option, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("--", option, ": ", why));
}

bool PrintableText(absl::string_view s) {
  for (char c : s) {
    if (c < 0x20 || c > 0x7e || c == '"') return false;
  }
  return !s.empty();
}

}  // namespace

bool IsAcceptedCfun(int mode) {
  switch (mode) {
    case 0:
    case 1:
    case 2:
    case 4:
    case 20:
    case 21:
    case 30:
    case 31:
    case 40:
    case 41:
    case 44:
      return true;
    default:
      return false;
  }
}

absl::StatusOr<std::set<FlakyMode>> ParseFlakyModes(absl::string_view text) {
  std::set<FlakyMode> modes;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (part == "corrupt") {
      modes.insert(FlakyMode::kCorrupt);
    } else if (part == "busy") {
      modes.insert(FlakyMode::kBusy);
    } else if (part == "silent") {
      modes.insert(FlakyMode::kSilent);
    } else {
      return Bad("flaky-modes",
                 absl::StrCat("unknown mode \"", part, "\" (expected corrupt, busy, silent)"));
    }
  }
  return modes;
}

absl::Status ValidateSimOptions(const SimOptions& o) {
  if (o.count < 1 || static_cast<uint64_t>(o.count) > kModemsPerDerivedBase) {
    return Bad("count", absl::StrCat(o.count, " is outside 1..", kModemsPerDerivedBase));
  }
  if (o.link_dir.empty()) return Bad("link-dir", "required");
  if (!PrintableText(o.model) || o.model.size() > 64) return Bad("model", "printable text needed");
  if (!PrintableText(o.firmware) || o.firmware.size() > 64) {
    return Bad("firmware", "printable text needed");
  }
  if (!o.imei_base.empty()) {
    ASSIGN_OR_RETURN(uint64_t base, ParseImeiBase(o.imei_base));
    if (base + static_cast<uint64_t>(o.count) > kImeiBodies) {
      return Bad("imei-base", absl::StrCat("no room for ", o.count, " IMEIs after ", o.imei_base));
    }
  }
  if (!IsAcceptedCfun(o.initial_cfun)) {
    return Bad("cfun", absl::StrCat(o.initial_cfun, " is not a CFUN value the modem accepts"));
  }
  if (o.capacity < 0 || o.capacity > 100000) return Bad("capacity", "outside 0..100000");
  if (o.max_command < 16 || o.max_command > 1024 * 1024) {
    return Bad("max-command", "outside 16..1048576 bytes");
  }
  if (o.latency_ms < 0 || o.latency_ms > 600000) return Bad("latency", "outside 0..600000 ms");
  if (o.baud != 0 && (o.baud < 300 || o.baud > 10000000)) {
    return Bad("baud", "0 (unpaced) or 300..10000000");
  }
  if (o.fifo_bytes < 1 || o.fifo_bytes > 1024 * 1024) return Bad("fifo", "outside 1..1048576");
  if (o.unplug_after < 0) return Bad("unplug-after", "negative");
  if (o.replug_after_ms < 0) return Bad("replug-after", "negative");
  if (!(o.flaky >= 0.0 && o.flaky <= 1.0)) return Bad("flaky", "probability outside 0..1");
  if (o.flaky > 0.0 && o.flaky_modes.empty()) return Bad("flaky-modes", "no mode selected");
  return absl::OkStatus();
}

}  // namespace atbridge::sim
