#include "privaudit/experiments/gradient_experiment.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>

#include "privaudit/metrics/reconstruction_score.h"
#include "privaudit/report/results.h"
#include "privaudit/util/error.h"
#include "privaudit/util/runtime.h"
#include "privaudit/util/time_budget.h"

namespace privaudit::experiments {
namespace {

double seconds_since(std::chrono::steady_clock::time_point started) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
}

torch::Tensor choose_targets(const data::Dataset& test, const GradientExperimentOptions& options,
                             int64_t wanted) {
  if (!options.indices.empty()) {
    for (auto i : options.indices) {
      if (i < 0 || i >= test.size()) {
        throw UsageError("--indices: " + std::to_string(i) + " is outside the test split (0.." +
                         std::to_string(test.size() - 1) + ")");
      }
    }
    return torch::tensor(options.indices, torch::kLong);
  }
  if (wanted > test.size()) {
    throw UsageError("--targets " + std::to_string(wanted) + ": the test split has only " +
                     std::to_string(test.size()));
  }
  auto generator = make_generator(options.seed);
  return torch::randperm(test.size(), generator).slice(0, 0, wanted);
}

double nan() { return std::numeric_limits<double>::quiet_NaN(); }

double mean_of(const std::vector<double>& values) {
  double sum = 0;
  int64_t n = 0;
  for (double v : values) {
    if (std::isfinite(v)) sum += v, ++n;
  }
  return n > 0 ? sum / static_cast<double>(n) : nan();
}

double median_of(std::vector<double> values) {
  values.erase(
      std::remove_if(values.begin(), values.end(), [](double v) { return !std::isfinite(v); }),
      values.end());
  if (values.empty()) return nan();
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

// Per batch of one batch size, the attack that recovered every image of it exactly and certified
// it ("" while none has).
using CertifiedBatches = std::vector<std::string>;

GradientRun run_attack(models::Classifier& model, const attacks::GradientAttack& attack,
                       int64_t batch, const torch::Tensor& target_images,
                       const torch::Tensor& target_labels, const GradientExperimentOptions& options,
                       CertifiedBatches& certified_by, const Reporter& reporter, OutputSink& sink) {
  const auto device = model.device();
  // floor(N / B) independent batches, each with its own shared update.
  const int64_t batches = target_images.size(0) / batch;
  const auto started = std::chrono::steady_clock::now();
  GradientRun run;
  run.attack = attack.name;
  run.batch_size = batch;
  run.batches = batches;
  run.attacker_knows = options.knowledge.names();
  int iterations = 0;
  double distance = 0;
  std::vector<torch::Tensor> matched, psnr, ssim, mse;
  std::vector<torch::Tensor> shown_targets;
  std::vector<int64_t> applicable;  // the batches the attack applied to
  double label_hits = 0;
  certified_by.resize(static_cast<size_t>(batches));
  // The batches to attack and their shared updates; then all of them at once where the attack
  // can (one graph for many problems, attacks/multi_target.h), else one after another.
  std::vector<int64_t> attacked;
  std::vector<attacks::SharedUpdate> updates;
  std::vector<attacks::AttackBudget> budgets;
  for (int64_t k = 0; k < batches; ++k) {
    // Nothing can do better than an exact, self-certified recovery of the whole batch.
    if (options.skip_certified && !certified_by[static_cast<size_t>(k)].empty()) continue;
    const auto images = target_images.slice(0, k * batch, (k + 1) * batch);
    const auto truth = target_labels.slice(0, k * batch, (k + 1) * batch);
    attacked.push_back(k);
    updates.push_back(attacks::observe_update(model, images.to(device), truth.to(device),
                                              options.knowledge, options.train_mode));
    budgets.push_back(options.budget);
    budgets.back().seed = options.seed + static_cast<uint64_t>(k);
  }
  std::vector<attacks::Reconstruction> results;
  {
    const auto progress = reporter.progress(attack.name + " batch " + std::to_string(batch));
    if (attack.run_many && updates.size() > 1) {
      results = attack.run_many(model, updates, budgets, *progress);
    } else {
      for (size_t i = 0; i < updates.size(); ++i) {
        TimeShare share(1.0 / static_cast<double>(updates.size() - i));  // each batch its part
        results.push_back(attack.run(model, updates[i], budgets[i], *progress));
      }
    }
  }
  size_t next = 0;  // the next of `results`
  for (int64_t k = 0; k < batches; ++k) {
    if (next >= attacked.size() || attacked[next] != k) {
      ++run.skipped_batches;
      run.skipped = "every image already recovered exactly and certified by " +
                    certified_by[static_cast<size_t>(k)];
      run.details.push_back({{"skipped", run.skipped}});
      run.add_unscored(batch);
      continue;
    }
    const auto& result = results[next++];
    const auto images = target_images.slice(0, k * batch, (k + 1) * batch);
    const auto truth = target_labels.slice(0, k * batch, (k + 1) * batch);
    run.details.push_back(result.details.is_null() ? nlohmann::json::object() : result.details);
    if (result.not_applicable) {
      run.not_applicable = result.failure;
      run.details.back()["not_applicable"] = result.failure;
      run.add_unscored(batch);
      continue;
    }
    ++run.applicable_batches;
    applicable.push_back(k);
    iterations += result.iterations;
    run.restarts += result.restarts;
    run.failed_batches += result.failed;
    distance += result.final_distance;
    // Scored within the shared update (a batch's gradient says nothing about order). A failed
    // run's zero images are scored as what they are: a blank guess.
    const auto score = metrics::score_reconstruction(result.images.to(torch::kCPU),
                                                     result.labels.to(torch::kCPU), images, truth);
    matched.push_back(score.matched);
    shown_targets.push_back(images);
    psnr.push_back(score.psnr);
    ssim.push_back(score.ssim);
    mse.push_back(score.mse);
    label_hits += std::max(0.0, score.label_accuracy);
    if (run.add_scored(score, result)) certified_by[static_cast<size_t>(k)] = attack.name;
  }
  run.seconds = seconds_since(started);
  run.exact = std::count(run.target_certified.begin(), run.target_certified.end(), true);
  if (run.applicable_batches == 0) {
    run.psnr = run.ssim = run.mse = run.label_accuracy = nan();
    reporter.say(attack.name + " batch " + std::to_string(batch) +
                 (run.skipped_batches == batches ? ": skipped: " + run.skipped
                                                 : ": not applicable: " + run.not_applicable));
    return run;
  }
  run.not_applicable.clear();
  const auto count = static_cast<double>(run.applicable_batches);
  run.psnr = torch::cat(psnr).mean().item<double>();
  run.ssim = torch::cat(ssim).mean().item<double>();
  run.mse = torch::cat(mse).mean().item<double>();
  run.label_accuracy = label_hits / count;
  run.iterations = iterations / count;
  run.gradient_distance = distance / count;
  run.matched = torch::zeros_like(target_images.slice(0, 0, batches * batch));
  for (size_t m = 0; m < applicable.size(); ++m) {
    const int64_t k = applicable[m];
    run.matched.slice(0, k * batch, (k + 1) * batch).copy_(matched[m]);
  }
  run.grid = "grid_" + attack.name + "_batch" + std::to_string(batch) + ".png";
  sink.image_grid(run.grid, {torch::cat(shown_targets), torch::cat(matched)});
  char line[240];
  std::snprintf(line, sizeof line,
                "%-4s batch %3lld: PSNR %.2f dB, SSIM %.3f, labels %.2f, exact %lld/%lld, %.1f s%s",
                attack.name.c_str(), static_cast<long long>(batch), run.psnr, run.ssim,
                run.label_accuracy, static_cast<long long>(run.exact),
                static_cast<long long>(run.target_psnr.size()), run.seconds,
                run.failed_batches ? " (FAILED: NaN)" : "");
  reporter.say(line);
  return run;
}

}  // namespace

void GradientRun::add_unscored(int64_t count) {
  target_psnr.insert(target_psnr.end(), static_cast<size_t>(count), nan());
  target_ssim.insert(target_ssim.end(), static_cast<size_t>(count), nan());
  target_certified.insert(target_certified.end(), static_cast<size_t>(count), false);
}

bool GradientRun::add_scored(const metrics::ReconstructionScore& score,
                             const attacks::Reconstruction& result) {
  bool all_certified = true;
  for (size_t i = 0; i < score.assignment.size(); ++i) {
    const auto from = static_cast<size_t>(score.assignment[i]);
    const auto at = static_cast<int64_t>(i);
    target_psnr.push_back(score.psnr[at].item<double>());
    target_ssim.push_back(score.ssim[at].item<double>());
    target_certified.push_back(from < result.certified.size() && result.certified[from]);
    all_certified = all_certified && target_certified.back();
  }
  return all_certified;
}

StrongestAttack strongest_attack(const std::vector<GradientRun>& runs, int64_t batch,
                                 const torch::Tensor& target_images, const std::string& grid,
                                 const Reporter& reporter, OutputSink& sink) {
  StrongestAttack best;
  best.batch_size = batch;
  const size_t n = static_cast<size_t>(target_images.size(0) / batch * batch);
  best.attack.assign(n, "");
  best.psnr.assign(n, nan());
  best.ssim.assign(n, nan());
  best.certified.assign(n, false);
  std::vector<torch::Tensor> images(n);
  for (const auto& run : runs) {
    if (run.batch_size != batch || run.applicable_batches == 0) continue;
    for (size_t i = 0; i < n; ++i) {
      const double p = run.target_psnr[i];
      if (run.target_certified[i]) best.certified[i] = true;
      if (std::isfinite(p) && !(p <= best.psnr[i])) {
        best.psnr[i] = p;
        best.ssim[i] = run.target_ssim[i];
        best.attack[i] = run.attack;
        images[i] = run.matched[static_cast<int64_t>(i)];
      }
    }
  }
  best.mean_psnr = mean_of(best.psnr);
  best.median_psnr = median_of(best.psnr);
  best.mean_ssim = mean_of(best.ssim);
  best.exact = std::count(best.certified.begin(), best.certified.end(), true);
  std::vector<torch::Tensor> shown;
  for (size_t i = 0; i < n; ++i) {
    shown.push_back(images[i].defined() ? images[i] : torch::zeros_like(target_images[0]));
  }
  if (n > 0) {
    best.grid = grid;
    sink.image_grid(best.grid,
                    {target_images.slice(0, 0, static_cast<int64_t>(n)), torch::stack(shown)});
  }
  char line[200];
  std::snprintf(line, sizeof line,
                "strongest batch %3lld: PSNR mean %.2f dB, median %.2f dB, exact %lld/%zu",
                static_cast<long long>(batch), best.mean_psnr, best.median_psnr,
                static_cast<long long>(best.exact), n);
  reporter.say(line);
  return best;
}

namespace {

// The audit is the defender's view: its own test images (labels included for the paths and
// pairs it measures); its probes know what every attack of the run knows.
void run_audits(models::Classifier& model, const data::Dataset& test,
                const GradientExperimentOptions& options, const Reporter& reporter,
                OutputSink& sink, GradientExperimentResult& result) {
  const int64_t pool = std::min<int64_t>(test.size(), options.audit_pool);
  report::Plot plot;
  plot.title = "Gradient similarity vs data similarity";
  plot.x_label = "log10 gradient cosine distance";
  plot.y_label = "PSNR (dB)";
  for (auto batch : options.batch_sizes) {
    GradientAuditOptions audit_options;
    audit_options.batch_size = batch;
    audit_options.attacker_distance = options.attacker_distance;
    audit_options.probes = options.audit_probes;
    audit_options.probe_iterations = options.audit_probe_iterations;
    audit_options.knowledge = options.knowledge;
    audit_options.train_mode = options.train_mode;
    audit_options.seed = options.seed;
    if (pool < 2 * batch) continue;
    const auto progress = reporter.progress("audit batch " + std::to_string(batch));
    const auto started = std::chrono::steady_clock::now();
    BatchAudit entry;
    entry.batch_size = batch;
    entry.audit = audit_gradient_privacy(model, test.images.slice(0, 0, pool),
                                         test.labels.slice(0, 0, pool), audit_options, *progress);
    entry.seconds = seconds_since(started);
    // Evidence may only raise the risk: never below what the run's strongest attack showed.
    for (const auto& best : result.strongest) {
      if (best.batch_size != batch || !std::isfinite(best.mean_psnr)) continue;
      entry.attack_psnr = best.mean_psnr;
      entry.attack_risk = psnr_risk(entry.audit, best.mean_psnr, audit_options.exact_psnr);
      if (entry.attack_risk > entry.audit.risk) {
        entry.audit.risk = entry.attack_risk;
        entry.audit.risk_bound = "attack";
      }
    }
    const auto& audit = entry.audit;
    result.risk = std::max(result.risk, audit.risk);
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
                  options.attacker_distance, audit.fit_psnr, audit.risk_bound.c_str(), audit.risk,
                  entry.seconds);
    reporter.say(line);
    result.audits.push_back(std::move(entry));
  }
  sink.plot("audit_relation.svg", plot);
}

}  // namespace

void GradientExperimentOptions::validate() const {
  if (attacks.empty()) throw UsageError("--attack: name at least one attack");
  for (const auto& name : attacks) attacks::find_gradient_attack(name);
  if (batch_sizes.empty()) throw UsageError("--batch: give at least one batch size");
  for (auto b : batch_sizes) {
    if (b < 1)
      throw UsageError("--batch: batch sizes must be at least 1, got " + std::to_string(b));
  }
  if (targets < 0) throw UsageError("--targets must be positive");
  if (targets > 0 && !indices.empty())
    throw UsageError("--targets and --indices exclude each other");
  if (budget.iterations < 0) throw UsageError("--iterations must not be negative");
  if (budget.restarts < 0) throw UsageError("--restarts must not be negative");
  if (audit_probes < 0) throw UsageError("--audit-probes must not be negative");
  if (audit_probe_iterations < 1) throw UsageError("--audit-probe-iterations must be at least 1");
  if (!(attacker_distance > 0)) throw UsageError("--attacker-distance must be positive");
  const int64_t largest = *std::max_element(batch_sizes.begin(), batch_sizes.end());
  const int64_t wanted = !indices.empty() ? static_cast<int64_t>(indices.size())
                         : targets > 0    ? targets
                                          : largest;
  if (wanted < largest) {
    throw UsageError("--batch " + std::to_string(largest) +
                     " needs at least that many targets, got " + std::to_string(wanted));
  }
}

GradientExperimentResult run_gradient_experiment(models::Classifier& model,
                                                 const data::Dataset& test,
                                                 const GradientExperimentOptions& options,
                                                 const Reporter& reporter, OutputSink& sink) {
  options.validate();
  const int64_t largest = *std::max_element(options.batch_sizes.begin(), options.batch_sizes.end());
  const int64_t wanted = options.targets > 0 ? options.targets : largest;
  const auto chosen = choose_targets(test, options, wanted);
  const auto target_images = test.images.index_select(0, chosen);
  const auto target_labels = test.labels.index_select(0, chosen);
  reporter.say("attacking " + model.summary() + " with " + std::to_string(chosen.size(0)) +
               " test images");

  GradientExperimentResult result;
  result.target_indices.assign(chosen.data_ptr<int64_t>(),
                               chosen.data_ptr<int64_t>() + chosen.numel());
  std::map<int64_t, CertifiedBatches> certified;  // by batch size
  // Under a time budget (util/time_budget.h) the attack runs share 80 % of it (the audit's probes,
  // when on, the rest). Closed-form attacks run first and may use all of that (on the CNN,
  // features-then-invert is the attack that recovers images); each optimisation run then gets an
  // equal part of what is left when it starts.
  {
    TimeShare runs_share(options.audit ? 0.8 : 1.0);
    size_t left = 0;
    for (const auto& name : options.attacks) {
      if (!attacks::find_gradient_attack(name).closed_form) left += options.batch_sizes.size();
    }
    for (const auto& name : options.attacks) {
      const auto& attack = attacks::find_gradient_attack(name);
      for (auto batch : options.batch_sizes) {
        TimeShare share(attack.closed_form ? 1.0 : 1.0 / static_cast<double>(left--));
        result.runs.push_back(run_attack(model, attack, batch, target_images, target_labels,
                                         options, certified[batch], reporter, sink));
      }
    }
  }
  for (auto batch : options.batch_sizes) {
    result.strongest.push_back(
        strongest_attack(result.runs, batch, target_images,
                         "grid_strongest_batch" + std::to_string(batch) + ".png", reporter, sink));
  }
  if (options.audit) run_audits(model, test, options, reporter, sink, result);
  return result;
}

void to_json(nlohmann::json& j, const GradientRun& run) {
  j = {{"attack", run.attack},
       {"batch_size", run.batch_size},
       {"batches", run.batches},
       {"applicable_batches", run.applicable_batches},
       {"psnr", report::number_or_null(run.psnr)},
       {"ssim", report::number_or_null(run.ssim)},
       {"mse", report::number_or_null(run.mse)},
       {"exact", run.exact},
       {"label_accuracy", report::number_or_null(run.label_accuracy)},
       {"iterations", run.iterations},
       {"seconds", run.seconds},
       {"gradient_distance", run.gradient_distance},
       {"restarts", run.restarts},
       {"failed", run.failed_batches > 0},
       {"failed_batches", run.failed_batches},
       {"grid", run.grid},
       {"attacker_knows", run.attacker_knows},
       {"details", run.details}};
  if (run.applicable_batches == 0 && run.skipped_batches < run.batches)
    j["not_applicable"] = run.not_applicable;
  if (run.skipped_batches > 0) {
    j["skipped_batches"] = run.skipped_batches;
    j["skipped"] = run.skipped;
  }
  nlohmann::json psnr = nlohmann::json::array();
  for (double p : run.target_psnr) psnr.push_back(report::number_or_null(p));
  j["target_psnr"] = psnr;
}

void to_json(nlohmann::json& j, const StrongestAttack& best) {
  nlohmann::json targets = nlohmann::json::array();
  std::map<std::string, int> wins;
  for (size_t i = 0; i < best.psnr.size(); ++i) {
    targets.push_back({{"attack", best.attack[i]},
                       {"psnr", report::number_or_null(best.psnr[i])},
                       {"ssim", report::number_or_null(best.ssim[i])},
                       {"certified", static_cast<bool>(best.certified[i])}});
    if (!best.attack[i].empty()) ++wins[best.attack[i]];
  }
  j = {{"batch_size", best.batch_size},
       {"psnr", report::number_or_null(best.mean_psnr)},
       {"median_psnr", report::number_or_null(best.median_psnr)},
       {"ssim", report::number_or_null(best.mean_ssim)},
       {"exact", best.exact},
       {"targets_scored", best.psnr.size()},
       {"wins", wins},
       {"grid", best.grid},
       {"targets", targets}};
}

void to_json(nlohmann::json& j, const BatchAudit& entry) {
  const auto& audit = entry.audit;
  nlohmann::json points = nlohmann::json::array();
  for (const auto& p : audit.points) {
    points.push_back({{"kind", p.kind},
                      {"step", p.step},
                      {"gradient_distance", p.gradient_distance},
                      {"psnr", p.psnr},
                      {"ssim", p.ssim}});
  }
  j = {{"batch_size", entry.batch_size},
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
       {"attack_psnr", report::number_or_null(entry.attack_psnr)},
       {"attack_risk", entry.attack_risk},
       {"probe_min_distance", report::number_or_null(audit.probe_min_distance)},
       {"probe_psnr", report::number_or_null(audit.probe_psnr)},
       {"probe_bound_psnr", report::number_or_null(audit.probe_bound_psnr)},
       {"probe_seconds", audit.probe_seconds},
       {"seconds", entry.seconds},
       {"risk", audit.risk},
       {"points", points}};
}

nlohmann::json to_json(const GradientExperimentResult& result,
                       const GradientExperimentOptions& options) {
  nlohmann::json out;
  out["targets"] = {{"indices", result.target_indices}};
  out["train_mode"] = options.train_mode;
  out["attacker_knows"] = options.knowledge.names();
  out["runs"] = result.runs;
  out["strongest"] = result.strongest;
  out["audit"] = {{"attacker_distance", options.attacker_distance},
                  {"risk", result.risk},
                  {"probes", options.audit_probes},
                  {"probe_iterations", options.audit_probe_iterations},
                  {"risk_definition",
                   "clamp((PSNR predicted at attacker_distance - PSNR of unrelated batches) / "
                   "(40 - PSNR of unrelated batches), 0, 1); the largest over batch sizes. "
                   "PSNR predicted = min(path fit at attacker_distance, lowest PSNR of an "
                   "observed point (probe, path, pair) with gradient distance <= "
                   "attacker_distance: a proven collision); a probe that stopped short proves "
                   "nothing and never lowers it. Never below the risk the strongest attack of "
                   "the run demonstrates (its mean PSNR through the same mapping)"},
                  {"plot", "audit_relation.svg"},
                  {"batch_sizes", result.audits}};
  return out;
}

}  // namespace privaudit::experiments
