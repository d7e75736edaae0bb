// What the audit concludes from its records, typed: per threat surface a ranking of the
// architectures with intervals and the decision between neighbours, the memorisation regime, the
// seeds' claims, the recommendations and the scorecard of the report's first screen. The analysis
// (analysis.h) makes it; the report renders it and decides nothing. to_json gives the audit
// results.json's "ranking" object.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "privaudit/audit/privacy_utility.h"
#include "privaudit/audit/records.h"

namespace privaudit::audit {

// One architecture on a surface: the surface's statistic over its targets (pooled over seeds) and
// its interval (metrics::interval_of; with --repeats the seed-clustered bootstrap).
struct RankedArchitecture {
  std::string arch;
  double value = kMissing, low = kMissing, high = kMissing, half_width = kMissing;
  bool wide = false;  // wider than the profile aims for, or fewer than 2 targets
  int64_t n = 0;
  double exact_share = kMissing;  // PSNR surfaces: share certified or >= 40 dB
  // A time budget (--time-budget) cut one of its stages short: the figure is a lower bound and
  // decides nothing (its steps say "undecided: budget").
  bool lower_bound = false;
};

// The decision between neighbours in the order.
struct RankStep {
  std::string higher, lower;
  double difference = kMissing, low = kMissing, high = kMissing;
  bool ranked = false;       // the test's p-value is below 1 - level (never for a cut_short step)
  int64_t more_targets = 0;  // about how many more per side would settle it
  bool paired = false;       // compared on per-target differences (the same targets)
  double p_value = kMissing;
  bool cut_short = false;  // either side is a lower bound: undecided, whatever the test says
};

struct SurfaceRanking {
  std::string figure, meaning;
  std::string statistic = "mean";  // "median" (PSNR), "share" (0/1 values) or "mean"
  double level = 0.95;
  double target_half_width = 0;
  std::vector<RankedArchitecture> order;  // most leaking first
  std::vector<RankStep> steps;            // order[i] against order[i + 1]
  const RankedArchitecture* entry(const std::string& arch) const;
  // Whether the first architecture is ranked above the second.
  bool top_ranked() const { return !steps.empty() && steps[0].ranked; }
  bool any_tie() const;
};

struct MemorizedArchitecture {
  std::string arch;
  double train_accuracy = kMissing;  // mean over seeds
  bool leak = false;                 // training-likeness interval above 0.5
};

// The weights of models trained on `per_class` images per class.
struct MemorizationVerdict {
  int64_t per_class = 0;
  SurfaceRanking surface;
  std::vector<MemorizedArchitecture> architectures;
};

// A claim of the seeds checked against this run.
struct Claim {
  std::string source, claim;
  // "reproduced", "not reproduced", "indistinguishable", "undecided: budget" (a comparison that
  // would decide it rests on a stage a time budget cut short), "not measured"
  std::string verdict;
  std::string measured;
  // Per comparison: the test's p-value and Holm's adjusted one across every claim's comparisons
  // (a comparison decides at adjusted p < 0.05), and whether it was paired.
  std::vector<double> p_values, adjusted_p_values;
  std::vector<bool> paired;
};

struct Recommendation {
  std::string surface, finding, recommendation;
};

// What a scorecard cell means, from most to least severe.
enum class Severity { kExact, kRecovered, kLeak, kNothing, kNotRun };
const char* severity_name(Severity severity);  // "exact", "recovered", "leak", "nothing", "not_run"
const char* severity_text(Severity severity);  // for a person

struct ScoreCell {
  std::string arch;
  Severity severity = Severity::kNotRun;
  double value = kMissing, low = kMissing, high = kMissing;
  int64_t n = 0;
  std::string statistic = "mean";  // the surface's
  double exact_share = kMissing;   // PSNR rows: share of targets certified or >= 40 dB
  std::optional<std::pair<int64_t, int64_t>> exact;  // recovered exactly, of targets scored
  bool lower_bound = false;  // a time budget cut its stage short (RankedArchitecture's)
};

// One threat surface of the first screen: a row of cells, one per architecture.
struct ScoreRow {
  std::string surface;  // the key in SurfaceRanking's map ("weights", "gradients_batch8", ...)
  std::string title;    // "From shared gradients, batches of 8"
  std::string unit;     // "dB" or "" (a share)
  std::string figure;   // what the value is
  std::vector<ScoreCell> cells;
};

// The report's comparison row of one architecture: figures read from its records (each surface's
// pooled estimate lives in the surfaces).
struct ArchitectureFigures {
  std::string name;
  int64_t main_per_class = 0;  // images per class of the main model
  bool weights_leak = false;   // its training-likeness interval lies above 0.5
  double test_accuracy = kMissing;
  double training_likeness = kMissing;  // the invert stage's own summary
  double nearest_train_ssim = kMissing;
  std::map<int64_t, double> gradient_psnr;  // batch -> strongest attack's mean (or best run's)
  std::optional<StrongestAttack> batch1;    // the strongest attack's entry at batch 1
  double gradient_risk = kMissing;
  std::string exposed_layer;  // the cut whose decoder rebuilds best ("" when none)
  double exposed_layer_psnr = kMissing;
};

// The federated table's cell: the strongest attack on what the server sees, never below what the
// gradients stage reached on the same threat model (one image, one step = the batch-1 gradient).
struct FederatedCell {
  bool measured = false;
  double psnr = kMissing, median_psnr = kMissing, recovered_fraction = kMissing;
  bool from_gradients_stage = false;  // psnr is the gradients stage's batch-1 strongest
};

struct FederatedSettingRow {
  FederatedSetting setting;          // the first architecture's description of it
  std::vector<FederatedCell> cells;  // one per FederatedTable::architectures
};

struct FederatedTable {
  std::vector<std::string> architectures;
  std::vector<std::string> attacks;
  std::vector<FederatedSettingRow> rows;
};

// One architecture's membership inference in one regime (privaudit membership): the strongest
// attack's figures (the highest TPR at 1 % FPR of all it ran; `attack` says which).
struct MembershipRow {
  std::string arch;
  int64_t per_class = 0;  // 0: the main models' recipe; else the memorisation regime's size
  MembershipAttackRecord strongest;
  int64_t models = 0, decisions = 0;
  double train_accuracy = kMissing, held_out_accuracy = kMissing;
  std::string roc_plot;  // relative to the audit's folder; "" when none
  // The most exposed images beside their nearest reconstruction from the weights (memorisation
  // regime: the same group's invert stage): SSIM per image, most exposed first; the invert
  // stage's verbatim-copy threshold; the grid, relative to the audit's folder ("" when none).
  std::vector<double> exposed_ssim;
  double copy_threshold_ssim = kMissing;
  std::string exposed_plot;
  // How many of exposed_ssim exceed the copy threshold (0 when it is missing).
  int64_t exposed_copies() const;
};

struct Verdict {
  // The single ranking of the first version (mean nearest-train SSIM from the weights, or the
  // best gradient PSNR at batch 1 without inversions): kept as results.json had it.
  std::string figure, meaning;
  std::vector<std::pair<std::string, double>> order;
  std::map<std::string, SurfaceRanking> surfaces;  // "weights", "weights_ssim_gap", "features",
                                                   // "gradients", "gradients_batchB",
                                                   // "membership", "membership_memorizeN"
  std::vector<MemorizationVerdict> memorization;
  std::vector<MembershipRow> membership;  // the audit's own seed, main models first
  std::vector<Claim> claims;
  std::vector<Recommendation> recommendations;
  std::vector<ScoreRow> scorecard;
  // Not in results.json: what the report's tables show, read from the records.
  std::vector<ArchitectureFigures> architectures;
  FederatedTable federated;
  std::vector<ThreatModelRow> threat_models;  // results.json's "threat_models" (threat_models.h)
  // --defend's privacy-utility view (results.json's "privacy_utility", not "ranking").
  PrivacyUtility privacy_utility;

  const SurfaceRanking* surface(const std::string& key) const;
};

nlohmann::json to_json(const SurfaceRanking& surface);
// The "ranking" object of the audit's results.json.
nlohmann::json to_json(const Verdict& verdict);

}  // namespace privaudit::audit
