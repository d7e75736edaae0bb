// privaudit invert: network inversion and training-like reconstruction from a model's weights
// (weights leak), scored against the nearest training and held-out images.
#include <cstdio>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "command.h"
#include "privaudit/attacks/network_inversion.h"
#include "privaudit/metrics/nearest_neighbors.h"
#include "privaudit/report/image_grid.h"
#include "privaudit/report/results.h"
#include "privaudit/report/svg_plot.h"
#include "privaudit/util/error.h"

namespace privaudit::cli {
namespace {

struct InvertFlags {
  CommonFlags common;
  attacks::InversionOptions options;
  std::string conditioning = "vector-matrix";
  bool no_training_like = false;
  int64_t candidates = 64;
  CLI::App* app = nullptr;
};

// The data the model was trained on: --data/--train-size when given, else the checkpoint's own
// spec, subset size and seed, so that "nearest training image" means the images it saw.
data::Splits load_training_data(const InvertFlags& f, const nlohmann::json& meta,
                                std::string& spec) {
  data::LoadOptions load;
  load.test_size = f.common.test_size;
  load.seed = f.common.seed;
  spec = f.common.data;
  const auto dataset = meta.value("dataset", nlohmann::json::object());
  const bool data_given = f.app->get_option("--data")->count() > 0;
  if (!data_given && dataset.contains("spec")) spec = dataset["spec"].get<std::string>();
  if (f.common.train_size > 0) {
    load.train_size = f.common.train_size;
  } else if (dataset.contains("train_size") && (!data_given || spec == dataset.value("spec", ""))) {
    load.train_size = dataset["train_size"].get<int64_t>();
  }
  if (meta.contains("training") && meta["training"].contains("seed")) {
    load.seed = meta["training"]["seed"].get<uint64_t>();
  }
  return data::load_splits(spec, load);
}

nlohmann::json options_json(const attacks::InversionOptions& o) {
  return {{"conditioning", attacks::conditioning_name(o.generator.conditioning)},
          {"latent_dim", o.generator.latent_dim},
          {"generator_channels", o.generator.channels},
          {"generator_dropout", o.generator.dropout},
          {"steps", o.steps},
          {"batch_size", o.batch_size},
          {"learning_rate", o.learning_rate},
          {"feature_cut", o.feature_cut},
          {"training_like", o.training_like},
          {"stage_two_from", o.stage_two_from},
          {"per_class", o.per_class},
          {"weights",
           {{"ce", o.weight_ce},
            {"kl", o.weight_kl},
            {"cosine", o.weight_cosine},
            {"orthogonality", o.weight_orthogonality},
            {"confidence", o.weight_confidence},
            {"perturbation", o.weight_perturbation},
            {"dropout", o.weight_dropout},
            {"gradient", o.weight_gradient},
            {"tv", o.weight_tv},
            {"range", o.weight_range}}},
          {"confidence_margin", o.confidence_margin},
          {"perturbation_epsilon", o.perturbation_epsilon},
          {"stationarity",
           {{"iterations", o.training_like ? o.stationarity.iterations : 0},
            {"learning_rate", o.stationarity.learning_rate},
            {"lambda_learning_rate", o.stationarity.lambda_learning_rate},
            {"lambda_min", o.stationarity.lambda_min},
            {"weight_range", o.stationarity.weight_range}}}};
}

// One curve over 1..n as an SVG line plot.
void write_curve(const std::string& path, const std::string& title, const std::string& x_label,
                 const std::string& y_label, const std::string& name,
                 const std::vector<double>& values, bool log_y) {
  report::Plot plot;
  plot.title = title;
  plot.x_label = x_label;
  plot.y_label = y_label;
  plot.log_y = log_y;
  report::Series series;
  series.name = name;
  for (size_t i = 0; i < values.size(); ++i) {
    series.x.push_back(static_cast<double>(i + 1));
    series.y.push_back(values[i]);
  }
  plot.series.push_back(std::move(series));
  report::write_svg(path, plot);
}

double mean_of(const torch::Tensor& t) { return t.to(torch::kDouble).mean().item<double>(); }

int run_invert(InvertFlags& f) {
  const auto device = start_run(f.common);
  auto& options = f.options;
  options.generator.conditioning = attacks::parse_conditioning(f.conditioning);
  options.training_like = !f.no_training_like;
  options.seed = f.common.seed;
  options.validate();
  if (f.candidates < 0) throw UsageError("--candidates must be non-negative");
  prepare_output(f.common);
  auto loaded = load_model_flag(f.common, device);
  auto& model = *loaded.model;
  std::string spec;
  const auto splits = load_training_data(f, loaded.meta, spec);
  const auto shape = model.input_shape();
  if (splits.train.channels() != shape.channels || splits.train.height() != shape.height ||
      splits.train.width() != shape.width || splits.train.num_classes() != model.num_classes()) {
    throw UsageError("--data " + spec + ": images or classes do not match the model's input (" +
                     model.summary() + ")");
  }
  const std::filesystem::path out(f.common.out);
  options.state_path = (out / "generator_state.pt").string();
  if (f.common.force) std::filesystem::remove(options.state_path);

  say(f.common, "inverting " + model.summary() + " with a " + f.conditioning +
                    "-conditioned generator, " + std::to_string(options.steps) + " steps" +
                    (options.training_like ? " (training-like stage on)" : ""));
  Progress progress("invert", options.steps, !f.common.quiet);
  const auto result = attacks::run_network_inversion(model, options, progress);
  if (result.resumed_from_step > 0)
    say(f.common, "resumed after step " + std::to_string(result.resumed_from_step));

  metrics::NearestNeighborOptions nn_options;
  nn_options.candidates = f.candidates;
  nn_options.seed = f.common.seed;
  const auto nn = metrics::nearest_neighbors(result.images, result.labels, splits.train,
                                             splits.test, nn_options);

  auto results = report::results_envelope("invert", f.common.seed);
  results["dataset"] = report::dataset_json(spec, splits);
  results["model"] = {
      {"file", f.common.model}, {"summary", model.summary()}, {"kind", model.kind()}};
  results["options"] = options_json(options);
  nlohmann::json entries = nlohmann::json::array();
  for (int64_t i = 0; i < result.images.size(0); ++i) {
    entries.push_back({{"class", result.labels[i].item<int64_t>()},
                       {"nearest_train_mse", nn.train_mse[i].item<double>()},
                       {"nearest_train_psnr", nn.train_psnr[i].item<double>()},
                       {"nearest_train_ssim", nn.train_ssim[i].item<double>()},
                       {"nearest_train_index", nn.train_index[i].item<int64_t>()},
                       {"nearest_test_mse", nn.test_mse[i].item<double>()},
                       {"nearest_test_psnr", nn.test_psnr[i].item<double>()},
                       {"nearest_test_ssim", nn.test_ssim[i].item<double>()},
                       {"nearest_test_index", nn.test_index[i].item<int64_t>()},
                       {"nearer_to_train", nn.nearer_to_train[i].item<double>()},
                       {"confidence", result.confidence[i].item<double>()}});
  }
  results["reconstructions"] = entries;
  const double likeness = nn.training_likeness();
  results["summary"] = {{"nearest_train_mse", mean_of(nn.train_mse)},
                        {"nearest_train_psnr", mean_of(nn.train_psnr)},
                        {"nearest_train_ssim", mean_of(nn.train_ssim)},
                        {"nearest_test_mse", mean_of(nn.test_mse)},
                        {"nearest_test_psnr", mean_of(nn.test_psnr)},
                        {"nearest_test_ssim", mean_of(nn.test_ssim)},
                        {"confidence", mean_of(result.confidence)},
                        {"training_likeness", likeness},
                        {"equal_pool_size", nn.pool_size_min},
                        {"ssim_candidates", f.candidates}};
  results["loss_curve"] = result.loss_curve;
  const bool refined = !result.stationarity_residual.empty();
  if (refined) {
    // The same scoring of the generator's own images: what the refinement added.
    const auto before = metrics::nearest_neighbors(result.generated, result.labels, splits.train,
                                                   splits.test, nn_options);
    results["summary_before_stationarity"] = {{"nearest_train_ssim", mean_of(before.train_ssim)},
                                              {"nearest_test_ssim", mean_of(before.test_ssim)},
                                              {"nearest_train_psnr", mean_of(before.train_psnr)},
                                              {"nearest_test_psnr", mean_of(before.test_psnr)},
                                              {"training_likeness", before.training_likeness()}};
    results["stationarity_residual"] = result.stationarity_residual;
    results["stationarity_seconds"] = result.stationarity_seconds;
  }
  results["seconds"] = result.seconds;

  // Per class: each reconstruction followed by its nearest training image (by SSIM).
  std::vector<torch::Tensor> rows;
  const auto nearest = splits.train.images.index_select(0, nn.train_index).to(torch::kFloat);
  for (int64_t c = 0; c < model.num_classes(); ++c) {
    const auto which = torch::nonzero(result.labels == c).flatten();
    if (which.numel() == 0) continue;
    const auto pairs =
        torch::stack({result.images.index_select(0, which), nearest.index_select(0, which)}, 1);
    rows.push_back(pairs.flatten(0, 1));
  }
  report::write_image_grid((out / "reconstructions.png").string(), rows, 3, 16);

  write_curve((out / "loss.svg").string(), "Generator training loss", "step", "loss", "total loss",
              result.loss_curve, false);
  if (refined) {
    write_curve((out / "stationarity.svg").string(),
                "Stationarity residual ||theta - sum lambda grad Phi||^2 / ||theta||^2",
                "iteration", "relative residual", "residual", result.stationarity_residual, true);
  }
  report::write_results(f.common.out, results);

  char line[300];
  std::snprintf(
      line, sizeof line,
      "training_likeness %.3f; mean nearest SSIM train %.3f / held-out %.3f; mean confidence %.3f; "
      "written to %s",
      likeness, mean_of(nn.train_ssim), mean_of(nn.test_ssim), mean_of(result.confidence),
      f.common.out.c_str());
  say(f.common, line);
  return 0;
}

std::function<int()> setup_invert(CLI::App& app) {
  auto flags = std::make_shared<InvertFlags>();
  flags->app = &app;
  auto& o = flags->options;
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
  app.add_option("--candidates", flags->candidates,
                 "SSIM pre-filter: exact SSIM on the K nearest by MSE (0 = all)")
      ->capture_default_str();
  add_model_flags(app, flags->common);
  add_data_flags(app, flags->common);
  add_output_flags(app, flags->common);
  add_runtime_flags(app, flags->common);
  return [flags]() { return run_invert(*flags); };
}

const bool registered = register_command(
    {"invert", "Reconstruct training-like images from a model's weights (network inversion)",
     setup_invert});

}  // namespace
}  // namespace privaudit::cli
