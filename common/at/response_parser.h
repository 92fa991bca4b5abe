// DTE side (agent): an incremental parser of what a modem sends back.
//
// Three layers, as in at-engine-anchors.md §6: a byte framer that keeps its
// state across Feed() calls (quote-aware, bounded), a line classifier
// (final result / information line / URC / echo / garbage), and typed
// results. The events produced never depend on how the bytes were split.
//
// Pure: no I/O, no threads, no clocks. Not thread-safe; one per port, used
// from that port's strand.
#ifndef ATBRIDGE_COMMON_AT_RESPONSE_PARSER_H_
#define ATBRIDGE_COMMON_AT_RESPONSE_PARSER_H_

#include <cstddef>
#include <deque>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace atbridge::at {

// How a command ended.
enum class FinalKind {
  kNone,      // Not ended (no final result yet).
  kOk,        // "OK"
  kError,     // "ERROR"
  kCmeError,  // "+CME ERROR: <n>" (numeric; `code` holds n)
  kCmeText,   // "+CME ERROR: <text>" or "+CME ERROR:" with nothing after
              // (policy: treated as a final error, never left hanging).
  kCmsError,  // "+CMS ERROR: <n>"
};

struct FinalResult {
  FinalKind kind = FinalKind::kNone;
  int code = 0;      // CME/CMS number, else 0.
  std::string line;  // The final line exactly as received (no CR/LF).

  bool ok() const { return kind == FinalKind::kOk; }
};

// A complete answer to one command.
struct Response {
  // Information lines in order, without terminators. CR/LF inside double
  // quotes are kept byte-exact (a %CMNG read carries PEM newlines).
  std::vector<std::string> lines;
  FinalResult final;
};

// What a command expects, given to BeginCommand().
struct CommandExpectation {
  // The command as written, without terminator; used to drop an echo (E1)
  // line that repeats it exactly. Empty: no echo stripping.
  std::string echo;
  // Prefixes of this command's information lines (e.g. "+CFUN:", "%CMNG:").
  // While a command is in flight, a line belongs to its response if it has
  // one of these prefixes (even if the prefix is also a URC prefix: +CEREG:
  // during AT+CEREG?) or if it is not a known URC (bare lines such as the
  // IMEI of AT+CGSN always belong). Only lines matching a known URC prefix
  // and none of these are routed as URCs.
  std::vector<std::string> info_prefixes;
  // The command waits for a "> " prompt (SMS-style); only then is "> "
  // reported as kPrompt.
  bool expect_prompt = false;
};

struct ParserEvent {
  enum class Type {
    kComplete,  // `response` holds the finished answer of the current command.
    kUrc,       // `line` is an unsolicited result code.
    kPrompt,    // "> " seen while the command expected a prompt.
    kStale,     // `line` belongs to an abandoned (timed-out) command; its
                // final result also arrives as kStale. Never given to the
                // next command.
    kGarbage,   // `line` is neither a response nor a URC (or was NUL bytes);
                // `bytes` counts what was discarded. NUL bytes are removed
                // from their line and reported (empty `line`, `bytes` = their
                // count) when that line ends, before the line's own event.
    kOverflow,  // A line exceeded max_line_bytes; discarded up to the next
                // terminator (the quote state is reset at the cap, so a
                // runaway quote cannot swallow terminators). Reported once,
                // when that terminator arrives. If a command is in flight it
                // is NOT completed: the caller fails it (DATA_LOSS) and
                // resynchronizes.
  };
  Type type;
  Response response;  // kComplete
  std::string line;   // kUrc, kStale, kGarbage (text), kOverflow (first 64 bytes)
  size_t bytes = 0;   // kGarbage, kOverflow: bytes discarded
};

struct ResponseParserOptions {
  // Longest line (including quoted CR/LF) accepted. A %CMNG read of a 4 KB
  // certificate fits.
  size_t max_line_bytes = 16 * 1024;
  // Prefixes that mark a line as a URC when it does not belong to the
  // command in flight. Lines that look like "+XYZ: ..." / "%XYZ: ..." /
  // "#XYZ: ..." are URCs even when not listed; this list decides the shared
  // ones while a command is in flight.
  std::vector<std::string> urc_prefixes = {
      "+CEREG:",     "+CGREG:",    "+CREG:",        "+CSCON:", "+CGEV:",
      "+CMTI:",      "+CMT:",      "+CDS:",         "+CIEV:",  "+CRING:",
      "%XSIM:",      "%CESQ:",     "%XTIME:",       "%MDMEV:", "%XMODEMSLEEP:",
      "%NCELLMEAS:", "%XPOFWARN:", "%XVBATLOWLVL:", "#XBOOT:", "Ready"};
};

class ResponseParser {
 public:
  explicit ResponseParser(ResponseParserOptions options = {});

  // A command has been fully written; lines now belong to it (subject to
  // the expectation). Any previous command must have completed or been
  // abandoned; one still in flight is abandoned first (its reply is kStale).
  void BeginCommand(CommandExpectation expectation);

  // The command in flight timed out or was cancelled. Whatever still arrives
  // for it, up to and including its final result, is reported as kStale —
  // also after a later BeginCommand() (a timed-out command still owns its
  // reply). Call Reset() to forget an abandoned command whose reply will
  // never come.
  void Abandon();

  // Forgets any command in flight or abandoned and any partial line.
  void Reset();

  // Consumes all of `bytes`, appending 0..n events to `out`.
  void Feed(absl::string_view bytes, std::vector<ParserEvent>* out);

  // True between BeginCommand() and its kComplete.
  bool command_in_flight() const;
  // True while an abandoned command's final result is still awaited.
  bool draining() const;

 private:
  // Implementation detail; see response_parser.cc.
  void EndLine(std::vector<ParserEvent>* out);
  void OnLine(std::string line, std::vector<ParserEvent>* out);

  ResponseParserOptions options_;
  // Framer state.
  std::string line_;
  bool in_quotes_ = false;
  bool overflowing_ = false;
  size_t overflow_bytes_ = 0;
  size_t nul_bytes_ = 0;
  std::string overflow_head_;  // First bytes of the overflowing line.
  // Classifier state.
  bool in_flight_ = false;
  bool echo_pending_ = false;  // The E1 echo of the command may still come.
  int abandoned_ = 0;          // Abandoned commands whose final has not arrived.
  // Info prefixes of the abandoned commands, oldest first.
  std::deque<std::vector<std::string>> abandoned_prefixes_;
  CommandExpectation expectation_;
  Response current_;
};

// Classifies one complete line as a final result; kind kNone if it is not one.
// Matches whole lines ("OK", "ERROR") and prefixes only for CME/CMS.
FinalResult ParseFinalResult(absl::string_view line);

}  // namespace atbridge::at

#endif  // ATBRIDGE_COMMON_AT_RESPONSE_PARSER_H_
