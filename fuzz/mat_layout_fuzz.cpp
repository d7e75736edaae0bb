// libFuzzer target for the MAT-file structure check that runs before libmatio
// (data::check_mat_layout): every input must pass or raise privaudit::Error. svhn_mat_fuzz runs
// the whole reader, matio included (a few hundred inputs a second); this one only our check, so it
// reaches far more inputs. check_mat_layout reads a named file: each input goes to a scratch file
// (fuzz/scratch_file.h).
#include <cstddef>
#include <cstdint>

#include "privaudit/data/mat_layout.h"
#include "privaudit/util/error.h"
#include "scratch_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (!privaudit::fuzz::write_scratch(data, size)) return 0;
  try {
    privaudit::data::check_mat_layout(privaudit::fuzz::scratch_path());
  } catch (const privaudit::Error&) {
  }
  return 0;
}
