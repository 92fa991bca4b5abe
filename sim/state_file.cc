#include "sim/state_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/at/modem_responses.h"
#include "common/status/errors.h"

namespace atbridge::sim {

absl::StatusOr<StateMap> LoadStateFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return StateMap();
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
  StateMap states;
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
      states[imei] = std::move(state);
    }
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("state file ", path, ": ", e.what()));
  }
  return states;
}

absl::Status SaveStateFile(const std::string& path, const StateMap& states) {
  nlohmann::json modems = nlohmann::json::object();
  for (const auto& [imei, state] : states) {
    nlohmann::json creds = nlohmann::json::array();
    for (const auto& [key, content] : state.credentials) {
      creds.push_back({{"tag", key.first},
                       {"type", key.second},
                       {"content_b64", at::Base64UrlEncode(content)}});
    }
    modems[imei] = {{"cfun", state.cfun}, {"credentials", std::move(creds)}};
  }
  nlohmann::json doc = {{"version", 1}, {"modems", std::move(modems)}};
  std::string text = doc.dump(1);
  text.push_back('\n');

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

}  // namespace atbridge::sim
