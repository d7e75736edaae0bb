// Benchmark `train`: training samples per second of each default model (Adam, batch 128, one
// step = forward, cross-entropy, backward, update) in LibTorch, next to the same model in Python
// PyTorch (bench/train_twin.py, run with /usr/bin/python3).
//
// privaudit_bench train [--batches N] [--batch-size B] [--threads T] [--arch mlp,cnn,vit]
#include <torch/torch.h>

#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "bench.h"
#include "privaudit/models/builtin.h"
#include "privaudit/models/model_config.h"
#include "privaudit/util/runtime.h"

namespace privaudit::bench {
namespace {

struct TrainBenchOptions {
  int batches = 200;
  int64_t batch_size = 128;
  // 0: LibTorch's default, as `privaudit train` uses (one intra-op thread per physical core: 1 on
  // the 2-hyperthread development machine, where --threads 2 makes the ViT 2.4x slower).
  int threads = 0;
  std::vector<std::string> archs = {"mlp", "cnn", "vit"};
};

TrainBenchOptions parse(const std::vector<std::string>& args) {
  TrainBenchOptions options;
  for (size_t i = 0; i + 1 < args.size(); i += 2) {
    if (args[i] == "--batches") {
      options.batches = std::stoi(args[i + 1]);
    } else if (args[i] == "--batch-size") {
      options.batch_size = std::stoll(args[i + 1]);
    } else if (args[i] == "--threads") {
      options.threads = std::stoi(args[i + 1]);
    } else if (args[i] == "--arch") {
      options.archs.clear();
      std::stringstream list(args[i + 1]);
      for (std::string arch; std::getline(list, arch, ',');) options.archs.push_back(arch);
    } else {
      throw std::runtime_error("train: unknown argument " + args[i]);
    }
  }
  return options;
}

double cpp_samples_per_second(const models::ModelConfig& config, const TrainBenchOptions& options) {
  torch::manual_seed(0);
  models::BuiltinClassifier model(config);
  model.set_training(true);
  torch::optim::Adam optimizer(model.parameters(), torch::optim::AdamOptions(1e-3));
  const auto images = torch::rand(config.input.with_batch(options.batch_size));
  const auto labels = torch::randint(config.classes, {options.batch_size}, torch::kLong);
  const auto step = [&] {
    optimizer.zero_grad();
    const auto loss = torch::nn::functional::cross_entropy(model.forward(images), labels);
    loss.backward();
    optimizer.step();
  };
  for (int i = 0; i < std::max(1, options.batches / 20); ++i) step();  // warm-up, as the twin does
  const double seconds = time_seconds([&] {
    for (int i = 0; i < options.batches; ++i) step();
  });
  return static_cast<double>(options.batches * options.batch_size) / seconds;
}

// The twin's figure, or a negative number (with a note on stderr) when Python cannot run it.
double python_samples_per_second(const models::ModelConfig& config,
                                 const TrainBenchOptions& options) {
  const std::string command = "/usr/bin/python3 '" + source_path("bench/train_twin.py") + "' '" +
                              config.to_json().dump() + "' " + std::to_string(options.batches) +
                              " " + std::to_string(options.batch_size) + " " +
                              std::to_string(options.threads);
  const auto json = run_twin("train", command);
  if (json.is_null()) return -1;
  return json.at("samples_per_second").get<double>();
}

int run_train_bench(const std::vector<std::string>& args) {
  auto options = parse(args);
  privaudit::set_threads(options.threads);
  options.threads = torch::get_num_threads();  // the twin runs with the same count
  const int threads = options.threads;
  std::printf(
      "%d batches of %lld, %d threads, Adam; Fashion-MNIST-shaped random data (1x28x28, 10 "
      "classes)\n",
      options.batches, static_cast<long long>(options.batch_size), threads);
  std::printf("%-5s %10s %14s %14s %8s\n", "arch", "params", "C++ samples/s", "Py samples/s",
              "C++/Py");
  for (const auto& arch : options.archs) {
    const auto config = models::default_config(arch, {1, 28, 28}, 10);
    const double cpp = cpp_samples_per_second(config, options);
    const double python = python_samples_per_second(config, options);
    models::BuiltinClassifier counted(config);
    if (python > 0) {
      std::printf("%-5s %10lld %14.0f %14.0f %8.2f\n", arch.c_str(),
                  static_cast<long long>(counted.parameter_count()), cpp, python, cpp / python);
    } else {
      std::printf("%-5s %10lld %14.0f %14s %8s\n", arch.c_str(),
                  static_cast<long long>(counted.parameter_count()), cpp, "n/a", "n/a");
    }
    std::fflush(stdout);
  }
  return 0;
}

const bool train_bench_registered = register_benchmark(
    {"train", "training samples/s of the default models, LibTorch vs Python PyTorch",
     run_train_bench});

}  // namespace
}  // namespace privaudit::bench
