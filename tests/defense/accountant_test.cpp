// The RDP accountant of the Poisson-subsampled Gaussian: the closed form at q = 1, published
// values of TF Privacy, the fractional-order series, and sigma chosen for a target epsilon.
#include "privaudit/defense/accountant.h"

#include <gtest/gtest.h>

#include <cmath>

#include "privaudit/util/error.h"
#include "test_util.h"

namespace privaudit::defense {
namespace {

// TF Privacy's orders of 2019-2020 (compute_dp_sgd_privacy): 1.1 .. 10.9, 12 .. 63.
std::vector<double> tf_privacy_orders() {
  std::vector<double> orders;
  for (int x = 1; x < 100; ++x) orders.push_back(1.0 + x / 10.0);
  for (int a = 12; a < 64; ++a) orders.push_back(a);
  return orders;
}

TEST(Accountant, FullSamplingIsTheGaussianMechanismClosedForm) {
  for (const double sigma : {0.7, 1.0, 2.5}) {
    for (const double order : {1.5, 2.0, 7.0, 32.0}) {
      EXPECT_NEAR(sampled_gaussian_rdp(1.0, sigma, order), order / (2 * sigma * sigma), 1e-12);
    }
  }
  // Composition and conversion: ε = min over α of T α / (2σ²) - log δ / (α - 1) (classic).
  const double sigma = 3.0, delta = 1e-5;
  const int64_t steps = 10;
  double best = 1e300;
  for (const double order : default_orders()) {
    best = std::min(best, steps * order / (2 * sigma * sigma) - std::log(delta) / (order - 1));
  }
  EXPECT_NEAR(dp_sgd_epsilon(1.0, sigma, steps, delta, Conversion::kClassic).epsilon, best, 1e-9);
}

// tensorflow/privacy, tutorials/README.md (commit 047e1eef0e446daf41a9adbb712c546ebbd38c12),
// "Select Parameters": MNIST, N = 60000, batch 256, δ = 1e-5, RDP with the classic conversion:
// σ 1.12, 60 epochs: ε 2.92; σ 0.6, 30 epochs: ε 9.74; σ 1.2, 10 epochs: ε 1.20. Abadi et al.
// (2016)'s σ 1.1, 60 epochs reads ε 3.01 with the same accountant (TF Privacy's README). Steps are
// epochs * N // batch, as the tutorial counts them.
TEST(Accountant, MatchesTensorFlowPrivacysPublishedEpsilons) {
  const double q = 256.0 / 60000.0;
  const auto epsilon = [&](double sigma, int epochs) {
    return dp_sgd_epsilon(q, sigma, int64_t{epochs} * 60000 / 256, 1e-5, Conversion::kClassic,
                          tf_privacy_orders())
        .epsilon;
  };
  EXPECT_NEAR(epsilon(1.12, 60), 2.92, 0.015);
  EXPECT_NEAR(epsilon(0.6, 30), 9.74, 0.02);
  EXPECT_NEAR(epsilon(1.2, 10), 1.20, 0.015);
  EXPECT_NEAR(epsilon(1.1, 60), 3.01, 0.015);
}

TEST(Accountant, ImprovedConversionIsNeverLooser) {
  const double q = 256.0 / 60000.0;
  for (const double sigma : {0.6, 1.1, 2.0}) {
    const auto classic = dp_sgd_epsilon(q, sigma, 5000, 1e-5, Conversion::kClassic);
    const auto improved = dp_sgd_epsilon(q, sigma, 5000, 1e-5, Conversion::kImproved);
    EXPECT_LT(improved.epsilon, classic.epsilon) << sigma;
    EXPECT_GT(improved.epsilon, 0.7 * classic.epsilon) << sigma;
  }
}

// The fractional series (A0 + A1) and the binomial sum are two formulas for one function: on
// either side of an integer order they must meet it.
TEST(Accountant, FractionalOrdersMeetTheIntegerOnes) {
  for (const double q : {0.001, 0.01, 0.2}) {
    for (const double sigma : {0.8, 1.1, 4.0}) {
      for (const int order : {2, 4, 9, 30}) {
        const double at = sampled_gaussian_rdp(q, sigma, order);
        EXPECT_NEAR(sampled_gaussian_rdp(q, sigma, order - 1e-6), at, 1e-5 * at + 1e-12);
        EXPECT_NEAR(sampled_gaussian_rdp(q, sigma, order + 1e-6), at, 1e-5 * at + 1e-12);
      }
    }
  }
}

TEST(Accountant, EpsilonGrowsWithStepsAndShrinksWithNoise) {
  const double q = 0.01;
  EXPECT_LT(dp_sgd_epsilon(q, 1.0, 100, 1e-5).epsilon, dp_sgd_epsilon(q, 1.0, 1000, 1e-5).epsilon);
  EXPECT_GT(dp_sgd_epsilon(q, 0.8, 1000, 1e-5).epsilon, dp_sgd_epsilon(q, 1.6, 1000, 1e-5).epsilon);
  EXPECT_EQ(dp_sgd_epsilon(0.0, 1.0, 1000, 1e-5).epsilon, 0.0);
}

TEST(Accountant, NoiseForEpsilonIsTheSmallestThatReachesIt) {
  const double q = 256.0 / 60000.0, delta = 1e-5;
  const int64_t steps = 20 * 234;
  for (const double target : {1.0, 3.0, 8.0}) {
    const double sigma = noise_for_epsilon(target, q, steps, delta);
    EXPECT_LE(dp_sgd_epsilon(q, sigma, steps, delta).epsilon, target) << target;
    EXPECT_GT(dp_sgd_epsilon(q, sigma * 0.995, steps, delta).epsilon, target) << target;
  }
}

TEST(Accountant, RefusesATargetNoNoiseReaches) {
  try {
    noise_for_epsilon(0.01, 0.01, 1000, 1e-5);
    FAIL() << "an unreachable epsilon was accepted";
  } catch (const Error& e) {
    EXPECT_TRUE(testing::contains(e.what(), "--dp-epsilon 0.01 cannot be reached")) << e.what();
  }
  EXPECT_THROW(sampled_gaussian_rdp(0.1, 0.0, 2.0), Error);
  EXPECT_THROW(sampled_gaussian_rdp(1.5, 1.0, 2.0), Error);
  EXPECT_THROW(dp_sgd_epsilon(0.1, 1.0, 10, 0.0), Error);
}

}  // namespace
}  // namespace privaudit::defense
