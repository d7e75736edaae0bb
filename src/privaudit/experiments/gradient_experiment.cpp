#include "privaudit/experiments/gradient_experiment.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "privaudit/metrics/reconstruction_score.h"
#include "privaudit/report/results.h"
#include "privaudit/util/distributed.h"
#include "privaudit/util/error.h"
#include "privaudit/util/files.h"
#include "privaudit/util/runtime.h"
#include "privaudit/util/time_budget.h"

namespace privaudit::experiments {
namespace {

namespace fs = std::filesystem;

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
// it ("" while none has). Only the batches this rank attacks are filled in.
using CertifiedBatches = std::map<int64_t, std::string>;

// One attack on batch k of one batch size: the unit of work ranks share (util/distributed.h)
// and exchange. Its random stream is seed + k, whichever rank runs it.
struct BatchOutcome {
  int64_t run = 0;  // which (attack, batch size) run, in run order
  int64_t k = 0;
  std::string skipped_by;  // an earlier attack certified the whole batch: not attacked
  bool not_applicable = false;
  std::string failure;
  nlohmann::json details = nlohmann::json::object();
  // Scored batches: per target of the batch, in target order.
  std::vector<double> psnr, ssim, mse;
  std::vector<bool> certified;
  double label_accuracy = 0, iterations = 0, distance = 0;
  int restarts = 0, failed = 0;
  torch::Tensor matched;  // B x C x H x W: the reconstruction matched with each target
};

torch::Tensor batch_of(const torch::Tensor& all, int64_t k, int64_t batch) {
  return all.slice(0, k * batch, (k + 1) * batch);
}

// The group of batches that share one graph with batch k under `attack`: its run_many gets batches
// k / kManyStack of a batch size together (what one gets depends on the others in its graph, so
// the groups stay the same on any rank and in a resumed run); without run_many each batch alone.
int64_t graph_group(const attacks::GradientAttack& attack, int64_t k) {
  return attack.run_many ? k / attacks::kManyStack : k;
}

// Runs `attack` on this rank's batches `mine` of size `batch` (all at once where the attack can:
// one graph for many problems, attacks/multi_target.h), scores each against its targets and
// marks the batches it certified whole in `certified_by`.
std::vector<BatchOutcome> attack_batches(models::Classifier& model,
                                         const attacks::GradientAttack& attack, int64_t run,
                                         int64_t batch, const std::vector<int64_t>& mine,
                                         const torch::Tensor& target_images,
                                         const torch::Tensor& target_labels,
                                         const GradientExperimentOptions& options,
                                         CertifiedBatches& certified_by, const Reporter& reporter) {
  const auto device = model.device();
  std::vector<BatchOutcome> outcomes;
  std::vector<size_t> attacked;  // positions in `outcomes`
  std::vector<attacks::SharedUpdate> updates;
  std::vector<attacks::AttackBudget> budgets;
  for (int64_t k : mine) {
    BatchOutcome outcome;
    outcome.run = run;
    outcome.k = k;
    // Nothing can do better than an exact, self-certified recovery of the whole batch.
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
      const auto& group = groups[g];
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
    auto& outcome = outcomes[attacked[i]];
    const auto& result = results[i];
    if (!result.details.is_null()) outcome.details = result.details;
    if (result.not_applicable) {
      outcome.not_applicable = true;
      outcome.failure = result.failure;
      outcome.details["not_applicable"] = result.failure;
      continue;
    }
    // Scored within the shared update (a batch's gradient says nothing about order). A failed
    // run's zero images are scored as what they are: a blank guess.
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

// The run of `attack` at `batch` from every batch's outcome (`by_k[k]`, all ranks'), in batch
// order; writes its grid and says its line.
GradientRun assemble_run(const attacks::GradientAttack& attack, int64_t batch,
                         const std::vector<const BatchOutcome*>& by_k, double seconds,
                         const torch::Tensor& target_images,
                         const GradientExperimentOptions& options, const Reporter& reporter,
                         OutputSink& sink) {
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
    const auto& outcome = *by_k[static_cast<size_t>(k)];
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
    run.psnr = run.ssim = run.mse = run.label_accuracy = nan();
    reporter.say(attack.name + " batch " + std::to_string(batch) +
                 (run.skipped_batches == batches ? ": skipped: " + run.skipped
                                                 : ": not applicable: " + run.not_applicable));
    return run;
  }
  run.not_applicable.clear();
  const auto count = static_cast<double>(run.applicable_batches);
  // Means over the scored targets (the unscored ones are NaN).
  run.psnr = mean_of(run.target_psnr);
  run.ssim = mean_of(run.target_ssim);
  run.mse = mean_of(mse);
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
                "%-4s batch %3lld: PSNR %.2f dB, SSIM %.3f, labels %.2f, exact %lld/%lld, %.1f s%s",
                attack.name.c_str(), static_cast<long long>(batch), run.psnr, run.ssim,
                run.label_accuracy, static_cast<long long>(run.exact),
                static_cast<long long>(run.target_psnr.size()), run.seconds,
                run.failed_batches ? " (FAILED: NaN)" : "");
  reporter.say(line);
  return run;
}

// What ranks exchange: their outcomes and, per run, the seconds they spent on it (a JSON header,
// NaN as null, and the matched images).
std::string pack_outcomes(const std::vector<BatchOutcome>& outcomes,
                          const std::vector<double>& seconds) {
  nlohmann::json header = {{"seconds", seconds}, {"outcomes", nlohmann::json::array()}};
  std::vector<torch::Tensor> images;
  auto numbers = [](const std::vector<double>& values) {
    nlohmann::json out = nlohmann::json::array();
    for (double v : values) out.push_back(report::number_or_null(v));
    return out;
  };
  for (const auto& o : outcomes) {
    nlohmann::json j = {{"run", o.run},
                        {"k", o.k},
                        {"skipped_by", o.skipped_by},
                        {"not_applicable", o.not_applicable},
                        {"failure", o.failure},
                        {"details", o.details},
                        {"psnr", numbers(o.psnr)},
                        {"ssim", numbers(o.ssim)},
                        {"mse", numbers(o.mse)},
                        {"certified", o.certified},
                        {"label_accuracy", o.label_accuracy},
                        {"iterations", o.iterations},
                        {"distance", report::number_or_null(o.distance)},
                        {"restarts", o.restarts},
                        {"failed", o.failed},
                        {"image", o.matched.defined() ? static_cast<int64_t>(images.size()) : -1}};
    if (o.matched.defined()) images.push_back(o.matched);
    header["outcomes"].push_back(std::move(j));
  }
  return dist::pack(header, images);
}

void unpack_outcomes(const std::string& blob, std::vector<BatchOutcome>& outcomes,
                     std::vector<double>& seconds) {
  const auto [header, images] = dist::unpack(blob);
  auto number = [](const nlohmann::json& v) { return v.is_null() ? nan() : v.get<double>(); };
  auto numbers = [&](const nlohmann::json& values) {
    std::vector<double> out;
    for (const auto& v : values) out.push_back(number(v));
    return out;
  };
  const auto theirs = header.at("seconds").get<std::vector<double>>();
  for (size_t i = 0; i < theirs.size() && i < seconds.size(); ++i)
    seconds[i] = std::max(seconds[i], theirs[i]);  // a run takes as long as its slowest rank
  for (const auto& j : header.at("outcomes")) {
    BatchOutcome o;
    o.run = j.at("run").get<int64_t>();
    o.k = j.at("k").get<int64_t>();
    o.skipped_by = j.at("skipped_by").get<std::string>();
    o.not_applicable = j.at("not_applicable").get<bool>();
    o.failure = j.at("failure").get<std::string>();
    o.details = j.at("details");
    o.psnr = numbers(j.at("psnr"));
    o.ssim = numbers(j.at("ssim"));
    o.mse = numbers(j.at("mse"));
    o.certified = j.at("certified").get<std::vector<bool>>();
    o.label_accuracy = j.at("label_accuracy").get<double>();
    o.iterations = j.at("iterations").get<double>();
    o.distance = number(j.at("distance"));
    o.restarts = j.at("restarts").get<int>();
    o.failed = j.at("failed").get<int>();
    const auto image = j.at("image").get<int64_t>();
    if (image >= 0) o.matched = images.at(static_cast<size_t>(image));
    outcomes.push_back(std::move(o));
  }
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
// A rank's audit as the others receive it (every field; NaN as null).
nlohmann::json pack_audit(const GradientAudit& a, double seconds) {
  auto n = [](double v) { return report::number_or_null(v); };
  nlohmann::json points = nlohmann::json::array();
  for (const auto& p : a.points) {
    points.push_back({p.kind, n(p.step), n(p.gradient_distance), n(p.psnr), n(p.ssim)});
  }
  return {{"points", points},
          {"numbers",
           {n(a.spearman), n(a.fit_intercept), n(a.fit_slope), n(a.unrelated_psnr), n(a.fit_psnr),
            n(a.observed_psnr), n(a.predicted_psnr), n(a.probe_min_distance), n(a.probe_psnr),
            n(a.probe_bound_psnr), n(a.probe_seconds), n(a.risk), n(seconds)}},
          {"fit_valid", a.fit_valid},
          {"risk_bound", a.risk_bound}};
}

GradientAudit unpack_audit(const nlohmann::json& j, double& seconds) {
  auto number = [](const nlohmann::json& v) { return v.is_null() ? nan() : v.get<double>(); };
  GradientAudit a;
  for (const auto& p : j.at("points")) {
    a.points.push_back({p.at(0).get<std::string>(), number(p.at(1)), number(p.at(2)),
                        number(p.at(3)), number(p.at(4))});
  }
  const auto& v = j.at("numbers");
  double* fields[] = {&a.spearman,   &a.fit_intercept,    &a.fit_slope,      &a.unrelated_psnr,
                      &a.fit_psnr,   &a.observed_psnr,    &a.predicted_psnr, &a.probe_min_distance,
                      &a.probe_psnr, &a.probe_bound_psnr, &a.probe_seconds,  &a.risk,
                      &seconds};
  for (size_t i = 0; i < std::size(fields); ++i) *fields[i] = number(v.at(i));
  a.fit_valid = j.at("fit_valid").get<bool>();
  a.risk_bound = j.at("risk_bound").get<std::string>();
  return a;
}

// The audit is the defender's view: its own test images (labels included for the paths and
// pairs it measures); its probes know what every attack of the run knows. Each batch size's
// audit is one work item; the ranks share them out and exchange the results.
void run_audits(models::Classifier& model, const data::Dataset& test,
                const GradientExperimentOptions& options, const Reporter& reporter,
                OutputSink& sink, const dist::World& world, GradientExperimentResult& result) {
  const int64_t pool = std::min<int64_t>(test.size(), options.audit_pool);
  report::Plot plot;
  plot.title = "Gradient similarity vs data similarity";
  plot.x_label = "log10 gradient cosine distance";
  plot.y_label = "PSNR (dB)";
  auto options_for = [&](int64_t batch) {
    GradientAuditOptions audit_options;
    audit_options.batch_size = batch;
    audit_options.attacker_distance = options.attacker_distance;
    audit_options.probes = options.audit_probes;
    audit_options.probe_iterations = options.audit_probe_iterations;
    audit_options.knowledge = options.knowledge;
    audit_options.train_mode = options.train_mode;
    audit_options.seed = options.seed;
    return audit_options;
  };
  const auto& sizes = options.batch_sizes;
  std::vector<double> costs;
  for (auto batch : sizes) costs.push_back(static_cast<double>(batch));
  const auto owner = dist::assign_items(costs, world.size());
  std::map<size_t, BatchAudit> done;  // by position in `sizes`
  nlohmann::json mine = nlohmann::json::object();
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (pool < 2 * sizes[i] || owner[i] != world.rank()) continue;
    const auto progress = reporter.progress("audit batch " + std::to_string(sizes[i]));
    const auto started = std::chrono::steady_clock::now();
    auto& entry = done[i];
    entry.batch_size = sizes[i];
    entry.audit =
        audit_gradient_privacy(model, test.images.slice(0, 0, pool), test.labels.slice(0, 0, pool),
                               options_for(sizes[i]), *progress);
    entry.seconds = seconds_since(started);
    mine[std::to_string(i)] = pack_audit(entry.audit, entry.seconds);
  }
  if (world.size() > 1) {
    for (const auto& blob : world.all_gather(mine.dump(), "exchanging audit results")) {
      const auto theirs = nlohmann::json::parse(blob);
      for (auto it = theirs.begin(); it != theirs.end(); ++it) {
        const auto i = static_cast<size_t>(std::stoul(it.key()));
        if (done.count(i)) continue;
        done[i].batch_size = sizes[i];
        done[i].audit = unpack_audit(it.value(), done[i].seconds);
      }
    }
  }
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (!done.count(i)) continue;
    const int64_t batch = sizes[i];
    const auto audit_options = options_for(batch);
    BatchAudit entry = std::move(done[i]);
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
                                                 const Reporter& reporter, OutputSink& sink,
                                                 const dist::World& world) {
  options.validate();
  const int64_t largest = *std::max_element(options.batch_sizes.begin(), options.batch_sizes.end());
  const int64_t wanted = options.targets > 0 ? options.targets : largest;
  const auto chosen = choose_targets(test, options, wanted);
  const auto target_images = test.images.index_select(0, chosen);
  const auto target_labels = test.labels.index_select(0, chosen);
  reporter.say("attacking " + model.summary() + " with " + std::to_string(chosen.size(0)) +
               " test images" +
               (world.size() > 1 ? " on " + std::to_string(world.size()) + " processes" : ""));

  GradientExperimentResult result;
  result.target_indices.assign(chosen.data_ptr<int64_t>(),
                               chosen.data_ptr<int64_t>() + chosen.numel());
  // The work items: batch k of each batch size, costed by its image count, shared out among the
  // ranks; a rank runs every attack on its batches (an attack may skip a batch an earlier one
  // certified, which only the batch's own rank needs to know).
  std::vector<int64_t> sizes;
  for (auto batch : options.batch_sizes) {
    if (std::find(sizes.begin(), sizes.end(), batch) == sizes.end()) sizes.push_back(batch);
  }
  // An attack that solves many batches in one graph (run_many) gives results that depend on
  // which batches share it, so then the items are whole groups of kManyStack batches.
  const bool grouped = std::any_of(options.attacks.begin(), options.attacks.end(), [](auto& name) {
    return static_cast<bool>(attacks::find_gradient_attack(name).run_many);
  });
  const int64_t group_size = grouped ? attacks::kManyStack : 1;
  std::vector<std::pair<int64_t, int64_t>> items;  // (batch size, first k of the group)
  std::vector<double> costs;
  for (auto batch : sizes) {
    const int64_t count = chosen.size(0) / batch;
    for (int64_t k = 0; k < count; k += group_size) {
      items.emplace_back(batch, k);
      costs.push_back(static_cast<double>(batch * std::min(group_size, count - k)));
    }
  }
  const auto owner = dist::assign_items(costs, world.size());
  std::map<int64_t, std::vector<int64_t>> mine;  // by batch size, in order (items are)
  for (size_t i = 0; i < items.size(); ++i) {
    if (owner[i] != world.rank()) continue;
    const auto [batch, first] = items[i];
    const int64_t end = std::min(first + group_size, chosen.size(0) / batch);
    for (int64_t k = first; k < end; ++k) mine[batch].push_back(k);
  }

  struct RunKey {
    const attacks::GradientAttack* attack;
    int64_t batch;
  };
  std::vector<RunKey> keys;
  for (const auto& name : options.attacks) {
    for (auto batch : options.batch_sizes)
      keys.push_back({&attacks::find_gradient_attack(name), batch});
  }
  std::vector<double> seconds(keys.size(), 0.0);
  std::vector<BatchOutcome> outcomes;
  auto assemble = [&](size_t run) {
    const int64_t batch = keys[run].batch;
    std::vector<const BatchOutcome*> by_k(static_cast<size_t>(chosen.size(0) / batch), nullptr);
    for (const auto& o : outcomes) {
      if (o.run == static_cast<int64_t>(run)) by_k[static_cast<size_t>(o.k)] = &o;
    }
    for (const auto* o : by_k) {
      if (o == nullptr) throw Error("gradients: a batch's outcome is missing after the exchange");
    }
    result.runs.push_back(assemble_run(*keys[run].attack, batch, by_k, seconds[run], target_images,
                                       options, reporter, sink));
  };

  std::map<int64_t, CertifiedBatches> certified;  // by batch size
  // Each attacked batch's outcome is kept under the sink's checkpoint folder, by whichever rank
  // ran it; none without a folder.
  const auto folder = sink.checkpoint_folder();
  const auto checkpoint = [&](const std::string& attack, int64_t batch,
                              int64_t k) -> std::optional<fs::path> {
    if (!folder) return std::nullopt;
    return *folder / "checkpoints" /
           (attack + "-batch" + std::to_string(batch) + "-" + std::to_string(k) + ".bin");
  };
  // Under a time budget (util/time_budget.h) the attack runs share 80 % of it (the audit's probes,
  // when on, the rest). Closed-form attacks run first and may use all of that (on the CNN,
  // features-then-invert is the attack that recovers images); each optimisation run then gets an
  // equal part of what is left when it starts.
  {
    TimeShare runs_share(options.audit ? 0.8 : 1.0);
    size_t left = 0;
    for (const auto& key : keys) left += key.attack->closed_form ? 0 : 1;
    for (size_t run = 0; run < keys.size(); ++run) {
      const auto& attack = *keys[run].attack;
      const int64_t batch = keys[run].batch;
      TimeShare share(attack.closed_form ? 1.0 : 1.0 / static_cast<double>(left--));
      const auto started = std::chrono::steady_clock::now();
      // Batches a killed run finished come back from their checkpoints (--resume); for an attack
      // that runs groups in one graph, only when its whole group did (else the group runs again,
      // to give what it gave in one go).
      std::set<int64_t> incomplete;  // graph groups
      for (int64_t k : mine[batch]) {
        const auto saved = checkpoint(attack.name, batch, k);
        if (!saved || !fs::exists(*saved)) incomplete.insert(graph_group(attack, k));
      }
      std::vector<int64_t> todo;
      for (int64_t k : mine[batch]) {
        if (incomplete.count(graph_group(attack, k))) {
          todo.push_back(k);
          continue;
        }
        const auto saved = checkpoint(attack.name, batch, k);
        std::vector<double> unused;
        std::vector<BatchOutcome> loaded;
        unpack_outcomes(read_file(*saved), loaded, unused);
        auto& o = loaded.at(0);
        o.run = static_cast<int64_t>(run);
        const bool whole =
            o.skipped_by.empty() && !o.not_applicable && !o.certified.empty() &&
            std::all_of(o.certified.begin(), o.certified.end(), [](bool c) { return c; });
        if (whole) certified[batch][k] = attack.name;
        outcomes.push_back(std::move(o));
      }
      auto done = attack_batches(model, attack, static_cast<int64_t>(run), batch, todo,
                                 target_images, target_labels, options, certified[batch], reporter);
      seconds[run] = seconds_since(started);
      for (auto& o : done) {
        if (const auto path = checkpoint(attack.name, batch, o.k)) {
          fs::create_directories(path->parent_path());
          write_file_atomic(*path, pack_outcomes({o}, {}));
        }
        outcomes.push_back(std::move(o));
      }
      if (world.size() == 1) assemble(run);  // one process: each run's line as soon as it ends
    }
  }
  if (world.size() > 1) {
    const auto blobs =
        world.all_gather(pack_outcomes(outcomes, seconds), "exchanging attack results");
    outcomes.clear();
    for (const auto& blob : blobs) unpack_outcomes(blob, outcomes, seconds);
    for (size_t run = 0; run < keys.size(); ++run) assemble(run);
  }
  for (auto batch : options.batch_sizes) {
    result.strongest.push_back(
        strongest_attack(result.runs, batch, target_images,
                         "grid_strongest_batch" + std::to_string(batch) + ".png", reporter, sink));
  }
  if (options.audit) run_audits(model, test, options, reporter, sink, world, result);
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
