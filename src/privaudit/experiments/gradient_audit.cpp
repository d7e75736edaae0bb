#include "privaudit/experiments/gradient_audit.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "privaudit/attacks/gradients/gradient_matching.h"
#include "privaudit/attacks/gradients/idlg.h"
#include "privaudit/attacks/gradients/registry.h"
#include "privaudit/metrics/reconstruction_score.h"
#include "privaudit/metrics/statistics.h"
#include "privaudit/util/error.h"
#include "privaudit/util/runtime.h"
#include "privaudit/util/timer.h"

namespace privaudit::experiments {
using metrics::score_reconstruction;
using metrics::spearman_correlation;
namespace {

attacks::Gradients double_gradients(models::Classifier& model, const torch::Tensor& images,
                                    const torch::Tensor& labels) {
  auto gradients = attacks::shared_gradients(model, images, labels);
  // Double precision: small path steps give cosine distances near float32's resolution.
  for (auto& g : gradients) g = g.to(torch::kDouble);
  return gradients;
}

// The labels an attacker pairs with its candidate images (one per image of `truth`) when it
// measures a distance to the observed update `observed`: the true ones when the server knows them;
// else those it reads off the last layer (iDLG / LLG-style count, as Inverting Gradients does), put
// in the order that agrees most with `truth` (the pairing an attacker converging to the batch ends
// with; equal to `truth` when the count is right); else, when the last layer does not allow it,
// no labels: uniform soft labels (B x K), DLG's starting guess.
torch::Tensor labels_the_attacker_holds(models::Classifier& model,
                                        const attacks::Gradients& observed,
                                        const torch::Tensor& truth,
                                        const attacks::AttackerKnowledge& knowledge) {
  const int64_t batch = truth.size(0);
  if (knowledge.labels) return truth;
  torch::Tensor inferred;
  try {
    inferred = attacks::infer_labels(model, observed, batch).to(torch::kCPU);
  } catch (const Error&) {
    return torch::full({batch, model.num_classes()}, 1.0 / static_cast<double>(model.num_classes()),
                       torch::TensorOptions().device(truth.device()));
  }
  std::vector<int64_t> left(inferred.data_ptr<int64_t>(), inferred.data_ptr<int64_t>() + batch);
  const auto true_cpu = truth.to(torch::kCPU, torch::kLong);
  std::vector<int64_t> paired(static_cast<size_t>(batch), -1);
  for (int64_t b = 0; b < batch; ++b) {
    const auto it = std::find(left.begin(), left.end(), true_cpu[b].item<int64_t>());
    if (it == left.end()) continue;
    paired[static_cast<size_t>(b)] = *it;
    left.erase(it);
  }
  for (auto& label : paired) {
    if (label >= 0) continue;
    label = left.front();
    left.erase(left.begin());
  }
  return torch::tensor(paired, torch::kLong).to(truth.device());
}

}  // namespace

void GradientAuditOptions::validate() const {
  if (batch_size < 1) throw UsageError("audit batch size must be at least 1");
  if (paths < 1 || steps_per_path < 2) throw UsageError("audit needs at least 1 path of 2 steps");
  if (!(min_step > 0 && min_step < 1)) throw UsageError("audit min step must be in (0, 1)");
  if (pairs < 1) throw UsageError("audit pairs must be at least 1");
  if (!(attacker_distance > 0 && attacker_distance < 2))
    throw UsageError("audit attacker distance must be in (0, 2)");
  if (!(exact_psnr > 0)) throw UsageError("audit exact PSNR must be positive");
  if (probes < 0)
    throw UsageError("audit probes must not be negative, got " + std::to_string(probes));
  if (probe_iterations < 1) {
    throw UsageError("audit probe iterations must be at least 1, got " +
                     std::to_string(probe_iterations));
  }
}

GradientAudit audit_gradient_privacy(models::Classifier& model, const torch::Tensor& images,
                                     const torch::Tensor& labels,
                                     const GradientAuditOptions& options, Progress& progress) {
  options.validate();
  const int64_t batch = options.batch_size;
  const int64_t n = images.size(0);
  if (n < 2 * batch) {
    throw Error("audit needs at least " + std::to_string(2 * batch) + " images for batch size " +
                std::to_string(batch) + ", got " + std::to_string(n));
  }
  models::TrainingModeGuard mode(model, options.train_mode);
  auto generator = make_generator(options.seed);
  const auto device = model.device();
  const auto pick = [&]() { return torch::randperm(n, generator).slice(0, 0, 2 * batch); };

  GradientAudit audit;
  const auto add_point = [&](const std::string& kind, double step, const attacks::Gradients& ga,
                             const attacks::Gradients& gb, const torch::Tensor& xa,
                             const torch::Tensor& xb) {
    const auto score = score_reconstruction(xb, {}, xa, {});
    audit.points.push_back({kind, step, attacks::cosine_distance(ga, gb).item<double>(),
                            score.mean_psnr, score.mean_ssim});
  };

  progress.start("audit", options.paths + options.pairs);
  const auto steps =
      torch::logspace(std::log10(options.min_step), 0, options.steps_per_path, 10, torch::kDouble);
  for (int p = 0; p < options.paths; ++p) {
    const auto chosen = pick();
    const auto x = images.index_select(0, chosen.slice(0, 0, batch)).to(device);
    const auto y = labels.index_select(0, chosen.slice(0, 0, batch)).to(device);
    const bool towards_noise = p % 2 == 1;
    const auto z = towards_noise
                       ? torch::rand(x.sizes(), generator).to(device)
                       : images.index_select(0, chosen.slice(0, batch, 2 * batch)).to(device);
    const auto g0 = double_gradients(model, x, y);
    // The moved batch's gradient as the attacker computes it: with the labels it holds.
    const auto held = labels_the_attacker_holds(model, g0, y, options.knowledge);
    // Only the first image of the batch moves: the attacker has to resolve each image inside
    // the batch's averaged gradient, and the others dilute its change.
    const auto x0 = x.slice(0, 0, 1), z0 = z.slice(0, 0, 1);
    for (int64_t s = 0; s < steps.size(0); ++s) {
      const double t = steps[s].item<double>();
      const auto moved = (1 - t) * x0 + t * z0;
      const auto xt = torch::cat({moved, x.slice(0, 1, batch)});
      add_point(towards_noise ? "path-noise" : "path-image", t, g0,
                double_gradients(model, xt, held), x0, moved);
    }
    progress.update(p + 1);
  }
  for (int q = 0; q < options.pairs; ++q) {
    const auto chosen = pick();
    const auto a = chosen.slice(0, 0, batch), b = chosen.slice(0, batch, 2 * batch);
    const auto xa = images.index_select(0, a).to(device), xb = images.index_select(0, b).to(device);
    add_point("pair", 1.0, double_gradients(model, xa, labels.index_select(0, a).to(device)),
              double_gradients(model, xb, labels.index_select(0, b).to(device)), xa, xb);
    progress.update(options.paths + q + 1);
  }
  progress.finish();

  // Probes: what an attacker finds from a random start, on a short budget. The
  // probe gets only the shared (float) gradient; its kept images are then measured in double
  // against the batch's gradient, with the labels the probe itself used (the server's, or those
  // it read off the update), and scored against the batch, as an attack is.
  const Stopwatch probes_started;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  audit.probe_min_distance = audit.probe_psnr = audit.probe_bound_psnr = nan;
  audit.probe_best_psnr = audit.collision_psnr = nan;
  for (int k = 0; k < options.probes; ++k) {
    const auto chosen = pick().slice(0, 0, batch);
    const auto x = images.index_select(0, chosen).to(device);
    const auto y = labels.index_select(0, chosen).to(device);
    attacks::AttackBudget budget;
    budget.iterations = options.probe_iterations;
    budget.seed = options.seed + 7919 * (k + 1);
    const auto update = attacks::observe_update(model, x, y, options.knowledge, options.train_mode);
    const auto found = attacks::find_gradient_attack("ig").run(model, update, budget, progress);
    const auto found_images = found.images.to(device);
    const auto observed = double_gradients(model, x, y);
    const bool has_labels = found.labels.defined() && found.labels.numel() == batch &&
                            found.labels.min().item<int64_t>() >= 0;
    const auto held =
        has_labels ? found.labels.to(device) : labels_the_attacker_holds(model, observed, y, {});
    add_point("probe", 1.0, observed, double_gradients(model, found_images, held), x, found_images);
    const auto& point = audit.points.back();
    if (k == 0 || point.gradient_distance < audit.probe_min_distance) {
      audit.probe_min_distance = point.gradient_distance;
      audit.probe_psnr = point.psnr;
    }
    if (!(point.psnr <= audit.probe_best_psnr)) audit.probe_best_psnr = point.psnr;
    if (point.gradient_distance <= options.attacker_distance &&
        !(point.psnr >= audit.collision_psnr))
      audit.collision_psnr = point.psnr;
  }
  audit.probe_seconds = probes_started.seconds();

  std::vector<double> similarity, psnr, log_distance, path_psnr;
  double unrelated = 0;
  int unrelated_count = 0;
  for (const auto& point : audit.points) {
    similarity.push_back(1 - point.gradient_distance);
    psnr.push_back(point.psnr);
    if (point.kind == "pair") {
      unrelated += point.psnr;
      ++unrelated_count;
    } else if (point.kind != "probe" && point.gradient_distance > 1e-12 && point.psnr < 100) {
      log_distance.push_back(std::log10(point.gradient_distance));
      path_psnr.push_back(point.psnr);
    }
  }
  audit.spearman = spearman_correlation(similarity, psnr);
  audit.unrelated_psnr = unrelated / unrelated_count;
  // A fit needs spread in the distances; a gradient that does not move with the data has none.
  if (log_distance.size() >= 3) {
    const double mx = metrics::mean(log_distance);
    const double my = metrics::mean(path_psnr);
    double sxy = 0, sxx = 0;
    for (size_t i = 0; i < log_distance.size(); ++i) {
      sxy += (log_distance[i] - mx) * (path_psnr[i] - my);
      sxx += (log_distance[i] - mx) * (log_distance[i] - mx);
    }
    if (sxx > 1e-6) {
      audit.fit_slope = sxy / sxx;
      audit.fit_intercept = my - audit.fit_slope * mx;
      audit.fit_valid = audit.fit_slope < 0;
    }
  }
  // The fit is a regression line, not a bound: a path or pair point (the auditor's own
  // measurement of the relation, no attack) at least as close as the attacker with a lower PSNR
  // is a counterexample to what it claims at attacker_distance, and lowers the prediction. A
  // probe is an attack: what it fails to rebuild proves nothing and never lowers it (a probe
  // that reached attacker_distance with another image is recorded as `collision_psnr`, evidence
  // that the relation is loose, for the reader); what it rebuilds is a floor.
  audit.observed_psnr = nan;
  const AuditPoint* lowest = nullptr;
  for (const auto& point : audit.points) {
    if (point.kind != "probe" && point.gradient_distance <= options.attacker_distance &&
        (lowest == nullptr || point.psnr < lowest->psnr)) {
      lowest = &point;
    }
  }
  if (lowest != nullptr) audit.observed_psnr = lowest->psnr;
  audit.fit_psnr = audit.predicted_psnr = audit.unrelated_psnr;
  const auto fit = [&](double d) { return audit.fit_intercept + audit.fit_slope * std::log10(d); };
  if (audit.fit_valid) {
    audit.fit_psnr = audit.predicted_psnr = fit(options.attacker_distance);
    audit.risk_bound = "fit";
    if (lowest != nullptr && lowest->psnr < audit.predicted_psnr) {
      audit.predicted_psnr = lowest->psnr;
      audit.risk_bound = lowest->kind;
    }
    // What the closest probe would say carried to attacker_distance, recorded for the reader
    // only: it does not enter the prediction.
    audit.probe_bound_psnr = audit.probe_psnr;
    if (audit.probe_min_distance > options.attacker_distance) {
      audit.probe_bound_psnr += audit.fit_psnr - fit(audit.probe_min_distance);
    }
  }
  // An audit never reports less than an attack achieves: the prediction is at least the best
  // PSNR an attack reached on this model at this batch size, the run's (options.achieved_psnr)
  // or a probe's. Only a floor above the unrelated PSNR sets a risk without a valid fit.
  if (std::isfinite(options.achieved_psnr)) {
    audit.floor_psnr = options.achieved_psnr;
    audit.floor_source = options.achieved_by.empty() ? "attack" : options.achieved_by;
  }
  if (std::isfinite(audit.probe_best_psnr) && !(audit.probe_best_psnr <= audit.floor_psnr)) {
    audit.floor_psnr = audit.probe_best_psnr;
    audit.floor_source = "probe";
  }
  const bool floor_counts = audit.fit_valid || audit.floor_psnr > audit.unrelated_psnr;
  if (floor_counts && audit.floor_psnr > audit.predicted_psnr) {
    audit.predicted_psnr = audit.floor_psnr;
    audit.risk_bound = audit.floor_source == "probe" ? "probe" : "attack";
  }
  audit.risk =
      audit.risk_bound == "none" ? 0.0 : psnr_risk(audit, audit.predicted_psnr, options.exact_psnr);
  return audit;
}

double psnr_risk(const GradientAudit& audit, double psnr, double exact_psnr) {
  const double span = exact_psnr - audit.unrelated_psnr;
  if (!(span > 0) || !std::isfinite(psnr)) return 0.0;
  return std::clamp((psnr - audit.unrelated_psnr) / span, 0.0, 1.0);
}

}  // namespace privaudit::experiments
