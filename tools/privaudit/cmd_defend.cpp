// privaudit defend: adversarial reconstruction learning, one defended model per (lambda, loss)
// point, and the utility-privacy curve. Flags -> options -> experiments::run_defense_experiment ->
// results.json.
#include "command.h"
#include "privaudit/experiments/defense_experiment.h"

namespace privaudit::cli {
namespace {

struct DefendFlags {
  experiments::DefenseExperimentOptions options;
  bool labels_known = false;
};

void check_defend(DefendFlags& f, const CommonFlags& common) {
  f.options.knowledge.labels = f.labels_known;
  f.options.seed = common.seed;
  f.options.validate();
}

// Every rank checkpoints its own points into --out, so --resume skips all finished ones.
int run_defend(const DefendFlags& f, Context& ctx) {
  const auto result =
      experiments::run_defense_experiment(ctx.flags.data, *ctx.splits, f.options,
                                          reporter(ctx.flags), *ctx.sink, ctx.device, ctx.world());
  ctx.results.update(experiments::to_json(result, f.options));
  return 0;
}

Steps setup_defend(CLI::App& app, CommonFlags&) {
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
  return {[flags](Context& ctx) { check_defend(*flags, ctx.flags); },
          [flags](Context& ctx) { return run_defend(*flags, ctx); }};
}

const bool cmd_defend_registered = register_command(
    {"defend", "Train models that resist feature inversion; the utility-privacy curve",
     kData | kOutput | kResumable | kDistributed | kCheckpointSink, setup_defend});

}  // namespace
}  // namespace privaudit::cli
