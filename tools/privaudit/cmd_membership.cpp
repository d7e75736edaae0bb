// privaudit membership: how much of its training data a model's weights reveal, measured by
// membership inference on K reference models of one architecture trained on random halves of a
// pool (--train-size or --train-per-class); --test-size images are RMIA's population. Flags ->
// options -> experiments::run_membership_experiment -> results.json, roc.svg, most_exposed.png.
#include <filesystem>
#include <iostream>

#include "command.h"
#include "privaudit/experiments/membership_experiment.h"
#include "privaudit/util/error.h"
#include "privaudit/util/text.h"

namespace privaudit::cli {
namespace {

// Pool and population when --train-size / --test-size are left at 0: K models on halves of all
// 60,000 Fashion-MNIST images is not what a first run wants.
constexpr int64_t kDefaultPool = 1000;
constexpr int64_t kDefaultPopulation = 1000;

struct MembershipFlags {
  experiments::MembershipExperimentOptions options;
  std::string arch;
  std::vector<int64_t> widths;
  bool group_norm = false;  // the models' blocks, as privaudit train's flags
  std::string activation;
  int epochs = 0;
  std::string optimizer = "adam";
  double learning_rate = 0;
  std::string schedule = "cosine";
  std::string attacks = "all";
  std::string cache;
  std::string references;       // a folder of models the user trained
  std::string reconstructions;  // privaudit invert's reconstructions.pt
  // DP-SGD references (--dp-noise or --dp-epsilon), as privaudit train's flags.
  defense::DpOptions dp;
  CLI::Option* dp_noise = nullptr;
  CLI::Option* dp_epsilon = nullptr;
  CLI::Option* delta = nullptr;  // of the epsilon lower bound
};

// --dp-*: every reference model trains with DP-SGD, so the epsilon lower bound is measured on
// models whose accountant epsilon results.json records beside it.
void check_dp_flags(MembershipFlags& f) {
  const bool noise = f.dp_noise->count() > 0, epsilon = f.dp_epsilon->count() > 0;
  if (!noise && !epsilon) return;
  require_usage(!(noise && epsilon), "--dp-noise and --dp-epsilon exclude each other: give one");
  require_usage(!noise || f.dp.noise_multiplier > 0, "--dp-noise must be positive");
  require_usage(!epsilon || f.dp.target_epsilon > 0, "--dp-epsilon must be positive");
  require_usage(f.references.empty(),
                "--dp-noise/--dp-epsilon train the reference models: not with --references");
  f.options.dp = f.dp;
  // The lower bound and the guarantee compare only at one delta: the DP delta unless --delta.
  if (f.delta->count() == 0) f.options.epsilon.delta = f.dp.delta;
}

// --reconstructions FILE, once the pool is loaded: a file that is there must be a good one; one
// that is not there (the audit names the file of an invert stage that may have failed) leaves the
// view out with a warning.
void load_reconstructions_flag(MembershipFlags& f, Context& ctx) {
  if (f.reconstructions.empty()) return;
  if (!std::filesystem::exists(f.reconstructions)) {
    std::cerr << "privaudit membership: warning: " << f.reconstructions
              << " does not exist: the most exposed images are shown without reconstructions"
              << std::endl;
    return;
  }
  f.options.reconstructions =
      experiments::load_reconstructions(f.reconstructions, ctx.splits->train);
  f.options.reconstructions_source = f.reconstructions;
}

std::vector<attacks::MembershipAttack> parse_attacks(const std::string& list) {
  if (list == "all") return attacks::all_membership_attacks();
  std::vector<attacks::MembershipAttack> out;
  for (const auto& name : split_list(list)) out.push_back(attacks::parse_membership_attack(name));
  return out;
}

// Before the data loads: flags become options, bad ones are refused.
void check_membership(MembershipFlags& f, Context& ctx) {
  auto& common = ctx.flags;
  if (common.train_size == 0 && common.train_per_class == 0) common.train_size = kDefaultPool;
  if (common.test_size == 0) common.test_size = kDefaultPopulation;
  require_usage(
      (f.arch.empty() ? 0 : 1) + (f.references.empty() ? 0 : 1) + (common.model.empty() ? 0 : 1) ==
          1,
      "give one of --arch (train built-in models), --model FILE (train re-initialised "
      "copies of it) or --references DIR (models you trained)");
  require_usage(!f.arch.empty() || (f.widths.empty() && !f.group_norm && f.activation.empty()),
                "--widths, --group-norm and --activation shape --arch's models; a --model or "
                "--references file has its own");
  if (!f.activation.empty()) models::parse_activation(f.activation);  // a bad name: one line
  f.options.attacks = parse_attacks(f.attacks);
  f.options.epsilon.seed = common.seed;
  f.options.null_seed = common.seed + 1;
  check_dp_flags(f);
  if (!f.references.empty()) return;
  auto& recipe = f.options.references.recipe;
  recipe.epochs = f.epochs > 0     ? f.epochs
                  : f.arch.empty() ? train::default_epochs(models::Arch::kMlp)
                                   : train::default_epochs(models::parse_arch(f.arch));
  recipe.optimizer = train::parse_optimizer(f.optimizer);
  recipe.learning_rate = f.learning_rate > 0
                             ? f.learning_rate
                             : (recipe.optimizer == train::OptimizerKind::kAdam ? 1e-3 : 0.05);
  recipe.schedule = train::parse_schedule(f.schedule);
  f.options.references.seed = common.seed;
  f.options.references.cache_dir =
      f.cache.empty() ? (std::filesystem::path(common.out) / "references").string() : f.cache;
  f.options.attack.validate(f.options.references.models);
  require_usage(f.options.references.models >= 2,
                "--models " + std::to_string(f.options.references.models) +
                    ": membership needs at least 2 models (a target and a reference)");
}

// --references DIR: the user's models and which pool images trained each.
int run_given_references(MembershipFlags& f, Context& ctx) {
  const auto& splits = *ctx.splits;
  models::ModelFileOptions file_options;
  file_options.device = ctx.device;
  const auto refs = attacks::load_reference_folder(f.references, splits.train, file_options);
  std::vector<models::Classifier*> models;
  for (const auto& model : refs.models) models.push_back(model.get());
  say(ctx.flags, "membership: " + std::to_string(models.size()) + " models from " + f.references +
                     " (" + models.front()->summary() + ") on a pool of " +
                     std::to_string(splits.train.size()) + " images");
  // Scoring is quick: the lead rank does it, the others wait.
  if (!ctx.world().lead()) return 0;
  auto result = experiments::evaluate_membership(models, refs.in_mask, splits.train, splits.test,
                                                 f.options, reporter(ctx.flags), *ctx.sink);
  result.reference_files = refs.files;
  ctx.results.update(experiments::to_json(result, f.options));
  return 0;
}

// --model FILE: re-initialised copies of the user's model, trained on the halves.
int run_copies(MembershipFlags& f, Context& ctx) {
  const auto& splits = *ctx.splits;
  if (!ctx.world().lead()) return 0;  // one process trains the copies
  const auto probe = load_model_flag(ctx.flags, torch::kCPU);
  models::ModelFileOptions file_options;
  file_options.input_shape = probe.model->input_shape();
  file_options.classes = probe.model->num_classes();
  say(ctx.flags, "membership: " + std::to_string(f.options.references.models) +
                     " re-initialised copies of " + ctx.flags.model + " (" +
                     probe.model->summary() + ") on halves of a pool of " +
                     std::to_string(splits.train.size()) + " images, " +
                     std::to_string(f.options.references.recipe.epochs) + " epochs each");
  const auto result =
      experiments::run_membership_on_copies(ctx.flags.model, file_options, splits.train,
                                            splits.test, f.options, reporter(ctx.flags), *ctx.sink);
  ctx.results.update(experiments::to_json(result, f.options));
  ctx.results["model"] = {{"file", ctx.flags.model}, {"summary", probe.model->summary()}};
  return 0;
}

int run_membership(MembershipFlags& f, Context& ctx) {
  load_reconstructions_flag(f, ctx);
  if (!f.references.empty()) return run_given_references(f, ctx);
  if (!ctx.flags.model.empty()) return run_copies(f, ctx);
  const auto& splits = *ctx.splits;
  auto config = models::default_config(f.arch, model_input(splits), splits.train.num_classes());
  config.normalization = splits.normalization;
  if (!f.widths.empty()) config.widths = f.widths;
  config.group_norm = f.group_norm;
  if (!f.activation.empty()) config.activation = models::parse_activation(f.activation);
  config.validate();
  say(ctx.flags, "membership: " + std::to_string(f.options.references.models) + " " + f.arch +
                     " models on halves of a pool of " + std::to_string(splits.train.size()) +
                     " images (" + splits.train.source + "), " +
                     std::to_string(f.options.references.recipe.epochs) + " epochs each");
  f.options.references.device = ctx.device;
  const auto result = experiments::run_membership_experiment(
      config, splits.train, splits.test, f.options, reporter(ctx.flags), *ctx.sink, ctx.world());
  ctx.results.update(experiments::to_json(result, f.options));
  return 0;
}

Steps setup_membership(CLI::App& app, CommonFlags& common) {
  auto flags = std::make_shared<MembershipFlags>();
  auto& o = flags->options;
  app.add_option("--arch", flags->arch, "Architecture of the models: mlp, cnn, cnn-wide, vit");
  app.add_option("--model", common.model,
                 "Instead of --arch: a TorchScript file (or checkpoint) whose re-initialised "
                 "copies are trained as the models (docs/membership.md says how)");
  app.add_option("--input-shape", common.input_shape,
                 "C,H,W of a TorchScript --model, when the file cannot say");
  app.add_option("--classes", common.classes,
                 "Class count of a TorchScript --model, when the file cannot say");
  add_model_timeout_flag(app, common);
  app.add_option("--references", flags->references,
                 "Instead of --arch: a folder of models you trained, with membership.json naming "
                 "each file and the pool positions it trained on (docs/membership.md)");
  app.add_option("--widths", flags->widths, "Layer widths (mlp) or conv channels (cnn)")
      ->delimiter(',');
  app.add_flag("--group-norm", flags->group_norm,
               "Group normalisation in every block, as privaudit train's (per example: DP-SGD "
               "references need it where a model would have batch norm)");
  app.add_option("--activation", flags->activation,
                 "relu, leaky_relu, sigmoid, tanh, gelu (default: the architecture's), as "
                 "privaudit train's");
  app.add_option("--models", o.references.models,
                 "K: models trained on random halves of the pool; each is the target once, the "
                 "others its references")
      ->capture_default_str();
  app.add_option("--references-per-target", o.attack.references,
                 "References per target (the models after it; 0 = all K-1 others)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--epochs", flags->epochs, "Epochs per model (0 = the architecture's default)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--batch-size", o.references.recipe.batch_size, "Batch size")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--optimizer", flags->optimizer, "adam or sgd")->capture_default_str();
  app.add_option("--lr", flags->learning_rate, "Learning rate (0 = 1e-3 for Adam, 0.05 for SGD)");
  app.add_option("--weight-decay", o.references.recipe.weight_decay, "Weight decay")
      ->capture_default_str();
  app.add_option("--schedule", flags->schedule, "cosine, step or constant")->capture_default_str();
  app.add_option("--attacks", flags->attacks,
                 "all, or a list of loss, lira_offline, lira_offline_fixed, lira_online, "
                 "lira_online_fixed, rmia_offline")
      ->capture_default_str();
  app.add_option("--rmia-a", o.attack.rmia_a, "Offline RMIA's a: p_IN = a p_OUT + 1 - a")
      ->capture_default_str();
  app.add_option("--rmia-gamma", o.attack.rmia_gamma, "RMIA's gamma")->capture_default_str();
  flags->delta =
      app.add_option("--delta", o.epsilon.delta,
                     "delta of the epsilon lower bound (with --dp-*: --dp-delta unless given)")
          ->capture_default_str();
  app.add_option("--confidence", o.epsilon.confidence, "Confidence of the epsilon lower bound")
      ->capture_default_str();
  app.add_option("--exposed", o.exposed, "Most exposed pool images shown in most_exposed.png")
      ->capture_default_str();
  app.add_option("--reconstructions", flags->reconstructions,
                 "privaudit invert's reconstructions.pt: each most exposed image is shown beside "
                 "the reconstruction nearest to it (exposed_vs_reconstructed.png)");
  flags->dp_noise = app.add_option("--dp-noise", flags->dp.noise_multiplier,
                                   "DP-SGD references: noise multiplier sigma");
  flags->dp_epsilon = app.add_option("--dp-epsilon", flags->dp.target_epsilon,
                                     "DP-SGD references: target epsilon (picks sigma)");
  app.add_option("--dp-clip", flags->dp.clip_norm, "DP-SGD references: per-example norm bound C")
      ->capture_default_str();
  app.add_option("--dp-delta", flags->dp.delta, "DP-SGD references: delta (below 1/N)")
      ->capture_default_str();
  app.add_option("--cache", flags->cache,
                 "Folder of trained reference models, reused by any run with the same "
                 "architecture, pool, recipe and seed (default: OUT/references)");
  return {[flags](Context& ctx) { check_membership(*flags, ctx); },
          [flags](Context& ctx) { return run_membership(*flags, ctx); }};
}

const bool cmd_membership_registered = register_command(
    {"membership",
     "Membership inference (LOSS, LiRA, RMIA) on reference models: ROC, TPR at low FPR, an "
     "epsilon lower bound",
     kData | kOutput | kResumable | kDistributed | kSink, setup_membership});

}  // namespace
}  // namespace privaudit::cli
