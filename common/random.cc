#include "common/random.h"

#include <mutex>
#include <random>

namespace atbridge {

namespace {

class MtRandom final : public Random {
 public:
  explicit MtRandom(uint64_t seed) : engine_(seed) {}

  double UniformDouble() override {
    std::lock_guard<std::mutex> lock(mu_);
    return std::uniform_real_distribution<double>(0.0, 1.0)(engine_);
  }

  uint64_t Next64() override {
    std::lock_guard<std::mutex> lock(mu_);
    return engine_();
  }

 private:
  std::mutex mu_;
  std::mt19937_64 engine_;
};

}  // namespace

uint64_t Random::Uniform(uint64_t n) {
  if (n == 0) return 0;
  // Rejection sampling removes modulo bias.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t v;
  do {
    v = Next64();
  } while (v >= limit);
  return v % n;
}

std::string Random::HexId(int bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(static_cast<size_t>(bytes) * 2);
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    if (i % 8 == 0) v = Next64();
    unsigned b = static_cast<unsigned>(v & 0xff);
    v >>= 8;
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

std::unique_ptr<Random> NewSystemRandom() {
  std::random_device rd;
  uint64_t seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  return std::make_unique<MtRandom>(seed);
}

std::unique_ptr<Random> NewSeededRandom(uint64_t seed) { return std::make_unique<MtRandom>(seed); }

}  // namespace atbridge
