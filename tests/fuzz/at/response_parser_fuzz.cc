// libFuzzer target: ResponseParser::Feed with random splits and random
// BeginCommand/Abandon/Reset calls, plus the modem-response parsers on what
// completes.
//
// Invariants checked (abort on violation):
//  - the events never depend on how the bytes were split (the same script is
//    replayed with every feed whole and with fuzzer-chosen splits);
//  - no event line is longer than the cap (kOverflow heads: 64 bytes), and no
//    line carries a NUL byte;
//  - at most one kComplete per Feed, only while a command is in flight, and
//    no kStale without an abandoned command;
//  - Base64UrlDecode(x) ok => Base64UrlEncode of it equals x without padding.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "common/at/modem_responses.h"
#include "common/at/response_parser.h"

namespace {

using atbridge::at::CommandExpectation;
using atbridge::at::ParserEvent;
using atbridge::at::ResponseParser;
using atbridge::at::ResponseParserOptions;

#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (false)

struct Step {
  enum class Kind { kBegin, kAbandon, kReset, kFeed };
  Kind kind;
  CommandExpectation expectation;   // kBegin
  std::string bytes;                // kFeed
  std::vector<size_t> split_sizes;  // kFeed: chunk sizes of the split replay
};

constexpr const char* kPrefixes[] = {"+CFUN:", "+CEREG:", "%CMNG:", "+CGSN:", "%KEYGEN:", "+X:"};
constexpr const char* kEchoes[] = {"AT+CFUN?", "AT", "AT%CMNG=1", "AT+CEREG?"};

std::string Describe(const ParserEvent& e) {
  std::string out(1, static_cast<char>('0' + static_cast<int>(e.type)));
  out += std::to_string(e.bytes);
  out.push_back('|');
  out += e.line;
  out.push_back('|');
  for (const std::string& line : e.response.lines) {
    out += line;
    out.push_back('\x1f');
  }
  out.push_back(static_cast<char>('0' + static_cast<int>(e.response.final.kind)));
  out += std::to_string(e.response.final.code);
  out += e.response.final.line;
  return out;
}

void CheckResponseParsers(const atbridge::at::Response& response) {
  // Crash-freedom of the typed parsers on arbitrary lines.
  (void)atbridge::at::ParseCmngList(response.lines);
  (void)atbridge::at::ParseCfun(response.lines);
  (void)atbridge::at::ParseImei(response.lines);
  (void)atbridge::at::ParseSingleLine(response.lines);
  (void)atbridge::at::ParseKeygen(response.lines);
  (void)atbridge::at::ParseAttestToken(response.lines);
  for (const std::string& line : response.lines) {
    auto decoded = atbridge::at::Base64UrlDecode(line);
    if (decoded.ok()) {
      std::string unpadded = line;
      while (!unpadded.empty() && unpadded.back() == '=') unpadded.pop_back();
      FUZZ_CHECK(atbridge::at::Base64UrlEncode(*decoded) == unpadded);
    }
  }
}

std::vector<std::string> Run(const std::vector<Step>& steps, size_t cap, bool split) {
  ResponseParserOptions options;
  options.max_line_bytes = cap;
  ResponseParser parser(options);
  std::vector<std::string> described;
  int abandoned = 0;  // Model: abandoned commands not yet drained.
  for (const Step& step : steps) {
    switch (step.kind) {
      case Step::Kind::kBegin:
        if (parser.command_in_flight()) ++abandoned;
        parser.BeginCommand(step.expectation);
        break;
      case Step::Kind::kAbandon:
        if (parser.command_in_flight()) ++abandoned;
        parser.Abandon();
        break;
      case Step::Kind::kReset:
        abandoned = 0;
        parser.Reset();
        break;
      case Step::Kind::kFeed: {
        std::vector<std::string> chunks;
        if (split) {
          size_t pos = 0;
          for (size_t size : step.split_sizes) {
            if (pos >= step.bytes.size()) break;
            size = std::min(size, step.bytes.size() - pos);
            chunks.push_back(step.bytes.substr(pos, size));
            pos += size;
          }
          if (pos < step.bytes.size()) chunks.push_back(step.bytes.substr(pos));
        } else {
          chunks.push_back(step.bytes);
        }
        for (const std::string& chunk : chunks) {
          const bool in_flight = parser.command_in_flight();
          std::vector<ParserEvent> events;
          parser.Feed(chunk, &events);
          int completes = 0;
          for (const ParserEvent& e : events) {
            FUZZ_CHECK(e.line.find('\0') == std::string::npos);
            switch (e.type) {
              case ParserEvent::Type::kComplete:
                ++completes;
                FUZZ_CHECK(in_flight);
                FUZZ_CHECK(e.response.final.kind != atbridge::at::FinalKind::kNone);
                FUZZ_CHECK(e.response.final.line.size() <= cap);
                for (const std::string& line : e.response.lines) {
                  FUZZ_CHECK(!line.empty() && line.size() <= cap);
                  FUZZ_CHECK(line.find('\0') == std::string::npos);
                }
                CheckResponseParsers(e.response);
                break;
              case ParserEvent::Type::kOverflow:
                FUZZ_CHECK(e.line.size() <= 64 && e.line.size() <= cap);
                FUZZ_CHECK(e.bytes > cap);
                break;
              case ParserEvent::Type::kStale:
                FUZZ_CHECK(abandoned > 0);
                FUZZ_CHECK(!e.line.empty() && e.line.size() <= cap);
                if (atbridge::at::ParseFinalResult(e.line).kind != atbridge::at::FinalKind::kNone) {
                  --abandoned;
                }
                break;
              case ParserEvent::Type::kUrc:
                FUZZ_CHECK(!e.line.empty() && e.line.size() <= cap);
                break;
              case ParserEvent::Type::kGarbage:
                FUZZ_CHECK(e.line.size() <= cap);
                FUZZ_CHECK(e.bytes > 0);
                break;
              case ParserEvent::Type::kPrompt:
                FUZZ_CHECK(in_flight);
                break;
            }
            described.push_back(Describe(e));
          }
          FUZZ_CHECK(completes <= 1);
          FUZZ_CHECK(parser.draining() == (abandoned > 0));
        }
        break;
      }
    }
  }
  return described;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider fdp(data, size);
  const size_t cap = fdp.ConsumeIntegralInRange<size_t>(1, 300);
  std::vector<Step> steps;
  while (fdp.remaining_bytes() > 0 && steps.size() < 64) {
    const int op = fdp.ConsumeIntegralInRange<int>(0, 9);
    Step step{Step::Kind::kFeed, {}, {}, {}};
    if (op == 0) {
      step.kind = Step::Kind::kBegin;
      if (fdp.ConsumeBool()) step.expectation.echo = kEchoes[fdp.ConsumeIntegralInRange<int>(0, 3)];
      const int prefixes = fdp.ConsumeIntegralInRange<int>(0, 2);
      for (int i = 0; i < prefixes; ++i) {
        step.expectation.info_prefixes.emplace_back(
            kPrefixes[fdp.ConsumeIntegralInRange<int>(0, 5)]);
      }
      step.expectation.expect_prompt = fdp.ConsumeBool();
    } else if (op == 1) {
      step.kind = Step::Kind::kAbandon;
    } else if (op == 2 && fdp.ConsumeIntegralInRange<int>(0, 3) == 0) {
      step.kind = Step::Kind::kReset;
    } else {
      step.bytes = fdp.ConsumeRandomLengthString(512);
      const int splits = fdp.ConsumeIntegralInRange<int>(0, 16);
      for (int i = 0; i < splits; ++i) {
        step.split_sizes.push_back(fdp.ConsumeIntegralInRange<size_t>(0, 40));
      }
    }
    steps.push_back(std::move(step));
  }
  const std::vector<std::string> whole = Run(steps, cap, /*split=*/false);
  const std::vector<std::string> split = Run(steps, cap, /*split=*/true);
  FUZZ_CHECK(whole == split);
  return 0;
}
