// Small statistics shared by the audits: rank correlation.
#pragma once

#include <vector>

namespace privaudit::metrics {

// Spearman rank correlation (ties share their mean rank); NaN if fewer than 2 values or a
// constant series. Throws Error if the sizes differ.
double spearman_correlation(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace privaudit::metrics
