#include "privaudit/experiments/gradients/audits.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <string>
#include <utility>

#include "privaudit/report/results.h"
#include "privaudit/report/svg_plot.h"
#include "privaudit/util/timer.h"

namespace privaudit::experiments::gradients {
namespace {

// Where the audit's floor at one batch size comes from: the attacks that won a target.
std::string achieved_by(const StrongestAttack &best) {
  std::map<std::string, int> wins;
  for (const auto &name : best.attack) {
    if (!name.empty()) ++wins[name];
  }
  std::string out =
      "attack: strongest per target, mean over " + std::to_string(best.psnr.size()) + " targets (";
  bool first = true;
  for (const auto &[name, count] : wins) {
    out += (first ? "" : ", ") + name + " " + std::to_string(count);
    first = false;
  }
  return out + ")";
}

// The strongest attack at `batch`, or null when no attack ran there (none applied, none scored).
const StrongestAttack *measured_at(const GradientExperimentResult &result, int64_t batch) {
  for (const auto &best : result.strongest) {
    if (best.batch_size == batch && std::isfinite(best.mean_psnr)) return &best;
  }
  return nullptr;
}

// A rank's audit as the others receive it (every field; NaN as null).
nlohmann::json pack_audit(const GradientAudit &a, double seconds) {
  auto n = [](double v) { return report::number_or_null(v); };
  nlohmann::json points = nlohmann::json::array();
  for (const auto &p : a.points) {
    points.push_back({p.kind, n(p.step), n(p.gradient_distance), n(p.psnr), n(p.ssim)});
  }
  return {{"points", points},
          {"numbers",
           {n(a.spearman), n(a.fit_intercept), n(a.fit_slope), n(a.unrelated_psnr), n(a.fit_psnr),
            n(a.observed_psnr), n(a.predicted_psnr), n(a.probe_min_distance), n(a.probe_psnr),
            n(a.probe_bound_psnr), n(a.probe_seconds), n(a.risk), n(seconds), n(a.floor_psnr),
            n(a.probe_best_psnr), n(a.collision_psnr)}},
          {"fit_valid", a.fit_valid},
          {"risk_bound", a.risk_bound},
          {"floor_source", a.floor_source}};
}

GradientAudit unpack_audit(const nlohmann::json &j, double &seconds) {
  auto number = [](const nlohmann::json &v) {
    return v.is_null() ? std::numeric_limits<double>::quiet_NaN() : v.get<double>();
  };
  GradientAudit a;
  for (const auto &p : j.at("points")) {
    a.points.push_back({p.at(0).get<std::string>(), number(p.at(1)), number(p.at(2)),
                        number(p.at(3)), number(p.at(4))});
  }
  const auto &v = j.at("numbers");
  double *fields[] = {&a.spearman,   &a.fit_intercept,    &a.fit_slope,       &a.unrelated_psnr,
                      &a.fit_psnr,   &a.observed_psnr,    &a.predicted_psnr,  &a.probe_min_distance,
                      &a.probe_psnr, &a.probe_bound_psnr, &a.probe_seconds,   &a.risk,
                      &seconds,      &a.floor_psnr,       &a.probe_best_psnr, &a.collision_psnr};
  for (size_t i = 0; i < std::size(fields); ++i) *fields[i] = number(v.at(i));
  a.fit_valid = j.at("fit_valid").get<bool>();
  a.risk_bound = j.at("risk_bound").get<std::string>();
  a.floor_source = j.at("floor_source").get<std::string>();
  return a;
}

}  // namespace

void run_audits(models::Classifier &model, const data::Dataset &test,
                const GradientExperimentOptions &options, const Reporter &reporter,
                OutputSink &sink, const dist::World &world, GradientExperimentResult &result) {
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
    // An audit never reports less than an attack of the run achieved (gradient_audit.h).
    if (const auto *best = measured_at(result, batch)) {
      audit_options.achieved_psnr = best->mean_psnr;
      audit_options.achieved_by = achieved_by(*best);
    }
    return audit_options;
  };
  const auto &sizes = options.batch_sizes;
  std::vector<double> costs;
  for (auto batch : sizes) costs.push_back(static_cast<double>(batch));
  const auto owner = dist::assign_items(costs, world.size());
  std::map<size_t, BatchAudit> done;  // by position in `sizes`
  nlohmann::json mine = nlohmann::json::object();
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (pool < 2 * sizes[i] || owner[i] != world.rank()) continue;
    const auto progress = reporter.progress("audit batch " + std::to_string(sizes[i]));
    const Stopwatch started;
    auto &entry = done[i];
    entry.batch_size = sizes[i];
    entry.audit =
        audit_gradient_privacy(model, test.images.slice(0, 0, pool), test.labels.slice(0, 0, pool),
                               options_for(sizes[i]), *progress);
    entry.seconds = started.seconds();
    mine[std::to_string(i)] = pack_audit(entry.audit, entry.seconds);
  }
  if (world.size() > 1) {
    for (const auto &blob : world.all_gather(mine.dump(), "exchanging audit results")) {
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
    const int64_t batch = sizes[i];
    const auto *best = measured_at(result, batch);
    if (!done.count(i)) {
      // Asked for, but the pool is too small: reported, not left out.
      BatchAudit entry;
      entry.batch_size = batch;
      entry.audited = false;
      entry.not_audited = "the audit pool has " + std::to_string(pool) + " images; batch " +
                          std::to_string(batch) + " needs " + std::to_string(2 * batch);
      entry.attack_measured = best != nullptr;
      if (best != nullptr) entry.attack_psnr = best->mean_psnr;
      reporter.say("audit batch " + std::to_string(batch) + ": not measured (" + entry.not_audited +
                   ")");
      result.audits.push_back(std::move(entry));
      continue;
    }
    const auto audit_options = options_for(batch);
    BatchAudit entry = std::move(done[i]);
    // The audit already holds the floor; the strongest attack's figures are kept for the
    // reader, and a batch size without one says so.
    entry.attack_measured = best != nullptr;
    if (best != nullptr) {
      entry.attack_psnr = best->mean_psnr;
      entry.attack_risk = psnr_risk(entry.audit, best->mean_psnr, audit_options.exact_psnr);
    }
    const auto &audit = entry.audit;
    result.risk = std::max(result.risk, audit.risk);
    report::Series points{"batch " + std::to_string(batch), {}, {}, false, true};
    for (const auto &p : audit.points) {
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
                  "audit batch %3lld: spearman %.3f, predicted PSNR %.2f dB at "
                  "distance %.0e (fit "
                  "%.2f, bound: %s), risk %.3f%s, %.1f s",
                  static_cast<long long>(batch), audit.spearman, audit.predicted_psnr,
                  options.attacker_distance, audit.fit_psnr, audit.risk_bound.c_str(), audit.risk,
                  entry.attack_measured ? "" : " (attack: not measured)", entry.seconds);
    reporter.say(line);
    result.audits.push_back(std::move(entry));
  }
  sink.plot("audit_relation.svg", plot);
}

}  // namespace privaudit::experiments::gradients
