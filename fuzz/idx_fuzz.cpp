// libFuzzer target for the IDX parser (MNIST / Fashion-MNIST files): any input must either parse
// or raise privaudit::Error; anything else (a crash, an ASan report, another exception) is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "privaudit/data/idx.h"
#include "privaudit/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    privaudit::data::parse_idx(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  } catch (const privaudit::Error&) {
  }
  return 0;
}
