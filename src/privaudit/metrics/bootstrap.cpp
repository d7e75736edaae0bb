#include "privaudit/metrics/bootstrap.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "privaudit/metrics/statistics.h"

namespace privaudit::metrics {
namespace {

double resampled_mean(const std::vector<double>& values, std::mt19937_64& rng) {
  std::uniform_int_distribution<size_t> pick(0, values.size() - 1);
  double sum = 0;
  for (size_t i = 0; i < values.size(); ++i) sum += values[pick(rng)];
  return sum / static_cast<double>(values.size());
}

// The (1 - level) / 2 and (1 + level) / 2 quantiles of `draws` (sorted in place).
void percentile_interval(std::vector<double>& draws, double level, Interval& interval) {
  std::sort(draws.begin(), draws.end());
  interval.low = quantile_of_sorted(draws, (1 - level) / 2);
  interval.high = quantile_of_sorted(draws, (1 + level) / 2);
}

}  // namespace

Interval bootstrap_mean(const std::vector<double>& values, const BootstrapOptions& options) {
  const auto kept = finite_values(values);
  Interval interval;
  interval.n = static_cast<int64_t>(kept.size());
  interval.estimate = interval.low = interval.high = mean(kept);
  if (kept.size() < 2) return interval;
  std::mt19937_64 rng(options.seed);
  std::vector<double> draws(static_cast<size_t>(std::max(options.resamples, 1)));
  for (auto& d : draws) d = resampled_mean(kept, rng);
  percentile_interval(draws, options.level, interval);
  return interval;
}

Comparison compare_means(const std::vector<double>& a, const std::vector<double>& b,
                         const BootstrapOptions& options) {
  const auto ka = finite_values(a), kb = finite_values(b);
  Comparison c;
  auto& d = c.difference;
  d.n = static_cast<int64_t>(std::min(ka.size(), kb.size()));
  d.estimate = d.low = d.high = mean(ka) - mean(kb);
  if (ka.size() < 2 || kb.size() < 2) {
    c.more_needed = -1;
    return c;
  }
  std::mt19937_64 rng(options.seed);
  std::vector<double> draws(static_cast<size_t>(std::max(options.resamples, 1)));
  for (auto& x : draws) x = resampled_mean(ka, rng) - resampled_mean(kb, rng);
  percentile_interval(draws, options.level, d);
  c.ranked = d.low > 0 || d.high < 0;
  if (c.ranked) return c;
  if (d.estimate == 0) {
    c.more_needed = -1;
    return c;
  }
  const double half_width = (d.high - d.low) / 2;
  const double n = static_cast<double>(d.n);
  const double needed = n * std::pow(half_width / std::abs(d.estimate), 2);
  c.more_needed = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(needed - n)));
  return c;
}

}  // namespace privaudit::metrics
