#include "privaudit/audit/verdict.h"

#include <cmath>

namespace privaudit::audit {

int64_t MembershipRow::exposed_copies() const {
  if (std::isnan(copy_threshold_ssim)) return 0;
  int64_t copies = 0;
  for (const double ssim : exposed_ssim) copies += ssim > copy_threshold_ssim ? 1 : 0;
  return copies;
}

const RankedArchitecture* SurfaceRanking::entry(const std::string& arch) const {
  for (const auto& e : order) {
    if (e.arch == arch) return &e;
  }
  return nullptr;
}

bool SurfaceRanking::any_tie() const {
  for (const auto& step : steps) {
    if (!step.ranked && !step.cut_short) return true;
  }
  return false;
}

const SurfaceRanking* Verdict::surface(const std::string& key) const {
  const auto it = surfaces.find(key);
  return it == surfaces.end() ? nullptr : &it->second;
}

const char* severity_name(Severity severity) {
  switch (severity) {
    case Severity::kExact:
      return "exact";
    case Severity::kRecovered:
      return "recovered";
    case Severity::kLeak:
      return "leak";
    case Severity::kNothing:
      return "nothing";
    case Severity::kNotRun:
      break;
  }
  return "not_run";
}

const char* severity_text(Severity severity) {
  switch (severity) {
    case Severity::kExact:
      return "exact recovery";
    case Severity::kRecovered:
      return "visually recovered";
    case Severity::kLeak:
      return "measurable leak";
    case Severity::kNothing:
      return "nothing measured";
    case Severity::kNotRun:
      break;
  }
  return "not run";
}

nlohmann::json to_json(const SurfaceRanking& surface) {
  nlohmann::json json = {{"figure", surface.figure},
                         {"meaning", surface.meaning},
                         {"statistic", surface.statistic},
                         {"level", surface.level},
                         {"target_half_width", surface.target_half_width},
                         {"order", nlohmann::json::array()},
                         {"steps", nlohmann::json::array()}};
  for (const auto& e : surface.order) {
    json["order"].push_back({{"arch", e.arch},
                             {"value", e.value},
                             {"low", e.low},
                             {"high", e.high},
                             {"half_width", e.half_width},
                             {"wide", e.wide},
                             {"n", e.n},
                             {"statistic", surface.statistic},
                             {"exact_share", e.exact_share},
                             {"lower_bound", e.lower_bound}});
  }
  for (const auto& s : surface.steps) {
    json["steps"].push_back({{"higher", s.higher},
                             {"lower", s.lower},
                             {"difference", s.difference},
                             {"low", s.low},
                             {"high", s.high},
                             {"decision", s.ranked      ? "ranked"
                                          : s.cut_short ? "undecided: budget"
                                                        : "indistinguishable"},
                             {"more_targets", s.more_targets},
                             {"paired", s.paired},
                             {"p_value", s.p_value}});
  }
  return json;
}

namespace {

nlohmann::json scorecard_json(const std::vector<ScoreRow>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& row : rows) {
    nlohmann::json cells = nlohmann::json::array();
    for (const auto& c : row.cells) {
      nlohmann::json cell = {{"arch", c.arch},          {"severity", severity_name(c.severity)},
                             {"value", c.value},        {"low", c.low},
                             {"high", c.high},          {"n", c.n},
                             {"statistic", c.statistic}};
      if (std::isfinite(c.exact_share)) cell["exact_share"] = c.exact_share;
      if (c.lower_bound) cell["lower_bound"] = true;
      if (c.exact) {
        cell["exact"] = c.exact->first;
        cell["targets_scored"] = c.exact->second;
      }
      cells.push_back(cell);
    }
    out.push_back({{"surface", row.surface},
                   {"title", row.title},
                   {"unit", row.unit},
                   {"figure", row.figure},
                   {"cells", cells}});
  }
  return out;
}

}  // namespace

nlohmann::json to_json(const Verdict& verdict) {
  nlohmann::json json;
  json["figure"] = verdict.figure;
  json["meaning"] = verdict.meaning;
  json["order"] = nlohmann::json::array();
  for (const auto& [arch, value] : verdict.order)
    json["order"].push_back({{"arch", arch}, {"value", value}});
  json["surfaces"] = nlohmann::json::object();
  for (const auto& [key, surface] : verdict.surfaces) json["surfaces"][key] = to_json(surface);
  json["memorization"] = nlohmann::json::array();
  for (const auto& m : verdict.memorization) {
    nlohmann::json archs = nlohmann::json::array();
    for (const auto& a : m.architectures) {
      archs.push_back({{"arch", a.arch}, {"train_accuracy", a.train_accuracy}, {"leak", a.leak}});
    }
    json["memorization"].push_back(
        {{"per_class", m.per_class}, {"surface", to_json(m.surface)}, {"architectures", archs}});
  }
  json["membership"] = nlohmann::json::array();
  for (const auto& m : verdict.membership) {
    const auto& a = m.strongest;
    json["membership"].push_back({{"arch", m.arch},
                                  {"per_class", m.per_class},
                                  {"attack", a.attack},
                                  {"auc", a.auc},
                                  {"auc_low", a.auc_low},
                                  {"auc_high", a.auc_high},
                                  {"tpr_at_0_1_percent_fpr", a.tpr_0_1},
                                  {"tpr_at_0_1_percent_fpr_low", a.tpr_0_1_low},
                                  {"tpr_at_0_1_percent_fpr_high", a.tpr_0_1_high},
                                  {"tpr_at_1_percent_fpr", a.tpr_1},
                                  {"tpr_at_1_percent_fpr_low", a.tpr_1_low},
                                  {"tpr_at_1_percent_fpr_high", a.tpr_1_high},
                                  {"epsilon_lower_bound", a.epsilon},
                                  {"null_auc", a.null_auc},
                                  {"models", m.models},
                                  {"decisions", m.decisions},
                                  {"roc_plot", m.roc_plot}});
    if (!m.exposed_ssim.empty()) {
      json["membership"].back()["most_exposed"] = {
          {"nearest_reconstruction_ssim", m.exposed_ssim},
          {"copy_threshold_ssim", m.copy_threshold_ssim},
          {"copies", m.exposed_copies()},
          {"plot", m.exposed_plot}};
    }
  }
  json["claims"] = nlohmann::json::array();
  for (const auto& c : verdict.claims) {
    json["claims"].push_back({{"source", c.source},
                              {"claim", c.claim},
                              {"verdict", c.verdict},
                              {"measured", c.measured},
                              {"p_values", c.p_values},
                              {"holm_adjusted_p_values", c.adjusted_p_values},
                              {"paired", c.paired}});
  }
  json["recommendations"] = nlohmann::json::array();
  for (const auto& r : verdict.recommendations) {
    json["recommendations"].push_back(
        {{"surface", r.surface}, {"finding", r.finding}, {"recommendation", r.recommendation}});
  }
  json["scorecard"] = scorecard_json(verdict.scorecard);
  return json;
}

}  // namespace privaudit::audit
