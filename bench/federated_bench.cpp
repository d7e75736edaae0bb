// federated: seconds per iteration of Inverting Gradients with the FedAvg local steps unrolled
// (reverse mode through S SGD steps), against S, per architecture (28x28, 10 classes, untrained
// weights: speed does not depend on them), next to Inverting Gradients on the update read as one
// gradient of all its images.
//
// Then, on an untrained LeNet and 4 Fashion-MNIST test images (4 local steps of 1 image, labels
// known), the PSNR of both attacks against the local learning rate: from which rate on does
// replaying the local steps matter?
//
// usage: privaudit_bench federated [ITERATIONS=20] [ATTACK_ITERATIONS=600]
#include <cstdio>
#include <string>

#include "bench.h"
#include "privaudit/attacks/gradients/fedavg.h"
#include "privaudit/data/spec.h"
#include "privaudit/metrics/reconstruction_score.h"
#include "privaudit/models/builtin.h"

namespace privaudit::bench {
namespace {

int run_federated_bench(const std::vector<std::string>& args) {
  const int iterations = args.empty() ? 20 : std::stoi(args[0]);
  std::printf("4 images per client, local batch 1, %d iterations each; seconds per iteration\n",
              iterations);
  std::printf("%-5s %12s %12s %12s %12s %14s\n", "arch", "S=1", "S=2", "S=4", "S=8", "as-gradient");
  for (const std::string arch : {"lenet", "mlp", "cnn", "vit"}) {
    torch::manual_seed(0);
    models::BuiltinClassifier model(models::default_config(arch, {1, 28, 28}, 10));
    const auto images = torch::rand({4, 1, 28, 28});
    const auto labels = torch::arange(4, torch::kLong);
    attacks::InvertingGradientsOptions options;
    options.iterations = iterations;
    options.patience = 0;
    std::printf("%-5s", arch.c_str());
    for (const int64_t steps : {1, 2, 4, 8}) {
      attacks::LocalTraining training;
      training.steps = steps;
      const auto update = attacks::client_update(model, images, labels, training, true);
      Progress quiet;
      const double seconds = time_seconds(
          [&] { attacks::run_unrolled_inverting_gradients(model, update, options, quiet); });
      std::printf(" %12.4f", seconds / iterations);
      std::fflush(stdout);
    }
    attacks::LocalTraining training;
    training.steps = 4;
    const auto update = attacks::client_update(model, images, labels, training, true);
    Progress quiet;
    const double seconds = time_seconds([&] {
      attacks::run_inverting_gradients(model, attacks::update_as_gradient(update), 4, labels,
                                       options, quiet);
    });
    std::printf(" %14.4f\n", seconds / iterations);
  }

  const int attack_iterations = args.size() > 1 ? std::stoi(args[1]) : 600;
  data::Splits splits;
  try {
    splits = data::load_splits("fashion-mnist", {100, 200, 0});
  } catch (const std::exception& e) {
    std::printf("(Fashion-MNIST unavailable: %s; the learning-rate table needs it)\n", e.what());
    return 0;
  }
  const auto images = splits.test.images.slice(0, 0, 4), labels = splits.test.labels.slice(0, 0, 4);
  std::printf("\nuntrained LeNet, 4 test images, 4 local steps of 1, %d iterations; mean PSNR dB\n",
              attack_iterations);
  std::printf("%-8s %12s %12s\n", "lr", "as-gradient", "unrolled");
  torch::manual_seed(0);
  models::BuiltinClassifier lenet(models::default_config("lenet", {1, 28, 28}, 10));
  for (const double lr : {1e-3, 1e-2, 1e-1, 1.0}) {
    attacks::LocalTraining training;
    training.steps = 4;
    training.learning_rate = lr;
    const auto update = attacks::client_update(lenet, images, labels, training, true);
    attacks::InvertingGradientsOptions options;
    options.iterations = attack_iterations;
    Progress quiet;
    const auto plain = attacks::run_inverting_gradients(lenet, attacks::update_as_gradient(update),
                                                        4, labels, options, quiet);
    const auto unrolled = attacks::run_unrolled_inverting_gradients(lenet, update, options, quiet);
    std::printf(
        "%-8g %12.2f %12.2f\n", lr,
        metrics::score_reconstruction(plain.images, plain.labels, images, labels).mean_psnr,
        metrics::score_reconstruction(unrolled.images, unrolled.labels, images, labels).mean_psnr);
    std::fflush(stdout);
  }
  return 0;
}

const bool federated_bench_registered = register_benchmark(
    {"federated",
     "FedAvg: unrolled Inverting Gradients seconds/iteration against local steps [iterations]",
     run_federated_bench});

}  // namespace
}  // namespace privaudit::bench
