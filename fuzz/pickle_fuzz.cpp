// libFuzzer target for the pickle walk that guards LibTorch's unpickler (models::pickle_problem,
// run by check_archive_pickles on every pickle of a model archive before LibTorch reads it). It
// takes bytes, not files: millions of inputs a minute where model_fuzz, which loads whole archives
// through LibTorch, manages a few a second. Any input must return (a problem or ""); a crash or an
// ASan report is a bug. Seeds: the pickles inside the TorchScript seeds (fuzz/make_seeds.py).
#include <cstddef>
#include <cstdint>

#include "privaudit/models/torchscript.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  privaudit::models::pickle_problem(data, size);
  return 0;
}
