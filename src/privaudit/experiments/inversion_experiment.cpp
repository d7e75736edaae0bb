#include "privaudit/experiments/inversion_experiment.h"

#include <cstdio>

#include "privaudit/util/error.h"

namespace privaudit::experiments {
namespace {

double mean_of(const torch::Tensor& t) { return t.to(torch::kDouble).mean().item<double>(); }

report::Plot curve(const std::string& title, const std::string& x_label, const std::string& y_label,
                   const std::string& name, const std::vector<double>& values, bool log_y) {
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
  return plot;
}

// Per class: each reconstruction followed by its nearest training image (by SSIM).
std::vector<torch::Tensor> pairs_by_class(const attacks::InversionResult& inversion,
                                          const metrics::NearestNeighbors& nn,
                                          const data::Dataset& train, int64_t classes) {
  std::vector<torch::Tensor> rows;
  const auto nearest = train.images.index_select(0, nn.train_index).to(torch::kFloat);
  for (int64_t c = 0; c < classes; ++c) {
    const auto which = torch::nonzero(inversion.labels == c).flatten();
    if (which.numel() == 0) continue;
    const auto pairs =
        torch::stack({inversion.images.index_select(0, which), nearest.index_select(0, which)}, 1);
    rows.push_back(pairs.flatten(0, 1));
  }
  return rows;
}

// How the copy threshold was found (docs/inversion.md, "Verbatim copies").
nlohmann::json copy_calibration_json(const metrics::CopyThreshold& t,
                                     const InversionExperimentOptions& options) {
  return {{"rule",
           "k-th smallest nearest-train SSIM of m held-out images, k = ceil((1 - rate)(m + 1)) "
           "capped at m"},
          {"target_false_copy_rate", options.copy_false_rate},
          {"held_out_images", t.held_out_images},
          {"order_statistic", t.order_statistic},
          {"false_copy_rate_bound", t.false_copy_rate}};
}

}  // namespace

void InversionExperimentOptions::validate() const {
  inversion.validate();
  if (candidates < 0) throw UsageError("--candidates must be non-negative");
}

std::pair<std::string, data::LoadOptions> training_data_of(const nlohmann::json& meta,
                                                           const DataRequest& request) {
  data::LoadOptions load;
  load.test_size = request.test_size;
  load.seed = request.seed;
  std::string spec = request.spec;
  const auto dataset = meta.value("dataset", nlohmann::json::object());
  if (!request.spec_given && dataset.contains("spec") && dataset["spec"].is_string()) {
    spec = dataset["spec"].get<std::string>();
  }
  if (request.train_size > 0) {
    load.train_size = request.train_size;
  } else if (dataset.contains("train_size") && dataset["train_size"].is_number_integer() &&
             (!request.spec_given || spec == dataset.value("spec", ""))) {
    load.train_size = dataset["train_size"].get<int64_t>();
  }
  if (meta.contains("training") && meta["training"].is_object() &&
      meta["training"].contains("seed") && meta["training"]["seed"].is_number_integer()) {
    load.seed = meta["training"]["seed"].get<uint64_t>();
  }
  return {spec, load};
}

InversionExperimentResult run_inversion_experiment(models::Classifier& model,
                                                   const data::Splits& splits,
                                                   const InversionExperimentOptions& options,
                                                   const Reporter& reporter, OutputSink& sink) {
  auto inversion = options.inversion;
  inversion.seed = options.seed;
  const auto folder = sink.checkpoint_folder();
  inversion.state_path = folder ? (*folder / "generator_state.pt").string() : std::string();
  InversionExperimentOptions checked = options;
  checked.inversion = inversion;
  checked.validate();
  const auto shape = model.input_shape();
  if (splits.train.channels() != shape.channels || splits.train.height() != shape.height ||
      splits.train.width() != shape.width || splits.train.num_classes() != model.num_classes()) {
    throw UsageError("--data " + splits.train.source +
                     ": images or classes do not match the model's input (" + model.summary() +
                     ")");
  }
  reporter.say("inverting " + model.summary() + " with a " +
               attacks::conditioning_name(inversion.generator.conditioning) +
               "-conditioned generator, " + std::to_string(inversion.steps) + " steps" +
               (inversion.training_like ? " (training-like stage on)" : ""));
  InversionExperimentResult result;
  {
    const auto progress = reporter.progress("invert", inversion.steps);
    result.inversion = attacks::run_network_inversion(model, inversion, *progress);
  }
  const auto& r = result.inversion;
  if (r.resumed_from_step > 0)
    reporter.say("resumed after step " + std::to_string(r.resumed_from_step));

  metrics::NearestNeighborOptions nn_options;
  nn_options.candidates = options.candidates;
  nn_options.seed = options.seed;
  nn_options.copy_false_rate = options.copy_false_rate;
  nn_options.copy_threshold =
      metrics::calibrate_copy_threshold(splits.train, splits.test, nn_options);
  result.neighbours =
      metrics::nearest_neighbors(r.images, r.labels, splits.train, splits.test, nn_options);
  const bool refined = !r.stationarity_residual.empty();
  if (refined) {
    // The same scoring of the generator's own images: what the refinement added.
    result.before_stationarity =
        metrics::nearest_neighbors(r.generated, r.labels, splits.train, splits.test, nn_options);
  }
  const auto& nn = result.neighbours;
  sink.image_grid("reconstructions.png", pairs_by_class(r, nn, splits.train, model.num_classes()));
  // For `privaudit membership --reconstructions`: the most exposed images beside their nearest
  // reconstruction.
  sink.tensors("reconstructions.pt", {r.images, r.labels});
  sink.plot("loss.svg",
            curve("Generator training loss", "step", "loss", "total loss", r.loss_curve, false));
  if (refined) {
    sink.plot("stationarity.svg",
              curve("Stationarity residual ||theta - sum lambda grad Phi||^2 / ||theta||^2",
                    "iteration", "relative residual", "residual", r.stationarity_residual, true));
  }
  char line[300];
  std::snprintf(
      line, sizeof line,
      "training_likeness %.3f; verbatim copies %lld / %lld (SSIM > %.3f); mean nearest SSIM train "
      "%.3f / held-out %.3f; mean confidence %.3f",
      nn.training_likeness(), static_cast<long long>(nn.verbatim_copies()),
      static_cast<long long>(r.images.size(0)), nn.copy_threshold.ssim, mean_of(nn.train_ssim),
      mean_of(nn.test_ssim), mean_of(r.confidence));
  reporter.say(line);
  return result;
}

nlohmann::json to_json(const InversionExperimentResult& result,
                       const InversionExperimentOptions& options) {
  const auto& r = result.inversion;
  const auto& nn = result.neighbours;
  auto o = options.inversion;
  nlohmann::json out;
  out["options"] = {{"conditioning", attacks::conditioning_name(o.generator.conditioning)},
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
  nlohmann::json entries = nlohmann::json::array();
  for (int64_t i = 0; i < r.images.size(0); ++i) {
    entries.push_back({{"class", r.labels[i].item<int64_t>()},
                       {"nearest_train_mse", nn.train_mse[i].item<double>()},
                       {"nearest_train_psnr", nn.train_psnr[i].item<double>()},
                       {"nearest_train_ssim", nn.train_ssim[i].item<double>()},
                       {"nearest_train_index", nn.train_index[i].item<int64_t>()},
                       {"nearest_test_mse", nn.test_mse[i].item<double>()},
                       {"nearest_test_psnr", nn.test_psnr[i].item<double>()},
                       {"nearest_test_ssim", nn.test_ssim[i].item<double>()},
                       {"nearest_test_index", nn.test_index[i].item<int64_t>()},
                       {"nearer_to_train", nn.nearer_to_train[i].item<double>()},
                       {"copy_of_train", nn.copy_of_train[i].item<bool>()},
                       {"confidence", r.confidence[i].item<double>()}});
  }
  out["reconstructions"] = entries;
  out["summary"] = {{"nearest_train_mse", mean_of(nn.train_mse)},
                    {"nearest_train_psnr", mean_of(nn.train_psnr)},
                    {"nearest_train_ssim", mean_of(nn.train_ssim)},
                    {"nearest_test_mse", mean_of(nn.test_mse)},
                    {"nearest_test_psnr", mean_of(nn.test_psnr)},
                    {"nearest_test_ssim", mean_of(nn.test_ssim)},
                    {"confidence", mean_of(r.confidence)},
                    {"training_likeness", nn.training_likeness()},
                    {"equal_pool_size", nn.pool_size_min},
                    {"equal_pools_compared", nn.pools_compared},
                    {"verbatim_copies", nn.verbatim_copies()},
                    {"copy_threshold_ssim", nn.copy_threshold.ssim},
                    {"copy_calibration", copy_calibration_json(nn.copy_threshold, options)},
                    {"ssim_candidates", options.candidates}};
  out["loss_curve"] = r.loss_curve;
  if (result.before_stationarity) {
    const auto& before = *result.before_stationarity;
    out["summary_before_stationarity"] = {{"nearest_train_ssim", mean_of(before.train_ssim)},
                                          {"nearest_test_ssim", mean_of(before.test_ssim)},
                                          {"nearest_train_psnr", mean_of(before.train_psnr)},
                                          {"nearest_test_psnr", mean_of(before.test_psnr)},
                                          {"training_likeness", before.training_likeness()},
                                          {"verbatim_copies", before.verbatim_copies()}};
    out["stationarity_residual"] = r.stationarity_residual;
    out["stationarity_seconds"] = r.stationarity_seconds;
  }
  out["seconds"] = r.seconds;
  return out;
}

}  // namespace privaudit::experiments
