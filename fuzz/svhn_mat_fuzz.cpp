// libFuzzer target for the SVHN .mat reader. libmatio reads only from a named file, so each input
// is written to a scratch file first (fuzz/scratch_file.h). matio itself is not instrumented
// (Debian's build), so this checks our use of it and whatever ASan sees at its boundary, not
// matio's internals; mat_layout_fuzz reaches more inputs of our own check.
#include <cstddef>
#include <cstdint>

#include "privaudit/data/svhn.h"
#include "privaudit/util/error.h"
#include "scratch_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (!privaudit::fuzz::write_scratch(data, size)) return 0;
  try {
    privaudit::data::read_svhn_mat(privaudit::fuzz::scratch_path());
  } catch (const privaudit::Error&) {
  }
  return 0;
}
