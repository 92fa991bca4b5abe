#include "sim/modem.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/at/credential_types.h"
#include "common/at/modem_responses.h"
#include "common/at/pem.h"
#include "common/pki/pki.h"
#include "sim/crypto.h"
#include "sim/identity.h"

namespace atbridge::sim {
namespace {

constexpr uint32_t kMaxUserTag = 2147483647u;
constexpr int kCmeNotFound = 513;
constexpr int kCmeNoAccess = 514;
constexpr int kCmeMemoryFull = 515;
constexpr int kCmeActive = 518;
constexpr int kCmeKeygenFailed = 523;
constexpr int kCmeInvalidContent = 527;
constexpr int kCmeBusy = 528;

// Parameter accessors: false when the parameter is missing or not of the
// expected shape (the modem answers ERROR).
bool GetNumber(const std::vector<at::AtParam>& p, size_t i, int64_t lo, int64_t hi, int64_t* out) {
  if (i >= p.size() || p[i].kind != at::AtParam::Kind::kNumber) return false;
  if (p[i].number < lo || p[i].number > hi) return false;
  *out = p[i].number;
  return true;
}

bool IsEmptyParam(const std::vector<at::AtParam>& p, size_t i) {
  return i >= p.size() || p[i].kind == at::AtParam::Kind::kEmpty;
}

// An optional quoted string: missing/empty -> "", a string -> its text,
// anything else -> false.
bool GetOptionalString(const std::vector<at::AtParam>& p, size_t i, std::string* out) {
  if (IsEmptyParam(p, i)) {
    out->clear();
    return true;
  }
  if (p[i].kind != at::AtParam::Kind::kString) return false;
  *out = p[i].text;
  return true;
}

std::string CfunSupportLine() { return "+CFUN: (0,1,2,4,20,21,30,31,40,41,44)"; }

}  // namespace

ModemConfig ModemConfig::FromOptions(const SimOptions& options) {
  ModemConfig c;
  c.model = options.model;
  c.firmware = options.firmware;
  c.capacity = options.capacity;
  c.accept_crlf = options.accept_crlf;
  c.initial_cfun = options.initial_cfun;
  c.flaky = options.flaky;
  c.flaky_modes = options.flaky_modes;
  return c;
}

int DeviceTypeForModel(absl::string_view model) {
  if (absl::StrContains(model, "9151")) return 6;
  if (absl::StrContains(model, "9131")) return 5;
  if (absl::StrContains(model, "9161")) return 4;
  if (absl::StrContains(model, "SIBA")) return 2;
  return 1;  // nRF9160 SIAA
}

Modem::Modem(const ModemConfig& config, std::string imei, uint64_t seed)
    : config_(config),
      imei_(std::move(imei)),
      uuid_(DerivedUuid("device uuid", imei_)),
      uuid_text_(FormatUuid(uuid_)),
      random_(NewSeededRandom(seed)) {
  cfun_ = CfunState::FromMode(config_.initial_cfun);
  state_.cfun = cfun_.Reported();
}

void Modem::RestoreState(ModemState state) {
  state_ = std::move(state);
  cfun_ = CfunState::FromMode(state_.cfun);
  state_.cfun = cfun_.Reported();
}

void CfunState::Apply(int fun) {
  switch (fun) {
    case 0:
    case 4:
      *this = CfunState();
      minimum = fun == 0;
      break;
    case 1:
      lte = Lte::kOn;
      gnss = true;
      uicc = true;
      minimum = false;
      break;
    case 2:
      lte = Lte::kReceiveOnly;
      uicc = true;
      minimum = false;
      break;
    case 44:
      *this = CfunState();
      uicc = true;
      break;
    case 20:
      lte = Lte::kOff;
      break;
    case 21:
      lte = Lte::kOn;
      uicc = true;
      minimum = false;
      break;
    case 30:
      gnss = false;
      break;
    case 31:
      gnss = true;
      minimum = false;
      break;
    case 40:
      uicc = false;
      break;
    case 41:
      uicc = true;
      minimum = false;
      break;
    default:
      break;
  }
}

int CfunState::Reported() const {
  if (lte == Lte::kReceiveOnly) return 2;
  if (lte == Lte::kOn || gnss) return 1;
  if (minimum) return 0;
  return uicc ? 44 : 4;
}

bool CfunState::Active() const {
  const int mode = Reported();
  return mode == 1 || mode == 2;
}

CfunState CfunState::FromMode(int fun) {
  CfunState state;  // Offline (4).
  state.Apply(fun);
  return state;
}

Modem::~Modem() = default;

void Modem::Reboot() { cmee_ = 0; }

std::string Modem::RandomBytes(size_t n) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>(random_->Uniform(256));
  return out;
}

absl::StatusOr<const IdentityKey*> Modem::Identity() {
  if (!identity_) {
    auto key = IdentityKey::Derive(absl::StrCat("modem identity:", imei_));
    if (!key.ok()) return key.status();
    identity_ = std::move(*key);
  }
  return identity_.get();
}

std::string Modem::IdentityPublicKeyDer() {
  auto key = Identity();
  return key.ok() ? (*key)->public_key_der() : std::string();
}

std::optional<FlakyMode> Modem::DrawFault(std::initializer_list<FlakyMode> applicable) {
  if (config_.flaky <= 0.0) return std::nullopt;
  std::vector<FlakyMode> modes;
  for (FlakyMode m : applicable) {
    if (config_.flaky_modes.count(m) > 0) modes.push_back(m);
  }
  if (modes.empty()) return std::nullopt;
  if (random_->UniformDouble() >= config_.flaky) return std::nullopt;
  return modes[random_->Uniform(modes.size())];
}

std::string Modem::FinalLine(const Outcome& outcome) const {
  switch (outcome.kind) {
    case Outcome::kOk:
      return "OK";
    case Outcome::kCme:
      if (cmee_ == 1) return absl::StrCat("+CME ERROR: ", outcome.code);
      return "ERROR";
    case Outcome::kError:
      break;
  }
  return "ERROR";
}

Modem::Reply Modem::HandleOverflow() const { return Reply{at::FormatResponse({}, "ERROR")}; }

Modem::Reply Modem::HandleCommandLine(absl::string_view line) {
  Reply reply;
  auto commands = at::ParseCommandLine(line);
  if (!commands.ok()) {
    reply.bytes = at::FormatResponse({}, "ERROR");
    return reply;
  }
  std::vector<std::string> lines;
  Outcome outcome = Outcome::Ok();
  for (const at::AtCommand& cmd : *commands) {
    outcome = Execute(cmd, &lines, &reply.state_changed);
    if (outcome.silent) {
      reply.answered = false;
      return reply;
    }
    if (outcome.kind != Outcome::kOk) break;  // A chain stops at the first error.
  }
  reply.bytes = at::FormatResponse(lines, FinalLine(outcome));
  return reply;
}

Modem::Outcome Modem::Execute(const at::AtCommand& cmd, std::vector<std::string>* lines,
                              bool* changed) {
  using Type = at::AtCommand::Type;
  const std::string& name = cmd.name;
  if (name.empty()) return cmd.type == Type::kAction ? Outcome::Ok() : Outcome::Error();
  if (name == "+CFUN") return Cfun(cmd, lines, changed);
  if (name == "+CMEE") return Cmee(cmd, lines);
  if (name == "+CGSN") return Cgsn(cmd, lines);
  if (name == "%CMNG") return Cmng(cmd, lines, changed);
  if (name == "%KEYGEN") return Keygen(cmd, lines, changed);
  if (name == "%ATTESTTOKEN") {
    if (cmd.type == Type::kTest) return Outcome::Ok();
    if (cmd.type != Type::kAction) return Outcome::Error();
    return AttestToken(lines);
  }
  // Identification: action form only (the test form is accepted).
  std::optional<std::string> text;
  if (name == "+CGMI") {
    text = "Nordic Semiconductor ASA";
  } else if (name == "+CGMM") {
    text = config_.model;
  } else if (name == "+CGMR") {
    text = config_.firmware;
  } else if (name == "%SHORTSWVER") {
    absl::string_view fw = config_.firmware;
    absl::ConsumePrefix(&fw, "mfw_");
    text = absl::StrCat("%SHORTSWVER: ", fw);
  } else if (name == "%XMODEMUUID") {
    text =
        absl::StrCat("%XMODEMUUID: ", FormatUuid(DerivedUuid("firmware uuid", config_.firmware)));
  }
  if (!text.has_value()) return Outcome::Error();  // Unknown command.
  if (cmd.type == Type::kTest) return Outcome::Ok();
  if (cmd.type != Type::kAction) return Outcome::Error();
  lines->push_back(*std::move(text));
  return Outcome::Ok();
}

Modem::Outcome Modem::Cfun(const at::AtCommand& cmd, std::vector<std::string>* lines,
                           bool* changed) {
  switch (cmd.type) {
    case at::AtCommand::Type::kRead:
      lines->push_back(absl::StrCat("+CFUN: ", cfun_.Reported()));
      return Outcome::Ok();
    case at::AtCommand::Type::kTest:
      lines->push_back(CfunSupportLine());
      return Outcome::Ok();
    case at::AtCommand::Type::kSet: {
      int64_t mode = 0;
      if (cmd.params.size() != 1 || !GetNumber(cmd.params, 0, 0, 255, &mode) ||
          !IsAcceptedCfun(static_cast<int>(mode))) {
        return Outcome::Error();
      }
      cfun_.Apply(static_cast<int>(mode));
      if (state_.cfun != cfun_.Reported()) {
        state_.cfun = cfun_.Reported();
        *changed = true;
      }
      return Outcome::Ok();
    }
    case at::AtCommand::Type::kAction:
      break;
  }
  return Outcome::Error();
}

Modem::Outcome Modem::Cmee(const at::AtCommand& cmd, std::vector<std::string>* lines) {
  switch (cmd.type) {
    case at::AtCommand::Type::kRead:
      lines->push_back(absl::StrCat("+CMEE: ", cmee_));
      return Outcome::Ok();
    case at::AtCommand::Type::kTest:
      lines->push_back("+CMEE: (0,1)");
      return Outcome::Ok();
    case at::AtCommand::Type::kSet: {
      int64_t n = 0;
      if (cmd.params.size() != 1 || !GetNumber(cmd.params, 0, 0, 1, &n)) return Outcome::Error();
      cmee_ = static_cast<int>(n);
      return Outcome::Ok();
    }
    case at::AtCommand::Type::kAction:
      break;
  }
  return Outcome::Error();
}

Modem::Outcome Modem::Cgsn(const at::AtCommand& cmd, std::vector<std::string>* lines) {
  static constexpr absl::string_view kSvn = "12";
  switch (cmd.type) {
    case at::AtCommand::Type::kAction:
      lines->push_back(imei_);
      return Outcome::Ok();
    case at::AtCommand::Type::kTest:
      lines->push_back("+CGSN: (0-3)");
      return Outcome::Ok();
    case at::AtCommand::Type::kSet: {
      int64_t snt = 0;
      if (cmd.params.size() != 1 || !GetNumber(cmd.params, 0, 0, 3, &snt)) return Outcome::Error();
      switch (snt) {
        case 0:
          lines->push_back(imei_);
          break;
        case 1:
          lines->push_back(absl::StrCat("+CGSN: \"", imei_, "\""));
          break;
        case 2:
          lines->push_back(absl::StrCat("+CGSN: \"", imei_.substr(0, 14), kSvn, "\""));
          break;
        default:
          lines->push_back(absl::StrCat("+CGSN: \"", kSvn, "\""));
          break;
      }
      return Outcome::Ok();
    }
    case at::AtCommand::Type::kRead:
      break;
  }
  return Outcome::Error();
}

Modem::Outcome Modem::Cmng(const at::AtCommand& cmd, std::vector<std::string>* lines,
                           bool* changed) {
  if (cmd.type == at::AtCommand::Type::kTest) return Outcome::Ok();
  if (cmd.type != at::AtCommand::Type::kSet) return Outcome::Error();
  const auto& p = cmd.params;
  int64_t opcode = 0;
  if (!GetNumber(p, 0, 0, 3, &opcode)) return Outcome::Error();
  int64_t tag = 0;
  int64_t type = 0;
  switch (opcode) {
    case 0: {  // Write.
      if (p.size() < 4 || p.size() > 5 || !GetNumber(p, 1, 0, 4294967295LL, &tag) ||
          !GetNumber(p, 2, 0, at::kMaxCredentialType, &type) ||
          p[3].kind != at::AtParam::Kind::kString || p[3].text.empty()) {
        return Outcome::Error();
      }
      std::string passwd;
      if (!GetOptionalString(p, 4, &passwd)) return Outcome::Error();
      if (cfun_.Active()) return Outcome::Cme(kCmeActive);
      if (tag > kMaxUserTag || type >= 5) return Outcome::Cme(kCmeNoAccess);
      const std::string& content = p[3].text;
      if (at::IsCertificateType(static_cast<int>(type)) &&
          (!at::ModemAcceptsCertificatePem(content, {.accept_crlf = config_.accept_crlf}) ||
           !ModemSupportsCertificateKeys(content))) {
        return Outcome::Cme(kCmeInvalidContent);
      }
      auto key = std::make_pair(static_cast<uint32_t>(tag), static_cast<int>(type));
      if (state_.credentials.count(key) == 0 &&
          state_.credentials.size() >= static_cast<size_t>(config_.capacity)) {
        return Outcome::Cme(kCmeMemoryFull);
      }
      auto fault = DrawFault({FlakyMode::kCorrupt, FlakyMode::kBusy, FlakyMode::kSilent});
      if (fault == FlakyMode::kBusy) return Outcome::Cme(kCmeBusy);
      std::string stored = content;
      if (fault == FlakyMode::kCorrupt) {
        // A bit flips on the way to NVM: same length, different hash.
        size_t pos = random_->Uniform(stored.size());
        stored[pos] = static_cast<char>(stored[pos] ^ 0x01);
      }
      state_.credentials[key] = std::move(stored);
      *changed = true;
      Outcome out = Outcome::Ok();
      out.silent = fault == FlakyMode::kSilent;
      return out;
    }
    case 1: {  // List.
      if (p.size() > 3) return Outcome::Error();
      std::optional<int64_t> tag_filter;
      std::optional<int64_t> type_filter;
      if (!IsEmptyParam(p, 1)) {
        if (!GetNumber(p, 1, 0, 4294967295LL, &tag)) return Outcome::Error();
        tag_filter = tag;
      }
      if (!IsEmptyParam(p, 2)) {
        if (!GetNumber(p, 2, 0, at::kMaxCredentialType, &type)) return Outcome::Error();
        type_filter = type;
      }
      // std::map orders by (tag, type).
      for (const auto& [k, content] : state_.credentials) {
        if (tag_filter && k.first != *tag_filter) continue;
        if (type_filter && k.second != *type_filter) continue;
        lines->push_back(
            absl::StrCat("%CMNG: ", k.first, ",", k.second, ",\"", pki::Sha256Hex(content), "\""));
      }
      return Outcome::Ok();
    }
    case 2: {  // Read.
      if (p.size() != 3 || !GetNumber(p, 1, 0, 4294967295LL, &tag) ||
          !GetNumber(p, 2, 0, at::kMaxCredentialType, &type)) {
        return Outcome::Error();
      }
      if (!at::IsReadableType(static_cast<int>(type))) return Outcome::Cme(kCmeNoAccess);
      auto it = state_.credentials.find({static_cast<uint32_t>(tag), static_cast<int>(type)});
      if (it == state_.credentials.end()) return Outcome::Cme(kCmeNotFound);
      lines->push_back(absl::StrCat("%CMNG: ", tag, ",", type, ",\"", pki::Sha256Hex(it->second),
                                    "\",\"", it->second, "\""));
      return Outcome::Ok();
    }
    case 3: {  // Delete.
      if (p.size() != 3 || !GetNumber(p, 1, 0, 4294967295LL, &tag) ||
          !GetNumber(p, 2, 0, at::kMaxCredentialType, &type)) {
        return Outcome::Error();
      }
      if (cfun_.Active()) return Outcome::Cme(kCmeActive);
      if (tag > kMaxUserTag) return Outcome::Cme(kCmeNoAccess);
      auto it = state_.credentials.find({static_cast<uint32_t>(tag), static_cast<int>(type)});
      if (it == state_.credentials.end()) return Outcome::Cme(kCmeNotFound);
      auto fault = DrawFault({FlakyMode::kBusy, FlakyMode::kSilent});
      if (fault == FlakyMode::kBusy) return Outcome::Cme(kCmeBusy);
      state_.credentials.erase(it);
      *changed = true;
      Outcome out = Outcome::Ok();
      out.silent = fault == FlakyMode::kSilent;
      return out;
    }
    default:
      break;
  }
  return Outcome::Error();
}

Modem::Outcome Modem::Keygen(const at::AtCommand& cmd, std::vector<std::string>* lines,
                             bool* changed) {
  if (cmd.type == at::AtCommand::Type::kTest) return Outcome::Ok();
  if (cmd.type != at::AtCommand::Type::kSet) return Outcome::Error();
  const auto& p = cmd.params;
  int64_t tag = 0;
  int64_t key_type = 0;
  int64_t format = 0;
  std::string attributes;
  std::string key_usage;
  if (p.size() < 2 || p.size() > 5 || !GetNumber(p, 0, 0, 4294967295LL, &tag) ||
      !GetNumber(p, 1, 0, 255, &key_type) || !GetOptionalString(p, 3, &attributes) ||
      !GetOptionalString(p, 4, &key_usage)) {
    return Outcome::Error();
  }
  if (!IsEmptyParam(p, 2) && !GetNumber(p, 2, 0, 1, &format)) return Outcome::Error();
  if (key_type != 2 && key_type != 8) return Outcome::Error();
  if (!key_usage.empty()) {
    if (key_usage.size() != 9 || key_usage.find_first_not_of("01") != std::string::npos) {
      return Outcome::Error();
    }
  }
  std::vector<std::pair<std::string, std::string>> subject;
  if (!attributes.empty()) {
    auto parsed = ParseSubjectAttributes(attributes);
    if (!parsed.ok()) return Outcome::Error();
    subject = std::move(*parsed);
  }
  bool has_cn = false;
  for (const auto& [field, value] : subject) has_cn = has_cn || field == "CN";
  if (!has_cn) subject.emplace_back("CN", uuid_text_);

  if (cfun_.Active()) return Outcome::Cme(kCmeActive);
  // Key type 8 (endorsement key) is the manufacturer's; user tags only.
  if (key_type == 8 || tag > kMaxUserTag) return Outcome::Cme(kCmeNoAccess);
  auto entry = std::make_pair(static_cast<uint32_t>(tag), at::kTypeClientPrivateKey);
  if (state_.credentials.count(entry) == 0 &&
      state_.credentials.size() >= static_cast<size_t>(config_.capacity)) {
    return Outcome::Cme(kCmeMemoryFull);
  }
  auto fault = DrawFault({FlakyMode::kCorrupt, FlakyMode::kBusy, FlakyMode::kSilent});
  if (fault == FlakyMode::kBusy) return Outcome::Cme(kCmeBusy);

  auto key = ClientKey::Generate();
  if (!key.ok()) return Outcome::Cme(kCmeKeygenFailed);
  auto pem = (*key)->PrivateKeyPem();
  absl::StatusOr<std::string> body =
      format == 0 ? (*key)->CsrDer(subject, key_usage) : (*key)->PublicKeyDer();
  auto identity = Identity();
  if (!pem.ok() || !body.ok() || !identity.ok()) return Outcome::Cme(kCmeKeygenFailed);

  std::string tag_cbor = CborWriter().Uint(static_cast<uint64_t>(tag)).data();
  std::string payload =
      CborWriter()
          .Tag(55799)
          .ArrayHeader(5)
          .Uint(format == 0 ? 9 : 8)
          .Bytes(absl::string_view(reinterpret_cast<const char*>(uuid_.data()), uuid_.size()))
          .Bytes(tag_cbor)
          .Bytes(Sha256Raw(*body))
          .Bytes(RandomBytes(16))
          .data();
  auto cose = CoseSign1(**identity, payload, /*detached=*/false);
  if (!cose.ok()) return Outcome::Cme(kCmeKeygenFailed);

  state_.credentials[entry] = std::move(*pem);
  *changed = true;
  std::string out_body = std::move(*body);
  if (fault == FlakyMode::kCorrupt) {
    // The answer is damaged on its way out: the CSR's signature no longer
    // verifies (its last byte is part of the signature value).
    out_body.back() = static_cast<char>(out_body.back() ^ 0x01);
  }
  lines->push_back(absl::StrCat("%KEYGEN: \"", at::Base64UrlEncode(out_body), ".",
                                at::Base64UrlEncode(*cose), "\""));
  Outcome out = Outcome::Ok();
  out.silent = fault == FlakyMode::kSilent;
  return out;
}

Modem::Outcome Modem::AttestToken(std::vector<std::string>* lines) {
  if (attest_token_.empty()) {
    auto identity = Identity();
    if (!identity.ok()) return Outcome::Error();
    auto fw_uuid = DerivedUuid("firmware uuid", config_.firmware);
    auto extra = DerivedUuid("attestation", imei_);
    auto as_view = [](const std::array<uint8_t, 16>& a) {
      return absl::string_view(reinterpret_cast<const char*>(a.data()), a.size());
    };
    std::string body = CborWriter()
                           .Tag(55799)
                           .ArrayHeader(5)
                           .Uint(1)
                           .Bytes(as_view(uuid_))
                           .Uint(static_cast<uint64_t>(DeviceTypeForModel(config_.model)))
                           .Bytes(as_view(fw_uuid))
                           .Bytes(as_view(extra))
                           .data();
    auto cose = CoseSign1(**identity, body, /*detached=*/true);
    if (!cose.ok()) return Outcome::Error();
    attest_token_ = absl::StrCat("%ATTESTTOKEN: \"", at::Base64UrlEncode(body), ".",
                                 at::Base64UrlEncode(*cose), "\"");
  }
  lines->push_back(attest_token_);
  return Outcome::Ok();
}

}  // namespace atbridge::sim
