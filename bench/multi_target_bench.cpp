// multi-target: Inverting Gradients on K independent batch-1 problems (one Fashion-MNIST test image
// each, its own shared gradient), one at a time against all K in one graph
// (attacks/multi_target.h), on untrained built-in models (LeNet, CNN, MLP): images per second, the
// ratio, and the median PSNR over the same K targets for both (the engine must not change what the
// attack reaches). Fixed iterations (patience off), so both do the same number of steps. Then the
// Python twin (bench/multi_target_twin.py) runs the same K problems one at a time, as the Python
// tools do.
//
// SIGNED=0 runs Inverting Gradients on plain rather than signed gradients (one graph and one at a
// time then differ by rounding only, which separates the engine from the signed steps' chaos).
//
// usage: privaudit_bench multi-target [K=32] [ITERATIONS=100] [ARCHS=lenet,cnn] [TWIN=1] [SIGNED=1]
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "bench.h"
#include "privaudit/attacks/gradients/multi_target.h"
#include "privaudit/data/spec.h"
#include "privaudit/metrics/reconstruction_score.h"
#include "privaudit/models/builtin.h"
#include "privaudit/report/results.h"
#include "privaudit/util/runtime.h"

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
  const auto archs = list_argument(args, 2, "lenet,cnn");
  const bool twin = args.size() > 3 ? args[3] != "0" : true;
  const bool signed_gradients = args.size() > 4 ? args[4] != "0" : true;
  privaudit::set_threads(1);  // as the twin
  data::Splits splits;
  try {
    splits = data::load_splits("fashion-mnist", {100, k, 0});
  } catch (const std::exception& e) {
    std::printf("Fashion-MNIST unavailable: %s\n", e.what());
    return 1;
  }
  std::printf(
      "K = %lld problems of batch 1, %d iterations each (patience off, %s gradients), %d "
      "threads\n",
      static_cast<long long>(k), iterations, signed_gradients ? "signed" : "plain",
      torch::get_num_threads());
  std::printf("%-6s %10s %10s %7s %10s %7s %22s %9s\n", "arch", "one img/s", "stack img/s", "ratio",
              "Py img/s", "vs Py", "median PSNR one/stack/Py", "peak MiB");
  for (const auto& arch : archs) {
    torch::manual_seed(0);
    models::BuiltinClassifier model(models::default_config(arch, {1, 28, 28}, 10));
    model.set_training(false);
    const auto problems = one_image_problems(model, splits.test.images.slice(0, 0, k),
                                             splits.test.labels.slice(0, 0, k));
    attacks::InvertingGradientsOptions options;
    options.iterations = iterations;
    options.patience = 0;
    options.signed_gradients = signed_gradients;
    Progress quiet;
    std::vector<attacks::Reconstruction> one, stacked;
    const double one_seconds = time_seconds([&] {
      one = attacks::run_inverting_gradients_many(model, problems, 1, options, 1, quiet);
    });
    const double stacked_seconds = time_seconds([&] {
      stacked = attacks::run_inverting_gradients_many(model, problems, 1, options, k, quiet);
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
    double python_rate = std::nan(""), python_psnr = std::nan("");
    if (twin && signed_gradients) {
      namespace fs = std::filesystem;
      const fs::path dir = fs::temp_directory_path() /
                           ("privaudit_multi_target_bench_" + std::to_string(::getpid()));
      fs::create_directories(dir);
      std::vector<torch::Tensor> parts;
      for (const auto& p : model.parameters()) parts.push_back(p.detach().flatten());
      write_floats((dir / "weights.f32").string(), torch::cat(parts));
      write_floats((dir / "targets.f32").string(), splits.test.images.slice(0, 0, k));
      {
        std::ofstream labels(dir / "labels.txt");
        for (int64_t i = 0; i < k; ++i) labels << splits.test.labels[i].item<int64_t>() << "\n";
      }
      const auto json = run_twin(
          "multi-target", "/usr/bin/python3 '" + source_path("bench/multi_target_twin.py") + "' '" +
                              dir.string() + "' " + arch + " " + std::to_string(k) + " " +
                              std::to_string(iterations));
      fs::remove_all(dir);
      if (!json.is_null()) {
        python_rate = json.at("images_per_second").get<double>();
        python_psnr = json.at("median_psnr").get<double>();
      }
    }
    std::printf("%-6s %10.2f %10.2f %7.2f %10.2f %7.2f %8.2f/%6.2f/%6.2f %9.0f\n", arch.c_str(),
                one_rate, stacked_rate, stacked_rate / one_rate, python_rate,
                stacked_rate / python_rate, median(one_psnr), median(stacked_psnr), python_psnr,
                report::peak_memory_mib());
    // Paired: per target, one graph minus one at a time.
    std::vector<double> differences;
    int better = 0;
    for (int64_t i = 0; i < k; ++i) {
      differences.push_back(stacked_psnr[static_cast<size_t>(i)] -
                            one_psnr[static_cast<size_t>(i)]);
      better += differences.back() > 0;
    }
    std::vector<double> sizes;
    for (double d : differences) sizes.push_back(std::abs(d));
    std::printf(
        "       per target, one graph - one at a time: median %+.2f dB, median |.| %.2f dB, "
        "one graph higher on %d of %lld\n",
        median(differences), median(sizes), better, static_cast<long long>(k));
    std::fflush(stdout);
  }
  return 0;
}

const bool multi_target_bench_registered = register_benchmark(
    {"multi-target",
     "Inverting Gradients on K batch-1 problems: one at a time against one graph, and the Python "
     "twin [K=32] [ITERATIONS=100] [ARCHS=lenet,cnn] [TWIN=1] [SIGNED=1]",
     run_multi_target_bench});

}  // namespace
}  // namespace privaudit::bench
