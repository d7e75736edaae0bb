// multi-target: Inverting Gradients on K independent batch-1 problems (one Fashion-MNIST test image
// each, its own shared gradient), one at a time against all K in one graph
// (attacks/multi_target.h), on an untrained LeNet and the built-in CNN: images per second, the
// ratio, and the median PSNR over the same K targets for both (the engine must not change what the
// attack reaches). Fixed iterations (patience off), so both do the same number of steps.
//
// Stacking is forced here (only_where_faster = false), also for models the attacks would run one
// at a time (StackedModel::worthwhile), to show why they do.
//
// usage: privaudit_bench multi-target [K=32] [ITERATIONS=100] [ARCHS=lenet,cnn]
#include <algorithm>
#include <cstdio>
#include <sstream>
#include <string>

#include "bench.h"
#include "privaudit/attacks/multi_target.h"
#include "privaudit/data/spec.h"
#include "privaudit/metrics/reconstruction_score.h"
#include "privaudit/models/builtin.h"
#include "privaudit/report/results.h"

namespace privaudit::bench {
namespace {

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

int run_multi_target_bench(const std::vector<std::string>& args) {
  const int64_t k = args.size() > 0 ? std::stoll(args[0]) : 32;
  const int iterations = args.size() > 1 ? std::stoi(args[1]) : 100;
  std::vector<std::string> archs;
  {
    std::stringstream list(args.size() > 2 ? args[2] : "lenet,cnn");
    for (std::string arch; std::getline(list, arch, ',');) archs.push_back(arch);
  }
  data::Splits splits;
  try {
    splits = data::load_splits("fashion-mnist", {100, k, 0});
  } catch (const std::exception& e) {
    std::printf("Fashion-MNIST unavailable: %s\n", e.what());
    return 1;
  }
  std::printf("K = %lld problems of batch 1, %d iterations each (patience off), %d threads\n",
              static_cast<long long>(k), iterations, torch::get_num_threads());
  std::printf("%-6s %12s %12s %8s %14s %14s %10s\n", "arch", "one img/s", "stacked img/s", "ratio",
              "one med PSNR", "stack med PSNR", "peak MiB");
  for (const auto& arch : archs) {
    torch::manual_seed(0);
    models::BuiltinClassifier model(models::default_config(arch, {1, 28, 28}, 10));
    model.set_training(false);
    std::vector<attacks::InversionProblem> problems;
    for (int64_t i = 0; i < k; ++i) {
      const auto image = splits.test.images.slice(0, i, i + 1);
      const auto label = splits.test.labels.slice(0, i, i + 1);
      problems.push_back(
          {attacks::shared_gradients(model, image, label), label, static_cast<uint64_t>(i)});
    }
    attacks::InvertingGradientsOptions options;
    options.iterations = iterations;
    options.patience = 0;
    Progress quiet;
    std::vector<attacks::Reconstruction> one, stacked;
    const double one_seconds = time_seconds([&] {
      one = attacks::run_inverting_gradients_many(model, problems, 1, options, 1, quiet);
    });
    const double stacked_seconds = time_seconds([&] {
      stacked = attacks::run_inverting_gradients_many(model, problems, 1, options, k, quiet, false);
    });
    std::vector<double> one_psnr, stacked_psnr;
    for (int64_t i = 0; i < k; ++i) {
      const auto image = splits.test.images.slice(0, i, i + 1);
      const auto label = splits.test.labels.slice(0, i, i + 1);
      const auto& a = one[static_cast<size_t>(i)];
      const auto& b = stacked[static_cast<size_t>(i)];
      one_psnr.push_back(metrics::score_reconstruction(a.images, a.labels, image, label).mean_psnr);
      stacked_psnr.push_back(
          metrics::score_reconstruction(b.images, b.labels, image, label).mean_psnr);
    }
    const double one_rate = static_cast<double>(k) / one_seconds;
    const double stacked_rate = static_cast<double>(k) / stacked_seconds;
    std::printf("%-6s %12.2f %12.2f %8.2f %14.2f %14.2f %10.0f\n", arch.c_str(), one_rate,
                stacked_rate, stacked_rate / one_rate, median(one_psnr), median(stacked_psnr),
                report::peak_memory_mib());
    std::fflush(stdout);
  }
  return 0;
}

const bool multi_target_bench_registered = register_benchmark(
    {"multi-target",
     "Inverting Gradients on K batch-1 problems: one at a time against one graph "
     "[K=32] [ITERATIONS=100] [ARCHS=lenet,cnn]",
     run_multi_target_bench});

}  // namespace
}  // namespace privaudit::bench
