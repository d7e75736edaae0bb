// privaudit defend: adversarial reconstruction learning, one defended model per (lambda, loss)
// point, and the utility-privacy curve. Flags -> options -> experiments::run_defense_experiment ->
// results.json.
#include "command.h"
#include "privaudit/experiments/defense_experiment.h"
#include "privaudit/report/results.h"
#include "privaudit/util/distributed.h"

namespace privaudit::cli {
namespace {

struct DefendFlags {
  CommonFlags common;
  experiments::DefenseExperimentOptions options;
  bool labels_known = false;
};

int run_defend(DefendFlags& f, const CLI::App& app) {
  auto& options = f.options;
  options.knowledge.labels = f.labels_known;
  options.seed = f.common.seed;
  options.validate();
  if (const auto code = start_world(f.common)) return *code;
  const auto& world = dist::world();
  const auto device = start_run(f.common);
  const auto output = open_rank_output(f.common, app);
  const auto splits = load_data(f.common);
  // Every rank checkpoints its own points into --out, so --resume skips all finished ones.
  const auto sink = rank_sink(f.common, /*checkpoints=*/true);
  const auto result = experiments::run_defense_experiment(f.common.data, splits, options,
                                                          reporter(f.common), *sink, device, world);
  const auto distributed = world_results(world);
  if (!world.lead()) return 0;
  auto results = report::results_envelope("defend", f.common.seed);
  results.update(distributed);
  results.update(experiments::to_json(result, options));
  results["dataset"] = report::dataset_json(f.common.data, splits);
  report::write_results(f.common.out, results);
  return 0;
}

std::function<int()> setup_defend(CLI::App& app) {
  auto flags = std::make_shared<DefendFlags>();
  auto& o = flags->options;
  app.add_option("--arch", o.arch, "Architecture to defend (mlp, cnn, vit)")->capture_default_str();
  app.add_option("--lambdas", o.lambdas, "Weights of the adversary's loss, one model each")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--loss", o.losses, "Reconstruction loss: pixel, feature, or both (pixel,feature)")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--cut", o.cut, "Cut point whose output is protected (default: the middle one)");
  app.add_option("--epochs", o.epochs, "Training epochs per point")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--adversary-steps", o.adversary_steps,
                 "Simulated adversary's decoder steps per encoder step")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--objective", o.objective,
                 "What the encoder does to the simulated adversary: class-mean (pull its output to "
                 "the class's mean image) or max-error (the paper's: maximise its error)")
      ->capture_default_str();
  app.add_option("--head-epochs", o.head_epochs,
                 "Epochs retraining the head on the frozen defended encoder")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--noise", o.noise,
                 "Gaussian noise (sigma) added at the cut, in training and at inference: part of "
                 "the defended model")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--attack-epochs", o.attack_epochs, "Epochs of the fresh evaluation attacker")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--targets", o.targets, "Held-out images the attacker reconstructs")
      ->capture_default_str();
  app.add_option("--gradient-targets", o.gradient_targets,
                 "Targets of the Inverting Gradients check on each defended model (0 = skip)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--gradient-iterations", o.gradient_iterations, "Iterations of that check")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_flag("--labels-known", flags->labels_known,
               "The side audit's gradient attack also knows the labels (default: batch size only, "
               "as in gradients)");
  add_data_flags(app, flags->common);
  add_output_flags(app, flags->common, /*resumable=*/true);
  add_runtime_flags(app, flags->common);
  add_distributed_flags(app, flags->common);
  return [flags, &app]() { return run_defend(*flags, app); };
}

const bool cmd_defend_registered = register_command(
    {"defend", "Train models that resist feature inversion; the utility-privacy curve",
     setup_defend, /*resumable=*/true});

}  // namespace
}  // namespace privaudit::cli
