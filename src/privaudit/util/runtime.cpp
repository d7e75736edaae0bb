#include "privaudit/util/runtime.h"

#include <dlfcn.h>

#include "privaudit/util/error.h"

namespace privaudit {

torch::Device parse_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available()) {
      throw UsageError("--device " + name + ": this build of LibTorch sees no CUDA device");
    }
    torch::Device device = torch::kCPU;
    try {
      device = torch::Device(name);
    } catch (const c10::Error&) {
      throw UsageError("--device " + name + ": not a device name (cpu, cuda, cuda:N)");
    }
    const auto count = static_cast<int64_t>(torch::cuda::device_count());
    if (device.has_index() && device.index() >= count) {
      throw UsageError("--device " + name + ": this machine has " + std::to_string(count) +
                       " CUDA device(s), cuda:0 to cuda:" + std::to_string(count - 1));
    }
    return device;
  }
  throw UsageError("--device " + name + ": not a device name (cpu, cuda, cuda:N)");
}

void set_threads(int threads) {
  if (threads <= 0) return;
  torch::set_num_threads(threads);
  // Debian's LibTorch multiplies matrices through the system BLAS, whose OpenBLAS keeps its own
  // thread pool that set_num_threads does not reach: at --threads 1 on 2 cores a gradients run
  // spent 20 s of 29 in the kernel with OpenBLAS threads waiting (0.3 s once they were set).
  using SetThreads = void (*)(int);
  if (auto* openblas =
          reinterpret_cast<SetThreads>(::dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    openblas(threads);
  }
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
