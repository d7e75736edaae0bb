#include "privaudit/attacks/gradients/fedavg.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include "attacks/gradients/attack_fixtures.h"
#include "privaudit/attacks/gradients/closed_form.h"
#include "privaudit/attacks/gradients/registry.h"
#include "privaudit/metrics/reconstruction_score.h"
#include "privaudit/util/runtime.h"

namespace privaudit::attacks {
namespace {

class FedAvg : public testing::RequiresFashionMnist {};
class FedAvgSlow : public testing::RequiresFashionMnist {};

using testing::make_model;
using testing::make_small_cnn;
using testing::test_images;

// One local step of plain SGD on the whole batch is the batch gradient: read back from the update
// it equals shared_gradients, and an attack on it gives the same images as on the gradient.
TEST_F(FedAvg, OneStepUpdateIsTheGradient) {
  auto model = make_model("mlp", 1);
  const auto target = test_images(2, 5);
  LocalTraining training;
  training.batch = 2;
  training.learning_rate = 1e-2;
  const auto before = model->parameters()[0].clone();
  const auto update = client_update(*model, target.images, target.labels, training, true);
  EXPECT_TRUE(torch::equal(before, model->parameters()[0])) << "parameters not restored";
  const auto as_gradient = update_as_gradient(update);
  const auto gradient = shared_gradients(*model, target.images, target.labels);
  ASSERT_EQ(as_gradient.size(), gradient.size());
  for (size_t i = 0; i < gradient.size(); ++i) {
    EXPECT_TRUE(torch::allclose(as_gradient[i], gradient[i], 1e-5, 1e-9)) << "tensor " << i;
  }
  Progress quiet;
  const auto& attack = find_gradient_attack("linear-layer");
  SharedUpdate from_update{as_gradient, 2, target.labels, false};
  SharedUpdate from_gradient{gradient, 2, target.labels, false};
  const auto a = attack.run(*model, from_update, AttackBudget(), quiet);
  const auto b = attack.run(*model, from_gradient, AttackBudget(), quiet);
  ASSERT_FALSE(a.not_applicable);
  EXPECT_TRUE(torch::allclose(a.images, b.images, 0, 1e-4));
  EXPECT_EQ(a.certified, b.certified);
}

// Reverse mode through S SGD steps with momentum and weight decay agrees with central finite
// differences in float64; with a large learning rate, so that the second-order terms (the
// parameters each step starts from depend on the images) carry weight.
TEST_F(FedAvg, UnrolledGradientMatchesFiniteDifferences) {
  models::ModelConfig config = models::default_config("mlp", {1, 28, 28}, 10);
  config.widths = {16};
  torch::manual_seed(3);
  models::BuiltinClassifier model(config);
  model.net()->to(torch::kDouble);
  const auto target = test_images(3, 20);
  const auto images = target.images.to(torch::kDouble);
  LocalTraining training;
  training.steps = 4;
  training.batch = 2;
  training.learning_rate = 0.5;
  training.momentum = 0.9;
  training.weight_decay = 0.05;
  UnrolledTraining run(model, training);
  const auto delta = run.forward(images, target.labels);
  auto generator = privaudit::make_generator(7);
  Gradients adjoint;
  for (const auto& d : delta) adjoint.push_back(torch::randn(d.sizes(), generator).to(d.dtype()));
  const auto gradient = run.backward(adjoint);
  const auto value = [&](const torch::Tensor& x) {
    UnrolledTraining probe(model, training);
    const auto d = probe.forward(x, target.labels);
    double total = 0;
    for (size_t i = 0; i < d.size(); ++i) total += (d[i] * adjoint[i]).sum().item<double>();
    return total;
  };
  const auto direction = torch::randn(images.sizes(), generator).to(torch::kDouble);
  const double eps = 1e-5;
  const double numeric =
      (value(images + eps * direction) - value(images - eps * direction)) / (2 * eps);
  const double analytic = (gradient * direction).sum().item<double>();
  EXPECT_NEAR(analytic, numeric, 1e-5 * std::abs(numeric) + 1e-9);

  // The first-order part alone (each step's gradient at the server's parameters) is measurably
  // different here: the test sees the second-order terms.
  LocalTraining first_order = training;
  first_order.learning_rate = 1e-9;
  UnrolledTraining linear(model, first_order);
  linear.forward(images, target.labels);
  const double scale = training.learning_rate / first_order.learning_rate;
  const double linear_part = (linear.backward(adjoint) * direction).sum().item<double>() * scale;
  EXPECT_GT(std::abs(linear_part - analytic), 1e-3 * std::abs(analytic));
}

// The bar: untrained small CNN, 1 client, 4 images, 4 local steps of 1 image, labels and
// hyper-parameters known: the unrolled attack's median PSNR >= 25 dB.
TEST_F(FedAvgSlow, UnrolledInvertingGradientsRecoversFourLocalSteps) {
  const auto offset = static_cast<int64_t>(testing::seed_offset());
  auto model = make_small_cnn(4 + offset);
  const auto target = test_images(4, 10 + 4 * offset);
  LocalTraining training;
  training.steps = 4;
  training.learning_rate = 1e-3;
  const auto update = client_update(*model, target.images, target.labels, training, true);
  InvertingGradientsOptions options;
  options.iterations = 600;
  Progress quiet;
  const auto result = run_unrolled_inverting_gradients(*model, update, options, quiet);
  const auto score =
      metrics::score_reconstruction(result.images, result.labels, target.images, target.labels);
  const double median = score.psnr.median().item<double>();
  std::printf("figure: FedAvgSlow unrolled median psnr %.2f\n", median);
  EXPECT_GE(median, 25.0) << score.psnr << " after " << result.iterations << " iterations";
  EXPECT_TRUE(torch::equal(result.labels, target.labels));
}

}  // namespace
}  // namespace privaudit::attacks
