// Per-target values of one figure, read from a run's records and pooled over an architecture's
// seeds: what every ranking, claim and scorecard cell of the analysis is computed from.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "privaudit/audit/records.h"
#include "privaudit/audit/verdict.h"
#include "privaudit/metrics/bootstrap.h"

namespace privaudit::audit {

// One figure's values, one per target.
struct Values {
  std::vector<double> values;
  // Parallel, or empty where the stage does not name its targets (the inversions): the target's
  // id (pooled() prefixes the run's position, so ids match only within one seed), whether it was
  // certified exact, and the run it came from.
  std::vector<std::string> ids;
  std::vector<bool> certified;
  std::vector<int64_t> clusters;
  // A time budget stopped the stage (of any pooled seed) that gave them: lower bounds only.
  bool cut_short = false;
};
using ValuesOf = std::function<Values(const Run& run)>;

// An architecture's values of one figure, its own seed first, then its repeats'.
Values pooled(const Architecture& arch, const ValuesOf& of);

// a against b: paired on per-target differences when both name the same targets, else unpaired
// (metrics::Test::paired says which).
metrics::Test compare_values(metrics::Statistic statistic, const Values& a, const Values& b);

// The share of targets recovered exactly: certified, or at least 40 dB.
double exact_share(const Values& v);

// Per image rebuilt from the main model's weights: 1 when nearer to a training image.
Values likeness_values(const Run& run);
// Per image: SSIM to the nearest training image minus SSIM to the nearest held-out one.
Values ssim_gap_values(const Run& run);
// Likeness of the model trained on `per_class` images per class.
ValuesOf memorized_likeness(int64_t per_class);
// Per target, the strongest attack's PSNR at `batch`.
ValuesOf gradient_values(int64_t batch);
// Per image, the decoder PSNR at the cut `which`: "exposed" (the cut of best mean PSNR), "first"
// or "last" (by depth, among the cuts with per-image figures).
ValuesOf decoder_values(const std::string& which);

// The cut whose decoder rebuilds best: {name, mean PSNR}; {"", NaN} when none.
std::pair<std::string, double> most_exposed_layer(const Run& run);
// The strongest attack's mean PSNR at `batch`; without it, the best attack run's; NaN when none.
double gradient_psnr(const Run& run, int64_t batch);
// The batch sizes of the architectures' strongest-attack entries (their own seed), ascending.
std::vector<int64_t> gradient_batches(const std::vector<Architecture>& architectures);
// The memorisation regime's sizes over every seed, ascending.
std::vector<int64_t> memorization_sizes(const std::vector<Architecture>& architectures);

// Ranks the architectures on one figure. `target` is the half-width the profile aims for: an
// interval wider than it is marked wide.
// PSNR surfaces rank on the median, then on the exact share where medians tie.
SurfaceRanking rank_surface(const std::vector<Architecture>& architectures,
                            const std::string& figure, const std::string& meaning, double target,
                            const ValuesOf& of, metrics::Statistic statistic);

// Membership inference (membership_surface.cpp): an architecture's members detected at 1 % FPR by
// its strongest attack, pooled over its seeds, in the main models' recipe (per_class 0) or the
// memorisation regime's.
struct MembershipEvidence {
  int64_t detected = 0, members = 0;
  // "run/decision" of each detected member, when every run lists them; and what must match for
  // two architectures' decisions to be the same (model k trains on the same half of the same
  // pool when the seed, pool and K are the same): each run's seed, pool size and K.
  std::vector<std::string> detected_ids;
  bool lists_detections = true;
  std::string design;
  int64_t attacks = 0;  // how many attacks the strongest was picked from (most of any run)
  double share() const { return members > 0 ? static_cast<double>(detected) / members : kMissing; }
};
MembershipEvidence membership_evidence(const Architecture& arch, int64_t per_class);
// A measurable leak: the TPR's lower Clopper-Pearson bound lies above chance (0.01), at `level`
// with Bonferroni's correction for picking the strongest of `attacks` (at chance, the best of six
// attacks' intervals often starts just above 0.01).
bool membership_leak(const MembershipEvidence& evidence, double level = 0.95);
// a's TPR against b's. Paired when both list their detections on the same design: McNemar's exact
// test on the members detected by one only; else a two-proportion z test. The difference's
// interval is Wald's (paired: of the paired difference).
metrics::Test compare_membership(const MembershipEvidence& a, const MembershipEvidence& b,
                                 double level = 0.95);
// Ranks the architectures on TPR at 1 % FPR, with Clopper-Pearson intervals.
SurfaceRanking rank_membership(const std::vector<Architecture>& architectures, int64_t per_class);
// The membership sizes of the memorisation regime (their own seed), ascending.
std::vector<int64_t> membership_sizes(const std::vector<Architecture>& architectures);

// The seeds' claims and the recommendations, from the figures (claims.cpp).
std::vector<Claim> seed_claims(const std::vector<Architecture>& architectures,
                               const std::vector<MemorizationVerdict>& memorization);
std::vector<Recommendation> recommend(const std::vector<Architecture>& architectures,
                                      const Verdict& verdict);

}  // namespace privaudit::audit
