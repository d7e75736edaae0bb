#include "privaudit/metrics/membership_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <string>

#include "privaudit/util/error.h"

namespace privaudit::metrics {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

void check_decisions(const std::vector<double>& scores, const std::vector<bool>& members,
                     const char* where) {
  if (scores.size() != members.size()) {
    throw Error(std::string(where) + ": " + std::to_string(scores.size()) + " scores but " +
                std::to_string(members.size()) + " membership labels");
  }
  for (size_t i = 0; i < scores.size(); ++i) {
    if (std::isnan(scores[i]))
      throw Error(std::string(where) + ": score of decision " + std::to_string(i) + " is NaN");
  }
}

// Positions of `scores` from the highest score to the lowest (ties in input order).
std::vector<size_t> descending_order(const std::vector<double>& scores) {
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return scores[a] > scores[b]; });
  return order;
}

// Sample variance (n - 1); 0 for fewer than 2 values.
double sample_variance(const std::vector<double>& values) {
  if (values.size() < 2) return 0;
  const double m = std::accumulate(values.begin(), values.end(), 0.0) / values.size();
  double sum = 0;
  for (double v : values) sum += (v - m) * (v - m);
  return sum / static_cast<double>(values.size() - 1);
}

// The epsilon that TPR_lo and FPR_hi rule out at `delta` (see the header), >= 0.
double epsilon_from_bounds(double tpr_low, double fpr_high, double delta) {
  double epsilon = 0;
  if (tpr_low - delta > 0) epsilon = std::max(epsilon, std::log((tpr_low - delta) / fpr_high));
  if (1 - fpr_high - delta > 0)
    epsilon = std::max(epsilon, std::log((1 - fpr_high - delta) / (1 - tpr_low)));
  return epsilon;
}

// The same without bounds (the observed rates): an upper limit of epsilon_from_bounds, since the
// bounds only move the rates against the attack. Infinite when a rate is 0 or 1.
double epsilon_point(double tpr, double fpr, double delta) {
  double epsilon = 0;
  if (tpr - delta > 0) epsilon = std::max(epsilon, fpr > 0 ? std::log((tpr - delta) / fpr) : kInf);
  if (1 - fpr - delta > 0)
    epsilon = std::max(epsilon, tpr < 1 ? std::log((1 - fpr - delta) / (1 - tpr)) : kInf);
  return epsilon;
}

struct Counts {
  int64_t true_positives = 0, false_positives = 0, members = 0, non_members = 0;
};

Counts counts_at(const std::vector<double>& scores, const std::vector<bool>& members,
                 const std::vector<size_t>& rows, double threshold) {
  Counts c;
  for (size_t i : rows) {
    const bool called = scores[i] >= threshold;
    if (members[i]) {
      ++c.members;
      c.true_positives += called;
    } else {
      ++c.non_members;
      c.false_positives += called;
    }
  }
  return c;
}

}  // namespace

RocCurve roc_curve(const std::vector<double>& scores, const std::vector<bool>& members) {
  check_decisions(scores, members, "roc_curve");
  RocCurve roc;
  for (bool m : members) (m ? roc.members : roc.non_members) += 1;
  if (roc.members == 0 || roc.non_members == 0)
    throw Error("roc_curve: needs both members and non-members among the decisions");
  const auto order = descending_order(scores);
  roc.fpr.push_back(0);
  roc.tpr.push_back(0);
  roc.thresholds.push_back(kInf);
  int64_t tp = 0, fp = 0;
  for (size_t i = 0; i < order.size();) {
    const double score = scores[order[i]];
    for (; i < order.size() && scores[order[i]] == score; ++i) (members[order[i]] ? tp : fp) += 1;
    roc.fpr.push_back(static_cast<double>(fp) / static_cast<double>(roc.non_members));
    roc.tpr.push_back(static_cast<double>(tp) / static_cast<double>(roc.members));
    roc.thresholds.push_back(score);
  }
  return roc;
}

double roc_auc(const RocCurve& roc) {
  double area = 0;
  for (size_t i = 1; i < roc.fpr.size(); ++i)
    area += (roc.fpr[i] - roc.fpr[i - 1]) * (roc.tpr[i] + roc.tpr[i - 1]) / 2;
  return area;
}

Interval auc_interval(const std::vector<double>& scores, const std::vector<bool>& members,
                      double level) {
  check_decisions(scores, members, "auc_interval");
  std::vector<double> positives, negatives;
  for (size_t i = 0; i < scores.size(); ++i)
    (members[i] ? positives : negatives).push_back(scores[i]);
  if (positives.empty() || negatives.empty())
    throw Error("auc_interval: needs both members and non-members among the decisions");
  std::sort(positives.begin(), positives.end());
  std::sort(negatives.begin(), negatives.end());
  const auto n1 = static_cast<double>(positives.size()), n0 = static_cast<double>(negatives.size());
  // Placement values: the share of the other class each score beats, ties counting one half.
  std::vector<double> v10, v01;
  v10.reserve(positives.size());
  v01.reserve(negatives.size());
  for (double s : positives) {
    const auto below = std::lower_bound(negatives.begin(), negatives.end(), s) - negatives.begin();
    const auto equal =
        std::upper_bound(negatives.begin(), negatives.end(), s) - negatives.begin() - below;
    v10.push_back((static_cast<double>(below) + 0.5 * static_cast<double>(equal)) / n0);
  }
  for (double s : negatives) {
    const auto not_above =
        std::upper_bound(positives.begin(), positives.end(), s) - positives.begin();
    const auto equal =
        not_above - (std::lower_bound(positives.begin(), positives.end(), s) - positives.begin());
    const auto above = static_cast<double>(positives.size()) - static_cast<double>(not_above);
    v01.push_back((above + 0.5 * static_cast<double>(equal)) / n1);
  }
  Interval interval;
  interval.n = static_cast<int64_t>(scores.size());
  interval.estimate = std::accumulate(v10.begin(), v10.end(), 0.0) / n1;
  const double se = std::sqrt(sample_variance(v10) / n1 + sample_variance(v01) / n0);
  const double z = normal_quantile((1 + level) / 2);
  interval.low = std::max(0.0, interval.estimate - z * se);
  interval.high = std::min(1.0, interval.estimate + z * se);
  return interval;
}

double clopper_pearson_lower(int64_t successes, int64_t trials, double confidence) {
  if (successes <= 0) return 0;
  const auto k = static_cast<double>(successes), n = static_cast<double>(trials);
  return beta_quantile(k, n - k + 1, 1 - confidence);
}

double clopper_pearson_upper(int64_t successes, int64_t trials, double confidence) {
  if (successes >= trials) return 1;
  const auto k = static_cast<double>(successes), n = static_cast<double>(trials);
  return beta_quantile(k + 1, n - k, confidence);
}

Interval clopper_pearson(int64_t successes, int64_t trials, double level) {
  Interval interval;
  interval.n = trials;
  if (trials <= 0) {
    interval.estimate = interval.low = interval.high = NAN;
    return interval;
  }
  const double tail = (1 - level) / 2;
  interval.estimate = static_cast<double>(successes) / static_cast<double>(trials);
  interval.low = clopper_pearson_lower(successes, trials, 1 - tail);
  interval.high = clopper_pearson_upper(successes, trials, 1 - tail);
  return interval;
}

TprAtFpr tpr_at_fpr(const RocCurve& roc, double target_fpr, double level) {
  if (roc.fpr.empty()) throw Error("tpr_at_fpr: empty ROC curve");
  // A point whose FPR exceeds the target by rounding only (k / n vs a decimal) still counts.
  const double slack = 1e-9;
  size_t best = 0;
  for (size_t i = 0; i < roc.fpr.size(); ++i) {
    if (roc.fpr[i] <= target_fpr + slack) best = i;
  }
  TprAtFpr out;
  out.target_fpr = target_fpr;
  out.fpr = roc.fpr[best];
  out.threshold = roc.thresholds[best];
  const auto hits = std::llround(roc.tpr[best] * static_cast<double>(roc.members));
  out.tpr = clopper_pearson(hits, roc.members, level);
  return out;
}

EpsilonBound epsilon_lower_bound(const std::vector<double>& scores,
                                 const std::vector<bool>& members, const EpsilonOptions& options) {
  check_decisions(scores, members, "epsilon_lower_bound");
  if (!(options.delta >= 0 && options.delta < 1))
    throw Error("epsilon_lower_bound: delta must be in [0, 1)");
  if (!(options.confidence > 0 && options.confidence < 1))
    throw Error("epsilon_lower_bound: confidence must be in (0, 1)");
  EpsilonBound bound;
  bound.delta = options.delta;
  bound.confidence = options.confidence;
  bound.threshold = kInf;
  // Both one-sided bounds at once: each at half the error rate (Bonferroni).
  const double each = 1 - (1 - options.confidence) / 2;

  // Fisher-Yates with std::mt19937_64, whose output the standard fixes (std::shuffle's is not).
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::mt19937_64 rng(options.seed);
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  const std::vector<size_t> selection(order.begin(), order.begin() + order.size() / 2);
  const std::vector<size_t> bounding(order.begin() + order.size() / 2, order.end());
  bound.selection_decisions = static_cast<int64_t>(selection.size());
  bound.bound_decisions = static_cast<int64_t>(bounding.size());

  // The selection half's thresholds, with the counts above each.
  std::vector<double> half_scores;
  std::vector<bool> half_members;
  for (size_t i : selection) {
    half_scores.push_back(scores[i]);
    half_members.push_back(members[i]);
  }
  const auto whole = counts_at(scores, members, selection, kInf);
  if (whole.members == 0 || whole.non_members == 0) return bound;
  const auto roc = roc_curve(half_scores, half_members);
  const auto m = static_cast<double>(roc.members), n = static_cast<double>(roc.non_members);
  // The bounded epsilon never exceeds the point one: visit thresholds by decreasing point epsilon
  // and stop once no point epsilon can beat the best bound found.
  std::vector<size_t> candidates(roc.fpr.size());
  std::iota(candidates.begin(), candidates.end(), size_t{0});
  std::vector<double> point(roc.fpr.size());
  for (size_t i = 0; i < point.size(); ++i)
    point[i] = epsilon_point(roc.tpr[i], roc.fpr[i], options.delta);
  std::stable_sort(candidates.begin(), candidates.end(),
                   [&](size_t a, size_t b) { return point[a] > point[b]; });
  // Each count's bound once: thresholds that share a count of hits or of false alarms (every
  // threshold shares one of them with its neighbour) reuse it.
  const double unknown = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> tpr_low(static_cast<size_t>(roc.members) + 1, unknown);
  std::vector<double> fpr_high(static_cast<size_t>(roc.non_members) + 1, unknown);
  double best = 0;
  for (size_t i : candidates) {
    if (point[i] <= best) break;
    const auto tp = std::llround(roc.tpr[i] * m), fp = std::llround(roc.fpr[i] * n);
    auto& low = tpr_low[static_cast<size_t>(tp)];
    if (std::isnan(low)) low = clopper_pearson_lower(tp, roc.members, each);
    auto& high = fpr_high[static_cast<size_t>(fp)];
    if (std::isnan(high)) high = clopper_pearson_upper(fp, roc.non_members, each);
    const double value = epsilon_from_bounds(low, high, options.delta);
    if (value > best) {
      best = value;
      bound.threshold = roc.thresholds[i];
    }
  }
  if (!(best > 0)) return bound;

  const auto c = counts_at(scores, members, bounding, bound.threshold);
  if (c.members == 0 || c.non_members == 0) return bound;
  bound.tpr_low = clopper_pearson_lower(c.true_positives, c.members, each);
  bound.fpr_high = clopper_pearson_upper(c.false_positives, c.non_members, each);
  bound.epsilon = epsilon_from_bounds(bound.tpr_low, bound.fpr_high, options.delta);
  return bound;
}

MembershipFigures membership_figures(const std::vector<double>& scores,
                                     const std::vector<bool>& members,
                                     const std::vector<double>& fprs, const EpsilonOptions& epsilon,
                                     double level) {
  MembershipFigures figures;
  figures.roc = roc_curve(scores, members);
  figures.auc = auc_interval(scores, members, level);
  for (double fpr : fprs) figures.tpr_at_fpr.push_back(tpr_at_fpr(figures.roc, fpr, level));
  figures.epsilon = epsilon_lower_bound(scores, members, epsilon);
  return figures;
}

RocCurve thin_for_log_plot(const RocCurve& roc, int points) {
  RocCurve out;
  out.members = roc.members;
  out.non_members = roc.non_members;
  double lowest = kInf;
  for (size_t i = 0; i < roc.fpr.size(); ++i) {
    if (roc.fpr[i] > 0 && roc.tpr[i] > 0) lowest = std::min(lowest, roc.fpr[i]);
  }
  if (!std::isfinite(lowest) || points < 2) return out;
  const double from = std::log10(lowest), step = -from / (points - 1);
  size_t next = 0;
  for (int p = 0; p < points; ++p) {
    const double limit = p + 1 == points ? 1.0 : std::pow(10.0, from + step * p);
    // The last point at or below this FPR: the curve is a staircase, so this keeps its shape.
    size_t last = roc.fpr.size();
    for (size_t i = next; i < roc.fpr.size() && roc.fpr[i] <= limit * (1 + 1e-12); ++i) last = i;
    if (last == roc.fpr.size()) continue;
    next = last + 1;
    if (roc.fpr[last] <= 0 || roc.tpr[last] <= 0) continue;
    out.fpr.push_back(roc.fpr[last]);
    out.tpr.push_back(roc.tpr[last]);
    out.thresholds.push_back(roc.thresholds[last]);
  }
  return out;
}

}  // namespace privaudit::metrics
