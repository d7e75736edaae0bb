// Bootstrap intervals cover a known mean at the stated rate, and the ranking decision separates
// architectures only when the data do.
#include "privaudit/metrics/bootstrap.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

namespace privaudit::metrics {
namespace {

std::vector<double> normal_sample(std::mt19937_64& rng, int n, double mean, double sd) {
  std::normal_distribution<double> draw(mean, sd);
  std::vector<double> values(static_cast<size_t>(n));
  for (auto& v : values) v = draw(rng);
  return values;
}

TEST(Bootstrap, IntervalsCoverTheTrueMeanAtTheStatedRate) {
  std::mt19937_64 rng(42);
  BootstrapOptions options;
  options.resamples = 1000;
  int covered = 0;
  const int trials = 1000;
  for (int t = 0; t < trials; ++t) {
    const auto values = normal_sample(rng, 50, 3.0, 2.0);
    options.seed = static_cast<uint64_t>(t);
    const auto interval = bootstrap_mean(values, options);
    EXPECT_LE(interval.low, interval.estimate);
    EXPECT_GE(interval.high, interval.estimate);
    covered += interval.low <= 3.0 && 3.0 <= interval.high;
  }
  const double coverage = covered / static_cast<double>(trials);
  EXPECT_GE(coverage, 0.93);
  EXPECT_LE(coverage, 0.97);
}

TEST(Bootstrap, NonFiniteValuesAreLeftOutAndTooFewGiveNoWidth) {
  const auto interval = bootstrap_mean({1.0, NAN, 3.0, INFINITY});
  EXPECT_EQ(interval.n, 2);
  EXPECT_DOUBLE_EQ(interval.estimate, 2.0);
  const auto one = bootstrap_mean({5.0});
  EXPECT_EQ(one.n, 1);
  EXPECT_DOUBLE_EQ(one.low, 5.0);
  EXPECT_DOUBLE_EQ(one.high, 5.0);
}

TEST(Bootstrap, ADifferenceWithinTheNoiseIsIndistinguishableALargeOneIsRanked) {
  std::mt19937_64 rng(7);
  const auto a = normal_sample(rng, 30, 0.55, 0.5);
  const auto b = normal_sample(rng, 30, 0.50, 0.5);
  const auto close = compare_means(a, b);
  EXPECT_FALSE(close.ranked) << close.difference.low << " " << close.difference.high;
  EXPECT_GT(close.more_needed, 0);
  const auto c = normal_sample(rng, 30, 20.0, 3.0);
  const auto d = normal_sample(rng, 30, 10.0, 3.0);
  const auto far = compare_means(c, d);
  EXPECT_TRUE(far.ranked);
  EXPECT_GT(far.difference.low, 0.0);
  EXPECT_EQ(far.more_needed, 0);
  EXPECT_TRUE(compare_means(d, c).ranked);
  EXPECT_LT(compare_means(d, c).difference.high, 0.0);
}

// Coverage at the audit's sample sizes (2,000 draws per n, every draw seeded): the intervals the
// verdict uses cover within 93-97 %; the first version's percentile bootstrap of the mean does
// not (on the shares it under-covers at every n, most at n = 8).
struct Coverage {
  double old_method = 0, new_method = 0;
};

Coverage median_coverage_on_exponential(int n) {
  std::mt19937_64 rng(1000 + static_cast<uint64_t>(n));
  std::exponential_distribution<double> draw(1.0);
  const double median = std::log(2.0), mean = 1.0;
  BootstrapOptions options;
  options.resamples = 400;
  const int trials = 2000;
  int old_covered = 0, new_covered = 0;
  for (int t = 0; t < trials; ++t) {
    std::vector<double> values(static_cast<size_t>(n));
    for (auto& v : values) v = draw(rng);
    options.seed = static_cast<uint64_t>(t);
    const auto old_interval = bootstrap_mean(values, options);
    old_covered += old_interval.low <= mean && mean <= old_interval.high;
    const auto interval = interval_of(Statistic::kMedian, values, options);
    new_covered += interval.low <= median && median <= interval.high;
  }
  return {old_covered / double(trials), new_covered / double(trials)};
}

Coverage share_coverage_on_binary(int n) {
  std::mt19937_64 rng(2000 + static_cast<uint64_t>(n));
  std::uniform_real_distribution<double> share(0.55, 0.95);  // a training-likeness that leaks
  BootstrapOptions options;
  options.resamples = 400;
  const int trials = 2000;
  int old_covered = 0, new_covered = 0;
  for (int t = 0; t < trials; ++t) {
    const double p = share(rng);
    std::bernoulli_distribution coin(p);
    std::vector<double> values(static_cast<size_t>(n));
    for (auto& v : values) v = coin(rng);
    options.seed = static_cast<uint64_t>(t);
    const auto old_interval = bootstrap_mean(values, options);
    old_covered += old_interval.low <= p && p <= old_interval.high;
    const auto interval = interval_of(Statistic::kShare, values, options);
    new_covered += interval.low <= p && p <= interval.high;
  }
  return {old_covered / double(trials), new_covered / double(trials)};
}

TEST(StatisticCoverage, MedianIntervalCoversAtEightSixteenAndThirtyTwoOnSkewedData) {
  for (const int n : {8, 16, 32}) {
    const auto c = median_coverage_on_exponential(n);
    EXPECT_GE(c.new_method, 0.93) << "n = " << n;
    EXPECT_LE(c.new_method, 0.97) << "n = " << n;
    std::printf("exponential n=%d: percentile mean %.3f, order-statistic median %.3f\n", n,
                c.old_method, c.new_method);
  }
  // The percentile bootstrap of the mean under-covers at n = 8.
  EXPECT_LT(median_coverage_on_exponential(8).old_method, 0.90);
}

TEST(StatisticCoverage, ShareIntervalCoversAtEightSixteenAndThirtyTwoOnBinaryData) {
  for (const int n : {8, 16, 32}) {
    const auto c = share_coverage_on_binary(n);
    EXPECT_GE(c.new_method, 0.93) << "n = " << n;
    EXPECT_LE(c.new_method, 0.97) << "n = " << n;
    EXPECT_LT(c.old_method, 0.93) << "n = " << n;
    std::printf("binary n=%d: percentile mean %.3f, Jeffreys share %.3f\n", n, c.old_method,
                c.new_method);
  }
}

TEST(StatisticCoverage, MedianIntervalIsDistributionFreeAndNeedsNoSeed) {
  const std::vector<double> values = {1, 2, 3, 4, 5, 6, 7, 100};
  const auto a = interval_of(Statistic::kMedian, values);
  BootstrapOptions other;
  other.seed = 99;
  const auto b = interval_of(Statistic::kMedian, values, other);
  EXPECT_DOUBLE_EQ(a.estimate, 4.5);
  EXPECT_DOUBLE_EQ(a.low, b.low);
  EXPECT_DOUBLE_EQ(a.high, b.high);
  EXPECT_GT(a.low, 1.0);  // interpolated towards the second order statistic
  EXPECT_LT(a.high, 100.0);
}

TEST(StatisticTests, PairedTargetsSeparateWhatIndependentResamplingCannot) {
  // Two architectures on the same 8 targets: the targets differ a lot, the architectures by a
  // steady 2 dB. Unpaired, the spread of the targets hides it; paired, every difference agrees.
  const std::vector<double> a = {12, 30, 18, 45, 22, 60, 15, 38};
  std::vector<double> b;
  for (double v : a) b.push_back(v - 2.0);
  const auto unpaired = compare_unpaired(Statistic::kMedian, a, b);
  const auto paired = compare_paired(Statistic::kMedian, a, b);
  EXPECT_FALSE(unpaired.ranked);
  EXPECT_FALSE(compare_means(a, b).ranked);  // the first version's decision
  EXPECT_TRUE(paired.paired);
  EXPECT_TRUE(paired.ranked);
  EXPECT_NEAR(paired.p_value, 2.0 / 256.0, 1e-9);  // sign test: 8 of 8 positive
  EXPECT_DOUBLE_EQ(paired.difference.estimate, 2.0);
}

TEST(StatisticTests, HolmAdjustsTheSmallestPValueByTheFamilySize) {
  const auto adjusted = holm_adjust({0.01, 0.04, NAN, 0.03, 0.2});
  EXPECT_NEAR(adjusted[0], 0.04, 1e-12);  // 4 x 0.01
  EXPECT_NEAR(adjusted[3], 0.09, 1e-12);  // 3 x 0.03
  EXPECT_NEAR(adjusted[1], 0.09, 1e-12);  // max(2 x 0.04, 0.09)
  EXPECT_NEAR(adjusted[4], 0.2, 1e-12);
  EXPECT_TRUE(std::isnan(adjusted[2]));
}

TEST(StatisticTests, SeedsWidenTheClusteredInterval) {
  // Two seeds whose targets agree within a seed but not between seeds: pooled as if independent
  // the interval is narrow; resampling the seeds first shows the seed-to-seed spread.
  std::vector<double> values;
  std::vector<int64_t> clusters;
  for (int i = 0; i < 16; ++i) {
    values.push_back(i < 8 ? 20.0 + 0.1 * i : 40.0 + 0.1 * i);
    clusters.push_back(i < 8 ? 0 : 1);
  }
  const auto flat = interval_of(Statistic::kMedian, values);
  const auto clustered = clustered_interval(Statistic::kMedian, values, clusters);
  EXPECT_GT(clustered.high - clustered.low, flat.high - flat.low);
  EXPECT_LT(clustered.low, 21.0);
  EXPECT_GT(clustered.high, 40.0);
}

}  // namespace
}  // namespace privaudit::metrics
