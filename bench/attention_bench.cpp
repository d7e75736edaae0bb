// Benchmark `attention`: the ViT's fused CPU attention (models/attention.h) against the same
// product in LibTorch's ops (bmm, softmax, bmm), forward alone and forward + backward, on the
// default ViT's shape at batch 128 (512 matrices of 17 tokens x 16).
//
// privaudit_bench attention [--matrices N] [--tokens T] [--dim D] [--repeats R] [--threads T]
#include <torch/torch.h>

#include <cstdio>
#include <string>

#include "bench.h"
#include "privaudit/models/attention.h"
#include "privaudit/util/runtime.h"

namespace privaudit::bench {
namespace {

int run_attention_bench(const std::vector<std::string>& args) {
  int64_t matrices = 512, tokens = 17, dim = 16;
  int repeats = 50, threads = 1;
  for (size_t i = 0; i + 1 < args.size(); i += 2) {
    const auto value = std::stoll(args[i + 1]);
    if (args[i] == "--matrices")
      matrices = value;
    else if (args[i] == "--tokens")
      tokens = value;
    else if (args[i] == "--dim")
      dim = value;
    else if (args[i] == "--repeats")
      repeats = static_cast<int>(value);
    else if (args[i] == "--threads")
      threads = static_cast<int>(value);
    else {
      std::fprintf(stderr, "attention: unknown option %s\n", args[i].c_str());
      return 2;
    }
  }
  set_threads(threads);
  torch::manual_seed(0);
  auto make = [&] { return torch::randn({matrices, tokens, dim}).requires_grad_(true); };
  const auto q = make(), k = make(), v = make();
  const auto weight = torch::randn({matrices, tokens, dim});
  const double scale = 1.0 / std::sqrt(static_cast<double>(dim));
  auto attend = [&](bool fused) {
    return fused ? models::scaled_dot_attention(q, k, v, scale)
                 : models::scaled_dot_attention_reference(q, k, v, scale);
  };
  auto forward_ms = [&](bool fused) {
    torch::NoGradGuard no_grad;
    attend(fused);
    return time_seconds([&] {
             for (int r = 0; r < repeats; ++r) attend(fused);
           }) /
           repeats * 1e3;
  };
  auto both_ms = [&](bool fused) {
    auto step = [&] { torch::autograd::grad({(attend(fused) * weight).sum()}, {q, k, v}); };
    step();
    return time_seconds([&] {
             for (int r = 0; r < repeats; ++r) step();
           }) /
           repeats * 1e3;
  };
  std::printf("%lld matrices of %lld x %lld, %d thread(s), mean of %d\n",
              static_cast<long long>(matrices), static_cast<long long>(tokens),
              static_cast<long long>(dim), threads, repeats);
  const double f_fused = forward_ms(true), f_torch = forward_ms(false);
  const double b_fused = both_ms(true), b_torch = both_ms(false);
  std::printf("forward:            fused %.3f ms, LibTorch %.3f ms (%.2fx)\n", f_fused, f_torch,
              f_torch / f_fused);
  std::printf("forward + backward: fused %.3f ms, LibTorch %.3f ms (%.2fx)\n", b_fused, b_torch,
              b_torch / b_fused);
  return 0;
}

const bool attention_bench_registered = register_benchmark(
    {"attention", "the ViT's fused CPU attention vs LibTorch's bmm/softmax", run_attention_bench});

}  // namespace
}  // namespace privaudit::bench
