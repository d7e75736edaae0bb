#include "privaudit/experiments/gradients/attack_runs.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>

#include "privaudit/experiments/gradients/targets.h"
#include "privaudit/metrics/reconstruction_score.h"
#include "privaudit/metrics/statistics.h"
#include "privaudit/util/time_budget.h"

namespace privaudit::experiments {
namespace gradients {

// A figure the attack did not give (not applicable, skipped): NaN, written as
// null.
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<BatchOutcome> attack_batches(models::Classifier &model,
                                         const attacks::GradientAttack &attack, int64_t run,
                                         int64_t batch, const std::vector<int64_t> &mine,
                                         const torch::Tensor &target_images,
                                         const torch::Tensor &target_labels,
                                         const GradientExperimentOptions &options,
                                         CertifiedBatches &certified_by, const Reporter &reporter) {
  const auto device = model.device();
  std::vector<BatchOutcome> outcomes;
  std::vector<size_t> attacked;  // positions in `outcomes`
  std::vector<attacks::SharedUpdate> updates;
  std::vector<attacks::AttackBudget> budgets;
  for (int64_t k : mine) {
    BatchOutcome outcome;
    outcome.run = run;
    outcome.k = k;
    // Nothing can do better than an exact, self-certified recovery of the whole
    // batch.
    if (options.skip_certified && !certified_by[k].empty()) {
      outcome.skipped_by = certified_by[k];
      outcomes.push_back(std::move(outcome));
      continue;
    }
    attacked.push_back(outcomes.size());
    outcomes.push_back(std::move(outcome));
    updates.push_back(attacks::observe_update(model, batch_of(target_images, k, batch).to(device),
                                              batch_of(target_labels, k, batch).to(device),
                                              options.knowledge, options.train_mode));
    if (options.update_defense.active()) {
      auto defense = options.update_defense;
      defense.seed = options.seed + static_cast<uint64_t>(k);
      updates.back() = defense::defend_update(updates.back(), defense);
    }
    budgets.push_back(options.budget);
    budgets.back().seed = options.seed + static_cast<uint64_t>(k);
  }
  std::vector<attacks::Reconstruction> results(updates.size());
  {
    const auto progress = reporter.progress(attack.name + " batch " + std::to_string(batch));
    std::vector<std::vector<size_t>> groups;  // positions in `updates`, by graph_group
    int64_t last_group = -1;
    for (size_t i = 0; i < updates.size(); ++i) {
      const int64_t group = graph_group(attack, outcomes[attacked[i]].k);
      if (groups.empty() || group != last_group) groups.emplace_back();
      last_group = group;
      groups.back().push_back(i);
    }
    for (size_t g = 0; g < groups.size(); ++g) {
      TimeShare share(1.0 / static_cast<double>(groups.size() - g));  // each group its part
      const auto &group = groups[g];
      if (group.size() == 1) {
        results[group[0]] = attack.run(model, updates[group[0]], budgets[group[0]], *progress);
        continue;
      }
      std::vector<attacks::SharedUpdate> group_updates;
      std::vector<attacks::AttackBudget> group_budgets;
      for (auto i : group) {
        group_updates.push_back(updates[i]);
        group_budgets.push_back(budgets[i]);
      }
      auto group_results = attack.run_many(model, group_updates, group_budgets, *progress);
      for (size_t j = 0; j < group.size(); ++j) results[group[j]] = std::move(group_results[j]);
    }
  }
  for (size_t i = 0; i < attacked.size(); ++i) {
    auto &outcome = outcomes[attacked[i]];
    const auto &result = results[i];
    if (!result.details.is_null()) outcome.details = result.details;
    if (result.not_applicable) {
      outcome.not_applicable = true;
      outcome.failure = result.failure;
      outcome.details["not_applicable"] = result.failure;
      continue;
    }
    // Scored within the shared update (a batch's gradient says nothing about
    // order). A failed run's zero images are scored as what they are: a blank
    // guess.
    const auto score = metrics::score_reconstruction(
        result.images.to(torch::kCPU), result.labels.to(torch::kCPU),
        batch_of(target_images, outcome.k, batch), batch_of(target_labels, outcome.k, batch));
    bool all_certified = true;
    for (size_t t = 0; t < score.assignment.size(); ++t) {
      const auto from = static_cast<size_t>(score.assignment[t]);
      const auto at = static_cast<int64_t>(t);
      outcome.psnr.push_back(score.psnr[at].item<double>());
      outcome.ssim.push_back(score.ssim[at].item<double>());
      outcome.mse.push_back(score.mse[at].item<double>());
      outcome.certified.push_back(from < result.certified.size() && result.certified[from]);
      all_certified = all_certified && outcome.certified.back();
    }
    outcome.matched = score.matched.contiguous();
    outcome.label_accuracy = std::max(0.0, score.label_accuracy);
    outcome.iterations = result.iterations;
    outcome.restarts = result.restarts;
    outcome.failed = result.failed;
    outcome.distance = result.final_distance;
    if (all_certified) certified_by[outcome.k] = attack.name;
  }
  return outcomes;
}

GradientRun assemble_run(const attacks::GradientAttack &attack, int64_t batch,
                         const std::vector<const BatchOutcome *> &by_k, double seconds,
                         const torch::Tensor &target_images,
                         const GradientExperimentOptions &options, const Reporter &reporter,
                         OutputSink &sink) {
  const auto batches = static_cast<int64_t>(by_k.size());
  GradientRun run;
  run.attack = attack.name;
  run.batch_size = batch;
  run.batches = batches;
  run.attacker_knows = options.knowledge.names();
  run.seconds = seconds;
  double iterations = 0, distance = 0, label_hits = 0;
  std::vector<double> mse;
  std::vector<torch::Tensor> matched, shown_targets;
  std::vector<int64_t> applicable;  // the batches the attack applied to
  for (int64_t k = 0; k < batches; ++k) {
    const auto &outcome = *by_k[static_cast<size_t>(k)];
    if (!outcome.skipped_by.empty()) {
      ++run.skipped_batches;
      run.skipped = "every image already recovered exactly and certified by " + outcome.skipped_by;
      run.details.push_back({{"skipped", run.skipped}});
      run.add_unscored(batch);
      continue;
    }
    run.details.push_back(outcome.details);
    if (outcome.not_applicable) {
      run.not_applicable = outcome.failure;
      run.add_unscored(batch);
      continue;
    }
    ++run.applicable_batches;
    applicable.push_back(k);
    iterations += outcome.iterations;
    run.restarts += outcome.restarts;
    run.failed_batches += outcome.failed;
    distance += outcome.distance;
    label_hits += outcome.label_accuracy;
    matched.push_back(outcome.matched);
    shown_targets.push_back(batch_of(target_images, k, batch));
    run.target_psnr.insert(run.target_psnr.end(), outcome.psnr.begin(), outcome.psnr.end());
    run.target_ssim.insert(run.target_ssim.end(), outcome.ssim.begin(), outcome.ssim.end());
    run.target_certified.insert(run.target_certified.end(), outcome.certified.begin(),
                                outcome.certified.end());
    mse.insert(mse.end(), outcome.mse.begin(), outcome.mse.end());
  }
  run.exact = std::count(run.target_certified.begin(), run.target_certified.end(), true);
  if (run.applicable_batches == 0) {
    run.psnr = run.ssim = run.mse = run.label_accuracy = kNaN;
    reporter.say(attack.name + " batch " + std::to_string(batch) +
                 (run.skipped_batches == batches ? ": skipped: " + run.skipped
                                                 : ": not applicable: " + run.not_applicable));
    return run;
  }
  run.not_applicable.clear();
  const auto count = static_cast<double>(run.applicable_batches);
  // Means over the scored targets (the unscored ones are NaN).
  run.psnr = metrics::mean_of_finite(run.target_psnr);
  run.ssim = metrics::mean_of_finite(run.target_ssim);
  run.mse = metrics::mean_of_finite(mse);
  run.label_accuracy = label_hits / count;
  run.iterations = iterations / count;
  run.gradient_distance = distance / count;
  run.matched = torch::zeros_like(target_images.slice(0, 0, batches * batch));
  for (size_t m = 0; m < applicable.size(); ++m) {
    run.matched.slice(0, applicable[m] * batch, (applicable[m] + 1) * batch).copy_(matched[m]);
  }
  run.grid = "grid_" + attack.name + "_batch" + std::to_string(batch) + ".png";
  sink.image_grid(run.grid, {torch::cat(shown_targets), torch::cat(matched)});
  char line[240];
  std::snprintf(line, sizeof line,
                "%-4s batch %3lld: PSNR %.2f dB, SSIM %.3f, labels %.2f, exact "
                "%lld/%lld, %.1f s%s",
                attack.name.c_str(), static_cast<long long>(batch), run.psnr, run.ssim,
                run.label_accuracy, static_cast<long long>(run.exact),
                static_cast<long long>(run.target_psnr.size()), run.seconds,
                run.failed_batches ? " (FAILED: NaN)" : "");
  reporter.say(line);
  return run;
}

}  // namespace gradients

void GradientRun::add_unscored(int64_t count) {
  target_psnr.insert(target_psnr.end(), static_cast<size_t>(count), gradients::kNaN);
  target_ssim.insert(target_ssim.end(), static_cast<size_t>(count), gradients::kNaN);
  target_certified.insert(target_certified.end(), static_cast<size_t>(count), false);
}

bool GradientRun::add_scored(const metrics::ReconstructionScore &score,
                             const attacks::Reconstruction &result) {
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

StrongestAttack strongest_attack(const std::vector<GradientRun> &runs, int64_t batch,
                                 const torch::Tensor &target_images, const std::string &grid,
                                 const Reporter &reporter, OutputSink &sink) {
  StrongestAttack best;
  best.batch_size = batch;
  const size_t n = static_cast<size_t>(target_images.size(0) / batch * batch);
  best.attack.assign(n, "");
  best.psnr.assign(n, gradients::kNaN);
  best.ssim.assign(n, gradients::kNaN);
  best.certified.assign(n, false);
  std::vector<torch::Tensor> images(n);
  for (const auto &run : runs) {
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
  best.mean_psnr = metrics::mean_of_finite(best.psnr);
  best.median_psnr = metrics::median_of_finite(best.psnr);
  best.mean_ssim = metrics::mean_of_finite(best.ssim);
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
                "strongest batch %3lld: PSNR mean %.2f dB, median %.2f dB, "
                "exact %lld/%zu",
                static_cast<long long>(batch), best.mean_psnr, best.median_psnr,
                static_cast<long long>(best.exact), n);
  reporter.say(line);
  return best;
}

}  // namespace privaudit::experiments
