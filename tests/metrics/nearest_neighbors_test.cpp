#include "privaudit/metrics/nearest_neighbors.h"

#include <gtest/gtest.h>

#include <cstdio>

#include "privaudit/data/spec.h"
#include "privaudit/metrics/image_similarity.h"
#include "privaudit/util/error.h"
#include "test_util.h"

namespace privaudit::metrics {
namespace {

data::Dataset random_dataset(int64_t per_class, int64_t classes, uint64_t seed) {
  auto generator = torch::make_generator<at::CPUGeneratorImpl>(seed);
  data::Dataset d;
  d.images = torch::rand({per_class * classes, 1, 16, 16}, generator);
  d.labels = torch::arange(classes, torch::kLong).repeat_interleave(per_class);
  for (int64_t c = 0; c < classes; ++c) d.class_names.push_back("c" + std::to_string(c));
  return d;
}

TEST(NearestNeighbors, ATrainingImageIsItsOwnNearestNeighbour) {
  const auto train = random_dataset(6, 2, 1);
  const auto test = random_dataset(6, 2, 2);
  const auto rows = torch::tensor({3, 8}, torch::kLong);
  const auto nn = nearest_neighbors(train.images.index_select(0, rows),
                                    train.labels.index_select(0, rows), train, test);
  EXPECT_NEAR(nn.train_ssim[0].item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(nn.train_ssim[1].item<double>(), 1.0, 1e-6);
  EXPECT_EQ(nn.train_index[0].item<int64_t>(), 3);
  EXPECT_EQ(nn.train_index[1].item<int64_t>(), 8);
  EXPECT_DOUBLE_EQ(nn.train_psnr[0].item<double>(), 100.0);
  EXPECT_LT(nn.test_ssim.max().item<double>(), 0.5);
  EXPECT_DOUBLE_EQ(nn.training_likeness(), 1.0);
}

TEST(NearestNeighbors, HeldOutImagesGiveZeroLikeness) {
  const auto train = random_dataset(5, 2, 3);
  const auto test = random_dataset(5, 2, 4);
  const auto nn = nearest_neighbors(test.images, test.labels, train, test);
  EXPECT_DOUBLE_EQ(nn.training_likeness(), 0.0);
  EXPECT_NEAR(nn.test_ssim.min().item<double>(), 1.0, 1e-6);
}

TEST(NearestNeighbors, OnlyTheReconstructionsClassIsSearched) {
  const auto train = random_dataset(4, 2, 5);
  const auto test = random_dataset(4, 2, 6);
  // Image 0 is class 0; scored as class 1 it cannot find itself.
  const auto nn =
      nearest_neighbors(train.images.slice(0, 0, 1), torch::tensor({1}, torch::kLong), train, test);
  EXPECT_LT(nn.train_ssim[0].item<double>(), 0.5);
  EXPECT_GE(nn.train_index[0].item<int64_t>(), 4);
}

// With a training pool 20 times larger than the held-out pool, noise queries unrelated to either
// would be "nearer to training" almost always; equal pools bring that back to about one half.
TEST(NearestNeighbors, EqualPoolsRemoveTheLargerPoolsAdvantage) {
  const auto train = random_dataset(400, 1, 7);
  const auto test = random_dataset(20, 1, 8);
  auto generator = torch::make_generator<at::CPUGeneratorImpl>(9);
  const auto queries = torch::rand({200, 1, 16, 16}, generator);
  const auto labels = torch::zeros({200}, torch::kLong);
  const auto nn = nearest_neighbors(queries, labels, train, test);
  EXPECT_EQ(nn.pool_size_min, 20);
  // Over the whole pools the larger one wins most of the time...
  EXPECT_GT((nn.train_ssim > nn.test_ssim).to(torch::kDouble).mean().item<double>(), 0.85);
  // ...but not with equal pools.
  EXPECT_NEAR(nn.training_likeness(), 0.5, 0.12);
}

TEST(NearestNeighbors, PrefilterFindsTheExactSsimNeighbourOfNoisyCopies) {
  const auto train = random_dataset(300, 1, 10);
  const auto test = random_dataset(300, 1, 11);
  auto generator = torch::make_generator<at::CPUGeneratorImpl>(12);
  const auto rows = torch::arange(0, 300, 30);
  const auto queries =
      (train.images.index_select(0, rows) + 0.1 * torch::randn({10, 1, 16, 16}, generator))
          .clamp(0, 1);
  const auto labels = torch::zeros({10}, torch::kLong);
  NearestNeighborOptions exact;
  exact.candidates = 0;
  NearestNeighborOptions prefilter;
  prefilter.candidates = 8;
  const auto a = nearest_neighbors(queries, labels, train, test, exact);
  const auto b = nearest_neighbors(queries, labels, train, test, prefilter);
  EXPECT_TRUE(torch::equal(a.train_index, rows));
  EXPECT_TRUE(torch::equal(b.train_index, rows));
  EXPECT_TRUE(torch::allclose(a.train_ssim, b.train_ssim, 1e-4, 1e-4));
}

TEST(NearestNeighbors, RejectsAClassMissingFromASplit) {
  const auto train = random_dataset(3, 2, 13);
  auto test = random_dataset(3, 2, 14);
  test = test.select(torch::arange(0, 3));  // class 0 only
  try {
    nearest_neighbors(train.images.slice(0, 3, 4), torch::tensor({1}, torch::kLong), train, test);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("class 1 has no image in the held-out split"),
              std::string::npos);
  }
}

// Rows `per_class` of each class of `d` (its images are grouped by class, as toy_splits makes
// them).
data::Dataset first_of_each_class(const data::Dataset& d, int64_t classes, int64_t per_class) {
  const int64_t have = d.size() / classes;
  std::vector<int64_t> rows;
  for (int64_t c = 0; c < classes; ++c)
    for (int64_t i = 0; i < per_class; ++i) rows.push_back(c * have + i);
  return d.select(torch::tensor(rows));
}

// Positive control: a "generator" that emits training images. With pools of equal size it is
// nearer to training data every time, and every image is a verbatim copy.
TEST(TrainingLikeness, AGeneratorEmittingTrainingImagesScoresOneWithEqualPools) {
  auto splits = testing::toy_splits(2, 40, 1, 16, 21 + testing::seed_offset());
  const auto train = first_of_each_class(splits.train, 2, 20);  // 20 per class, as held out
  const auto nn = nearest_neighbors(train.images, train.labels, train, splits.test);
  EXPECT_EQ(nn.pools_compared, 1);
  EXPECT_GE(nn.training_likeness(), 0.9);
  EXPECT_EQ(nn.verbatim_copies(), 40);
}

// With eight times more training images than held-out ones, an equal-pool likeness cannot tell a
// copy from chance in the pools that lack its source (about 1/2 + 1/2 / 8 = 0.56 for copies;
// 0.51-0.67 over seed offsets 0-5); the copy
// count, against the whole training pool, finds every one of them wherever its source lies.
TEST(VerbatimCopies, AGeneratorEmittingTrainingImagesFindsEveryCopyInTheWholePool) {
  const auto splits = testing::toy_splits(2, 160, 1, 16, 22 + testing::seed_offset());
  const auto test = first_of_each_class(splits.test, 2, 20);
  const auto rows = torch::arange(0, 320, 8);  // 40 sources spread over both classes' pools
  const auto nn = nearest_neighbors(splits.train.images.index_select(0, rows),
                                    splits.train.labels.index_select(0, rows), splits.train, test);
  std::printf("figure: VerbatimCopies training generator: copies %lld / 40, likeness %.3f\n",
              static_cast<long long>(nn.verbatim_copies()), nn.training_likeness());
  EXPECT_EQ(nn.verbatim_copies(), 40);
  EXPECT_TRUE(torch::equal(nn.train_index, rows));
  EXPECT_EQ(nn.pools_compared, 8);
  // Every training image takes part: each copy wins at least the pool that holds its source.
  EXPECT_GE(nn.nearer_to_train.min().item<double>(), 1.0 / 8 - 1e-12);
  EXPECT_LT(nn.training_likeness(), 0.8);
}

// Negative control: a "generator" that emits unseen images of the same distribution (neither in
// the training split nor in the held-out pool) covers one half and is almost never a copy.
TEST(TrainingLikeness, AGeneratorEmittingUnseenImagesCoversOneHalfAndCopiesAlmostNothing) {
  const auto seed = 23 + testing::seed_offset();
  const auto splits = testing::toy_splits(2, 500, 1, 16, seed);  // 500 / 250 per class
  const auto unseen = testing::toy_splits(2, 500, 1, 16, seed + 1000).train;
  NearestNeighborOptions options;
  options.seed = seed;
  const auto nn =
      nearest_neighbors(unseen.images, unseen.labels, splits.train, splits.test, options);
  std::printf(
      "figure: TrainingLikeness unseen generator: likeness %.3f, copies %lld / 1000 (threshold "
      "%.3f, k %lld of m %lld)\n",
      nn.training_likeness(), static_cast<long long>(nn.verbatim_copies()), nn.copy_threshold.ssim,
      static_cast<long long>(nn.copy_threshold.order_statistic),
      static_cast<long long>(nn.copy_threshold.held_out_images));
  EXPECT_EQ(nn.pools_compared, 2);
  EXPECT_GE(nn.training_likeness(), 0.3);
  EXPECT_LE(nn.training_likeness(), 0.7);
  // A held-out image passes the threshold with probability 5/501 (about 1 %); given one
  // calibration draw the rate spreads as Beta(5, 496), so the count among 1,000 is beta-binomial:
  // mean 10, above 30 with probability 0.3 % (seed offsets 0-5 gave 1, 7, 4, 3, 14, 8).
  EXPECT_LE(nn.verbatim_copies(), 30);
}

TEST(CopyThreshold, IsTheLargestHeldOutScoreWhenFewerThan99AreHeldOut) {
  const auto train = random_dataset(30, 2, 24);
  const auto test = random_dataset(10, 2, 25);
  const auto t = calibrate_copy_threshold(train, test);
  EXPECT_EQ(t.held_out_images, 20);
  EXPECT_EQ(t.order_statistic, 20);
  EXPECT_NEAR(t.false_copy_rate, 1.0 / 21, 1e-12);
  // The held-out images scored as reconstructions: the largest nearest-train SSIM is the
  // threshold, so none of them is a copy.
  const auto nn = nearest_neighbors(test.images, test.labels, train, test);
  EXPECT_DOUBLE_EQ(t.ssim, nn.train_ssim.max().item<double>());
  EXPECT_EQ(nn.verbatim_copies(), 0);
  NearestNeighborOptions wrong;
  wrong.copy_false_rate = 0;
  EXPECT_THROW(calibrate_copy_threshold(train, test, wrong), Error);
}

// The baselines the report shows beside its figures, measured on Fashion-MNIST: an unrelated
// image (another class) scores lowest, the class-mean image higher, and an unseen image's nearest
// training image higher still (what nearest-train SSIM gives without any leak). Observed (seed
// 0, 100 images against 5,000 training images): SSIM 0.053 / 0.350 / 0.626, PSNR 7.78 / 13.70
// dB; the audit's own (200 images against all 60,000): 0.059 / 0.369 / 0.700, 7.64 / 13.70 dB.
TEST(SimilarityBaselines, UnrelatedBelowClassMeanBelowAnUnseenImagesNearestTrainingImage) {
  PRIVAUDIT_REQUIRE_FASHION_MNIST();
  data::LoadOptions load;
  load.train_size = 5000;
  const auto splits = data::load_splits("fashion-mnist", load);
  const auto b = similarity_baselines(splits.train, splits.test, 100, testing::seed_offset());
  std::printf(
      "figure: SimilarityBaselines SSIM unrelated %.3f class-mean %.3f unseen-nearest %.3f; "
      "PSNR unrelated %.2f class-mean %.2f\n",
      b.unrelated_ssim, b.class_mean_ssim, b.unseen_nearest_train_ssim, b.unrelated_psnr,
      b.class_mean_psnr);
  EXPECT_EQ(b.count, 100);
  EXPECT_LT(b.unrelated_ssim, b.class_mean_ssim);
  EXPECT_LT(b.class_mean_ssim, b.unseen_nearest_train_ssim);
  EXPECT_LT(b.unrelated_psnr, b.class_mean_psnr);
  EXPECT_GT(b.unrelated_ssim, -0.1);
  EXPECT_LT(b.unseen_nearest_train_ssim, 0.95);  // near, never the same image
  // Same seed, same figures.
  const auto again = similarity_baselines(splits.train, splits.test, 100, testing::seed_offset());
  EXPECT_DOUBLE_EQ(again.unrelated_ssim, b.unrelated_ssim);
  EXPECT_DOUBLE_EQ(again.unseen_nearest_train_ssim, b.unseen_nearest_train_ssim);
}

TEST(SimilarityBaselines, NeedsTwoClasses) {
  const auto one = random_dataset(4, 1, 5);
  EXPECT_THROW(similarity_baselines(one, one, 10, 0), Error);
}

}  // namespace
}  // namespace privaudit::metrics
