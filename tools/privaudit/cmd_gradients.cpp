// privaudit gradients: gradient-inversion attacks (DLG, iDLG, Inverting Gradients) against a
// model's shared gradients for several batch sizes, scored against the targets, plus the
// gradient privacy audit.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "command.h"
#include "privaudit/attacks/dlg.h"
#include "privaudit/attacks/idlg.h"
#include "privaudit/attacks/inverting_gradients.h"
#include "privaudit/metrics/gradient_audit.h"
#include "privaudit/metrics/reconstruction_score.h"
#include "privaudit/report/image_grid.h"
#include "privaudit/report/results.h"
#include "privaudit/report/svg_plot.h"
#include "privaudit/util/error.h"
#include "privaudit/util/runtime.h"

namespace privaudit::cli {
namespace {

enum class Attack { kDlg, kIdlg, kIg };

std::string attack_name(Attack attack) {
  switch (attack) {
    case Attack::kDlg:
      return "dlg";
    case Attack::kIdlg:
      return "idlg";
    case Attack::kIg:
      return "ig";
  }
  return "?";
}

std::vector<Attack> parse_attacks(const std::string& name) {
  if (name == "dlg") return {Attack::kDlg};
  if (name == "idlg") return {Attack::kIdlg};
  if (name == "ig") return {Attack::kIg};
  if (name == "all") return {Attack::kDlg, Attack::kIdlg, Attack::kIg};
  throw UsageError("--attack " + name + ": unknown attack (dlg, idlg, ig, all)");
}

struct GradientsFlags {
  CommonFlags common;
  std::string attack = "all";
  std::vector<int64_t> batch_sizes{1};
  int64_t targets = 0;
  std::vector<int64_t> indices;
  int iterations = 0;
  int restarts = 0;
  double total_variation = -1;
  bool train_mode = false;
  double attacker_distance = 1e-3;
  int audit_probes = metrics::GradientAuditOptions().probes;
  int audit_probe_iterations = metrics::GradientAuditOptions().probe_iterations;
};

// One attack on one batch: the attacker gets the batch's shared gradient and its size only.
attacks::Reconstruction attack_batch(Attack attack, models::Classifier& model,
                                     const attacks::Gradients& shared, int64_t batch,
                                     const GradientsFlags& f, uint64_t seed, Progress& progress) {
  if (attack == Attack::kIg) {
    attacks::InvertingGradientsOptions options;
    if (f.iterations > 0) options.iterations = f.iterations;
    if (f.total_variation >= 0) options.total_variation = f.total_variation;
    options.trials = 1 + f.restarts;
    options.train_mode = f.train_mode;
    options.seed = seed;
    return attacks::run_inverting_gradients(model, shared, batch, {}, options, progress);
  }
  attacks::DlgOptions options;
  if (f.iterations > 0) options.iterations = f.iterations;
  options.trials = 1 + f.restarts;
  options.train_mode = f.train_mode;
  options.seed = seed;
  if (attack == Attack::kIdlg) return attacks::run_idlg(model, shared, batch, options, progress);
  return attacks::run_dlg(model, shared, batch, {}, options, progress);
}

nlohmann::json audit_json(const metrics::GradientAudit& audit, int64_t batch, double seconds) {
  nlohmann::json points = nlohmann::json::array();
  for (const auto& p : audit.points) {
    points.push_back({{"kind", p.kind},
                      {"step", p.step},
                      {"gradient_distance", p.gradient_distance},
                      {"psnr", p.psnr},
                      {"ssim", p.ssim}});
  }
  return {{"batch_size", batch},
          {"spearman", audit.spearman},
          {"fit",
           {{"form", "psnr = intercept + slope * log10(gradient_cosine_distance)"},
            {"intercept", audit.fit_intercept},
            {"slope", audit.fit_slope},
            {"valid", audit.fit_valid}}},
          {"unrelated_psnr", audit.unrelated_psnr},
          {"fit_psnr", audit.fit_psnr},
          {"observed_psnr", report::number_or_null(audit.observed_psnr)},
          {"predicted_psnr", audit.predicted_psnr},
          {"risk_bound", audit.risk_bound},
          {"probe_min_distance", report::number_or_null(audit.probe_min_distance)},
          {"probe_psnr", report::number_or_null(audit.probe_psnr)},
          {"probe_bound_psnr", report::number_or_null(audit.probe_bound_psnr)},
          {"probe_seconds", audit.probe_seconds},
          {"seconds", seconds},
          {"risk", audit.risk},
          {"points", points}};
}

int run_gradients(GradientsFlags& f) {
  const auto attacks_to_run = parse_attacks(f.attack);
  if (f.batch_sizes.empty()) throw UsageError("--batch: give at least one batch size");
  for (auto b : f.batch_sizes) {
    if (b < 1)
      throw UsageError("--batch: batch sizes must be at least 1, got " + std::to_string(b));
  }
  if (f.targets > 0 && !f.indices.empty())
    throw UsageError("--targets and --indices exclude each other");
  if (f.iterations < 0) throw UsageError("--iterations must not be negative");
  if (f.restarts < 0) throw UsageError("--restarts must not be negative");
  // The audit runs after the attacks: its flags are checked before them.
  if (f.audit_probes < 0) throw UsageError("--audit-probes must not be negative");
  if (f.audit_probe_iterations < 1) throw UsageError("--audit-probe-iterations must be at least 1");
  const int64_t largest = *std::max_element(f.batch_sizes.begin(), f.batch_sizes.end());
  const int64_t wanted = !f.indices.empty() ? static_cast<int64_t>(f.indices.size())
                         : f.targets > 0    ? f.targets
                                            : largest;
  if (wanted < largest) {
    throw UsageError("--batch " + std::to_string(largest) +
                     " needs at least that many targets, got " + std::to_string(wanted));
  }

  const auto device = start_run(f.common);
  prepare_output(f.common);
  const auto splits = load_data(f.common);
  auto loaded = load_model_flag(f.common, device);
  auto& model = *loaded.model;
  const auto& test = splits.test;

  torch::Tensor chosen;
  if (!f.indices.empty()) {
    for (auto i : f.indices) {
      if (i < 0 || i >= test.size()) {
        throw UsageError("--indices: " + std::to_string(i) + " is outside the test split (0.." +
                         std::to_string(test.size() - 1) + ")");
      }
    }
    chosen = torch::tensor(f.indices, torch::kLong);
  } else {
    if (wanted > test.size()) {
      throw UsageError("--targets " + std::to_string(wanted) + ": the test split has only " +
                       std::to_string(test.size()));
    }
    auto generator = make_generator(f.common.seed);
    chosen = torch::randperm(test.size(), generator).slice(0, 0, wanted);
  }
  const auto target_images = test.images.index_select(0, chosen);
  const auto target_labels = test.labels.index_select(0, chosen);
  say(f.common,
      "attacking " + model.summary() + " with " + std::to_string(chosen.size(0)) + " test images");

  const std::filesystem::path out(f.common.out);
  nlohmann::json runs = nlohmann::json::array();
  for (auto attack : attacks_to_run) {
    for (auto batch : f.batch_sizes) {
      // floor(N / B) independent batches, each with its own shared gradient.
      const int64_t batches = chosen.size(0) / batch;
      const int64_t used = batches * batch;
      const auto started = std::chrono::steady_clock::now();
      std::vector<torch::Tensor> reconstructions, labels;
      int iterations = 0, restarts = 0, failed = 0;
      double distance = 0;
      for (int64_t k = 0; k < batches; ++k) {
        const auto images = target_images.slice(0, k * batch, (k + 1) * batch).to(device);
        const auto truth = target_labels.slice(0, k * batch, (k + 1) * batch).to(device);
        attacks::Gradients shared;
        {
          models::TrainingModeGuard mode(model, f.train_mode);
          shared = attacks::shared_gradients(model, images, truth);
        }
        Progress progress(attack_name(attack) + " batch " + std::to_string(batch), 0,
                          !f.common.quiet);
        const auto result =
            attack_batch(attack, model, shared, batch, f, f.common.seed + k, progress);
        iterations += result.iterations;
        restarts += result.restarts;
        failed += result.failed;
        distance += result.final_distance;
        // A failed run's zero images are scored as what they are: a blank guess.
        reconstructions.push_back(result.images.to(torch::kCPU));
        labels.push_back(result.labels.to(torch::kCPU));
      }
      const double seconds =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      const auto targets_used = target_images.slice(0, 0, used);
      // Scored batch by batch (matching happens within a shared gradient), then averaged.
      std::vector<torch::Tensor> matched, psnr, ssim, mse;
      double label_hits = 0;
      for (int64_t k = 0; k < batches; ++k) {
        const auto score = metrics::score_reconstruction(
            reconstructions[k], labels[k], target_images.slice(0, k * batch, (k + 1) * batch),
            target_labels.slice(0, k * batch, (k + 1) * batch));
        matched.push_back(score.matched);
        psnr.push_back(score.psnr);
        ssim.push_back(score.ssim);
        mse.push_back(score.mse);
        label_hits += std::max(0.0, score.label_accuracy);
      }
      const std::string stem =
          "grid_" + attack_name(attack) + "_batch" + std::to_string(batch) + ".png";
      report::write_image_grid((out / stem).string(), {targets_used, torch::cat(matched)});
      nlohmann::json run = {{"attack", attack_name(attack)},
                            {"batch_size", batch},
                            {"batches", batches},
                            {"psnr", torch::cat(psnr).mean().item<double>()},
                            {"ssim", torch::cat(ssim).mean().item<double>()},
                            {"mse", torch::cat(mse).mean().item<double>()},
                            {"label_accuracy", label_hits / static_cast<double>(batches)},
                            {"iterations", iterations / static_cast<double>(batches)},
                            {"seconds", seconds},
                            {"gradient_distance", distance / static_cast<double>(batches)},
                            {"restarts", restarts},
                            {"failed", failed > 0},
                            {"failed_batches", failed},
                            {"grid", stem}};
      char line[240];
      std::snprintf(line, sizeof line,
                    "%-4s batch %3lld: PSNR %.2f dB, SSIM %.3f, labels %.2f, %.1f s%s",
                    attack_name(attack).c_str(), static_cast<long long>(batch),
                    run["psnr"].get<double>(), run["ssim"].get<double>(),
                    run["label_accuracy"].get<double>(), seconds, failed ? " (FAILED: NaN)" : "");
      say(f.common, line);
      runs.push_back(run);
    }
  }

  // The audit is the defender's view: its own test images, labels included; no attack is run.
  const int64_t pool = std::min<int64_t>(test.size(), 256);
  nlohmann::json audits = nlohmann::json::array();
  report::Plot plot;
  plot.title = "Gradient similarity vs data similarity";
  plot.x_label = "log10 gradient cosine distance";
  plot.y_label = "PSNR (dB)";
  double risk = 0;
  for (auto batch : f.batch_sizes) {
    metrics::GradientAuditOptions options;
    options.batch_size = batch;
    options.attacker_distance = f.attacker_distance;
    options.probes = f.audit_probes;
    options.probe_iterations = f.audit_probe_iterations;
    options.train_mode = f.train_mode;
    options.seed = f.common.seed;
    if (pool < 2 * batch) continue;
    Progress progress("audit batch " + std::to_string(batch), 0, !f.common.quiet);
    const auto started = std::chrono::steady_clock::now();
    const auto audit = metrics::audit_gradient_privacy(
        model, test.images.slice(0, 0, pool), test.labels.slice(0, 0, pool), options, progress);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    audits.push_back(audit_json(audit, batch, seconds));
    risk = std::max(risk, audit.risk);
    report::Series points{"batch " + std::to_string(batch), {}, {}, false, true};
    for (const auto& p : audit.points) {
      if (p.gradient_distance > 1e-12) {
        points.x.push_back(std::log10(p.gradient_distance));
        points.y.push_back(p.psnr);
      }
    }
    plot.series.push_back(points);
    if (audit.fit_valid && !points.x.empty()) {
      const double lo = *std::min_element(points.x.begin(), points.x.end());
      const double hi = *std::max_element(points.x.begin(), points.x.end());
      plot.series.push_back(
          {"fit batch " + std::to_string(batch),
           {lo, hi},
           {audit.fit_intercept + audit.fit_slope * lo, audit.fit_intercept + audit.fit_slope * hi},
           true,
           false});
    }
    char line[240];
    std::snprintf(line, sizeof line,
                  "audit batch %3lld: spearman %.3f, predicted PSNR %.2f dB at distance %.0e (fit "
                  "%.2f, bound: %s), risk %.3f, %.1f s",
                  static_cast<long long>(batch), audit.spearman, audit.predicted_psnr,
                  f.attacker_distance, audit.fit_psnr, audit.risk_bound.c_str(), audit.risk,
                  seconds);
    say(f.common, line);
  }
  report::write_svg((out / "audit_relation.svg").string(), plot);

  auto results = report::results_envelope("gradients", f.common.seed);
  results["dataset"] = report::dataset_json(f.common.data, splits);
  results["model"] = {
      {"file", f.common.model}, {"summary", model.summary()}, {"meta", loaded.meta}};
  results["targets"] = {
      {"indices", std::vector<int64_t>(chosen.data_ptr<int64_t>(),
                                       chosen.data_ptr<int64_t>() + chosen.numel())}};
  results["train_mode"] = f.train_mode;
  results["runs"] = runs;
  results["audit"] = {{"attacker_distance", f.attacker_distance},
                      {"risk", risk},
                      {"probes", f.audit_probes},
                      {"probe_iterations", f.audit_probe_iterations},
                      {"risk_definition",
                       "clamp((PSNR predicted at attacker_distance - PSNR of unrelated batches) / "
                       "(40 - PSNR of unrelated batches), 0, 1); the largest over batch sizes. "
                       "PSNR predicted = min(path fit at attacker_distance, lowest PSNR of an "
                       "observed point (probe, path, pair) with gradient distance <= "
                       "attacker_distance, PSNR of the closest probe raised by the fit's rise "
                       "from its distance to attacker_distance when it stopped short)"},
                      {"plot", "audit_relation.svg"},
                      {"batch_sizes", audits}};
  report::write_results(f.common.out, results);
  say(f.common, "results written to " + (out / "results.json").string());
  return 0;
}

std::function<int()> setup_gradients(CLI::App& app) {
  auto flags = std::make_shared<GradientsFlags>();
  app.add_option("--attack", flags->attack, "dlg, idlg, ig or all")->capture_default_str();
  app.add_option("--batch", flags->batch_sizes, "Batch sizes of the shared gradients, e.g. 1,4,16")
      ->delimiter(',')
      ->capture_default_str();
  app.add_option("--targets", flags->targets,
                 "Test images to attack, sampled by --seed (default: the largest batch)")
      ->check(CLI::PositiveNumber);
  app.add_option("--indices", flags->indices, "Test images to attack, by position (I,J,...)")
      ->delimiter(',');
  app.add_option("--iterations", flags->iterations,
                 "Attack iterations (0 = the attack's default: DLG 300, IG 4800)");
  app.add_option("--restarts", flags->restarts,
                 "Extra random starts per attack; the lowest gradient distance is kept")
      ->capture_default_str();
  app.add_option("--tv", flags->total_variation,
                 "Inverting Gradients total-variation weight (default 1e-4)");
  app.add_flag("--train-mode", flags->train_mode, "Compute gradients with the model in train mode");
  app.add_option("--attacker-distance", flags->attacker_distance,
                 "Gradient cosine distance the audit assumes an attacker reaches")
      ->capture_default_str();
  app.add_option("--audit-probes", flags->audit_probes,
                 "Audit attacker probes per batch size: short Inverting Gradients runs from random "
                 "starts (0 = paths and pairs only)")
      ->capture_default_str();
  app.add_option("--audit-probe-iterations", flags->audit_probe_iterations,
                 "Inverting Gradients iterations of each audit probe")
      ->capture_default_str();
  add_model_flags(app, flags->common);
  add_data_flags(app, flags->common);
  add_output_flags(app, flags->common);
  add_runtime_flags(app, flags->common);
  return [flags]() { return run_gradients(*flags); };
}

const bool registered = register_command({"gradients",
                                          "Reconstruct images from shared gradients (DLG, iDLG, "
                                          "Inverting Gradients) and audit the model",
                                          setup_gradients});

}  // namespace
}  // namespace privaudit::cli
