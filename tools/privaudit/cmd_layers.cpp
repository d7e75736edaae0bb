// privaudit layers: per-layer leakage of a classifier's intermediate outputs — attack-free figures
// (DoF, Jacobian rank, their combination) and, as their validation, a decoder attack per cut point.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>

#include "command.h"
#include "privaudit/attacks/feature_decoder.h"
#include "privaudit/metrics/layer_metrics.h"
#include "privaudit/report/image_grid.h"
#include "privaudit/report/results.h"
#include "privaudit/report/svg_plot.h"
#include "privaudit/util/error.h"

namespace privaudit::cli {
namespace {

struct LayersFlags {
  CommonFlags common;
  int64_t samples = 1000;
  int64_t jacobian_samples = 8;
  int decoder_epochs = 5;
  int64_t attacker_size = 5000;
  int64_t targets = 1000;
  int64_t decoder_hidden = 512;
  int64_t decoder_channels = 32;
  double decoder_learning_rate = 3e-3;
  double dof_tolerance = 1e-3;
  bool no_decoder = false;
  std::vector<std::string> cuts;
};

void check_flags(const LayersFlags& f) {
  if (f.samples < 2) throw UsageError("--samples must be at least 2");
  if (f.jacobian_samples < 1) throw UsageError("--jacobian-samples must be at least 1");
  if (f.decoder_epochs < 1) throw UsageError("--decoder-epochs must be at least 1");
  if (f.attacker_size < 1) throw UsageError("--attacker-size must be at least 1");
  if (f.targets < 1) throw UsageError("--targets must be at least 1");
  if (!(f.decoder_learning_rate > 0)) throw UsageError("--decoder-lr must be positive");
  if (!(f.dof_tolerance > 0 && f.dof_tolerance < 1))
    throw UsageError("--dof-tolerance must lie in (0,1)");
}

int run_layers(LayersFlags& f) {
  check_flags(f);
  const auto device = start_run(f.common);
  auto loaded = load_model_flag(f.common, device);
  auto& model = *loaded.model;
  std::vector<std::string> cuts = f.cuts.empty() ? model.cut_points() : f.cuts;
  if (cuts.empty()) throw Error(f.common.model + ": the model has no cut points to measure");
  for (const auto& cut : cuts) {
    try {
      model.check_cut(cut);
    } catch (const Error& e) {
      throw UsageError(std::string("--cuts: ") + e.what());
    }
  }
  prepare_output(f.common);
  const auto splits = load_data(f.common);
  const auto shape = model.input_shape();
  const auto& test = splits.test.images;
  if (test.size(1) != shape.channels || test.size(2) != shape.height ||
      test.size(3) != shape.width) {
    throw Error("--data " + f.common.data + ": images do not match the model's input shape");
  }
  if (test.size(0) < 4)
    throw Error("--data " + f.common.data + ": the test split needs at least 4 images");

  // The classifier never trained on the test split: its first half is the attacker's own data,
  // the second half holds the targets.
  const int64_t half = test.size(0) / 2;
  const auto attacker = test.narrow(0, 0, std::min(half, f.attacker_size));
  const auto targets = test.narrow(0, half, std::min(test.size(0) - half, f.targets));
  const auto sample_images = test.narrow(0, 0, std::min(test.size(0), f.samples));

  metrics::LayerMetricsOptions metric_options;
  metric_options.dof_tolerance = f.dof_tolerance;
  metric_options.jacobian_samples = f.jacobian_samples;
  attacks::DecoderOptions decoder_options;
  decoder_options.epochs = f.decoder_epochs;
  decoder_options.hidden = f.decoder_hidden;
  decoder_options.base_channels = f.decoder_channels;
  decoder_options.learning_rate = f.decoder_learning_rate;
  decoder_options.seed = f.common.seed;
  decoder_options.validate();

  say(f.common, "measuring " + std::to_string(cuts.size()) + " cut points of " + model.summary() +
                    " on " + std::to_string(sample_images.size(0)) + " images" +
                    (f.no_decoder ? std::string()
                                  : "; decoder trained on " + std::to_string(attacker.size(0)) +
                                        ", scored on " + std::to_string(targets.size(0))));
  const auto input_dof =
      metrics::degrees_of_freedom(sample_images, f.dof_tolerance, metric_options.variance_share);
  Progress progress("layers", 0, !f.common.quiet);
  nlohmann::json layers = nlohmann::json::array();
  std::vector<double> sensitivity, sensitivity_stable, dof_norm, rank_norm, psnr, ssim;
  const int64_t shown = std::min<int64_t>(8, targets.size(0));
  std::vector<torch::Tensor> grid_rows = {targets.narrow(0, 0, shown).to(torch::kCPU)};
  for (size_t i = 0; i < cuts.size(); ++i) {
    const auto& cut = cuts[i];
    auto m =
        metrics::measure_layer(model, cut, sample_images, input_dof.components_99, metric_options);
    nlohmann::json entry = {{"name", cut},
                            {"output_dim", m.output_dim},
                            {"dof", m.dof.rank},
                            {"dof_99", m.dof.components_99},
                            {"dof_effective_rank", m.dof.effective_rank},
                            {"dof_normalized", m.dof_normalized},
                            {"jacobian_rank", m.jacobian_rank},
                            {"jacobian_rank_std", m.jacobian_rank_std},
                            {"jacobian_rank_normalized", m.jacobian_rank_normalized},
                            {"jacobian_stable_rank", m.jacobian_stable_rank},
                            {"sensitivity", m.sensitivity},
                            {"sensitivity_stable", m.sensitivity_stable},
                            {"dof_seconds", m.dof_seconds},
                            {"jacobian_seconds", m.jacobian_seconds}};
    sensitivity.push_back(m.sensitivity);
    sensitivity_stable.push_back(m.sensitivity_stable);
    dof_norm.push_back(m.dof_normalized);
    rank_norm.push_back(m.jacobian_rank_normalized);
    char line[320];
    std::snprintf(line, sizeof line,
                  "[%zu/%zu] %-8s d=%-6lld dof %lld (99%%: %lld)  jacobian rank %.1f +- %.1f "
                  "(stable %.1f)  sensitivity %.3f (stable %.3f)  (%.1f s + %.1f s)",
                  i + 1, cuts.size(), cut.c_str(), static_cast<long long>(m.output_dim),
                  static_cast<long long>(m.dof.rank), static_cast<long long>(m.dof.components_99),
                  m.jacobian_rank, m.jacobian_rank_std, m.jacobian_stable_rank, m.sensitivity,
                  m.sensitivity_stable, m.dof_seconds, m.jacobian_seconds);
    say(f.common, line);
    if (!f.no_decoder) {
      const auto attack =
          attacks::run_decoder_attack(model, cut, attacker, targets, decoder_options, progress);
      entry["decoder_psnr"] = attack.psnr;
      entry["decoder_ssim"] = attack.ssim;
      entry["decoder_mse"] = attack.mse;
      entry["decoder_mean_image_psnr"] = attack.mean_image_psnr;
      entry["decoder_mean_image_ssim"] = attack.mean_image_ssim;
      entry["decoder_loss_curve"] = attack.loss_curve;
      entry["decoder_seconds"] = attack.seconds;
      psnr.push_back(attack.psnr);
      ssim.push_back(attack.ssim);
      grid_rows.push_back(attack.reconstructions.narrow(0, 0, shown));
      std::snprintf(line, sizeof line,
                    "        decoder psnr %.2f dB, ssim %.3f (mean image %.2f dB)  %.1f s",
                    attack.psnr, attack.ssim, attack.mean_image_psnr, attack.seconds);
      say(f.common, line);
    }
    layers.push_back(entry);
  }

  const std::filesystem::path out(f.common.out);
  auto results = report::results_envelope("layers", f.common.seed);
  results["dataset"] = report::dataset_json(f.common.data, splits);
  results["model"] = {{"file", f.common.model},
                      {"summary", model.summary()},
                      {"kind", model.kind()},
                      {"meta", loaded.meta}};
  results["settings"] = {{"samples", sample_images.size(0)},
                         {"jacobian_samples", std::min(f.jacobian_samples, sample_images.size(0))},
                         {"dof_tolerance", f.dof_tolerance},
                         {"variance_share", metric_options.variance_share},
                         {"input_dof_99", input_dof.components_99},
                         {"input_dim", shape.numel()},
                         {"attacker_images", attacker.size(0)},
                         {"target_images", targets.size(0)},
                         {"decoder_epochs", decoder_options.epochs},
                         {"decoder_hidden", decoder_options.hidden},
                         {"decoder_channels", decoder_options.base_channels},
                         {"decoder_learning_rate", decoder_options.learning_rate},
                         {"decoder_batch_size", decoder_options.batch_size}};
  results["layers"] = layers;

  std::vector<std::string> names(cuts.begin(), cuts.end());
  std::vector<double> x(cuts.size());
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>(i);
  report::Plot plot;
  plot.title = "Leakage by depth: " + model.summary();
  plot.x_label = "cut point";
  plot.y_label = "normalised value";
  plot.x_categories = names;
  plot.series.push_back({"sensitivity (combined)", x, sensitivity, true, true});
  plot.series.push_back({"DoF (99% components / input's)", x, dof_norm, true, true});
  plot.series.push_back({"Jacobian rank / input dim", x, rank_norm, true, true});
  if (!f.no_decoder) {
    const double best = *std::max_element(psnr.begin(), psnr.end());
    std::vector<double> psnr_scaled;
    for (double p : psnr) psnr_scaled.push_back(best > 0 ? p / best : 0.0);
    plot.series.push_back({"decoder PSNR / best layer's", x, psnr_scaled, true, true});
    plot.series.push_back({"decoder SSIM", x, ssim, true, true});
    results["spearman_sensitivity_decoder_psnr"] =
        report::number_or_null(metrics::spearman_correlation(sensitivity, psnr));
    results["spearman_sensitivity_stable_decoder_psnr"] =
        report::number_or_null(metrics::spearman_correlation(sensitivity_stable, psnr));
    results["spearman_sensitivity_decoder_ssim"] =
        report::number_or_null(metrics::spearman_correlation(sensitivity, ssim));
    results["spearman_dof_decoder_psnr"] =
        report::number_or_null(metrics::spearman_correlation(dof_norm, psnr));
    results["spearman_jacobian_rank_decoder_psnr"] =
        report::number_or_null(metrics::spearman_correlation(rank_norm, psnr));
    report::write_image_grid((out / "decoder_reconstructions.png").string(), grid_rows);
  }
  report::write_svg((out / "layers.svg").string(), plot);
  report::write_results(f.common.out, results);
  if (!f.no_decoder) {
    const auto rho = metrics::spearman_correlation(sensitivity, psnr);
    char line[200];
    std::snprintf(line, sizeof line,
                  "Spearman(sensitivity, decoder PSNR) = %.3f over %zu cut points", rho,
                  cuts.size());
    say(f.common, line);
  }
  say(f.common, "results written to " + f.common.out);
  return 0;
}

std::function<int()> setup_layers(CLI::App& app) {
  auto flags = std::make_shared<LayersFlags>();
  app.add_option("--samples", flags->samples,
                 "Test images whose outputs give the DoF (the first ones)")
      ->capture_default_str();
  app.add_option("--jacobian-samples", flags->jacobian_samples,
                 "Images whose exact Jacobian rank is averaged")
      ->capture_default_str();
  app.add_option("--decoder-epochs", flags->decoder_epochs,
                 "Epochs of the decoder attack per cut point")
      ->capture_default_str();
  app.add_option("--attacker-size", flags->attacker_size,
                 "Images of the test split's first half the decoder trains on")
      ->capture_default_str();
  app.add_option("--targets", flags->targets,
                 "Images of the test split's second half the decoder is scored on")
      ->capture_default_str();
  app.add_option("--decoder-hidden", flags->decoder_hidden, "Hidden width of the vector decoder")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--decoder-channels", flags->decoder_channels,
                 "Channels at the decoder's smallest resolution")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--decoder-lr", flags->decoder_learning_rate, "Adam learning rate of the decoder")
      ->capture_default_str();
  app.add_option("--dof-tolerance", flags->dof_tolerance,
                 "DoF counts singular values above this times the largest")
      ->capture_default_str();
  app.add_option("--cuts", flags->cuts, "Only these cut points (default: all)")->delimiter(',');
  app.add_flag("--no-decoder", flags->no_decoder, "Attack-free figures only");
  add_model_flags(app, flags->common);
  add_data_flags(app, flags->common);
  add_output_flags(app, flags->common);
  add_runtime_flags(app, flags->common);
  return [flags]() { return run_layers(*flags); };
}

const bool registered = register_command(
    {"layers", "Per-layer leakage of intermediate outputs: DoF, Jacobian rank, decoder attack",
     setup_layers});

}  // namespace
}  // namespace privaudit::cli
