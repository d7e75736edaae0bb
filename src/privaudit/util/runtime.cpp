#include "privaudit/util/runtime.h"

#include "privaudit/util/error.h"

namespace privaudit {

torch::Device parse_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available()) {
      throw UsageError("--device " + name + ": this build of LibTorch sees no CUDA device");
    }
    try {
      return torch::Device(name);
    } catch (const c10::Error&) {
      throw UsageError("--device " + name + ": not a device name (cpu, cuda, cuda:N)");
    }
  }
  throw UsageError("--device " + name + ": not a device name (cpu, cuda, cuda:N)");
}

void seed_everything(uint64_t seed) {
  torch::manual_seed(seed);
  if (torch::cuda::is_available()) torch::cuda::manual_seed_all(seed);
}

torch::Generator make_generator(uint64_t seed) {
  auto generator = at::detail::createCPUGenerator(seed);
  return generator;
}

}  // namespace privaudit
