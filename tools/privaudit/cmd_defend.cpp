// privaudit defend: one defended model per (lambda, loss) point, each attacked by a fresh, stronger
// decoder; the utility-privacy trade-off curve.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "command.h"
#include "privaudit/attacks/feature_decoder.h"
#include "privaudit/attacks/gradient_matching.h"
#include "privaudit/attacks/inverting_gradients.h"
#include "privaudit/defense/adversarial_reconstruction.h"
#include "privaudit/metrics/layer_metrics.h"
#include "privaudit/metrics/reconstruction_score.h"
#include "privaudit/models/checkpoint.h"
#include "privaudit/report/image_grid.h"
#include "privaudit/report/results.h"
#include "privaudit/report/svg_plot.h"
#include "privaudit/train/trainer.h"
#include "privaudit/util/error.h"
#include "privaudit/util/files.h"
#include "privaudit/util/runtime.h"

namespace privaudit::cli {
namespace {
namespace fs = std::filesystem;

struct DefendFlags {
  CommonFlags common;
  std::string arch = "cnn";
  std::vector<double> lambdas = {0, 1, 3, 10};
  std::vector<std::string> losses = {"pixel"};
  std::string cut;
  int epochs = 3;
  int attack_epochs = 10;
  int adversary_steps = 3;
  int head_epochs = 1;
  std::string objective = "class-mean";
  double noise = 1.0;
  int64_t targets = 500;
  int64_t gradient_targets = 4;
  int gradient_iterations = 300;
};

std::string lambda_text(double lambda) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%g", lambda);
  return buffer;
}

// Trains (or loads, when --resume finds it) the frozen network behind the perceptual loss.
defense::FeatureNetwork feature_network(const DefendFlags& f, const data::Splits& splits, torch::Device device) {
  const auto path = (fs::path(f.common.out) / "feature_network.pt").string();
  std::shared_ptr<models::BuiltinClassifier> model;
  if (fs::exists(path)) {
    model = std::shared_ptr<models::BuiltinClassifier>(models::load_builtin(path, models::Arch::kCnn).release());
  } else {
    auto config = models::default_config("cnn", model_input(splits), splits.train.num_classes());
    config.normalization = splits.normalization;
    seed_everything(f.common.seed + 77);
    model = std::make_shared<models::BuiltinClassifier>(config);
    model->to(device);
    train::TrainOptions options;
    options.epochs = 1;
    options.seed = f.common.seed + 77;
    Progress progress("feature network", 0, !f.common.quiet);
    const auto trained = train::train_classifier(*model, splits, options, progress);
    models::save_checkpoint(path, *model, {{"role", "feature network of the perceptual loss"},
                                           {"test_accuracy", trained.test_accuracy}});
  }
  model->to(device);
  model->set_training(false);
  for (auto& p : model->parameters()) p.requires_grad_(false);
  return {model, {"conv1", "conv2"}};
}

// Does protecting the features also protect the gradients and the other layers? The defended
// model's layer metrics at every cut point (on the attacker's images) and Inverting Gradients at
// batch 1 on the first `gradient_targets` targets.
nlohmann::json side_audits(const DefendFlags& f, models::BuiltinClassifier& model, const torch::Tensor& attacker_images,
                           const torch::Tensor& targets, const torch::Tensor& target_labels, Progress& progress) {
  nlohmann::json out = nlohmann::json::object();
  metrics::LayerMetricsOptions layer_options;
  layer_options.jacobian_samples = 2;
  const auto sample = attacker_images.slice(0, 0, std::min<int64_t>(256, attacker_images.size(0)));
  nlohmann::json layers = nlohmann::json::array();
  for (const auto& m : metrics::measure_layers(model, sample, layer_options, progress)) {
    layers.push_back({{"name", m.name}, {"sensitivity", m.sensitivity}, {"dof_99", m.dof.components_99},
                      {"jacobian_rank", m.jacobian_rank}, {"output_dim", m.output_dim}});
  }
  out["layers"] = layers;
  const int64_t n = std::min<int64_t>(f.gradient_targets, targets.size(0));
  if (n <= 0) return out;
  attacks::InvertingGradientsOptions ig;
  ig.iterations = f.gradient_iterations;
  ig.seed = f.common.seed;
  double psnr = 0, ssim = 0;
  for (int64_t i = 0; i < n; ++i) {
    const auto image = targets.slice(0, i, i + 1).to(model.device());
    const auto label = target_labels.slice(0, i, i + 1).to(model.device());
    const auto shared = attacks::shared_gradients(model, image, label);
    const auto r = attacks::run_inverting_gradients(model, shared, 1, label, ig, progress);
    const auto score = metrics::score_reconstruction(r.images.cpu(), r.labels.cpu(), image.cpu(), label.cpu());
    psnr += score.mean_psnr / static_cast<double>(n);
    ssim += score.mean_ssim / static_cast<double>(n);
  }
  out["gradient_attack"] = {{"attack", "ig"}, {"batch_size", 1}, {"targets", n}, {"iterations", ig.iterations},
                            {"psnr", psnr}, {"ssim", ssim}};
  return out;
}

struct Point {
  double lambda;
  std::string loss;
  nlohmann::json figures;          // test_accuracy, attack_psnr, attack_ssim, ...
  torch::Tensor reconstructions;   // of the shared targets (first few)
};

int run_defend(DefendFlags& f) {
  const auto device = start_run(f.common);
  if (f.lambdas.empty()) throw UsageError("--lambdas: give at least one value");
  for (double lambda : f.lambdas) {
    if (!(lambda >= 0) || !std::isfinite(lambda)) throw UsageError("--lambdas: each lambda must be >= 0");
  }
  std::vector<defense::ReconstructionLossKind> kinds;
  for (const auto& name : f.losses) kinds.push_back(defense::parse_loss_kind(name));
  const auto objective = defense::parse_objective(f.objective);
  if (f.targets < 1) throw UsageError("--targets must be positive");
  prepare_output(f.common);
  const auto splits = load_data(f.common);
  // The attacker's public data is the first half of the test split; the targets are the second.
  const int64_t half = splits.test.size() / 2;
  if (half < 2) throw Error(splits.test.source + ": too few test images to split between attacker and targets");
  const auto attacker_images = splits.test.images.slice(0, 0, half);
  const auto targets = splits.test.images.slice(0, half, std::min(splits.test.size(), half + f.targets));
  const auto target_labels = splits.test.labels.slice(0, half, half + targets.size(0));

  defense::FeatureNetwork perceptual;
  bool need_features = false;
  for (auto k : kinds) need_features |= k == defense::ReconstructionLossKind::kFeature;
  if (need_features) perceptual = feature_network(f, splits, device);

  attacks::DecoderOptions attacker;  // stronger and longer-trained than the simulated adversary
  attacker.hidden = 1024;
  attacker.base_channels = 96;
  attacker.epochs = f.attack_epochs;
  attacker.seed = f.common.seed + 1;

  const fs::path points_dir = fs::path(f.common.out) / "points";
  fs::create_directories(points_dir);
  std::vector<Point> points;
  nlohmann::json points_json = nlohmann::json::array();
  for (auto kind : kinds) {
    for (double lambda : f.lambdas) {
      // lambda 0 is plain training whatever the loss: train it once.
      const std::string loss_name = lambda == 0 ? "none" : defense::loss_kind_name(kind);
      const std::string key = loss_name + "-lambda" + lambda_text(lambda);
      const fs::path dir = points_dir / key;
      fs::create_directories(dir);
      nlohmann::json figures;
      torch::Tensor reconstructions;
      if (fs::exists(dir / "point.json") && fs::exists(dir / "reconstructions.pt")) {
        figures = nlohmann::json::parse(read_file(dir / "point.json"));
        torch::load(reconstructions, (dir / "reconstructions.pt").string());
        say(f.common, key + ": already done");
      } else {
        defense::DefenseOptions options;
        options.lambda = lambda;
        options.loss = kind;
        options.cut = f.cut;
        options.epochs = f.epochs;
        options.adversary_steps = f.adversary_steps;
        options.head_epochs = f.head_epochs;
        options.objective = objective;
        options.seed = f.common.seed;
        options.adversary.seed = f.common.seed + 2;
        auto config = models::default_config(f.arch, model_input(splits), splits.train.num_classes());
        config.normalization = splits.normalization;
        if (f.noise > 0) {
          config.noise_cut = f.cut.empty() ? defense::default_cut(models::BuiltinClassifier(config)) : f.cut;
          config.noise_sigma = f.noise;
        }
        seed_everything(f.common.seed);
        models::BuiltinClassifier model(config);
        model.to(device);
        Progress progress(key, 0, !f.common.quiet);
        const auto trained = defense::train_defended(model, splits.train, options, &perceptual, progress);
        const double accuracy = models::accuracy(model, splits.test.images, splits.test.labels);
        const auto attack = attacks::run_decoder_attack(model, trained.cut, attacker_images, targets, attacker, progress);
        figures = {{"lambda", lambda},           {"loss", loss_name},
                   {"cut", trained.cut},         {"noise", f.noise},
                   {"objective", defense::objective_name(options.objective)},
                   {"adversary_steps", f.adversary_steps},
                   {"test_accuracy", accuracy},
                   {"attack_psnr", attack.psnr}, {"attack_ssim", attack.ssim},
                   {"attack_mse", attack.mse},   {"mean_image_psnr", attack.mean_image_psnr},
                   {"train_seconds", trained.seconds}, {"attack_seconds", attack.seconds},
                   {"model", (dir / "model.pt").string()}};
        const auto side = side_audits(f, model, attacker_images, targets, target_labels, progress);
        figures["layers"] = side["layers"];
        if (side.contains("gradient_attack")) {
          figures["gradient_attack"] = side["gradient_attack"];
          figures["gradient_psnr"] = side["gradient_attack"]["psnr"];
        }
        models::save_checkpoint((dir / "model.pt").string(), model,
                                {{"dataset", report::dataset_json(f.common.data, splits)},
                                 {"test_accuracy", accuracy},
                                 {"train_accuracy", trained.history.back().train_accuracy},
                                 {"defense", figures}});
        reconstructions = attack.reconstructions.slice(0, 0, 8).cpu();
        write_atomic_with((dir / "reconstructions.pt").string(),
                          [&](const std::string& temporary) { torch::save(reconstructions, temporary); });
        write_file_atomic(dir / "point.json", figures.dump(2));
        char gradient[32] = "skipped";
        if (figures.contains("gradient_psnr")) {
          std::snprintf(gradient, sizeof gradient, "%.2f dB", figures["gradient_psnr"].get<double>());
        }
        char line[240];
        std::snprintf(line, sizeof line,
                      "%s: test accuracy %.4f, fresh attacker PSNR %.2f dB, SSIM %.3f, gradient attack (IG) %s",
                      key.c_str(), accuracy, attack.psnr, attack.ssim, gradient);
        say(f.common, line);
      }
      auto entry = figures;
      entry["loss"] = defense::loss_kind_name(kind);  // the lambda-0 point belongs to every curve
      entry["shared_baseline"] = lambda == 0;
      points_json.push_back(entry);
      points.push_back({lambda, defense::loss_kind_name(kind), figures, reconstructions});
    }
  }

  report::Plot plot;
  plot.title = "Utility against privacy (" + f.arch + ")";
  plot.x_label = "fresh attacker's PSNR (dB), lower is more private";
  plot.y_label = "test accuracy";
  for (auto kind : kinds) {
    report::Series series;
    series.name = defense::loss_kind_name(kind) + " loss";
    series.points = true;
    for (const auto& p : points) {
      if (p.loss != defense::loss_kind_name(kind)) continue;
      series.x.push_back(p.figures["attack_psnr"].get<double>());
      series.y.push_back(p.figures["test_accuracy"].get<double>());
    }
    plot.series.push_back(series);
  }
  report::write_svg((fs::path(f.common.out) / "tradeoff.svg").string(), plot);
  std::vector<torch::Tensor> rows = {targets.slice(0, 0, 8)};
  for (const auto& p : points) rows.push_back(p.reconstructions);
  report::write_image_grid((fs::path(f.common.out) / "reconstructions.png").string(), rows);

  auto results = report::results_envelope("defend", f.common.seed);
  results["dataset"] = report::dataset_json(f.common.data, splits);
  results["model"] = {{"arch", f.arch}};
  results["points"] = points_json;
  results["attacker"] = {{"data", "first half of the test split"}, {"targets", targets.size(0)},
                         {"epochs", attacker.epochs}, {"hidden", attacker.hidden},
                         {"base_channels", attacker.base_channels}};
  results["grid_rows"] = "targets, then one row per point in the order of points";
  report::write_results(f.common.out, results);
  return 0;
}

std::function<int()> setup_defend(CLI::App& app) {
  auto flags = std::make_shared<DefendFlags>();
  app.add_option("--arch", flags->arch, "Architecture to defend (mlp, cnn, vit)")->capture_default_str();
  app.add_option("--lambdas", flags->lambdas, "Weights of the adversary's loss, one model each")->delimiter(',')->capture_default_str();
  app.add_option("--loss", flags->losses, "Reconstruction loss: pixel, feature, or both (pixel,feature)")->delimiter(',')->capture_default_str();
  app.add_option("--cut", flags->cut, "Cut point whose output is protected (default: the middle one)");
  app.add_option("--epochs", flags->epochs, "Training epochs per point")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--adversary-steps", flags->adversary_steps, "Simulated adversary's decoder steps per encoder step")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--objective", flags->objective,
                 "What the encoder does to the simulated adversary: class-mean (pull its output to the class's mean "
                 "image) or max-error (the paper's: maximise its error)")
      ->capture_default_str();
  app.add_option("--head-epochs", flags->head_epochs, "Epochs retraining the head on the frozen defended encoder")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--noise", flags->noise,
                 "Gaussian noise (sigma) added at the cut, in training and at inference: part of the defended model")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--attack-epochs", flags->attack_epochs, "Epochs of the fresh evaluation attacker")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--targets", flags->targets, "Held-out images the attacker reconstructs")->capture_default_str();
  app.add_option("--gradient-targets", flags->gradient_targets,
                 "Targets of the Inverting Gradients check on each defended model (0 = skip)")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app.add_option("--gradient-iterations", flags->gradient_iterations, "Iterations of that check")
      ->capture_default_str()->check(CLI::PositiveNumber);
  add_data_flags(app, flags->common);
  add_output_flags(app, flags->common);
  add_runtime_flags(app, flags->common);
  return [flags]() { return run_defend(*flags); };
}

const bool registered = register_command(
    {"defend", "Train models that resist feature inversion; the utility-privacy curve", setup_defend});

}  // namespace
}  // namespace privaudit::cli
