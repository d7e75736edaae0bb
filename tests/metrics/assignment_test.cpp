#include "privaudit/metrics/assignment.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "privaudit/util/error.h"

namespace privaudit::metrics {
namespace {

double total(const torch::Tensor& cost, const std::vector<int64_t>& columns) {
  double sum = 0;
  for (size_t i = 0; i < columns.size(); ++i) sum += cost[i][columns[i]].item<double>();
  return sum;
}

TEST(Assignment, SolvesAHandCheckedMatrix) {
  // The optimum is rows -> columns 1, 0, 2 (cost 5); every other permutation costs 6 or more.
  const auto cost = torch::tensor({4.0, 1.0, 3.0, 2.0, 0.0, 5.0, 3.0, 2.0, 2.0}).view({3, 3});
  EXPECT_EQ(min_cost_assignment(cost), (std::vector<int64_t>{1, 0, 2}));
}

TEST(Assignment, MatchesBruteForceOnRandomMatrices) {
  torch::manual_seed(0);
  for (int trial = 0; trial < 20; ++trial) {
    const auto cost = torch::rand({6, 6}, torch::kDouble);
    std::vector<int64_t> permutation(6);
    std::iota(permutation.begin(), permutation.end(), 0);
    double best = 1e9;
    do {
      best = std::min(best, total(cost, permutation));
    } while (std::next_permutation(permutation.begin(), permutation.end()));
    const auto found = min_cost_assignment(cost);
    EXPECT_NEAR(total(cost, found), best, 1e-12);
    auto sorted = found;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(sorted, (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
  }
}

TEST(Assignment, HandlesMoreColumnsThanRows) {
  const auto cost = torch::tensor({9.0, 9.0, 1.0, 1.0, 9.0, 9.0}).view({2, 3});
  EXPECT_EQ(min_cost_assignment(cost), (std::vector<int64_t>{2, 0}));
}

TEST(Assignment, RejectsBadMatrices) {
  EXPECT_THROW(min_cost_assignment(torch::zeros({3, 2})), Error);
  EXPECT_THROW(min_cost_assignment(torch::zeros({4})), Error);
  EXPECT_THROW(min_cost_assignment(torch::full({2, 2}, std::nan(""))), Error);
}

}  // namespace
}  // namespace privaudit::metrics
