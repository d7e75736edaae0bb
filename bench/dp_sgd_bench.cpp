// Benchmark `dp-sgd`: training samples per second of each default model without privacy (SGD,
// one backward pass per batch), with DP-SGD as it trains (train::clipped_gradient_sum: one
// backward pass per batch, weights' norms from their factors where that is cheaper; clip, sum,
// noise, step), with every per-example gradient materialised from the same pass
// (train::per_example_gradients, then clip), and with the reference that runs one backward pass
// per example.
//
// privaudit_bench dp-sgd [--batches N] [--loop-batches N] [--batch-size B] [--threads T]
//                        [--arch mlp,cnn,vit] [--factors cheaper|always]
#include <torch/torch.h>

#include <cstdio>
#include <sstream>

#include "bench.h"
#include "privaudit/defense/dp_sgd.h"
#include "privaudit/models/builtin.h"
#include "privaudit/train/per_example.h"
#include "privaudit/util/rng.h"
#include "privaudit/util/runtime.h"

namespace privaudit::bench {
namespace {

struct DpBenchOptions {
  int batches = 20;
  int loop_batches = 2;  // the per-example loop is slow: fewer batches
  int64_t batch_size = 128;
  int threads = 0;
  std::vector<std::string> archs = {"mlp", "cnn", "vit"};
  train::Factors factors = train::Factors::kCheaper;  // --factors cheaper|always
};

DpBenchOptions parse_dp_bench(const std::vector<std::string>& args) {
  DpBenchOptions options;
  for (size_t i = 0; i + 1 < args.size(); i += 2) {
    if (args[i] == "--batches") {
      options.batches = std::stoi(args[i + 1]);
    } else if (args[i] == "--loop-batches") {
      options.loop_batches = std::stoi(args[i + 1]);
    } else if (args[i] == "--batch-size") {
      options.batch_size = std::stoll(args[i + 1]);
    } else if (args[i] == "--threads") {
      options.threads = std::stoi(args[i + 1]);
    } else if (args[i] == "--factors") {
      if (args[i + 1] != "cheaper" && args[i + 1] != "always") {
        throw std::runtime_error("dp-sgd: --factors is cheaper or always");
      }
      options.factors =
          args[i + 1] == "always" ? train::Factors::kAlways : train::Factors::kCheaper;
    } else if (args[i] == "--arch") {
      options.archs.clear();
      std::stringstream list(args[i + 1]);
      for (std::string arch; std::getline(list, arch, ',');) options.archs.push_back(arch);
    } else {
      throw std::runtime_error("dp-sgd: unknown argument " + args[i]);
    }
  }
  return options;
}

enum class StepKind { kNonPrivate, kDpFactored, kDpMaterialised, kDpLoop };

double dp_bench_samples_per_second(const models::ModelConfig& config, StepKind kind, int batches,
                                   int64_t batch_size,
                                   train::Factors factors = train::Factors::kCheaper) {
  torch::manual_seed(0);
  models::BuiltinClassifier model(config);
  model.set_training(true);
  torch::optim::SGD optimizer(model.parameters(), torch::optim::SGDOptions(0.05));
  const auto images = torch::rand(config.input.with_batch(batch_size));
  const auto labels = torch::randint(config.classes, {batch_size}, torch::kLong);
  auto noise = make_generator(1);
  const auto step = [&] {
    optimizer.zero_grad();
    if (kind == StepKind::kNonPrivate) {
      torch::nn::functional::cross_entropy(model.forward(images), labels).backward();
    } else {
      std::vector<torch::Tensor> sum;
      if (kind == StepKind::kDpFactored) {
        sum = train::clipped_gradient_sum(model, images, labels, 1.0, factors).sum;
      } else {
        const auto per_example = kind == StepKind::kDpMaterialised
                                     ? train::per_example_gradients(model, images, labels)
                                     : train::per_example_gradients_by_loop(model, images, labels);
        sum = train::clip_and_sum(per_example.gradients, 1.0).sum;
      }
      auto parameters = model.parameters();
      for (size_t p = 0; p < parameters.size(); ++p) {
        parameters[p].mutable_grad() =
            (sum[p] + randn_on(sum[p].sizes(), noise, torch::kCPU)) / double(batch_size);
      }
    }
    optimizer.step();
  };
  step();  // warm-up
  const double seconds = time_seconds([&] {
    for (int i = 0; i < batches; ++i) step();
  });
  return double(batches * batch_size) / seconds;
}

int run_dp_sgd_bench(const std::vector<std::string>& args) {
  auto options = parse_dp_bench(args);
  privaudit::set_threads(options.threads);
  std::printf(
      "batch %lld, %d threads, SGD; Fashion-MNIST-shaped random data (1x28x28, 10 classes)\n",
      static_cast<long long>(options.batch_size), torch::get_num_threads());
  std::printf("%-5s %13s %13s %13s %13s %9s %11s %8s\n", "arch", "plain samp/s", "DP samp/s",
              "mat. samp/s", "loop samp/s", "DP/plain", "DP/mat.", "DP/loop");
  for (const auto& arch : options.archs) {
    const auto config = models::default_config(arch, {1, 28, 28}, 10);
    const double plain = dp_bench_samples_per_second(config, StepKind::kNonPrivate, options.batches,
                                                     options.batch_size);
    const double factored = dp_bench_samples_per_second(
        config, StepKind::kDpFactored, options.batches, options.batch_size, options.factors);
    const double materialised = dp_bench_samples_per_second(config, StepKind::kDpMaterialised,
                                                            options.batches, options.batch_size);
    const double loop = dp_bench_samples_per_second(config, StepKind::kDpLoop, options.loop_batches,
                                                    options.batch_size);
    std::printf("%-5s %13.0f %13.0f %13.0f %13.0f %9.2f %11.2f %8.1f\n", arch.c_str(), plain,
                factored, materialised, loop, factored / plain, factored / materialised,
                factored / loop);
    std::fflush(stdout);
  }
  return 0;
}

const bool dp_sgd_bench_registered = register_benchmark(
    {"dp-sgd",
     "training samples/s without privacy, with DP-SGD (one backward pass per batch: norms from "
     "factors, or every per-example gradient materialised) and with the per-example loop",
     run_dp_sgd_bench});

}  // namespace
}  // namespace privaudit::bench
