// Process-wide settings every command shares: device, threads, seed.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace privaudit {

// Parses "cpu" or "cuda[:N]"; throws UsageError for anything else or for CUDA without a GPU.
torch::Device parse_device(const std::string& name);

// Runs LibTorch's operators, and the BLAS under them (OpenBLAS, when that is the one loaded),
// on `threads` threads; 0 leaves the defaults (all cores).
void set_threads(int threads);

// Seeds LibTorch's global generators (CPU and every CUDA device). Commands call it once at their
// start; library code uses ScopedGlobalSeed (util/rng.h) instead.
void seed_everything(uint64_t seed);

// A generator for code that takes its randomness explicitly.
torch::Generator make_generator(uint64_t seed);

}  // namespace privaudit
