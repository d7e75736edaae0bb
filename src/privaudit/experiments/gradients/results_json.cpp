// results.json of the gradients experiment: its runs, the strongest attack per
// batch size and the audit (declared in gradient_experiment.h).
#include <map>
#include <string>

#include "privaudit/experiments/gradient_experiment.h"
#include "privaudit/report/results.h"

namespace privaudit::experiments {

void to_json(nlohmann::json &j, const GradientRun &run) {
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

void to_json(nlohmann::json &j, const StrongestAttack &best) {
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

void to_json(nlohmann::json &j, const BatchAudit &entry) {
  const auto &audit = entry.audit;
  const char *attack_status = entry.attack_measured ? "measured" : "not measured";
  if (!entry.audited) {
    j = {{"batch_size", entry.batch_size},
         {"status", "not measured"},
         {"not_measured", entry.not_audited},
         {"attack", attack_status},
         {"attack_psnr", report::number_or_null(entry.attack_psnr)},
         {"risk", nullptr}};
    return;
  }
  nlohmann::json points = nlohmann::json::array();
  for (const auto &p : audit.points) {
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
       {"floor_psnr", report::number_or_null(audit.floor_psnr)},
       {"floor_source", audit.floor_source},
       {"status", "measured"},
       {"attack", attack_status},
       {"attack_psnr", report::number_or_null(entry.attack_psnr)},
       {"attack_risk", entry.attack_risk},
       {"probe_min_distance", report::number_or_null(audit.probe_min_distance)},
       {"probe_psnr", report::number_or_null(audit.probe_psnr)},
       {"probe_bound_psnr", report::number_or_null(audit.probe_bound_psnr)},
       {"probe_best_psnr", report::number_or_null(audit.probe_best_psnr)},
       {"collision_psnr", report::number_or_null(audit.collision_psnr)},
       {"probe_seconds", audit.probe_seconds},
       {"seconds", entry.seconds},
       {"risk", audit.risk},
       {"points", points}};
}

nlohmann::json to_json(const GradientExperimentResult &result,
                       const GradientExperimentOptions &options) {
  nlohmann::json out;
  out["targets"] = {{"indices", result.target_indices}};
  out["train_mode"] = options.train_mode;
  out["attacker_knows"] = options.knowledge.names();
  if (options.update_defense.active()) out["update_defense"] = options.update_defense.to_json();
  out["runs"] = result.runs;
  out["strongest"] = result.strongest;
  nlohmann::json not_measured = nlohmann::json::array();
  for (const auto &entry : result.audits) {
    if (!entry.audited || !entry.attack_measured) not_measured.push_back(entry.batch_size);
  }
  out["audit"] = {{"attacker_distance", options.attacker_distance},
                  {"risk", result.risk},
                  {"probes", options.audit_probes},
                  {"probe_iterations", options.audit_probe_iterations},
                  {"risk_definition",
                   "clamp((PSNR predicted at attacker_distance - PSNR of unrelated batches) / "
                   "(40 - PSNR of unrelated batches), 0, 1); the largest over the measured batch "
                   "sizes. PSNR predicted = max(min(path fit at attacker_distance, lowest PSNR of "
                   "a path or pair point with gradient distance <= attacker_distance), best PSNR "
                   "an attack achieved: the run's strongest attack at that batch size or a "
                   "probe, named by floor_source). A failed attack or probe proves nothing and "
                   "never lowers it; a probe's collision is recorded as collision_psnr. Path and "
                   "probe distances use the labels the attacker holds (attacker_knows). A batch "
                   "size without an attack reads attack: \"not measured\"; one the audit could "
                   "not run reads status: \"not measured\""},
                  {"not_measured", not_measured},
                  {"plot", "audit_relation.svg"},
                  {"batch_sizes", result.audits}};
  return out;
}

}  // namespace privaudit::experiments
