// Bootstrap intervals cover a known mean at the stated rate, and the ranking decision separates
// architectures only when the data do.
#include "privaudit/metrics/bootstrap.h"

#include <gtest/gtest.h>

#include <cmath>
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

}  // namespace
}  // namespace privaudit::metrics
