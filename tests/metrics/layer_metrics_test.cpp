#include "privaudit/metrics/layer_metrics.h"

#include <gtest/gtest.h>

#include <cmath>

#include "../probe_classifier.h"
#include "privaudit/models/builtin.h"
#include "privaudit/util/error.h"

namespace privaudit::metrics {
namespace {

using privaudit::testing::ProbeClassifier;
using privaudit::testing::random_rank_matrix;

const models::InputShape kSmall{1, 8, 8};  // D = 64

ProbeClassifier make_probe(int64_t low_rank = 5, int64_t expand_rank = 7) {
  return ProbeClassifier(kSmall, random_rank_matrix(32, 64, low_rank, 1),
                         random_rank_matrix(128, 64, expand_rank, 2));
}

torch::Tensor random_images(int64_t n, const models::InputShape& shape, uint64_t seed) {
  auto generator = at::detail::createCPUGenerator(seed);
  return torch::rand(shape.with_batch(n), generator);
}

TEST(LayerJacobian, RankOfLowRankLinearCutIsExactlyR) {
  auto probe = make_probe(5);
  const auto image = random_images(1, kSmall, 3)[0];
  const auto jacobian = layer_jacobian(probe, image, "low_rank");
  ASSERT_EQ(jacobian.sizes(), (std::vector<int64_t>{32, 64}));
  EXPECT_TRUE(torch::allclose(jacobian, probe.low_rank(), 1e-5, 1e-6));
  EXPECT_EQ(numerical_rank(jacobian), 5);
}

TEST(LayerJacobian, ExpandingCutIsBuiltFromJacobianVectorProducts) {
  // d = 128 > D = 64 takes the column (double-backward) route; relu makes it input-dependent.
  auto probe = make_probe(5, 7);
  const auto image = random_images(1, kSmall, 4)[0];
  const auto jacobian = layer_jacobian(probe, image, "expand", 24);
  const auto active =
      (torch::mm(image.reshape({1, -1}) - 0.5, probe.expand().t()) > 0).to(torch::kFloat).t();
  ASSERT_EQ(jacobian.sizes(), (std::vector<int64_t>{128, 64}));
  EXPECT_TRUE(torch::allclose(jacobian, active * probe.expand(), 1e-5, 1e-6));
  EXPECT_EQ(numerical_rank(jacobian), 7);
}

TEST(LayerJacobian, InvertibleLayerHasFullRankAndConstantLayerNone) {
  auto probe = make_probe();
  const auto image = random_images(1, kSmall, 5)[0];
  EXPECT_EQ(numerical_rank(layer_jacobian(probe, image, "flat")), 64);
  EXPECT_EQ(numerical_rank(layer_jacobian(probe, image, "identity", 7)), 64);
  EXPECT_EQ(numerical_rank(layer_jacobian(probe, image, "constant")), 0);
}

TEST(LayerJacobian, BuiltinMlpWithRankRFirstLayerHasRankR) {
  auto config = models::default_config("mlp", kSmall, 3);
  config.widths = {48, 16};
  config.activation = models::Activation::kTanh;  // tanh' > 0: no unit drops out of the rank
  torch::manual_seed(0);
  models::BuiltinClassifier model(config);
  {
    torch::NoGradGuard no_grad;
    model.parameters()[0].copy_(random_rank_matrix(48, 64, 6, 7));
  }
  const auto image = random_images(1, kSmall, 8)[0];
  EXPECT_EQ(numerical_rank(layer_jacobian(model, image, "fc1")), 6);
  EXPECT_EQ(numerical_rank(layer_jacobian(model, image, "fc2")), 6);
}

TEST(DegreesOfFreedom, CountsRankAndVarianceComponentsOfAKnownSpectrum) {
  // Orthogonal centred columns with singular values proportional to 10, 1.1, 0.1.
  const auto h =
      torch::tensor({{1.0, 1.0, 1.0}, {1.0, -1.0, -1.0}, {-1.0, 1.0, -1.0}, {-1.0, -1.0, 1.0}}) *
      torch::tensor({10.0, 1.1, 0.1});
  const auto shifted = torch::cat({h + 3.0, torch::zeros({4, 2})}, 1);
  const auto dof = degrees_of_freedom(shifted);
  EXPECT_EQ(dof.rank, 3);
  EXPECT_EQ(dof.components_99, 2);  // 100 / 101.22 of the variance is under 99 %, over 98 %
  EXPECT_EQ(degrees_of_freedom(shifted, 0.05).rank, 2);
  EXPECT_EQ(degrees_of_freedom(shifted, 1e-3, 0.98).components_99, 1);
  EXPECT_GT(dof.effective_rank, 1.0);
  EXPECT_LT(dof.effective_rank, 3.0);
}

TEST(LayerMetrics, LowRankCutHasJacobianRankRAndDofAtMostR) {
  auto probe = make_probe(5);
  LayerMetricsOptions options;
  options.jacobian_samples = 3;
  Progress quiet;
  const auto layers = measure_layers(probe, random_images(200, kSmall, 9), options, quiet);
  ASSERT_EQ(layers.size(), 5u);
  const auto& low = layers[2];
  EXPECT_EQ(low.name, "low_rank");
  EXPECT_EQ(low.output_dim, 32);
  EXPECT_DOUBLE_EQ(low.jacobian_rank, 5.0);
  EXPECT_DOUBLE_EQ(low.jacobian_rank_std, 0.0);
  EXPECT_DOUBLE_EQ(low.jacobian_rank_normalized, 5.0 / 64.0);
  EXPECT_LE(low.dof.rank, 5);
  EXPECT_LE(low.dof.components_99, 5);
  EXPECT_GE(low.jacobian_stable_rank, 1.0);
  EXPECT_LE(low.jacobian_stable_rank, 5.0);
  EXPECT_GE(low.sensitivity, 0.0);
  EXPECT_LT(low.sensitivity, 0.3);

  for (int i : {0, 1}) {  // identity and flat: everything survives
    EXPECT_DOUBLE_EQ(layers[i].jacobian_rank, 64.0);
    EXPECT_EQ(layers[i].dof.rank, 64);
    EXPECT_DOUBLE_EQ(layers[i].dof_normalized, 1.0);
    EXPECT_DOUBLE_EQ(layers[i].sensitivity, 1.0);
    EXPECT_NEAR(layers[i].jacobian_stable_rank, 64.0, 1e-3);  // all singular values equal
    EXPECT_NEAR(layers[i].sensitivity_stable, 1.0, 1e-6);
  }
  const auto& constant = layers[4];
  EXPECT_DOUBLE_EQ(constant.jacobian_rank, 0.0);
  EXPECT_EQ(constant.dof.rank, 0);
  EXPECT_DOUBLE_EQ(constant.sensitivity, 0.0);
  EXPECT_DOUBLE_EQ(constant.sensitivity_stable, 0.0);
}

TEST(LayerMetrics, RejectsBadOptionsAndInputs) {
  auto probe = make_probe();
  Progress quiet;
  LayerMetricsOptions options;
  options.jacobian_samples = 0;
  EXPECT_THROW(measure_layers(probe, random_images(10, kSmall, 1), options, quiet), Error);
  options = {};
  options.jacobian_chunk = 0;
  EXPECT_THROW(measure_layers(probe, random_images(10, kSmall, 1), options, quiet), Error);
  EXPECT_THROW(measure_layers(probe, random_images(1, kSmall, 1), LayerMetricsOptions{}, quiet),
               Error);
  EXPECT_THROW(layer_jacobian(probe, random_images(1, kSmall, 1)[0], "fc9"), Error);
  EXPECT_THROW(degrees_of_freedom(torch::rand({5, 3}), 0.0), Error);
  EXPECT_THROW(degrees_of_freedom(torch::rand({5, 3}), 1e-3, 1.5), Error);
}

TEST(LayerMetrics, SameInputsGiveSameFigures) {
  auto config = models::default_config("cnn", kSmall, 3);
  config.widths = {4, 8};
  config.fc_width = 12;
  torch::manual_seed(3);
  models::BuiltinClassifier model(config);
  LayerMetricsOptions options;
  options.jacobian_samples = 2;
  Progress quiet;
  const auto images = random_images(40, kSmall, 10);
  const auto a = measure_layers(model, images, options, quiet);
  const auto b = measure_layers(model, images, options, quiet);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].dof.rank, b[i].dof.rank);
    EXPECT_EQ(a[i].dof.components_99, b[i].dof.components_99);
    EXPECT_EQ(a[i].jacobian_rank, b[i].jacobian_rank);
    EXPECT_EQ(a[i].sensitivity, b[i].sensitivity);
    EXPECT_GE(a[i].sensitivity, 0.0);
    EXPECT_LE(a[i].sensitivity, 1.0);
    EXPECT_LE(a[i].jacobian_rank, std::min<double>(a[i].output_dim, 64));
  }
  // The equality is not vacuous: other images give other sensitivities.
  const auto c = measure_layers(model, random_images(40, kSmall, 11), options, quiet);
  ASSERT_EQ(c.size(), a.size());
  size_t differ = 0;
  for (size_t i = 0; i < a.size(); ++i) differ += a[i].sensitivity != c[i].sensitivity ? 1 : 0;
  EXPECT_GT(differ, 0u);
}

TEST(SpearmanCorrelation, RanksWithTiesShareTheirMeanRank) {
  EXPECT_DOUBLE_EQ(spearman_correlation({1, 2, 3, 4}, {10, 20, 30, 45}), 1.0);
  EXPECT_DOUBLE_EQ(spearman_correlation({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0);
  EXPECT_NEAR(spearman_correlation({1, 2, 2, 3}, {1, 2, 3, 4}), 4.5 / std::sqrt(22.5), 1e-12);
  EXPECT_TRUE(std::isnan(spearman_correlation({1, 1, 1}, {1, 2, 3})));
  EXPECT_THROW(spearman_correlation({1, 2}, {1}), Error);
}

}  // namespace
}  // namespace privaudit::metrics
