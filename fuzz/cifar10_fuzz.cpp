// libFuzzer target for the CIFAR-10 binary batch parser: any input must either parse or raise
// privaudit::Error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "privaudit/data/cifar10.h"
#include "privaudit/util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    privaudit::data::parse_cifar10_batch(std::string(reinterpret_cast<const char*>(data), size),
                                         "fuzz");
  } catch (const privaudit::Error&) {
  }
  return 0;
}
