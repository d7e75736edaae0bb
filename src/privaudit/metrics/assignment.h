// Optimal assignment (Hungarian algorithm, Kuhn-Munkres with potentials, O(n^2 m)): pairs each
// row of a cost matrix with a distinct column so that the total cost is minimal.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

namespace privaudit::metrics {

// cost: n x m with n <= m, finite. Returns for each row i the column assigned to it.
// Throws Error for a non-2-D matrix, more rows than columns, or non-finite costs.
std::vector<int64_t> min_cost_assignment(const torch::Tensor& cost);

}  // namespace privaudit::metrics
