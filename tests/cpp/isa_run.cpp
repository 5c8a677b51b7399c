// isa_run LEVEL PROGRAM [ARGS...]: runs PROGRAM when this CPU supports LEVEL (see
// mixtura::cpu_isa_levels), else exits 77, which ctest reports as skipped. Compiled for the baseline,
// so that it can say no on any CPU before a program compiled for a higher level starts.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <string>

#include "mixtura/core/build_info.hpp"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: isa_run LEVEL PROGRAM [ARGS...]\n");
    return 2;
  }
  const auto levels = mixtura::cpu_isa_levels();
  if (std::find(levels.begin(), levels.end(), std::string(argv[1])) == levels.end()) {
    std::printf("skipped: this CPU does not support the '%s' level\n", argv[1]);
    return 77;
  }
  execv(argv[2], argv + 2);
  std::perror("isa_run: execv");
  return 2;
}
