#include "sim/state_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/at/modem_responses.h"
#include "common/status/errors.h"

namespace atbridge::sim {
namespace {

std::string ModemJson(const ModemState& state) {
  nlohmann::json creds = nlohmann::json::array();
  for (const auto& [key, content] : state.credentials) {
    creds.push_back(
        {{"tag", key.first}, {"type", key.second}, {"content_b64", at::Base64UrlEncode(content)}});
  }
  return nlohmann::json{{"cfun", state.cfun}, {"credentials", std::move(creds)}}.dump();
}

absl::Status WriteAtomically(const std::string& path, const std::string& text) {
  std::string tmp = absl::StrCat(path, ".tmp-", getpid());
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return PosixError(errno, absl::StrCat("create ", tmp));
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      unlink(tmp.c_str());
      return PosixError(err, absl::StrCat("write ", tmp));
    }
    off += static_cast<size_t>(n);
  }
  if (close(fd) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return PosixError(err, absl::StrCat("close ", tmp));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    unlink(tmp.c_str());
    return PosixError(err, absl::StrCat("rename ", tmp, " to ", path));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<StateFile>> StateFile::Open(const std::string& path) {
  std::unique_ptr<StateFile> file(new StateFile(path));
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return file;
    return PosixError(errno, absl::StrCat("open state file ", path));
  }
  std::string text;
  char chunk[8192];
  while (true) {
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return PosixError(err, absl::StrCat("read state file ", path));
    }
    if (n == 0) break;
    text.append(chunk, static_cast<size_t>(n));
  }
  close(fd);
  try {
    nlohmann::json doc = nlohmann::json::parse(text);
    if (doc.value("version", 0) != 1) {
      return absl::InvalidArgumentError(absl::StrCat("state file ", path, ": unknown version"));
    }
    for (const auto& [imei, m] : doc.at("modems").items()) {
      ModemState state;
      state.cfun = m.at("cfun").get<int>();
      for (const auto& c : m.at("credentials")) {
        auto content = at::Base64UrlDecode(c.at("content_b64").get<std::string>());
        if (!content.ok()) {
          return absl::InvalidArgumentError(
              absl::StrCat("state file ", path, ": bad content for ", imei));
        }
        state.credentials[{c.at("tag").get<uint32_t>(), c.at("type").get<int>()}] =
            std::move(*content);
      }
      file->json_[imei] = ModemJson(state);
      file->states_[imei] = std::move(state);
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("state file ", path, ": ", e.what()));
  }
  return file;
}

std::optional<ModemState> StateFile::Get(const std::string& imei) const {
  auto it = states_.find(imei);
  if (it == states_.end()) return std::nullopt;
  return it->second;
}

void StateFile::Set(const std::string& imei, const ModemState& state) {
  states_[imei] = state;
  json_[imei] = ModemJson(state);
  dirty_ = true;
}

absl::Status StateFile::Save() {
  if (!dirty_) return absl::OkStatus();
  size_t size = 64;
  for (const auto& [key, object] : json_) size += key.size() + object.size() + 8;
  std::string text;
  text.reserve(size);
  text += "{\"version\": 1, \"modems\": {";
  bool first = true;
  for (const auto& [key, object] : json_) {
    // IMEIs are digits: no JSON escaping needed, but quote them properly anyway.
    absl::StrAppend(&text, first ? "\n" : ",\n", nlohmann::json(key).dump(), ": ", object);
    first = false;
  }
  text += "\n}}\n";
  absl::Status s = WriteAtomically(path_, text);
  if (s.ok()) dirty_ = false;
  return s;
}

absl::Status StateFile::Put(const std::string& imei, const ModemState& state) {
  Set(imei, state);
  return Save();
}

}  // namespace atbridge::sim
