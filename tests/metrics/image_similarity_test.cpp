#include "privaudit/metrics/image_similarity.h"

#include <gtest/gtest.h>

namespace privaudit::metrics {
namespace {

TEST(ImageSimilarity, IdenticalImagesScorePerfectly) {
  torch::manual_seed(0);
  const auto a = torch::rand({3, 1, 28, 28});
  EXPECT_NEAR(ssim_per_image(a, a).min().item<double>(), 1.0, 1e-9);
  EXPECT_DOUBLE_EQ(psnr_per_image(a, a).min().item<double>(), 100.0);
  EXPECT_DOUBLE_EQ(mse_per_image(a, a).max().item<double>(), 0.0);
}

TEST(ImageSimilarity, PsnrMatchesItsDefinition) {
  const auto a = torch::zeros({1, 1, 8, 8});
  const auto b = torch::full({1, 1, 8, 8}, 0.1);
  EXPECT_NEAR(psnr_per_image(a, b).item<double>(), 20.0, 1e-4);  // mse 0.01
}

TEST(ImageSimilarity, NoiseLowersSsimMonotonically) {
  torch::manual_seed(1);
  const auto a = torch::rand({1, 3, 32, 32});
  const auto noise = torch::randn({1, 3, 32, 32});
  const double small = ssim_per_image(a, (a + 0.05 * noise).clamp(0, 1)).item<double>();
  const double large = ssim_per_image(a, (a + 0.3 * noise).clamp(0, 1)).item<double>();
  EXPECT_GT(small, large);
  EXPECT_LT(large, 0.8);
}

TEST(ImageSimilarity, PairMatricesAgreeWithPerImageFigures) {
  torch::manual_seed(2);
  const auto q = torch::rand({3, 1, 16, 16});
  const auto r = torch::rand({5, 1, 16, 16});
  const auto ssim = ssim_matrix(q, r, /*chunk=*/2);
  const auto mse = mse_matrix(q, r);
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 5; ++j) {
      EXPECT_NEAR(ssim[i][j].item<double>(), ssim_per_image(q[i].unsqueeze(0), r[j].unsqueeze(0)).item<double>(), 1e-4);
      EXPECT_NEAR(mse[i][j].item<double>(), mse_per_image(q[i].unsqueeze(0), r[j].unsqueeze(0)).item<double>(), 1e-6);
    }
  }
}

}  // namespace
}  // namespace privaudit::metrics
