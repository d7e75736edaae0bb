// libFuzzer target for the SVHN .mat reader. libmatio reads only from a named file, so each input
// is written to a scratch file first. matio itself is not instrumented (Debian's build), so this
// checks our use of it and whatever ASan sees at its boundary, not matio's internals.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "privaudit/data/svhn.h"
#include "privaudit/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/privaudit-fuzz-" + std::to_string(::getpid()) + ".mat";
  FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) return 0;
  std::fwrite(data, 1, size, file);
  std::fclose(file);
  try {
    privaudit::data::read_svhn_mat(path);
  } catch (const privaudit::Error&) {
  }
  return 0;
}
