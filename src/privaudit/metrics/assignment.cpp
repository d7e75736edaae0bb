#include "privaudit/metrics/assignment.h"

#include <limits>
#include <string>

#include "privaudit/util/error.h"

namespace privaudit::metrics {

std::vector<int64_t> min_cost_assignment(const torch::Tensor& cost) {
  if (cost.dim() != 2) throw Error("assignment: the cost matrix must be 2-D");
  const int64_t n = cost.size(0), m = cost.size(1);
  if (n > m) {
    throw Error("assignment: " + std::to_string(n) + " rows but only " + std::to_string(m) +
                " columns");
  }
  if (n == 0) return {};
  const auto c = cost.to(torch::kCPU, torch::kDouble).contiguous();
  if (!torch::isfinite(c).all().item<bool>())
    throw Error("assignment: the cost matrix holds NaN/inf");
  const double* a = c.data_ptr<double>();
  const auto at = [&](int64_t i, int64_t j) { return a[(i - 1) * m + (j - 1)]; };  // 1-based
  const double inf = std::numeric_limits<double>::infinity();
  // u, v: row and column potentials; p[j]: row matched to column j (0 = none); way: the path.
  std::vector<double> u(n + 1, 0), v(m + 1, 0);
  std::vector<int64_t> p(m + 1, 0), way(m + 1, 0);
  for (int64_t i = 1; i <= n; ++i) {
    p[0] = i;
    int64_t j0 = 0;
    std::vector<double> min_to(m + 1, inf);
    std::vector<char> used(m + 1, 0);
    do {
      used[j0] = 1;
      const int64_t i0 = p[j0];
      double delta = inf;
      int64_t j1 = 0;
      for (int64_t j = 1; j <= m; ++j) {
        if (used[j]) continue;
        const double reduced = at(i0, j) - u[i0] - v[j];
        if (reduced < min_to[j]) {
          min_to[j] = reduced;
          way[j] = j0;
        }
        if (min_to[j] < delta) {
          delta = min_to[j];
          j1 = j;
        }
      }
      for (int64_t j = 0; j <= m; ++j) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else {
          min_to[j] -= delta;
        }
      }
      j0 = j1;
    } while (p[j0] != 0);
    do {
      const int64_t j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0 != 0);
  }
  std::vector<int64_t> row_to_column(n, -1);
  for (int64_t j = 1; j <= m; ++j) {
    if (p[j] != 0) row_to_column[p[j] - 1] = j - 1;
  }
  return row_to_column;
}

}  // namespace privaudit::metrics
