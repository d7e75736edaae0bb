// Uncertainty of the audit's figures: intervals of a mean, median or share over targets (BCa,
// order statistics, Jeffreys; the first version's percentile bootstrap is kept for
// comparison), paired and unpaired tests between two architectures, and Holm's correction.
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

// Which figure summarises a sample: PSNR surfaces use the median (an exact recovery's 100 dB cap
// would drag a mean), shares of 0/1 values the share, the rest the mean.
enum class Statistic { kMean, kMedian, kShare };
const char* statistic_name(Statistic statistic);  // "mean", "median", "share"

// The interval whose coverage tests/metrics/bootstrap_test.cpp checks at n = 8, 16 and 32:
// - kMean: BCa bootstrap (Efron 1987: bias-corrected and accelerated, the acceleration from the
//   jackknife), expanded by Student's t (Hesterberg 2015); it still under-covers a skewed mean at
//   n = 8 (91 % on exponential data), so the audit's surfaces use the median or the share;
// - kMedian: the distribution-free interval between order statistics, interpolated to the level
//   (Hettmansperger & Sheather 1986); no resampling, so no seed;
// - kShare: the Jeffreys interval of the share of values above 0.5 (0/1 values).
// Non-finite values are left out; with fewer than 2 the interval is [estimate, estimate].
Interval interval_of(Statistic statistic, const std::vector<double>& values,
                     const BootstrapOptions& options = {});
// The statistic of the finite values (NaN when none).
double statistic_of(Statistic statistic, const std::vector<double>& values);

// --repeats: values clustered by seed (`clusters[i]` names the seed of `values[i]`). With one
// cluster, interval_of; with several, a hierarchical percentile bootstrap: resample the seeds, then
// the values within each resampled seed, so seed-to-seed variation widens the interval.
Interval clustered_interval(Statistic statistic, const std::vector<double>& values,
                            const std::vector<int64_t>& clusters,
                            const BootstrapOptions& options = {});

// a against b with a two-sided p-value. Paired (the same targets in the same order): the interval
// is interval_of the per-target differences (their median for kMedian, else their mean) and the
// p-value a sign test (kMedian) or a sign-flip permutation test of the mean difference. Unpaired:
// the difference of the statistics with a percentile bootstrap of two independent resamples and a
// label-permutation test. ranked: p < 1 - level.
struct Test {
  Interval difference;
  double p_value = 1;
  bool paired = false;
  bool ranked = false;
  int64_t more_needed = 0;  // as Comparison::more_needed
};
Test compare_unpaired(Statistic statistic, const std::vector<double>& a,
                      const std::vector<double>& b, const BootstrapOptions& options = {});
Test compare_paired(Statistic statistic, const std::vector<double>& a, const std::vector<double>& b,
                    const BootstrapOptions& options = {});

// Holm's step-down adjustment (Holm 1979): the family-wise error stays at alpha when a hypothesis
// is rejected at adjusted p < alpha. Same order as `p_values`; NaN stays NaN (not tested).
std::vector<double> holm_adjust(const std::vector<double>& p_values);

// The regularised incomplete beta function I_x(a, b) (the binomial's and Clopper-Pearson's CDF).
double incomplete_beta(double a, double b, double x);
// The x with I_x(a, b) = p: the p-quantile of Beta(a, b) (Clopper-Pearson's bounds).
double beta_quantile(double a, double b, double p);
// The standard normal's CDF and its p-quantile.
double normal_cdf(double z);
double normal_quantile(double p);

}  // namespace privaudit::metrics
