// Defenses of a shared update: each does what it says, bad settings are refused, the noise is a
// function of the seed, and an exact attack's PSNR falls as the noise grows.
#include "privaudit/defense/update_defense.h"

#include <gtest/gtest.h>

#include "privaudit/attacks/gradients/closed_form.h"
#include "privaudit/metrics/image_similarity.h"
#include "privaudit/util/error.h"
#include "test_util.h"

namespace privaudit::defense {
namespace {

attacks::SharedUpdate toy_update() {
  attacks::SharedUpdate update;
  torch::manual_seed(2);
  update.gradients = {torch::randn({4, 5}) * 3, torch::randn({5})};
  return update;
}

double update_norm(const attacks::SharedUpdate& update) {
  double squared = 0;
  for (const auto& g : update.gradients) squared += g.pow(2).sum().item<double>();
  return std::sqrt(squared);
}

TEST(UpdateDefense, ClippingBoundsTheNormAndNoiseHasItsStandardDeviation) {
  UpdateDefense clip;
  clip.clip_norm = 0.5;
  EXPECT_NEAR(update_norm(defend_update(toy_update(), clip)), 0.5, 1e-5);
  attacks::SharedUpdate zero;
  zero.gradients = {torch::zeros({200, 100})};
  UpdateDefense noise;
  noise.clip_norm = 0.5;
  noise.noise_sigma = 2.0;
  const auto noised = defend_update(zero, noise);
  EXPECT_NEAR(noised.gradients[0].std().item<double>(), 1.0, 0.02);
}

TEST(UpdateDefense, PruningKeepsTheLargestEntries) {
  const auto update = toy_update();
  UpdateDefense prune;
  prune.keep_fraction = 0.2;
  const auto pruned = defend_update(update, prune);
  const auto& before = update.gradients[0];
  const auto& after = pruned.gradients[0];
  EXPECT_EQ(after.ne(0).sum().item<int64_t>(), 4);  // 20 % of 20
  const auto kept = after.ne(0);
  EXPECT_TRUE(torch::equal(after.masked_select(kept), before.masked_select(kept)));
  EXPECT_GE(before.masked_select(kept).abs().min().item<double>(),
            before.masked_select(kept.logical_not()).abs().max().item<double>());
}

TEST(UpdateDefense, QuantisationLeavesFewLevels) {
  UpdateDefense quantise;
  quantise.quantization_bits = 3;  // 3 levels each side of zero, and zero
  const auto quantised = defend_update(toy_update(), quantise);
  EXPECT_LE(std::get<0>(at::_unique(quantised.gradients[0])).numel(), 7);
}

TEST(UpdateDefense, RefusesBadSettingsAndRepeatsItsNoiseForASeed) {
  UpdateDefense bad;
  bad.keep_fraction = 0;
  EXPECT_THROW(defend_update(toy_update(), bad), UsageError);
  bad = {};
  bad.noise_sigma = -1;
  EXPECT_THROW(defend_update(toy_update(), bad), UsageError);
  bad = {};
  bad.quantization_bits = 1;
  EXPECT_THROW(defend_update(toy_update(), bad), UsageError);
  UpdateDefense noise;
  noise.noise_sigma = 0.1;
  noise.seed = 4;
  EXPECT_TRUE(torch::equal(defend_update(toy_update(), noise).gradients[0],
                           defend_update(toy_update(), noise).gradients[0]));
}

// The bias ratio of the MLP's first layer recovers a batch-of-one image exactly from a clean
// update (Phong et al. 2017); noise of growing sigma must bring the recovery's PSNR down.
TEST(UpdateDefense, ExactAttacksPsnrFallsAsTheNoiseGrows) {
  const auto splits = testing::toy_splits(4, 2);
  auto config = models::default_config("mlp", {1, 28, 28}, 4);
  config.normalization = splits.normalization;
  torch::manual_seed(0);
  models::BuiltinClassifier model(config);
  const auto image = splits.test.images.slice(0, 0, 1);
  const auto update =
      attacks::observe_update(model, image, splits.test.labels.slice(0, 0, 1), {}, false);
  const auto layer = attacks::find_linear_layers(update.gradients).front();
  std::vector<double> psnrs;
  for (const double sigma : {0.0, 1e-4, 1e-3, 1e-2}) {
    UpdateDefense noise;
    noise.noise_sigma = sigma;
    const auto defended = defend_update(update, noise);
    const auto ratio =
        attacks::bias_ratio(defended.gradients[layer.weight], defended.gradients[layer.bias], 1);
    const auto normalised = ratio.mixture.to(torch::kFloat).view({1, 1, 28, 28});
    const auto recovered =
        (normalised * splits.normalization.std[0] + splits.normalization.mean[0]).clamp(0, 1);
    psnrs.push_back(metrics::psnr_per_image(recovered, image)[0].item<double>());
  }
  EXPECT_GT(psnrs[0], 40.0);
  for (size_t i = 1; i < psnrs.size(); ++i) EXPECT_LT(psnrs[i], psnrs[i - 1] - 1.0) << i;
  EXPECT_LT(psnrs.back(), 20.0);
  std::printf("bias-ratio PSNR at noise 0, 1e-4, 1e-3, 1e-2: %.1f %.1f %.1f %.1f dB\n", psnrs[0],
              psnrs[1], psnrs[2], psnrs[3]);
}

}  // namespace
}  // namespace privaudit::defense
