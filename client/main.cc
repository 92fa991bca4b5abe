// atbridgectl: the engineer's CLI (see docs/cli.md).
#include <cstdio>
#include <exception>

#include "client/cli.h"

int main(int argc, char** argv) {
  try {
    return atbridge::client::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: atbridgectl (INTERNAL): %s\n", e.what());
    return 1;
  }
}
