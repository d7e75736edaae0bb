#include "privaudit/experiments/membership_experiment.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "privaudit/metrics/image_similarity.h"
#include "privaudit/report/results.h"
#include "privaudit/util/error.h"

namespace privaudit::experiments {
namespace {

// "0_1_percent" for 0.001, "1_percent" for 0.01.
std::string percent_key(double fpr) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", fpr * 100);
  std::string key = text;
  std::replace(key.begin(), key.end(), '.', '_');
  return key + "_percent";
}

nlohmann::json figures_json(const metrics::MembershipFigures& f) {
  using report::number_or_null;
  nlohmann::json out = {{"auc", number_or_null(f.auc.estimate)},
                        {"auc_low", number_or_null(f.auc.low)},
                        {"auc_high", number_or_null(f.auc.high)}};
  for (const auto& at : f.tpr_at_fpr) {
    const auto key = "tpr_at_" + percent_key(at.target_fpr) + "_fpr";
    out[key] = number_or_null(at.tpr.estimate);
    out[key + "_low"] = number_or_null(at.tpr.low);
    out[key + "_high"] = number_or_null(at.tpr.high);
  }
  const auto& e = f.epsilon;
  out["epsilon_lower_bound"] = e.epsilon;
  out["epsilon"] = {{"delta", e.delta},
                    {"confidence", e.confidence},
                    {"threshold", number_or_null(e.threshold)},
                    {"tpr_low", e.tpr_low},
                    {"fpr_high", e.fpr_high},
                    {"selection_decisions", e.selection_decisions},
                    {"bound_decisions", e.bound_decisions}};
  return out;
}

metrics::MembershipFigures figures_for(const torch::Tensor& scores, const torch::Tensor& mask,
                                       const MembershipExperimentOptions& options) {
  const auto decisions = attacks::flatten_decisions(scores, mask);
  return metrics::membership_figures(decisions.scores, decisions.members, options.fprs,
                                     options.epsilon, options.level);
}

// Decision indices k * N + i of the members scored at or above `threshold`.
std::vector<int64_t> detected_members(const torch::Tensor& scores, const torch::Tensor& in_mask,
                                      double threshold) {
  const auto hits = (in_mask.to(torch::kBool) & (scores.to(torch::kDouble) >= threshold))
                        .reshape({-1})
                        .nonzero()
                        .reshape({-1})
                        .to(torch::kLong)
                        .contiguous();
  return {hits.data_ptr<int64_t>(), hits.data_ptr<int64_t>() + hits.numel()};
}

double mean_over_models(const std::vector<double>& values) {
  double sum = 0;
  for (double v : values) sum += v;
  return values.empty() ? NAN : sum / static_cast<double>(values.size());
}

}  // namespace

torch::Tensor load_reconstructions(const std::string& path, const data::Dataset& pool) {
  if (!std::filesystem::exists(path)) throw Error(path + ": no such file");
  std::vector<torch::Tensor> values;
  try {
    torch::load(values, path);
  } catch (const std::exception&) {
    throw Error(path + ": not a reconstructions file (privaudit invert's reconstructions.pt)");
  }
  if (values.empty() || values[0].dim() != 4 || values[0].size(0) == 0 ||
      values[0].size(1) != pool.channels() || values[0].size(2) != pool.height() ||
      values[0].size(3) != pool.width()) {
    throw Error(path + ": the reconstructions are not images of the pool's shape (" +
                std::to_string(pool.channels()) + "x" + std::to_string(pool.height()) + "x" +
                std::to_string(pool.width()) + ")");
  }
  const auto images = values[0].to(torch::kFloat);
  if (!torch::isfinite(images).all().item<bool>() || images.min().item<float>() < 0 ||
      images.max().item<float>() > 1) {
    throw Error(path + ": the reconstructions hold values outside [0, 1] or not finite");
  }
  return images;
}

void MembershipExperimentOptions::validate(int64_t pool_size, int64_t classes) const {
  references.validate(pool_size, classes);
  attack.validate(references.models);
  require_usage(!attacks.empty(), "--attacks: name at least one attack");
  for (double fpr : fprs) require_usage(fpr > 0 && fpr < 1, "FPRs must be in (0, 1)");
  require_usage(epsilon.delta >= 0 && epsilon.delta < 1, "--delta must be in [0, 1)");
  require_usage(epsilon.confidence > 0 && epsilon.confidence < 1, "--confidence must be in (0, 1)");
  require_usage(level > 0 && level < 1, "the interval level must be in (0, 1)");
  require_usage(exposed >= 0, "--exposed must not be negative");
}

MembershipExperimentResult evaluate_membership(const std::vector<models::Classifier*>& models,
                                               const torch::Tensor& in_mask,
                                               const data::Dataset& pool,
                                               const data::Dataset& population,
                                               const MembershipExperimentOptions& options,
                                               const Reporter& reporter, OutputSink& sink,
                                               const std::vector<torch::Tensor>& pool_logits) {
  if (models.size() < 2) throw Error("membership: needs at least 2 models");
  options.attack.validate(static_cast<int64_t>(models.size()));
  MembershipExperimentResult result;
  result.pool_size = pool.size();
  result.population_size = population.size();
  result.models = static_cast<int64_t>(models.size());
  result.references_per_target =
      options.attack.references > 0 ? options.attack.references : result.models - 1;
  result.model_summary = models.front()->summary();
  result.parameters = models.front()->parameter_count();

  const auto confidences = attacks::measure_confidences(models, pool, population, pool_logits);
  const auto null_mask = attacks::shuffled_membership(in_mask, options.null_seed);
  for (const auto attack : options.attacks) {
    AttackFigures figures;
    figures.attack = attack;
    const auto scores = attacks::score_leave_one_out(confidences, in_mask, attack, options.attack);
    figures.figures = figures_for(scores, in_mask, options);
    if (!figures.figures.tpr_at_fpr.empty())
      figures.detected_members =
          detected_members(scores, in_mask, figures.figures.tpr_at_fpr.back().threshold);
    const auto null_scores =
        attacks::score_leave_one_out(confidences, null_mask, attack, options.attack);
    figures.null = figures_for(null_scores, null_mask, options);
    const auto& f = figures.figures;
    char line[200];
    std::snprintf(line, sizeof line,
                  "%-19s AUC %.3f  TPR@0.1%%FPR %.4f  TPR@1%%FPR %.4f  eps>= %.2f  (null AUC %.3f)",
                  attacks::membership_attack_name(attack).c_str(), f.auc.estimate,
                  f.tpr_at_fpr.empty() ? NAN : f.tpr_at_fpr.front().tpr.estimate,
                  f.tpr_at_fpr.empty() ? NAN : f.tpr_at_fpr.back().tpr.estimate, f.epsilon.epsilon,
                  figures.null.auc.estimate);
    reporter.say(line);
    result.attacks.push_back(std::move(figures));
  }

  // The per-image view: a pool image's mean LiRA score over the targets it trained.
  const auto lira = attacks::score_leave_one_out(
      confidences, in_mask, attacks::MembershipAttack::kLiraOnline, options.attack);
  const auto in = in_mask.to(torch::kDouble);
  const auto exposure = (lira * in).sum(0) / in.sum(0).clamp_min(1);
  const auto ranked =
      torch::where(in.sum(0) > 0, exposure,
                   torch::full_like(exposure, -std::numeric_limits<double>::infinity()));
  const auto count = std::min<int64_t>(options.exposed, pool.size());
  if (count > 0) {
    const auto top = std::get<1>(ranked.topk(count));
    for (int64_t i = 0; i < count; ++i) {
      result.most_exposed.push_back(top[i].item<int64_t>());
      result.most_exposed_scores.push_back(exposure[top[i]].item<double>());
    }
    const auto exposed_images = pool.images.index_select(0, top);
    sink.image_grid("most_exposed.png", {exposed_images});
    if (options.reconstructions.defined() && options.reconstructions.size(0) > 0) {
      // Each exposed image beside the reconstruction nearest to it: did the inversion rebuild
      // the images membership inference finds most exposed?
      const auto ssim = metrics::ssim_matrix(exposed_images.to(torch::kFloat).cpu(),
                                             options.reconstructions.to(torch::kFloat).cpu());
      const auto best = ssim.max(1);
      const auto best_ssim = std::get<0>(best).to(torch::kDouble);
      const auto best_index = std::get<1>(best);
      for (int64_t i = 0; i < count; ++i) {
        result.nearest_reconstruction.push_back(best_index[i].item<int64_t>());
        result.nearest_reconstruction_ssim.push_back(best_ssim[i].item<double>());
      }
      sink.image_grid("exposed_vs_reconstructed.png",
                      {exposed_images, options.reconstructions.index_select(0, best_index)});
    }
  }
  sink.plot("roc.svg", roc_plot(result));
  return result;
}

namespace {

// The references' options, with DP-SGD as their trainer under --dp-*.
train::ReferenceOptions reference_options(const MembershipExperimentOptions& options) {
  auto references = options.references;
  if (!options.dp) return references;
  const auto dp = *options.dp;
  references.trainer = [dp](models::BuiltinClassifier& model, const data::Splits& splits,
                            const train::TrainOptions& recipe, Progress& progress) {
    auto privacy =
        defense::plan_privacy(dp, model, splits.train.size(), recipe.batch_size, recipe.epochs);
    defense::train_private(model, splits, recipe, dp, privacy, progress);
  };
  references.trainer_key = dp.to_json();
  return references;
}

// What each DP reference model spends: all train on half of the pool, so one report.
std::optional<defense::PrivacyReport> reference_privacy(
    const models::ModelConfig& config, int64_t pool_size,
    const MembershipExperimentOptions& options) {
  if (!options.dp) return std::nullopt;
  const models::BuiltinClassifier probe(config);
  const auto& recipe = options.references.recipe;
  return defense::plan_privacy(*options.dp, probe, pool_size / 2, recipe.batch_size, recipe.epochs);
}

}  // namespace

MembershipExperimentResult run_membership_experiment(const models::ModelConfig& config,
                                                     const data::Dataset& pool,
                                                     const data::Dataset& population,
                                                     const MembershipExperimentOptions& options,
                                                     const Reporter& reporter, OutputSink& sink,
                                                     const dist::World& world) {
  options.validate(pool.size(), config.classes);
  const auto references = reference_options(options);
  const auto progress = reporter.progress("references");
  train::ReferenceShare shared;
  if (world.size() > 1) {
    const auto mine = train::train_reference_share(config, pool, references, world.rank(),
                                                   world.size(), *progress);
    const nlohmann::json figures = {{"trained", mine.trained},
                                    {"seconds", mine.training_seconds},
                                    {"images", mine.training_images}};
    const auto all = world.all_gather(figures.dump(), "membership: training the reference models");
    if (!world.lead()) return {};
    for (const auto& text : all) {
      const auto rank = nlohmann::json::parse(text);
      shared.trained += rank.at("trained").get<int>();
      shared.training_seconds += rank.at("seconds").get<double>();
      shared.training_images += rank.at("images").get<int64_t>();
    }
    reporter.say(std::to_string(shared.trained) + " reference models trained by " +
                 std::to_string(world.size()) + " processes");
  }
  const auto refs =
      train::train_reference_models(config, pool, references, *progress, [&](int k, bool cached) {
        reporter.say("reference model " + std::to_string(k + 1) + "/" +
                     std::to_string(options.references.models) +
                     (cached ? " loaded from the cache" : " trained"));
      });
  std::vector<models::Classifier*> models;
  for (const auto& model : refs.models) models.push_back(model.get());
  auto result = evaluate_membership(models, refs.in_mask, pool, population, options, reporter, sink,
                                    refs.pool_logits);
  // Under several processes the lead found every model in the cache; the ranks trained them.
  result.trained = refs.trained + shared.trained;
  result.reused = refs.reused - shared.trained;
  result.training_seconds = refs.training_seconds + shared.training_seconds;
  result.training_images = refs.training_images + shared.training_images;
  result.train_accuracy = mean_over_models(refs.train_accuracy);
  result.held_out_accuracy = mean_over_models(refs.held_out_accuracy);
  result.cache_folder = refs.cache_folder;
  result.privacy = reference_privacy(config, pool.size(), options);
  return result;
}

MembershipExperimentResult run_membership_on_copies(const std::string& model_file,
                                                    const models::ModelFileOptions& file_options,
                                                    const data::Dataset& pool,
                                                    const data::Dataset& population,
                                                    const MembershipExperimentOptions& options,
                                                    const Reporter& reporter, OutputSink& sink) {
  options.attack.validate(options.references.models);
  require_usage(!options.dp,
                "--dp-noise/--dp-epsilon train built-in models: give --arch, not "
                "--model " +
                    model_file);
  const auto progress = reporter.progress("references");
  const auto refs = train::train_reference_copies(
      model_file, file_options, pool, options.references, *progress, [&](int k, bool cached) {
        reporter.say("copy " + std::to_string(k + 1) + "/" +
                     std::to_string(options.references.models) +
                     (cached ? " loaded from the cache" : " trained"));
      });
  std::vector<models::Classifier*> models;
  for (const auto& model : refs.models) models.push_back(model.get());
  auto result =
      evaluate_membership(models, refs.in_mask, pool, population, options, reporter, sink, {});
  result.trained = refs.trained;
  result.reused = refs.reused;
  result.training_seconds = refs.training_seconds;
  result.training_images = refs.training_images;
  result.train_accuracy = mean_over_models(refs.train_accuracy);
  result.held_out_accuracy = mean_over_models(refs.held_out_accuracy);
  result.cache_folder = refs.cache_folder;
  return result;
}

report::Plot roc_plot(const MembershipExperimentResult& result) {
  report::Plot plot;
  plot.title =
      "Membership inference: ROC (K x N = " + std::to_string(result.models * result.pool_size) +
      " decisions)";
  plot.x_label = "false-positive rate";
  plot.y_label = "true-positive rate";
  plot.log_x = true;
  plot.log_y = true;
  double lowest = 1;
  for (const auto& a : result.attacks) {
    const auto thin = metrics::thin_for_log_plot(a.figures.roc);
    report::Series series;
    series.name = attacks::membership_attack_name(a.attack);
    series.x = thin.fpr;
    series.y = thin.tpr;
    if (!thin.fpr.empty()) lowest = std::min(lowest, thin.fpr.front());
    plot.series.push_back(std::move(series));
  }
  report::Series chance;
  chance.name = "chance";
  chance.x = chance.y = {lowest, 1.0};
  plot.series.push_back(std::move(chance));
  return plot;
}

nlohmann::json to_json(const MembershipExperimentResult& result,
                       const MembershipExperimentOptions& options) {
  nlohmann::json attacks = nlohmann::json::array();
  for (const auto& a : result.attacks) {
    auto entry = figures_json(a.figures);
    entry["attack"] = attacks::membership_attack_name(a.attack);
    entry["detected_at_1_percent_fpr"] = a.detected_members;
    entry["null"] = figures_json(a.null);
    attacks.push_back(std::move(entry));
  }
  nlohmann::json exposed = nlohmann::json::array();
  for (size_t i = 0; i < result.most_exposed.size(); ++i) {
    nlohmann::json entry = {{"pool_index", result.most_exposed[i]},
                            {"lira_score", report::number_or_null(result.most_exposed_scores[i])}};
    if (i < result.nearest_reconstruction.size()) {
      entry["nearest_reconstruction"] = result.nearest_reconstruction[i];
      entry["nearest_reconstruction_ssim"] =
          report::number_or_null(result.nearest_reconstruction_ssim[i]);
    }
    exposed.push_back(std::move(entry));
  }
  const double seconds = result.training_seconds;
  nlohmann::json reference_models = {
      {"summary", result.model_summary},
      {"parameters", result.parameters},
      {"recipe", options.references.recipe.to_json()},
      {"seed", options.references.seed},
      {"trained", result.trained},
      {"reused", result.reused},
      {"training_seconds", seconds},
      {"images_per_second",
       report::number_or_null(seconds > 0 ? result.training_images / seconds : NAN)},
      {"train_accuracy", report::number_or_null(result.train_accuracy)},
      {"held_out_accuracy", report::number_or_null(result.held_out_accuracy)},
      {"cache", result.cache_folder}};
  if (!result.reference_files.empty()) {
    reference_models = {{"summary", result.model_summary},
                        {"parameters", result.parameters},
                        {"files", result.reference_files}};
  }
  if (result.privacy) reference_models["privacy"] = result.privacy->to_json();
  return {{"pool_size", result.pool_size},
          {"population_size", result.population_size},
          {"models", result.models},
          {"references_per_target", result.references_per_target},
          {"decisions", result.models * result.pool_size},
          {"reference_models", reference_models},
          {"rmia_a", options.attack.rmia_a},
          {"rmia_gamma", options.attack.rmia_gamma},
          {"null_seed", options.null_seed},
          {"attacks", attacks},
          {"most_exposed", exposed},
          {"reconstructions", options.reconstructions.defined()
                                  ? nlohmann::json(options.reconstructions_source)
                                  : nlohmann::json(nullptr)},
          {"roc_plot", "roc.svg"}};
}

}  // namespace privaudit::experiments
