// privaudit invert: network inversion and training-like reconstruction from a model's weights
// (weights leak). Flags -> options -> experiments::run_inversion_experiment -> results.json.
#include "command.h"
#include "privaudit/experiments/inversion_experiment.h"

namespace privaudit::cli {
namespace {

struct InvertFlags {
  experiments::InversionExperimentOptions options;
  std::string conditioning =
      attacks::conditioning_name(attacks::InversionOptions().generator.conditioning);
  bool no_training_like = false;
};

void check_invert(InvertFlags& f, const CommonFlags& common) {
  auto& options = f.options;
  options.inversion.generator.conditioning = attacks::parse_conditioning(f.conditioning);
  options.inversion.training_like = !f.no_training_like;
  options.seed = common.seed;
  options.validate();
}

// The data is the model's own training data, as its checkpoint names it, unless --data says.
int run_invert(const InvertFlags& f, Context& ctx) {
  const auto& flags = ctx.flags;
  experiments::DataRequest request;
  request.spec = flags.data;
  request.spec_given = ctx.app.get_option("--data")->count() > 0;
  request.train_size = flags.train_size;
  request.test_size = flags.test_size;
  request.seed = flags.seed;
  auto [spec, load] = experiments::training_data_of(ctx.loaded->meta, request);
  if (flags.train_per_class > 0) {  // the user names the training images per class
    load.train_size = 0;
    load.train_per_class = flags.train_per_class;
  }
  ctx.data_spec = spec;
  const auto& splits = ctx.splits.emplace(data::load_splits(spec, load));
  const auto result = experiments::run_inversion_experiment(ctx.model(), splits, f.options,
                                                            reporter(flags), *ctx.sink);
  ctx.results.update(experiments::to_json(result, f.options));
  return 0;
}

Steps setup_invert(CLI::App& app, CommonFlags&) {
  auto flags = std::make_shared<InvertFlags>();
  auto& o = flags->options.inversion;
  app.add_option("--steps", o.steps, "Generator training steps")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--batch-size", o.batch_size, "Generated images per step")->capture_default_str();
  app.add_option("--lr", o.learning_rate, "Generator learning rate (Adam)")->capture_default_str();
  app.add_option("--per-class", o.per_class, "Reconstructions generated per class")
      ->capture_default_str();
  app.add_option("--conditioning", flags->conditioning, "label, vector, matrix or vector-matrix")
      ->capture_default_str();
  app.add_option("--latent", o.generator.latent_dim, "Latent noise size")->capture_default_str();
  app.add_option("--generator-channels", o.generator.channels, "Generator width")
      ->capture_default_str();
  app.add_option("--generator-dropout", o.generator.dropout,
                 "Dropout in the generator's up-sampling blocks")
      ->capture_default_str();
  app.add_option("--feature-cut", o.feature_cut,
                 "Cut point whose features the diversity terms use (default: last)");
  app.add_flag("--no-training-like", flags->no_training_like,
               "Stage 1 only: no training-like terms");
  app.add_option("--stage-two-from", o.stage_two_from,
                 "Fraction of the steps after which the training-like terms start")
      ->capture_default_str();
  app.add_option("--weight-ce", o.weight_ce, "Cross-entropy to the label")->capture_default_str();
  app.add_option("--weight-kl", o.weight_kl, "KL between the conditioning vector and the output")
      ->capture_default_str();
  app.add_option("--weight-cosine", o.weight_cosine, "Cosine similarity of features in a batch")
      ->capture_default_str();
  app.add_option("--weight-orthogonality", o.weight_orthogonality,
                 "Gram of features towards identity")
      ->capture_default_str();
  app.add_option("--weight-confidence", o.weight_confidence,
                 "Logit margin towards --confidence-margin")
      ->capture_default_str();
  app.add_option("--confidence-margin", o.confidence_margin, "Target logit margin")
      ->capture_default_str();
  app.add_option("--weight-perturbation", o.weight_perturbation,
                 "Cross-entropy under input sign noise")
      ->capture_default_str();
  app.add_option("--perturbation-epsilon", o.perturbation_epsilon, "Sign-noise size in pixel units")
      ->capture_default_str();
  app.add_option("--weight-dropout", o.weight_dropout,
                 "Cross-entropy under the classifier's dropout")
      ->capture_default_str();
  app.add_option("--weight-gradient", o.weight_gradient,
                 "Norm of the loss gradient w.r.t. the weights")
      ->capture_default_str();
  app.add_option("--weight-tv", o.weight_tv, "Total variation")->capture_default_str();
  app.add_option("--weight-range", o.weight_range, "Pre-sigmoid saturation penalty")
      ->capture_default_str();
  app.add_option("--stationarity-steps", o.stationarity.iterations,
                 "Stationarity (KKT) refinement iterations after the generator (0 = off)")
      ->capture_default_str();
  app.add_option("--stationarity-lr", o.stationarity.learning_rate,
                 "Stationarity refinement learning rate (Adam, pixel units)")
      ->capture_default_str();
  app.add_option("--candidates", flags->options.candidates,
                 "SSIM pre-filter: exact SSIM on the K nearest by MSE (0 = all)")
      ->capture_default_str();
  return {[flags](Context& ctx) { check_invert(*flags, ctx.flags); },
          [flags](Context& ctx) { return run_invert(*flags, ctx); }};
}

const bool cmd_invert_registered = register_command(
    {"invert", "Reconstruct training-like images from a model's weights (network inversion)",
     kModel | kDataFlags | kOutput | kResumable | kSink, setup_invert});

}  // namespace
}  // namespace privaudit::cli
