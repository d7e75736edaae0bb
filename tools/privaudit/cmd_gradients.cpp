// privaudit gradients: gradient-inversion attacks against a model's shared gradients for several
// batch sizes, scored against the targets, plus the gradient privacy audit. Flags -> options ->
// experiments::run_gradient_experiment -> results.json.
#include "command.h"
#include "privaudit/experiments/gradient_experiment.h"

namespace privaudit::cli {
namespace {

struct GradientsFlags {
  experiments::GradientExperimentOptions options;
  std::string attack = "all";
  bool labels_known = false;
  bool attack_certified = false;
};

void check_gradients(GradientsFlags& f, const CommonFlags& common) {
  auto& options = f.options;
  options.attacks = attacks::parse_gradient_attacks(f.attack);
  options.knowledge.labels = f.labels_known;
  options.skip_certified = !f.attack_certified;
  options.seed = common.seed;
  options.validate();  // before minutes of attacks
}

// Every rank keeps its batches' outcomes under --out/checkpoints: --resume reuses them.
int run_gradients(const GradientsFlags& f, Context& ctx) {
  const auto result = experiments::run_gradient_experiment(
      ctx.model(), ctx.splits->test, f.options, reporter(ctx.flags), *ctx.sink, ctx.world());
  ctx.results.update(experiments::to_json(result, f.options));
  return 0;
}

Steps setup_gradients(CLI::App& app, CommonFlags&) {
  auto flags = std::make_shared<GradientsFlags>();
  auto& o = flags->options;
  std::string names;
  for (const auto& attack : attacks::gradient_attacks()) names += attack.name + ", ";
  app.add_option("--attack", flags->attack, names + "or all (comma list allowed)")
      ->capture_default_str();
  app.add_option("--batch", o.batch_sizes, "Batch sizes of the shared gradients, e.g. 1,4,16")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--targets", o.targets,
                 "Test images to attack, sampled by --seed (default: the largest batch)")
      ->check(CLI::PositiveNumber);
  app.add_option("--indices", o.indices, "Test images to attack, by position (I,J,...)")
      ->delimiter(',');
  app.add_option("--iterations", o.budget.iterations,
                 "Attack iterations (0 = the attack's default: DLG 300, IG 4800)")
      ->capture_default_str();
  app.add_option("--restarts", o.budget.restarts,
                 "Extra random starts per attack; the lowest gradient distance is kept")
      ->capture_default_str();
  app.add_option(
         "--feature-iterations", o.budget.feature_iterations,
         "Features-then-invert's L-BFGS iterations after the starts (0 = its default, 2000)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--tv", o.budget.total_variation,
                 "Inverting Gradients total-variation weight (default 1e-4)");
  app.add_flag("--labels-known", flags->labels_known,
               "The server also knows each batch's labels (default: it knows the batch size only)");
  app.add_flag("--train-mode", o.train_mode, "Compute gradients with the model in train mode");
  add_update_defense_flags(app, o.update_defense, "the client");
  app.add_flag("--attack-certified", flags->attack_certified,
               "Run every attack even on batches an earlier attack already recovered exactly and "
               "certified (default: skip them; nothing can do better)");
  app.add_option("--attacker-distance", o.attacker_distance,
                 "Gradient cosine distance the audit assumes an attacker reaches")
      ->capture_default_str();
  app.add_option("--audit-probes", o.audit_probes,
                 "Audit attacker probes per batch size: short Inverting Gradients runs from random "
                 "starts (0 = paths and pairs only)")
      ->capture_default_str();
  app.add_option("--audit-probe-iterations", o.audit_probe_iterations,
                 "Inverting Gradients iterations of each audit probe")
      ->capture_default_str();
  return {[flags](Context& ctx) { check_gradients(*flags, ctx.flags); },
          [flags](Context& ctx) { return run_gradients(*flags, ctx); }};
}

const bool cmd_gradients_registered = register_command(
    {"gradients",
     "Reconstruct images from shared gradients (DLG, iDLG, "
     "Inverting Gradients) and audit the model",
     kModel | kData | kOutput | kResumable | kDistributed | kCheckpointSink, setup_gradients});

}  // namespace
}  // namespace privaudit::cli
