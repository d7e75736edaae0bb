// Uncertainty of the audit's figures: percentile-bootstrap intervals of a mean over targets, and
// the ranking decision between two architectures that follows from them (two are ranked apart
// only when the interval of their difference excludes zero).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace privaudit::metrics {

struct Interval {
  double estimate = 0;  // the mean of the values
  double low = 0, high = 0;
  int64_t n = 0;  // finite values used
};

struct BootstrapOptions {
  int resamples = 2000;
  double level = 0.95;
  uint64_t seed = 0;
};

// Percentile bootstrap of the mean of the finite `values` (NaN/inf are left out). With fewer
// than 2 values the interval is [estimate, estimate] (n says why it is no interval).
Interval bootstrap_mean(const std::vector<double>& values, const BootstrapOptions& options = {});

// a minus b, two independent samples (targets of two architectures), each resampled.
struct Comparison {
  Interval difference;
  bool ranked = false;  // the interval excludes 0
  // When not ranked and the difference is not 0: about how many more values per side would
  // narrow the interval to the observed difference (half-width scales as 1 / sqrt(n)); 0 when
  // ranked; -1 when the observed difference is 0.
  int64_t more_needed = 0;
};
Comparison compare_means(const std::vector<double>& a, const std::vector<double>& b,
                         const BootstrapOptions& options = {});

}  // namespace privaudit::metrics
