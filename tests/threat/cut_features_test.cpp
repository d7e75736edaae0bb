// The features threat model: what the attacker observes at a cut.
#include "privaudit/threat/cut_features.h"

#include <gtest/gtest.h>

#include "attacks/gradients/attack_fixtures.h"

namespace privaudit::attacks {
namespace {

TEST(CutFeatures, AreTheModelsFeaturesInEvalModeWhateverTheChunk) {
  auto model = testing::make_model("mlp", 5);
  const auto cut = model->cut_points().front();
  const auto images = torch::rand({5, 1, 28, 28});
  model->set_training(true);
  const auto observed = observe_features(*model, cut, images, 2);
  EXPECT_TRUE(model->is_training()) << "the model's mode was not given back";
  EXPECT_FALSE(observed.requires_grad());
  models::TrainingModeGuard eval(*model, false);
  torch::NoGradGuard no_grad;
  // Chunks go through other matrix-product paths: equal up to float rounding.
  EXPECT_TRUE(torch::allclose(observed, model->features(images, cut), 1e-5, 1e-5));
  EXPECT_THROW(observe_features(*model, "no-such-cut", images), std::exception);
}

}  // namespace
}  // namespace privaudit::attacks
