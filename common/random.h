// Randomness behind an interface (jittered backoff, ids) so tests can fix it.
#ifndef ATBRIDGE_COMMON_RANDOM_H_
#define ATBRIDGE_COMMON_RANDOM_H_

#include <cstdint>
#include <memory>
#include <string>

namespace atbridge {

// Implementations are thread-safe.
class Random {
 public:
  virtual ~Random() = default;
  // Uniform in [0, 1).
  virtual double UniformDouble() = 0;
  // Uniform 64-bit value.
  virtual uint64_t Next64() = 0;
  // Uniform in [0, n); 0 when n == 0.
  uint64_t Uniform(uint64_t n);
  // `bytes` random bytes as lowercase hex (2 * bytes characters).
  std::string HexId(int bytes);
};

// A Random seeded from the OS entropy source.
std::unique_ptr<Random> NewSystemRandom();

// A deterministic Random (mt19937_64) with the given seed.
std::unique_ptr<Random> NewSeededRandom(uint64_t seed);

}  // namespace atbridge

#endif  // ATBRIDGE_COMMON_RANDOM_H_
