#include "privaudit/attacks/gradients/imprint.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "attacks/gradients/attack_fixtures.h"
#include "privaudit/attacks/gradients/fedavg.h"
#include "privaudit/metrics/reconstruction_score.h"
#include "privaudit/threat/malicious_server.h"

namespace privaudit::attacks {
namespace {

class Imprint : public testing::RequiresFashionMnist {};

using testing::make_model;

// The server's own images: the training split, never the test images the clients hold.
torch::Tensor server_images() {
  static const auto splits = data::load_splits("fashion-mnist", {1024, 10, 0});
  return splits.train.images;
}

// Fraction of `targets` some candidate reproduces at >= 40 dB (an image alone in its bin comes
// back at float precision, near 100 dB; a bin shared by two gives a blend, under 30 dB).
double recovered_fraction(const Reconstruction& result, const torch::Tensor& targets) {
  EXPECT_TRUE(result.candidate_set);
  const auto score = metrics::score_candidates(result.images, targets);
  return score.psnr.ge(40.0).to(torch::kDouble).mean().item<double>();
}

// The bar: K = 64 bins at B = 16 recovers (1 - 1/64)^15 = 0.79 of a batch exactly,
// within 0.15 (averaged over 8 batches of different test images: one batch's fraction alone has
// a standard deviation near 0.1).
TEST_F(Imprint, RecoversTheFractionTheFormulaPredicts) {
  auto inner = make_model("cnn", 5);
  ImprintedClassifier model(*inner, 64, server_images(), 3);
  const auto targets = testing::test_images(128, 0);
  Progress quiet;
  double total = 0;
  for (int64_t k = 0; k < 8; ++k) {
    const auto images = targets.images.slice(0, 16 * k, 16 * k + 16);
    const auto labels = targets.labels.slice(0, 16 * k, 16 * k + 16);
    const auto shared = shared_gradients(model, images, labels);
    const auto result = run_imprint_attack(model, shared, 16, quiet);
    ASSERT_FALSE(result.not_applicable) << result.failure;
    total += recovered_fraction(result, images);
  }
  const double expected = imprint_expected_fraction(64, 16);
  std::printf("figure: Imprint recovered %.3f expected %.3f\n", total / 8, expected);
  EXPECT_NEAR(expected, 0.7896, 1e-3);
  EXPECT_NEAR(total / 8, expected, 0.15);
}

// The same block works through FedAvg local steps and a secure aggregate (one bigger batch).
TEST_F(Imprint, WorksOnUpdatesAndAggregates) {
  auto inner = make_model("mlp", 6);
  ImprintedClassifier model(*inner, 64, server_images(), 4);
  const auto targets = testing::test_images(16, 64);
  LocalTraining training;
  training.steps = 2;
  training.batch = 2;
  std::vector<ModelUpdate> clients;
  for (int64_t m = 0; m < 4; ++m) {
    clients.push_back(client_update(model, targets.images.slice(0, 4 * m, 4 * m + 4),
                                    targets.labels.slice(0, 4 * m, 4 * m + 4), training, false));
  }
  Progress quiet;
  const auto one = run_imprint_attack(model, update_as_gradient(clients[0]), 4, quiet);
  EXPECT_GE(recovered_fraction(one, targets.images.slice(0, 0, 4)), 0.75);
  const auto all = run_imprint_attack(model, update_as_gradient(aggregate(clients)), 16, quiet);
  EXPECT_GE(recovered_fraction(all, targets.images), 0.5);
}

TEST_F(Imprint, WithoutTheBlockTheAttackDoesNotApply) {
  auto model = make_model("mlp", 7);
  const auto target = testing::test_images(4, 0);
  Progress quiet;
  const auto result =
      run_imprint_attack(*model, shared_gradients(*model, target.images, target.labels), 4, quiet);
  EXPECT_TRUE(result.not_applicable);
  EXPECT_NE(result.failure.find("imprint"), std::string::npos) << result.failure;
  auto cnn = make_model("cnn", 7);
  EXPECT_TRUE(
      run_imprint_attack(*cnn, shared_gradients(*cnn, target.images, target.labels), 4, quiet)
          .not_applicable);
}

}  // namespace
}  // namespace privaudit::attacks
