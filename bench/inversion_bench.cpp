// inversion: generator training steps per second against each built-in architecture (28x28,
// 10 classes, untrained weights: speed does not depend on them), stage 1 alone and with the
// training-like terms (double backprop through the classifier), and the stationarity refinement's
// iterations per second on 80 images (8 per class).
#include <algorithm>
#include <cstdio>
#include <string>

#include "bench.h"
#include "privaudit/attacks/weights/network_inversion.h"
#include "privaudit/attacks/weights/stationarity.h"
#include "privaudit/models/builtin.h"

namespace privaudit::bench {
namespace {

int run_inversion_bench(const std::vector<std::string>& args) {
  const int steps = args.empty() ? 20 : std::stoi(args[0]);
  std::printf("%-5s %-14s %10s %10s\n", "arch", "stage", "steps/s", "images/s");
  for (const std::string arch : {"mlp", "cnn", "vit"}) {
    torch::manual_seed(0);
    auto config = models::default_config(arch, {1, 28, 28}, 10);
    config.dropout = 0.2;
    models::BuiltinClassifier model(config);
    for (const bool training_like : {false, true}) {
      attacks::InversionOptions options;
      options.steps = steps;
      options.training_like = training_like;
      options.stage_two_from = 0.0;
      options.per_class = 1;
      options.stationarity.iterations = 0;  // timed on its own below
      Progress quiet;
      const double seconds =
          time_seconds([&] { attacks::run_network_inversion(model, options, quiet); });
      std::printf("%-5s %-14s %10.2f %10.1f\n", arch.c_str(),
                  training_like ? "training-like" : "inversion", steps / seconds,
                  steps * options.batch_size / seconds);
      std::fflush(stdout);
    }
    const int iterations = std::max(steps, 5);
    attacks::StationarityOptions options;
    options.iterations = iterations;
    const auto candidates = torch::rand({80, 1, 28, 28});
    const auto labels = torch::arange(10).repeat_interleave(8);
    Progress quiet;
    const double seconds = time_seconds(
        [&] { attacks::refine_by_stationarity(model, candidates, labels, options, quiet); });
    std::printf("%-5s %-14s %10.2f %10.1f\n", arch.c_str(), "stationarity", iterations / seconds,
                iterations * 80 / seconds);
    std::fflush(stdout);
  }
  return 0;
}

const bool inversion_bench_registered = register_benchmark(
    {"inversion",
     "network inversion: generator steps/s, stationarity iterations/s per architecture "
     "[steps]",
     run_inversion_bench});

}  // namespace
}  // namespace privaudit::bench
