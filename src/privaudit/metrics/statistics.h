// Small statistics shared by the experiments and audits: means, medians and quantiles of plain
// series, and rank correlation. One home for them, so a figure is summed the same way everywhere.
#pragma once

#include <vector>

namespace privaudit::metrics {

// The finite values of `values` (NaN and inf left out), in order.
std::vector<double> finite_values(const std::vector<double>& values);

// The sum of `values` in order, divided by their count; NaN when there are none.
double mean(const std::vector<double>& values);

// mean() over the finite values only (NaN marks a value that was not measured); NaN when none is.
double mean_of_finite(const std::vector<double>& values);

// The median of the finite values (the mean of the middle two for an even count); NaN when none.
double median_of_finite(const std::vector<double>& values);

// The q-quantile (0 <= q <= 1) of non-empty ascending `sorted`, interpolated linearly between
// the two values around position q * (n - 1).
double quantile_of_sorted(const std::vector<double>& sorted, double q);

// Spearman rank correlation (ties share their mean rank); NaN if fewer than 2 values or a
// constant series. Throws Error if the sizes differ.
double spearman_correlation(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace privaudit::metrics
