// Randomness without hidden state: a scope that seeds LibTorch's global generators and gives
// their previous state back when it ends, and draws from explicit generators that work for
// tensors on any device.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace privaudit {

// LibTorch draws module initialisation and nn::Dropout masks from its global generators, and
// offers no way to pass one in. A unit that builds modules or trains with dropout seeds them in
// this scope: its draws depend on its own seed only, and whatever runs after it draws what it
// would have drawn without it.
class ScopedGlobalSeed {
 public:
  explicit ScopedGlobalSeed(uint64_t seed);
  ~ScopedGlobalSeed();
  ScopedGlobalSeed(const ScopedGlobalSeed&) = delete;
  ScopedGlobalSeed& operator=(const ScopedGlobalSeed&) = delete;
  // Seeds again (e.g. once per epoch) without giving up the saved state.
  void reseed(uint64_t seed);

 private:
  torch::Tensor cpu_state_;
  std::vector<torch::Tensor> cuda_states_;
};

// N(0,1) / U(0,1) / Bernoulli(p) tensors of `sizes` on `device`, drawn on the CPU from
// `generator` and moved: the same seed gives the same values on every device.
torch::Tensor randn_on(at::IntArrayRef sizes, torch::Generator& generator, torch::Device device);
torch::Tensor rand_on(at::IntArrayRef sizes, torch::Generator& generator, torch::Device device);
torch::Tensor bernoulli_on(at::IntArrayRef sizes, double p, torch::Generator& generator,
                           torch::Device device);

}  // namespace privaudit
