#include "absl/strings/str_cat.h"
#include "server/jobs/content_validator.h"

namespace atbridge::server::jobs {

bool IsSecretCredentialType(int type) { return type == 2 || type == 3; }

bool IsReadableCredentialType(int type) { return type == 0 || type == 1 || type == 4; }

std::string CredentialTypeLabel(int type) {
  switch (type) {
    case 0:
      return "root CA certificate";
    case 1:
      return "client certificate";
    case 2:
      return "client private key";
    case 3:
      return "PSK";
    case 4:
      return "PSK identity";
    case 5:
      return "public key";
    case 6:
      return "device identity public key";
    default:
      return absl::StrCat("type ", type);
  }
}

}  // namespace atbridge::server::jobs
