// The figures of a membership attack on scores whose answer is known: separated classes, identical
// ones, and a Gaussian shift whose ROC, AUC and privacy curve have closed forms.
#include "privaudit/metrics/membership_metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "privaudit/util/error.h"

namespace privaudit::metrics {
namespace {

struct Draw {
  std::vector<double> scores;
  std::vector<bool> members;
};

// `n` members drawn from N(shift, 1) and `n` non-members from N(0, 1), interleaved.
Draw gaussian_draw(int n, double shift, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0, 1);
  Draw d;
  for (int i = 0; i < n; ++i) {
    d.scores.push_back(normal(rng) + shift);
    d.members.push_back(true);
    d.scores.push_back(normal(rng));
    d.members.push_back(false);
  }
  return d;
}

// The epsilon of a Gaussian shift `mu` at `delta` (Balle & Wang 2018: the Gaussian mechanism's
// privacy curve delta(eps) = Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2)), by bisection.
double gaussian_epsilon(double mu, double delta) {
  const auto curve = [&](double eps) {
    return normal_cdf(-eps / mu + mu / 2) - std::exp(eps) * normal_cdf(-eps / mu - mu / 2);
  };
  double low = 0, high = 50;
  for (int i = 0; i < 200; ++i) {
    const double mid = (low + high) / 2;
    (curve(mid) > delta ? low : high) = mid;
  }
  return (low + high) / 2;
}

TEST(MembershipMetrics, PerfectSeparationGivesAucOneAndEveryMemberAtZeroFpr) {
  const std::vector<double> scores = {5, 6, 7, 8, 1, 2, 3, 4};
  const std::vector<bool> members = {true, true, true, true, false, false, false, false};
  const auto roc = roc_curve(scores, members);
  EXPECT_DOUBLE_EQ(roc_auc(roc), 1.0);
  const auto at = tpr_at_fpr(roc, 0.001);
  EXPECT_DOUBLE_EQ(at.fpr, 0.0);
  EXPECT_DOUBLE_EQ(at.tpr.estimate, 1.0);
  EXPECT_DOUBLE_EQ(at.threshold, 5.0);
  EXPECT_DOUBLE_EQ(at.tpr.high, 1.0);
  // Clopper-Pearson at 4 of 4, two-sided 95 %: the lower bound is 0.025^(1/4).
  EXPECT_NEAR(at.tpr.low, std::pow(0.025, 0.25), 1e-9);
  EXPECT_DOUBLE_EQ(auc_interval(scores, members).estimate, 1.0);
}

TEST(MembershipMetrics, TiedScoresFormOnePointAndCountOneHalf) {
  const std::vector<double> scores = {1, 1, 1, 1};
  const std::vector<bool> members = {true, false, true, false};
  const auto roc = roc_curve(scores, members);
  ASSERT_EQ(roc.fpr.size(), 2u);  // (0,0) and (1,1): the tie is never split
  EXPECT_DOUBLE_EQ(roc_auc(roc), 0.5);
  EXPECT_DOUBLE_EQ(auc_interval(scores, members).estimate, 0.5);
  // One member above one tie group: AUC counts the tie with a non-member as one half.
  const std::vector<double> mixed = {2, 1, 1, 0};
  const std::vector<bool> labels = {true, true, false, false};
  EXPECT_DOUBLE_EQ(roc_auc(roc_curve(mixed, labels)), (1.0 + 1.0 + 0.5 + 1.0) / 4);
  EXPECT_DOUBLE_EQ(auc_interval(mixed, labels).estimate, 0.875);
}

TEST(MembershipMetrics, ClopperPearsonMatchesKnownBounds) {
  // Textbook values: 5 of 10 at 95 % gives [0.1871, 0.8129]; 0 of 10 gives [0, 0.3085].
  const auto half = clopper_pearson(5, 10);
  EXPECT_NEAR(half.low, 0.1871, 1e-4);
  EXPECT_NEAR(half.high, 0.8129, 1e-4);
  const auto none = clopper_pearson(0, 10);
  EXPECT_DOUBLE_EQ(none.low, 0.0);
  EXPECT_NEAR(none.high, 1 - std::pow(0.025, 0.1), 1e-9);
  EXPECT_NEAR(clopper_pearson_upper(0, 10, 0.95), 1 - std::pow(0.05, 0.1), 1e-9);
  EXPECT_NEAR(clopper_pearson_lower(10, 10, 0.95), std::pow(0.05, 0.1), 1e-9);
}

TEST(MembershipMetrics, IdenticalDistributionsGiveAucOneHalfAndNoEpsilon) {
  const auto d = gaussian_draw(4000, 0.0, 7);
  const auto figures = membership_figures(d.scores, d.members);
  EXPECT_LE(figures.auc.low, 0.5);
  EXPECT_GE(figures.auc.high, 0.5);
  EXPECT_NEAR(figures.auc.estimate, 0.5, 0.02);
  EXPECT_DOUBLE_EQ(figures.epsilon.epsilon, 0.0);
  for (const auto& at : figures.tpr_at_fpr) {
    EXPECT_LE(at.fpr, at.target_fpr);
    EXPECT_LE(at.tpr.low, at.target_fpr);  // no better than chance at the chosen FPR
  }
}

// Choosing the best of thousands of thresholds on the same decisions would find an epsilon above
// 0 on most null draws; chosen on one half and bounded on the other, at most the stated 5 %.
TEST(MembershipMetrics, NullDrawsRarelyGiveAPositiveEpsilon) {
  int positive = 0;
  const int draws = 40;
  for (int seed = 0; seed < draws; ++seed) {
    const auto d = gaussian_draw(1000, 0.0, 100 + static_cast<uint64_t>(seed));
    EpsilonOptions options;
    options.seed = static_cast<uint64_t>(seed);
    positive += epsilon_lower_bound(d.scores, d.members, options).epsilon > 0;
  }
  EXPECT_LE(positive, 4);  // 5 % of 40 is 2; a binomial 97.5 % quantile is 5
}

TEST(MembershipMetrics, GaussianShiftGivesItsClosedFormFigures) {
  const double shift = 1.0;
  const auto d = gaussian_draw(5000, shift, 11);
  const auto figures = membership_figures(d.scores, d.members);
  const double auc = normal_cdf(shift / std::sqrt(2.0));  // 0.760
  EXPECT_LE(figures.auc.low, auc);
  EXPECT_GE(figures.auc.high, auc);
  EXPECT_LT(figures.auc.high - figures.auc.low, 0.03);
  // TPR at 1 % FPR: Phi(shift - z_0.99) = 0.092.
  const double tpr = normal_cdf(shift - normal_quantile(0.99));
  const auto& at = figures.tpr_at_fpr[1];
  EXPECT_DOUBLE_EQ(at.target_fpr, 0.01);
  EXPECT_LE(at.tpr.low, tpr + 0.01);
  EXPECT_GE(at.tpr.high, tpr - 0.01);
  // A lower bound: positive, and below the shift's true epsilon at delta = 1e-5.
  const double truth = gaussian_epsilon(shift, 1e-5);
  std::printf(
      "figure: MembershipMetrics gaussian-shift auc %.4f tpr@1%% %.4f eps %.3f (true %.3f)\n",
      figures.auc.estimate, at.tpr.estimate, figures.epsilon.epsilon, truth);
  EXPECT_GT(figures.epsilon.epsilon, 0.3);
  EXPECT_LT(figures.epsilon.epsilon, truth);
  EXPECT_EQ(figures.epsilon.selection_decisions + figures.epsilon.bound_decisions, 10000);
}

TEST(MembershipMetrics, SameSeedGivesTheSameBoundAndAnotherSeedOtherHalves) {
  const auto d = gaussian_draw(2000, 1.5, 3);
  EpsilonOptions a;
  a.seed = 1;
  const auto first = epsilon_lower_bound(d.scores, d.members, a);
  const auto again = epsilon_lower_bound(d.scores, d.members, a);
  EXPECT_EQ(first.epsilon, again.epsilon);
  EXPECT_EQ(first.threshold, again.threshold);
  a.seed = 2;
  EXPECT_NE(epsilon_lower_bound(d.scores, d.members, a).epsilon, first.epsilon);
}

TEST(MembershipMetrics, RejectsMismatchedNanAndOneClassInput) {
  const std::vector<double> scores = {1, 2, 3};
  EXPECT_THROW(roc_curve(scores, {true, false}), Error);
  EXPECT_THROW(roc_curve({1, NAN}, {true, false}), Error);
  EXPECT_THROW(roc_curve(scores, {true, true, true}), Error);
  EXPECT_THROW(auc_interval(scores, {false, false, false}), Error);
  EpsilonOptions bad;
  bad.delta = 1.5;
  EXPECT_THROW(epsilon_lower_bound(scores, {true, false, true}, bad), Error);
  bad.delta = 1e-5;
  bad.confidence = 1.0;
  EXPECT_THROW(epsilon_lower_bound(scores, {true, false, true}, bad), Error);
}

TEST(MembershipMetrics, LogPlotThinningKeepsAStaircaseOfPositivePoints) {
  const auto d = gaussian_draw(5000, 1.0, 5);
  const auto roc = roc_curve(d.scores, d.members);
  const auto thin = thin_for_log_plot(roc, 100);
  ASSERT_GT(thin.fpr.size(), 20u);
  EXPECT_LE(thin.fpr.size(), 100u);
  for (size_t i = 0; i < thin.fpr.size(); ++i) {
    EXPECT_GT(thin.fpr[i], 0);
    EXPECT_GT(thin.tpr[i], 0);
    if (i > 0) {
      EXPECT_GT(thin.fpr[i], thin.fpr[i - 1]);
      EXPECT_GE(thin.tpr[i], thin.tpr[i - 1]);
    }
  }
  EXPECT_DOUBLE_EQ(thin.fpr.back(), 1.0);
}

}  // namespace
}  // namespace privaudit::metrics
