#include "privaudit/experiments/defense_experiment.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>

#include "privaudit/attacks/features/feature_decoder.h"
#include "privaudit/attacks/gradients/registry.h"
#include "privaudit/metrics/layer_metrics.h"
#include "privaudit/metrics/reconstruction_score.h"
#include "privaudit/models/checkpoint.h"
#include "privaudit/models/model_config.h"
#include "privaudit/report/results.h"
#include "privaudit/train/trainer.h"
#include "privaudit/util/distributed.h"
#include "privaudit/util/error.h"
#include "privaudit/util/files.h"
#include "privaudit/util/rng.h"

namespace privaudit::experiments {
namespace {
namespace fs = std::filesystem;

std::string lambda_text(double lambda) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", lambda);
  return buffer;
}

models::InputShape input_of(const data::Splits& splits) {
  return {splits.train.channels(), splits.train.height(), splits.train.width()};
}

// Trains (or loads, when the checkpoint folder holds it) the frozen network behind the
// perceptual loss.
defense::FeatureNetwork feature_network(const DefenseExperimentOptions& options,
                                        const data::Splits& splits, torch::Device device,
                                        const std::optional<fs::path>& folder,
                                        const Reporter& reporter) {
  const auto path = folder ? (*folder / "feature_network.pt").string() : std::string();
  std::shared_ptr<models::BuiltinClassifier> model;
  if (!path.empty() && fs::exists(path)) {
    model = std::shared_ptr<models::BuiltinClassifier>(
        models::load_builtin(path, models::Arch::kCnn).release());
  } else {
    auto config = models::default_config("cnn", input_of(splits), splits.train.num_classes());
    config.normalization = splits.normalization;
    {
      const ScopedGlobalSeed initialisation(options.seed + 77);
      model = std::make_shared<models::BuiltinClassifier>(config);
    }
    model->to(device);
    train::TrainOptions training;
    training.epochs = 1;
    training.seed = options.seed + 77;
    const auto progress = reporter.progress("feature network");
    const auto trained = train::train_classifier(*model, splits, training, *progress);
    if (!path.empty()) {
      models::save_checkpoint(path, *model,
                              {{"role", "feature network of the perceptual loss"},
                               {"test_accuracy", trained.test_accuracy},
                               {"train_accuracy", trained.train_accuracy}});
    }
  }
  model->to(device);
  model->set_training(false);
  for (auto& p : model->parameters()) p.requires_grad_(false);
  return {model, {"conv1", "conv2"}};
}

// Does protecting the features also protect the gradients and the other layers? The defended
// model's layer metrics at every cut point (on the attacker's images) and Inverting Gradients at
// batch 1 on the first `gradient_targets` targets, knowing what `privaudit gradients` knows.
nlohmann::json side_audits(const DefenseExperimentOptions& options,
                           models::BuiltinClassifier& model, const torch::Tensor& attacker_images,
                           const torch::Tensor& targets, const torch::Tensor& target_labels,
                           Progress& progress) {
  nlohmann::json out = nlohmann::json::object();
  metrics::LayerMetricsOptions layer_options;
  layer_options.jacobian_samples = 2;
  const auto sample = attacker_images.slice(0, 0, std::min<int64_t>(256, attacker_images.size(0)));
  nlohmann::json layers = nlohmann::json::array();
  model.reseed_noise(options.seed);
  for (const auto& m : metrics::measure_layers(model, sample, layer_options, progress)) {
    layers.push_back({{"name", m.name},
                      {"sensitivity", m.sensitivity},
                      {"dof_99", m.dof.components_99},
                      {"jacobian_rank", m.jacobian_rank},
                      {"output_dim", m.output_dim}});
  }
  out["layers"] = layers;
  const int64_t n = std::min<int64_t>(options.gradient_targets, targets.size(0));
  if (n <= 0) return out;
  const auto& attack = attacks::find_gradient_attack("ig");
  attacks::AttackBudget budget;
  budget.iterations = options.gradient_iterations;
  budget.seed = options.seed;
  double psnr = 0, ssim = 0;
  model.reseed_noise(options.seed + 1);
  for (int64_t i = 0; i < n; ++i) {
    const auto image = targets.slice(0, i, i + 1).to(model.device());
    const auto label = target_labels.slice(0, i, i + 1).to(model.device());
    const auto update =
        attacks::observe_update(model, image, label, options.knowledge, /*train_mode=*/false);
    const auto r = attack.run(model, update, budget, progress);
    const auto score =
        metrics::score_reconstruction(r.images.cpu(), r.labels.cpu(), image.cpu(), label.cpu());
    psnr += score.mean_psnr / static_cast<double>(n);
    ssim += score.mean_ssim / static_cast<double>(n);
  }
  out["gradient_attack"] = {{"attack", attack.name},
                            {"batch_size", 1},
                            {"targets", n},
                            {"iterations", budget.iterations},
                            {"attacker_knows", options.knowledge.names()},
                            {"psnr", psnr},
                            {"ssim", ssim}};
  return out;
}

DefensePoint train_point(const std::string& data_spec, const data::Splits& splits,
                         const DefenseExperimentOptions& options, double lambda,
                         defense::ReconstructionLossKind kind,
                         const defense::FeatureNetwork& perceptual,
                         const torch::Tensor& attacker_images, const torch::Tensor& targets,
                         const torch::Tensor& target_labels,
                         const attacks::DecoderOptions& attacker, torch::Device device,
                         const std::optional<fs::path>& dir, const std::string& key,
                         const Reporter& reporter) {
  defense::DefenseOptions training;
  training.lambda = lambda;
  training.loss = kind;
  training.cut = options.cut;
  training.epochs = options.epochs;
  training.adversary_steps = options.adversary_steps;
  training.head_epochs = options.head_epochs;
  training.objective = defense::parse_objective(options.objective);
  training.seed = options.seed;
  training.adversary.seed = options.seed + 2;
  auto config = models::default_config(options.arch, input_of(splits), splits.train.num_classes());
  config.normalization = splits.normalization;
  if (options.noise > 0) {
    config.noise_cut =
        options.cut.empty() ? defense::default_cut(models::BuiltinClassifier(config)) : options.cut;
    config.noise_sigma = options.noise;
  }
  std::unique_ptr<models::BuiltinClassifier> model;
  {
    const ScopedGlobalSeed initialisation(options.seed);
    model = std::make_unique<models::BuiltinClassifier>(config);
  }
  model->to(device);
  const auto progress = reporter.progress(key);
  const auto trained =
      defense::train_defended(*model, splits.train, training, &perceptual, *progress);
  // Every figure below starts its own noise stream: none depends on what was measured before it.
  model->reseed_noise(options.seed);
  const double accuracy = models::accuracy(*model, splits.test.images, splits.test.labels);
  model->reseed_noise(options.seed);
  const auto attack = attacks::run_decoder_attack(*model, trained.cut, attacker_images, targets,
                                                  attacker, *progress);
  const std::string loss_name = lambda == 0 ? "none" : defense::loss_kind_name(kind);
  DefensePoint point;
  point.lambda = lambda;
  point.figures = {{"lambda", lambda},
                   {"loss", loss_name},
                   {"cut", trained.cut},
                   {"noise", options.noise},
                   {"objective", defense::objective_name(training.objective)},
                   {"adversary_steps", options.adversary_steps},
                   {"test_accuracy", accuracy},
                   {"attack_psnr", attack.psnr},
                   {"attack_ssim", attack.ssim},
                   {"attack_mse", attack.mse},
                   {"mean_image_psnr", attack.mean_image_psnr},
                   {"train_seconds", trained.seconds},
                   {"attack_seconds", attack.seconds}};
  const auto side =
      side_audits(options, *model, attacker_images, targets, target_labels, *progress);
  if (attack.psnr_per_image.defined()) {  // for the interval of the trade-off's privacy side
    const auto per_image = attack.psnr_per_image.to(torch::kCPU, torch::kDouble).contiguous();
    point.figures["attack_psnr_per_image"] = std::vector<double>(
        per_image.data_ptr<double>(), per_image.data_ptr<double>() + per_image.numel());
  }
  point.figures["layers"] = side["layers"];
  if (side.contains("gradient_attack")) {
    point.figures["gradient_attack"] = side["gradient_attack"];
    point.figures["gradient_psnr"] = side["gradient_attack"]["psnr"];
  }
  point.reconstructions = attack.reconstructions.slice(0, 0, 8).cpu();
  if (dir) {
    point.figures["model"] = (*dir / "model.pt").string();
    models::save_checkpoint((*dir / "model.pt").string(), *model,
                            {{"dataset", report::dataset_json(data_spec, splits)},
                             {"test_accuracy", accuracy},
                             {"train_accuracy", trained.history.back().train_accuracy},
                             {"defense", point.figures}});
    write_atomic_with((*dir / "reconstructions.pt").string(), [&](const std::string& temporary) {
      torch::save(point.reconstructions, temporary);
    });
    write_file_atomic(*dir / "point.json", point.figures.dump(2));
  }
  char gradient[32] = "skipped";
  if (point.figures.contains("gradient_psnr")) {
    std::snprintf(gradient, sizeof gradient, "%.2f dB",
                  point.figures["gradient_psnr"].get<double>());
  }
  char line[240];
  std::snprintf(
      line, sizeof line,
      "%s: test accuracy %.4f, fresh attacker PSNR %.2f dB, SSIM %.3f, gradient attack (IG) %s",
      key.c_str(), accuracy, attack.psnr, attack.ssim, gradient);
  reporter.say(line);
  return point;
}

report::Plot tradeoff_plot(const DefenseExperimentOptions& options,
                           const std::vector<DefensePoint>& points) {
  report::Plot plot;
  plot.title = "Utility against privacy (" + options.arch + ")";
  plot.x_label = "fresh attacker's PSNR (dB), lower is more private";
  plot.y_label = "test accuracy";
  for (const auto& name : options.losses) {
    const auto loss = defense::loss_kind_name(defense::parse_loss_kind(name));
    report::Series series;
    series.name = loss + " loss";
    series.points = true;
    for (const auto& p : points) {
      if (p.loss != loss) continue;
      series.x.push_back(p.figures["attack_psnr"].get<double>());
      series.y.push_back(p.figures["test_accuracy"].get<double>());
    }
    plot.series.push_back(series);
  }
  return plot;
}

}  // namespace

void DefenseExperimentOptions::validate() const {
  if (lambdas.empty()) throw UsageError("--lambdas: give at least one value");
  for (double lambda : lambdas) {
    if (!(lambda >= 0) || !std::isfinite(lambda))
      throw UsageError("--lambdas: each lambda must be >= 0");
  }
  if (losses.empty()) throw UsageError("--loss: give at least one loss");
  for (const auto& name : losses) defense::parse_loss_kind(name);
  defense::parse_objective(objective);
  models::parse_arch(arch);
  if (epochs < 1) throw UsageError("--epochs must be at least 1");
  if (attack_epochs < 1) throw UsageError("--attack-epochs must be at least 1");
  if (adversary_steps < 1) throw UsageError("--adversary-steps must be at least 1");
  if (head_epochs < 0) throw UsageError("--head-epochs must not be negative");
  if (!(noise >= 0) || !std::isfinite(noise)) throw UsageError("--noise must be >= 0");
  if (targets < 1) throw UsageError("--targets must be positive");
  if (gradient_targets < 0) throw UsageError("--gradient-targets must not be negative");
  if (gradient_iterations < 1) throw UsageError("--gradient-iterations must be at least 1");
}

DefenseExperimentResult run_defense_experiment(const std::string& data_spec,
                                               const data::Splits& splits,
                                               const DefenseExperimentOptions& options,
                                               const Reporter& reporter, OutputSink& sink,
                                               torch::Device device, const dist::World& world) {
  options.validate();
  // The attacker's public data is the first half of the test split; the targets are the second.
  const int64_t half = splits.test.size() / 2;
  if (half < 2)
    throw Error(splits.test.source + ": too few test images to split between attacker and targets");
  const auto attacker_images = splits.test.images.slice(0, 0, half);
  const auto targets =
      splits.test.images.slice(0, half, std::min(splits.test.size(), half + options.targets));
  const auto target_labels = splits.test.labels.slice(0, half, half + targets.size(0));
  const auto folder = sink.checkpoint_folder();

  std::vector<defense::ReconstructionLossKind> kinds;
  for (const auto& name : options.losses) kinds.push_back(defense::parse_loss_kind(name));
  // The points are the work items: one per loss and lambda (lambda 0, plain training, once for
  // every curve), shared out among the ranks (util/distributed.h). Each point's randomness comes
  // from the options' seed, not from the points before it.
  struct Item {
    defense::ReconstructionLossKind kind;
    double lambda;
    std::string key;
  };
  std::vector<Item> items;
  for (auto kind : kinds) {
    for (double lambda : options.lambdas) {
      const std::string loss_name = lambda == 0 ? "none" : defense::loss_kind_name(kind);
      const std::string key = loss_name + "-lambda" + lambda_text(lambda);
      if (std::none_of(items.begin(), items.end(), [&](const Item& i) { return i.key == key; }))
        items.push_back({kind, lambda, key});
    }
  }
  const auto owner = dist::assign_items(std::vector<double>(items.size(), 1.0), world.size());
  const bool mine_need_features = [&] {
    for (size_t i = 0; i < items.size(); ++i) {
      if (owner[i] == world.rank() && items[i].kind == defense::ReconstructionLossKind::kFeature)
        return true;
    }
    return false;
  }();
  // The perceptual loss's feature network: rank 0 trains (and keeps) it, the others load it.
  defense::FeatureNetwork perceptual;
  const bool any_features =
      std::count(kinds.begin(), kinds.end(), defense::ReconstructionLossKind::kFeature) > 0;
  if (any_features && world.lead() && (mine_need_features || world.size() > 1))
    perceptual = feature_network(options, splits, device, folder, reporter);
  if (any_features) world.barrier("waiting for rank 0's feature network");
  if (!world.lead() && mine_need_features)
    perceptual = feature_network(options, splits, device, folder, reporter);

  DefenseExperimentResult result;
  result.targets = targets.size(0);
  auto& attacker = result.attacker;  // stronger and longer-trained than the simulated adversary
  attacker.hidden = 1024;
  attacker.base_channels = 96;
  attacker.epochs = options.attack_epochs;
  attacker.seed = options.seed + 1;
  std::map<std::string, DefensePoint> points;  // by key
  for (size_t i = 0; i < items.size(); ++i) {
    if (owner[i] != world.rank()) continue;
    const auto& item = items[i];
    std::optional<fs::path> dir;
    if (folder) {
      dir = *folder / "points" / item.key;
      fs::create_directories(*dir);
    }
    DefensePoint point;
    if (dir && fs::exists(*dir / "point.json") && fs::exists(*dir / "reconstructions.pt")) {
      point.lambda = item.lambda;
      point.figures = nlohmann::json::parse(read_file(*dir / "point.json"));
      torch::load(point.reconstructions, (*dir / "reconstructions.pt").string());
      reporter.say(item.key + ": already done");
    } else {
      point = train_point(data_spec, splits, options, item.lambda, item.kind, perceptual,
                          attacker_images, targets, target_labels, attacker, device, dir, item.key,
                          reporter);
    }
    points[item.key] = std::move(point);
  }
  if (world.size() > 1) {
    nlohmann::json header = nlohmann::json::array();
    std::vector<torch::Tensor> images;
    for (const auto& [key, point] : points) {
      header.push_back({{"key", key}, {"lambda", point.lambda}, {"figures", point.figures}});
      images.push_back(point.reconstructions);
    }
    for (const auto& blob :
         world.all_gather(dist::pack(header, images), "exchanging the defended points")) {
      const auto [entries, received] = dist::unpack(blob);
      for (size_t e = 0; e < entries.size(); ++e) {
        const auto key = entries[e].at("key").get<std::string>();
        if (points.count(key)) continue;
        auto& point = points[key];
        point.lambda = entries[e].at("lambda").get<double>();
        point.figures = entries[e].at("figures");
        point.reconstructions = received.at(e);
      }
    }
  }
  for (auto kind : kinds) {
    for (double lambda : options.lambdas) {
      const std::string loss_name = lambda == 0 ? "none" : defense::loss_kind_name(kind);
      auto point = points.at(loss_name + "-lambda" + lambda_text(lambda));
      point.loss = defense::loss_kind_name(kind);
      result.points.push_back(std::move(point));
    }
  }
  sink.plot("tradeoff.svg", tradeoff_plot(options, result.points));
  std::vector<torch::Tensor> rows = {targets.slice(0, 0, 8)};
  for (const auto& p : result.points) rows.push_back(p.reconstructions);
  sink.image_grid("reconstructions.png", rows);
  return result;
}

nlohmann::json to_json(const DefenseExperimentResult& result,
                       const DefenseExperimentOptions& options) {
  nlohmann::json points = nlohmann::json::array();
  for (const auto& p : result.points) {
    auto entry = p.figures;
    entry["loss"] = p.loss;  // the lambda-0 point belongs to every curve
    entry["shared_baseline"] = p.lambda == 0;
    points.push_back(entry);
  }
  nlohmann::json out;
  out["model"] = {{"arch", options.arch}};
  out["points"] = points;
  out["attacker"] = {{"data", "first half of the test split"},
                     {"targets", result.targets},
                     {"epochs", result.attacker.epochs},
                     {"hidden", result.attacker.hidden},
                     {"base_channels", result.attacker.base_channels}};
  out["grid_rows"] = "targets, then one row per point in the order of points";
  return out;
}

}  // namespace privaudit::experiments
