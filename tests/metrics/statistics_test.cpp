#include "privaudit/metrics/statistics.h"

#include <gtest/gtest.h>

#include <cmath>

namespace privaudit::metrics {
namespace {

TEST(SpearmanCorrelation, RanksNotValues) {
  EXPECT_DOUBLE_EQ(spearman_correlation({1, 2, 3, 4}, {1, 10, 100, 1000}), 1.0);
  EXPECT_DOUBLE_EQ(spearman_correlation({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0);
  // Ties take their average rank: ranks (0.5, 0.5, 2) vs (0, 1, 2).
  EXPECT_NEAR(spearman_correlation({1, 1, 2}, {1, 2, 3}), 0.8660254037844386, 1e-12);
  EXPECT_TRUE(std::isnan(spearman_correlation({1}, {1})));
}

}  // namespace
}  // namespace privaudit::metrics
