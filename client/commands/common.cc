#include "client/commands/common.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/core/output.h"
#include "client/core/parse.h"
#include "common/status/errors.h"

namespace atbridge::client {

void PrintJson(CommandContext& ctx, const google::protobuf::Message& message) {
  ctx.out() << ToJson(message);
  ctx.out().flush();
}

absl::StatusOr<std::string> ReadInput(CommandContext& ctx, const std::string& path,
                                      size_t max_bytes) {
  std::string data;
  if (path == "-") {
    std::istreambuf_iterator<char> it(ctx.in()), end;
    for (; it != end && data.size() <= max_bytes; ++it) data.push_back(*it);
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      return UsageError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
    }
    std::istreambuf_iterator<char> it(in), end;
    for (; it != end && data.size() <= max_bytes; ++it) data.push_back(*it);
  }
  const std::string name = path == "-" ? "stdin" : path;
  if (data.size() > max_bytes) {
    return UsageError(absl::StrCat(name, " is larger than ", max_bytes, " bytes"));
  }
  if (data.empty()) return UsageError(absl::StrCat(name, " is empty"));
  return data;
}

absl::Status MakeDirs(const std::string& dir) {
  if (dir.empty()) return absl::OkStatus();
  std::string partial;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = dir.find('/', pos + 1);
    partial = dir.substr(0, pos);
    if (partial.empty()) continue;
    if (mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      return PosixError(errno, absl::StrCat("create directory ", partial));
    }
  }
  return absl::OkStatus();
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& data, mode_t mode,
                                 bool overwrite) {
  struct stat st;
  if (!overwrite && lstat(path.c_str(), &st) == 0) {
    return absl::AlreadyExistsError(absl::StrCat(path, " already exists"));
  }
  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return PosixError(errno, absl::StrCat("create ", tmp));
  // The umask may have narrowed the mode; keys must be exactly 0600.
  if (fchmod(fd, mode) != 0) {
    int err = errno;
    close(fd);
    unlink(tmp.c_str());
    return PosixError(err, absl::StrCat("chmod ", tmp));
  }
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      unlink(tmp.c_str());
      return PosixError(err, absl::StrCat("write ", tmp));
    }
    off += static_cast<size_t>(n);
  }
  if (fsync(fd) != 0 || close(fd) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return PosixError(err, absl::StrCat("write ", tmp));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return PosixError(err, absl::StrCat("rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

std::string KeyValues(const std::vector<std::pair<std::string, std::string>>& rows) {
  size_t width = 0;
  for (const auto& [k, v] : rows) width = std::max(width, k.size() + 1);
  std::string out;
  for (const auto& [k, v] : rows) {
    std::string key = absl::StrCat(k, ":");
    key.resize(width, ' ');
    absl::StrAppend(&out, key, "  ", v.empty() ? "-" : v, "\n");
  }
  return out;
}

std::string CredentialsTable(
    const google::protobuf::RepeatedPtrField<v1::CredentialEntry>& entries) {
  Table t({"TAG", "TYPE", "SHA256", "SUBJECT", "NOT_AFTER"});
  for (const auto& e : entries) {
    t.AddRow({absl::StrCat(e.sec_tag()), CredentialTypeShortName(e.type()), e.sha256(), e.subject(),
              e.has_not_after() ? FormatTimestamp(e.not_after()) : ""});
  }
  return t.Render();
}

std::string LeaseText(const v1::Lease& lease) {
  if (lease.owner().empty()) return "";
  std::string s = lease.owner();
  if (!lease.reason().empty()) absl::StrAppend(&s, " (", lease.reason(), ")");
  if (lease.has_expires_at()) absl::StrAppend(&s, " until ", FormatTimestamp(lease.expires_at()));
  return s;
}

std::string StepsText(const google::protobuf::RepeatedPtrField<v1::Step>& steps) {
  std::vector<std::string> parts;
  for (const auto& s : steps) {
    std::string status = s.status() == v1::STEP_OK        ? "ok"
                         : s.status() == v1::STEP_SKIPPED ? "skipped"
                         : s.status() == v1::STEP_FAILED  ? "FAILED"
                                                          : "not run";
    std::string part = absl::StrCat(s.name(), " ", status);
    std::string took = FormatProtoDuration(s.elapsed());
    if (!took.empty()) absl::StrAppend(&part, " ", took);
    parts.push_back(std::move(part));
  }
  return absl::StrJoin(parts, ", ");
}

}  // namespace atbridge::client
