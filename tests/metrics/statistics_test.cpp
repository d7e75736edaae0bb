#include "privaudit/metrics/statistics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

namespace privaudit::metrics {
namespace {

TEST(SpearmanCorrelation, RanksNotValues) {
  EXPECT_DOUBLE_EQ(spearman_correlation({1, 2, 3, 4}, {1, 10, 100, 1000}), 1.0);
  EXPECT_DOUBLE_EQ(spearman_correlation({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0);
  // Ties take their average rank: ranks (0.5, 0.5, 2) vs (0, 1, 2).
  EXPECT_NEAR(spearman_correlation({1, 1, 2}, {1, 2, 3}), 0.8660254037844386, 1e-12);
  EXPECT_TRUE(std::isnan(spearman_correlation({1}, {1})));
}

TEST(MeanOfFinite, LeavesOutWhatWasNotMeasured) {
  const double nan = std::nan("");
  EXPECT_DOUBLE_EQ(mean_of_finite({1, nan, 2, INFINITY, 6}), 3.0);
  EXPECT_TRUE(std::isnan(mean_of_finite({nan, nan})));
  EXPECT_TRUE(std::isnan(mean({})));
  // Summed in order: the same bits as a hand-written loop over the same values.
  const std::vector<double> values = {0.1, 0.2, 0.3, 1e16, -1e16};
  double sum = 0;
  for (double v : values) sum += v;
  EXPECT_EQ(mean(values), sum / 5);
}

TEST(MedianOfFinite, MiddleValueOrMeanOfTheMiddleTwo) {
  EXPECT_DOUBLE_EQ(median_of_finite({5, 1, std::nan(""), 3}), 3.0);
  EXPECT_DOUBLE_EQ(median_of_finite({4, 1, 3, 2}), 2.5);
  EXPECT_TRUE(std::isnan(median_of_finite({})));
}

TEST(QuantileOfSorted, InterpolatesBetweenNeighbours) {
  const std::vector<double> sorted = {0, 10, 20, 30};
  EXPECT_DOUBLE_EQ(quantile_of_sorted(sorted, 0), 0.0);
  EXPECT_DOUBLE_EQ(quantile_of_sorted(sorted, 0.5), 15.0);
  EXPECT_DOUBLE_EQ(quantile_of_sorted(sorted, 1), 30.0);
  EXPECT_DOUBLE_EQ(quantile_of_sorted({7}, 0.975), 7.0);
}

}  // namespace
}  // namespace privaudit::metrics
