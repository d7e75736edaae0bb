// Benchmark `membership`: reference-model training throughput of each architecture, as
// `privaudit membership` trains them (each model on a random half of the pool, the train
// command's recipe, no cache), in images per second (images x epochs over training seconds), and
// the time the leave-one-model-out scoring of every attack takes on the trained models; beside it
// the Python twin's throughput (bench/membership_twin.py: the same networks, recipe, pool and
// epochs in PyTorch, with the same thread count).
//
// privaudit_bench membership [--models K] [--pool N] [--epochs E] [--threads T] [--arch mlp,cnn]
#include <torch/torch.h>

#include <cstdio>
#include <sstream>

#include "bench.h"
#include "privaudit/attacks/weights/membership.h"
#include "privaudit/train/reference_models.h"
#include "privaudit/models/model_config.h"
#include "privaudit/util/runtime.h"

namespace privaudit::bench {
namespace {

struct MembershipBenchOptions {
  int models = 4;
  int64_t pool = 1000;
  int epochs = 2;
  int threads = 0;
  std::vector<std::string> archs = {"mlp", "cnn", "vit"};
};

MembershipBenchOptions parse_membership(const std::vector<std::string>& args) {
  MembershipBenchOptions options;
  for (size_t i = 0; i + 1 < args.size(); i += 2) {
    if (args[i] == "--models") {
      options.models = std::stoi(args[i + 1]);
    } else if (args[i] == "--pool") {
      options.pool = std::stoll(args[i + 1]);
    } else if (args[i] == "--epochs") {
      options.epochs = std::stoi(args[i + 1]);
    } else if (args[i] == "--threads") {
      options.threads = std::stoi(args[i + 1]);
    } else if (args[i] == "--arch") {
      options.archs.clear();
      std::stringstream list(args[i + 1]);
      for (std::string arch; std::getline(list, arch, ',');) options.archs.push_back(arch);
    } else {
      throw std::runtime_error("membership: unknown argument " + args[i]);
    }
  }
  return options;
}

// The twin's images per second, or a negative number (with a note on stderr) when Python cannot
// run it.
double python_images_per_second(const models::ModelConfig& config,
                                const MembershipBenchOptions& options) {
  const std::string command =
      "/usr/bin/python3 '" + source_path("bench/membership_twin.py") + "' '" +
      config.to_json().dump() + "' " + std::to_string(options.models) + " " +
      std::to_string(options.pool) + " " + std::to_string(options.epochs) + " " +
      std::to_string(options.threads);
  const auto json = run_twin("membership", command);
  if (json.is_null()) return -1;
  return json.at("images_per_second").get<double>();
}

int run_membership_bench(const std::vector<std::string>& args) {
  auto options = parse_membership(args);
  privaudit::set_threads(options.threads);
  options.threads = torch::get_num_threads();  // the twin runs with the same count
  auto generator = at::detail::createCPUGenerator(0);
  data::Dataset pool;
  pool.images = torch::rand({options.pool, 1, 28, 28}, generator);
  pool.labels = torch::randint(10, {options.pool}, generator, torch::kLong);
  for (int c = 0; c < 10; ++c) pool.class_names.push_back(std::to_string(c));
  data::Dataset population = pool.select(torch::arange(std::min<int64_t>(options.pool, 500)));
  std::printf(
      "%d models x %d epochs on halves of %lld random 1x28x28 images, batch 128, %d "
      "threads\n",
      options.models, options.epochs, static_cast<long long>(options.pool),
      torch::get_num_threads());
  std::printf("%-5s %10s %14s %12s %12s %14s %8s\n", "arch", "params", "images/s", "train s",
              "attacks s", "Py images/s", "C++/Py");
  for (const auto& arch : options.archs) {
    const auto config = models::default_config(arch, {1, 28, 28}, 10);
    train::ReferenceOptions refs;
    refs.models = options.models;
    refs.recipe.epochs = options.epochs;
    Progress quiet;
    const auto trained = train::train_reference_models(config, pool, refs, quiet);
    std::vector<models::Classifier*> models;
    for (const auto& m : trained.models) models.push_back(m.get());
    const double attack_seconds = time_seconds([&] {
      const auto confidences = attacks::measure_confidences(models, pool, population);
      for (const auto attack : attacks::all_membership_attacks())
        attacks::score_leave_one_out(confidences, trained.in_mask, attack, {});
    });
    const double cpp = trained.training_images / trained.training_seconds;
    const double python = python_images_per_second(config, options);
    std::printf("%-5s %10lld %14.0f %12.2f %12.2f", arch.c_str(),
                static_cast<long long>(trained.models.front()->parameter_count()), cpp,
                trained.training_seconds, attack_seconds);
    if (python > 0) {
      std::printf(" %14.0f %8.2f\n", python, cpp / python);
    } else {
      std::printf(" %14s %8s\n", "n/a", "n/a");
    }
    std::fflush(stdout);
  }
  return 0;
}

const bool membership_bench_registered = register_benchmark(
    {"membership", "reference-model training images/s per architecture, and attack scoring time",
     run_membership_bench});

}  // namespace
}  // namespace privaudit::bench
