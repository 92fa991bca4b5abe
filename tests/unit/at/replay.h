// Test helpers for the AT library: replaying byte streams whole, byte by byte
// and with seeded random splits, and describing events as comparable text.
#ifndef ATBRIDGE_TESTS_UNIT_AT_REPLAY_H_
#define ATBRIDGE_TESTS_UNIT_AT_REPLAY_H_

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "common/at/command_parser.h"
#include "common/at/response_parser.h"

namespace atbridge::at::testing {

// How a feed is cut into chunks.
struct Split {
  enum class Mode { kWhole, kBytes, kRandom };
  Mode mode = Mode::kWhole;
  uint32_t seed = 0;  // kRandom

  std::string Name() const {
    switch (mode) {
      case Mode::kWhole:
        return "whole";
      case Mode::kBytes:
        return "byte-by-byte";
      case Mode::kRandom:
        return absl::StrCat("random(seed=", seed, ")");
    }
    return "?";
  }
};

// Whole, byte by byte, and 16 seeded random splits.
inline std::vector<Split> AllSplits() {
  std::vector<Split> splits = {{Split::Mode::kWhole, 0}, {Split::Mode::kBytes, 0}};
  for (uint32_t seed = 1; seed <= 16; ++seed) splits.push_back({Split::Mode::kRandom, seed});
  return splits;
}

// Cuts `bytes` into chunks according to `split`. `rng` carries across calls
// so that several feeds of one replay get different cuts.
inline std::vector<std::string> Chunks(absl::string_view bytes, const Split& split,
                                       std::mt19937* rng) {
  std::vector<std::string> out;
  switch (split.mode) {
    case Split::Mode::kWhole:
      out.emplace_back(bytes);
      break;
    case Split::Mode::kBytes:
      for (char c : bytes) out.emplace_back(1, c);
      break;
    case Split::Mode::kRandom: {
      size_t pos = 0;
      while (pos < bytes.size()) {
        // Mostly short chunks, sometimes empty ones, sometimes long ones.
        std::uniform_int_distribution<size_t> len_dist(0, (*rng)() % 4 == 0 ? 64 : 5);
        size_t len = std::min(len_dist(*rng), bytes.size() - pos);
        out.emplace_back(bytes.substr(pos, len));
        pos += len;
      }
      break;
    }
  }
  return out;
}

inline std::string Escape(absl::string_view text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '\r':
        out += "\\r";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\0':
        out += "\\0";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

inline std::string FinalKindName(FinalKind kind) {
  switch (kind) {
    case FinalKind::kNone:
      return "NONE";
    case FinalKind::kOk:
      return "OK";
    case FinalKind::kError:
      return "ERROR";
    case FinalKind::kCmeError:
      return "CME";
    case FinalKind::kCmeText:
      return "CME_TEXT";
    case FinalKind::kCmsError:
      return "CMS";
  }
  return "?";
}

// One event as text, e.g. "COMPLETE OK [+CFUN: 4]", "URC +CEREG: 2",
// "GARBAGE 4 aaaa", "OVERFLOW 100", "STALE OK", "PROMPT".
inline std::string Describe(const ParserEvent& event) {
  switch (event.type) {
    case ParserEvent::Type::kComplete: {
      std::vector<std::string> lines;
      for (const std::string& line : event.response.lines) lines.push_back(Escape(line));
      std::string final = FinalKindName(event.response.final.kind);
      if (event.response.final.kind == FinalKind::kCmeError ||
          event.response.final.kind == FinalKind::kCmsError) {
        absl::StrAppend(&final, " ", event.response.final.code);
      }
      return absl::StrCat("COMPLETE ", final, " [", absl::StrJoin(lines, "|"), "]");
    }
    case ParserEvent::Type::kUrc:
      return absl::StrCat("URC ", Escape(event.line));
    case ParserEvent::Type::kPrompt:
      return "PROMPT";
    case ParserEvent::Type::kStale:
      return absl::StrCat("STALE ", Escape(event.line));
    case ParserEvent::Type::kGarbage:
      return absl::StrCat("GARBAGE ", event.bytes, event.line.empty() ? "" : " ",
                          Escape(event.line));
    case ParserEvent::Type::kOverflow:
      return absl::StrCat("OVERFLOW ", event.bytes);
  }
  return "?";
}

inline std::vector<std::string> DescribeAll(const std::vector<ParserEvent>& events) {
  std::vector<std::string> out;
  out.reserve(events.size());
  for (const ParserEvent& event : events) out.push_back(Describe(event));
  return out;
}

inline std::string Describe(const FramerEvent& event) {
  if (event.type == FramerEvent::Type::kOverflow) return absl::StrCat("OVERFLOW ", event.bytes);
  return absl::StrCat("COMMAND ", Escape(event.command));
}

}  // namespace atbridge::at::testing

#endif  // ATBRIDGE_TESTS_UNIT_AT_REPLAY_H_
