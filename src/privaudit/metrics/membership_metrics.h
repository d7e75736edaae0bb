// The figures of a membership-inference attack, from its scores and the true memberships: the ROC
// curve (read on log-log axes, as Carlini et al. 2022 ask, with TPR at 0.1 % and 1 % FPR rather
// than AUC alone), the AUC with DeLong's interval, TPR at a fixed FPR with a Clopper-Pearson
// interval, and a lower bound on the epsilon of (epsilon, delta)-differential privacy that the
// decisions rule out (the auditing bound of Jagielski et al. 2020 and Nasr et al. 2021).
//
// A decision is one (target model, image) pair; a higher score says "member". The intervals treat
// decisions as independent trials. The K x N decisions of a leave-one-model-out evaluation share
// images and models, so the intervals are narrower than a strict audit's (docs/membership.md).
#pragma once

#include <cstdint>
#include <vector>

#include "privaudit/metrics/bootstrap.h"

namespace privaudit::metrics {

// The ROC curve from (0, 0) to (1, 1). Point i decides "member" when score >= thresholds[i];
// thresholds[0] is +inf (nothing called a member). Tied scores make one point, so a tie is never
// split by the order of the input.
struct RocCurve {
  std::vector<double> fpr;
  std::vector<double> tpr;
  std::vector<double> thresholds;
  int64_t members = 0;
  int64_t non_members = 0;
};

// Throws Error when the sizes differ, a score is NaN, or either class is empty.
RocCurve roc_curve(const std::vector<double>& scores, const std::vector<bool>& members);

// Area under `roc` (trapezoids: a tie counts one half, as in the Mann-Whitney statistic).
double roc_auc(const RocCurve& roc);

// The AUC with DeLong et al.'s (1988) variance of the Mann-Whitney statistic, a normal interval at
// `level` clipped to [0, 1]; n is the number of decisions.
Interval auc_interval(const std::vector<double>& scores, const std::vector<bool>& members,
                      double level = 0.95);

// Clopper-Pearson bounds on a binomial proportion of `successes` in `trials`: one-sided at
// `confidence` (the lower is 0 at no success, the upper 1 at all), and the two-sided interval at
// `level` (estimate successes / trials, n = trials).
double clopper_pearson_lower(int64_t successes, int64_t trials, double confidence);
double clopper_pearson_upper(int64_t successes, int64_t trials, double confidence);
Interval clopper_pearson(int64_t successes, int64_t trials, double level = 0.95);

// TPR at the ROC point with the largest FPR not above `target_fpr` (no interpolation), with its
// Clopper-Pearson interval over the members. The threshold is set on the non-members, so the
// interval is conditional on it.
struct TprAtFpr {
  double target_fpr = 0;
  double fpr = 0;        // the FPR actually reached (<= target_fpr)
  double threshold = 0;  // score at and above which a decision says "member"
  Interval tpr;
};
TprAtFpr tpr_at_fpr(const RocCurve& roc, double target_fpr, double level = 0.95);

// The epsilon lower bound. At a threshold with true- and false-positive rates TPR and FPR, an
// (epsilon, delta)-DP training run satisfies TPR <= e^eps FPR + delta and
// 1 - FPR <= e^eps (1 - TPR) + delta, so
//   eps >= max(log((TPR_lo - delta) / FPR_hi), log((1 - FPR_hi - delta) / (1 - TPR_lo)), 0)
// where TPR_lo and FPR_hi are one-sided Clopper-Pearson bounds, each at 1 - (1 - confidence) / 2
// so that both hold together at `confidence`. Picking the best of many thresholds on the same
// decisions would bias the bound upwards: the threshold is chosen on a seeded random half of the
// decisions and the bound computed on the other half.
struct EpsilonOptions {
  double delta = 1e-5;
  double confidence = 0.95;
  uint64_t seed = 0;  // draws the halves
};

struct EpsilonBound {
  double epsilon = 0;  // >= 0; 0: the decisions rule out no epsilon
  double delta = 0;
  double confidence = 0;
  double threshold = 0;  // chosen on the selection half (+inf when no threshold helps)
  double tpr_low = 0;    // on the bounding half, at the threshold
  double fpr_high = 1;
  int64_t selection_decisions = 0;
  int64_t bound_decisions = 0;
};
// Throws Error on bad options (delta outside [0, 1), confidence outside (0, 1)) or bad inputs as
// roc_curve does; a half without members or non-members gives epsilon 0.
EpsilonBound epsilon_lower_bound(const std::vector<double>& scores,
                                 const std::vector<bool>& members,
                                 const EpsilonOptions& options = {});

// All of the above for one attack.
struct MembershipFigures {
  RocCurve roc;
  Interval auc;
  std::vector<TprAtFpr> tpr_at_fpr;  // one per requested FPR, in order
  EpsilonBound epsilon;
};
MembershipFigures membership_figures(const std::vector<double>& scores,
                                     const std::vector<bool>& members,
                                     const std::vector<double>& fprs = {0.001, 0.01},
                                     const EpsilonOptions& epsilon = {}, double level = 0.95);

// At most about `points` ROC points spread evenly over log10(FPR), for a plot on log-log axes;
// points with FPR or TPR 0 (off such axes) are dropped.
RocCurve thin_for_log_plot(const RocCurve& roc, int points = 200);

}  // namespace privaudit::metrics
