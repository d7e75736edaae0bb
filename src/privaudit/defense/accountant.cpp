#include "privaudit/defense/accountant.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "privaudit/util/error.h"

namespace privaudit::defense {
namespace {

constexpr double kNegativeInfinity = -std::numeric_limits<double>::infinity();

// log(exp(a) + exp(b)) without overflow.
double log_add(double a, double b) {
  if (a == kNegativeInfinity) return b;
  if (b == kNegativeInfinity) return a;
  const double high = std::max(a, b);
  return high + std::log1p(std::exp(std::min(a, b) - high));
}

// log(erfc(x)), also where erfc underflows (x > ~26): its asymptotic series.
double log_erfc(double x) {
  if (x < 20.0) return std::log(std::erfc(x));
  const double x2 = x * x;
  return -x2 - std::log(x) - 0.5 * std::log(M_PI) +
         std::log1p(-0.5 / x2 + 0.75 / (x2 * x2) - 1.875 / (x2 * x2 * x2));
}

// log A_α for integer α: A_α = sum_k C(α,k) (1-q)^(α-k) q^k exp((k² - k) / (2σ²)).
double log_a_integer(double q, double sigma, int64_t alpha) {
  double log_a = kNegativeInfinity;
  double log_binomial = 0.0;  // log C(α, k)
  for (int64_t k = 0; k <= alpha; ++k) {
    if (k > 0) log_binomial += std::log(double(alpha - k + 1)) - std::log(double(k));
    const double term = log_binomial + double(k) * std::log(q) +
                        double(alpha - k) * std::log1p(-q) +
                        double(k * k - k) / (2.0 * sigma * sigma);
    log_a = log_add(log_a, term);
  }
  return log_a;
}

// log A_α for fractional α (Mironov et al. 2019, Sec. 3.3): A = A0 + A1 with
//   z0 = σ² log(1/q - 1) + 1/2,
//   A0 = sum_k C(α,k) q^k (1-q)^(α-k) exp((k² - k)/(2σ²)) erfc((k - z0)/(√2 σ)) / 2,
//   A1 = sum_k C(α,k) q^(α-k) (1-q)^k exp(((α-k)² - (α-k))/(2σ²)) erfc((z0 - (α-k))/(√2 σ)) / 2,
// where C(α,k) changes sign for k > α: the terms are summed with their signs until they vanish.
double log_a_fractional(double q, double sigma, double alpha) {
  const double z0 = sigma * sigma * std::log(1.0 / q - 1.0) + 0.5;
  const double root2_sigma = std::sqrt(2.0) * sigma;
  double positive = kNegativeInfinity, negative = kNegativeInfinity;
  double log_binomial = 0.0;
  bool binomial_negative = false;
  for (int64_t k = 0; k < 100000; ++k) {
    if (k > 0) {
      const double factor = (alpha - double(k) + 1.0) / double(k);
      log_binomial += std::log(std::abs(factor));
      if (factor < 0) binomial_negative = !binomial_negative;
    }
    const double j = alpha - double(k);
    const double term0 = log_binomial + double(k) * std::log(q) + j * std::log1p(-q) +
                         (double(k) * double(k) - double(k)) / (2.0 * sigma * sigma) +
                         std::log(0.5) + log_erfc((double(k) - z0) / root2_sigma);
    const double term1 = log_binomial + j * std::log(q) + double(k) * std::log1p(-q) +
                         (j * j - j) / (2.0 * sigma * sigma) + std::log(0.5) +
                         log_erfc((z0 - j) / root2_sigma);
    const double term = log_add(term0, term1);
    if (binomial_negative) {
      negative = log_add(negative, term);
    } else {
      positive = log_add(positive, term);
    }
    if (double(k) > alpha + 1 && term < std::max(positive, negative) - 40.0) break;
  }
  if (negative >= positive) throw Error("accountant: the fractional-order series did not converge");
  return positive + std::log1p(-std::exp(negative - positive));
}

}  // namespace

std::string conversion_name(Conversion conversion) {
  return conversion == Conversion::kImproved ? "balle2020" : "mironov2017";
}

std::vector<double> default_orders() {
  std::vector<double> orders;
  for (int x = 1; x < 100; ++x) orders.push_back(1.0 + x / 10.0);
  for (int a = 12; a <= 64; ++a) orders.push_back(a);
  orders.push_back(128);
  orders.push_back(256);
  return orders;
}

double sampled_gaussian_rdp(double q, double sigma, double order) {
  if (!(q >= 0.0 && q <= 1.0)) throw Error("accountant: sampling rate must be in [0, 1]");
  if (!(sigma > 0.0) || !std::isfinite(sigma))
    throw Error("accountant: the noise multiplier must be positive");
  if (!(order > 1.0)) throw Error("accountant: RDP orders must be above 1");
  if (q == 0.0) return 0.0;
  if (q == 1.0) return order / (2.0 * sigma * sigma);
  const bool integer = std::floor(order) == order;
  const double log_a = integer ? log_a_integer(q, sigma, static_cast<int64_t>(order))
                               : log_a_fractional(q, sigma, order);
  return log_a / (order - 1.0);
}

PrivacySpent dp_sgd_epsilon(double q, double sigma, int64_t steps, double delta,
                            Conversion conversion, const std::vector<double>& orders) {
  if (!(delta > 0.0 && delta < 1.0)) throw Error("accountant: delta must be in (0, 1)");
  if (steps < 0) throw Error("accountant: steps must not be negative");
  // Nothing sampled or no step taken: nothing released about anyone (the conversions would leave
  // their own slack).
  if (q == 0.0 || steps == 0) return {0.0, 0.0};
  PrivacySpent best{std::numeric_limits<double>::infinity(), 0.0};
  for (const double alpha : orders) {
    const double rdp = double(steps) * sampled_gaussian_rdp(q, sigma, alpha);
    double epsilon = rdp - std::log(delta) / (alpha - 1.0);
    if (conversion == Conversion::kImproved) {
      epsilon = rdp + std::log((alpha - 1.0) / alpha) -
                (std::log(delta) + std::log(alpha)) / (alpha - 1.0);
    }
    if (epsilon < best.epsilon) best = {std::max(epsilon, 0.0), alpha};
  }
  return best;
}

double noise_for_epsilon(double target_epsilon, double q, int64_t steps, double delta,
                         Conversion conversion) {
  if (!(target_epsilon > 0.0)) throw Error("--dp-epsilon must be positive");
  const auto epsilon_at = [&](double sigma) {
    return dp_sgd_epsilon(q, sigma, steps, delta, conversion).epsilon;
  };
  double high = 1.0;
  while (epsilon_at(high) > target_epsilon) {
    high *= 2.0;
    if (high > 1e4) {
      char line[240];
      std::snprintf(
          line, sizeof line,
          "--dp-epsilon %g cannot be reached in %lld steps at sampling rate %g and "
          "delta %g: even noise multiplier 10^4 gives epsilon %.3g (raise it or delta, or "
          "train fewer steps)",
          target_epsilon, static_cast<long long>(steps), q, delta, epsilon_at(1e4));
      throw Error(line);
    }
  }
  double low = high / 2.0;
  if (epsilon_at(low) <= target_epsilon) {
    low = 0.1;  // every target anyone trains at needs more noise than this
    if (epsilon_at(low) <= target_epsilon) return low;
  }
  while ((high - low) / high > 1e-3) {
    const double middle = 0.5 * (low + high);
    (epsilon_at(middle) > target_epsilon ? low : high) = middle;
  }
  return high;
}

}  // namespace privaudit::defense
