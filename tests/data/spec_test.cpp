#include "privaudit/data/spec.h"

#include <gtest/gtest.h>

#include <set>

#include "data/error_of.h"
#include "data/idx_bytes.h"
#include "privaudit/data/loaders.h"
#include "test_util.h"

namespace privaudit::data {
namespace {

using testing::error_of;
using testing::TempDir;
using testing::write_bytes;

// Raw IDX files of `per_class` 2x2 images for each of 3 classes, labels 0,1,2,0,1,2,...
void write_idx_pair(const std::string& images, const std::string& labels, int per_class) {
  const uint32_t n = 3 * per_class;
  std::string image_bytes = testing::idx_images_header(n, 2, 2);
  std::string label_bytes = testing::idx_labels_header(n);
  for (uint32_t i = 0; i < n; ++i) {
    for (int k = 0; k < 4; ++k) image_bytes.push_back(static_cast<char>((i * 9 + k * 50) % 256));
    label_bytes.push_back(static_cast<char>(i % 3));
  }
  write_bytes(images, image_bytes);
  write_bytes(labels, label_bytes);
}

std::string idx_spec(const TempDir& dir) {
  write_idx_pair(dir.file("train-images"), dir.file("train-labels"), 10);
  write_idx_pair(dir.file("test-images"), dir.file("test-labels"), 4);
  return "idx:" + dir.file("train-images") + "," + dir.file("train-labels") + "," +
         dir.file("test-images") + "," + dir.file("test-labels");
}

std::vector<int64_t> class_counts(const Dataset& dataset) {
  const auto counts = dataset.labels.bincount({}, dataset.num_classes());
  return std::vector<int64_t>(counts.data_ptr<int64_t>(),
                              counts.data_ptr<int64_t>() + counts.numel());
}

TEST(LoadSplits, LoadsIdxSpecWholeWhenNoSizesAreGiven) {
  TempDir dir;
  const auto splits = load_splits(idx_spec(dir), {});
  EXPECT_EQ(splits.train.size(), 30);
  EXPECT_EQ(splits.test.size(), 12);
  EXPECT_EQ(splits.train.num_classes(), 3);
}

TEST(LoadSplits, SubsetsBothSplitsBalancedAndNormalisesOnTrainSubset) {
  TempDir dir;
  LoadOptions options;
  options.train_size = 9;
  options.test_size = 6;
  options.seed = 5;
  const auto splits = load_splits(idx_spec(dir), options);
  EXPECT_EQ(class_counts(splits.train), (std::vector<int64_t>{3, 3, 3}));
  EXPECT_EQ(class_counts(splits.test), (std::vector<int64_t>{2, 2, 2}));
  const auto expected = compute_normalization(splits.train);
  EXPECT_EQ(splits.normalization.mean, expected.mean);
  EXPECT_EQ(splits.normalization.std, expected.std);
  // The same seed picks the same images; another seed picks others.
  const auto again = load_splits(idx_spec(dir), options);
  EXPECT_TRUE(again.train.images.equal(splits.train.images));
  options.seed = 6;
  const auto other = load_splits(idx_spec(dir), options);
  EXPECT_FALSE(other.train.images.equal(splits.train.images));
}

// The memorisation regime's subsets: N images of every class, whatever the class count.
TEST(LoadSplits, TrainPerClassTakesThatManyOfEveryClassAndExcludesTrainSize) {
  TempDir dir;
  LoadOptions options;
  options.train_per_class = 4;
  options.seed = 2;
  const auto splits = load_splits(idx_spec(dir), options);
  EXPECT_EQ(class_counts(splits.train), (std::vector<int64_t>{4, 4, 4}));
  // The same subset as train_size = 4 x classes: a checkpoint that records its train_size
  // reloads exactly these images.
  LoadOptions by_size;
  by_size.train_size = 12;
  by_size.seed = 2;
  EXPECT_TRUE(load_splits(idx_spec(dir), by_size).train.images.equal(splits.train.images));
  options.train_size = 12;
  EXPECT_THROW(load_splits(idx_spec(dir), options), UsageError);
}

TEST(LoadSplits, RejectsUnknownSpecAsUsageError) {
  EXPECT_THROW(load_splits("imagenet", {}), UsageError);
}

TEST(LoadSplits, AsksForFolderOfCifar10AsUsageError) {
  try {
    load_splits("cifar10", {});
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "--data cifar10: give the DIR as cifar10:DIR");
  }
}

TEST(LoadSplits, NamesMissingFileOfIdxSpec) {
  TempDir dir;
  EXPECT_EQ(error_of([&] { load_splits("idx:" + dir.file("a") + "," + dir.file("b"), {}); }),
            dir.file("a") + ": file not found");
}

TEST(BalancedSubset, GivesRemainderToLowestClasses) {
  const auto toy = testing::toy_splits(4, 5).train;
  const auto subset = balanced_subset(toy, 10, 1);
  EXPECT_EQ(class_counts(subset), (std::vector<int64_t>{3, 3, 2, 2}));
}

TEST(BalancedSubset, LetsOtherClassesFillShareOfSmallClass) {
  auto toy = testing::toy_splits(3, 6).train;
  // Keep only one image of class 0.
  const auto keep =
      torch::cat({torch::tensor({0}, torch::kLong), torch::arange(6, 18, torch::kLong)});
  toy = toy.select(keep);
  const auto subset = balanced_subset(toy, 9, 3);
  EXPECT_EQ(class_counts(subset), (std::vector<int64_t>{1, 4, 4}));
}

TEST(BalancedSubset, ReturnsWholeDatasetWhenSizeIsLarger) {
  const auto toy = testing::toy_splits(2, 3).train;
  EXPECT_TRUE(balanced_subset(toy, 100, 0).images.equal(toy.images));
}

TEST(BalancedSubset, RejectsNonPositiveSize) {
  const auto toy = testing::toy_splits(2, 3).train;
  EXPECT_EQ(error_of([&] { balanced_subset(toy, 0, 0); }), "subset size must be positive, got 0");
}

TEST(SampleClass, DrawsDistinctImagesOfOneClassRepeatably) {
  const auto toy = testing::toy_splits(3, 8).train;
  const auto picked = sample_class(toy, 2, 5, 11);
  ASSERT_EQ(picked.size(0), 5);
  EXPECT_TRUE(toy.labels.index_select(0, picked).eq(2).all().item<bool>());
  const std::set<int64_t> distinct(picked.data_ptr<int64_t>(), picked.data_ptr<int64_t>() + 5);
  EXPECT_EQ(distinct.size(), 5u);
  EXPECT_TRUE(sample_class(toy, 2, 5, 11).equal(picked));
  EXPECT_FALSE(sample_class(toy, 2, 5, 12).equal(picked));
}

TEST(SampleClass, RejectsRequestForMoreImagesThanClassHas) {
  const auto toy = testing::toy_splits(3, 4).train;
  EXPECT_EQ(error_of([&] { sample_class(toy, 1, 5, 0); }),
            "toy train: class class1 has 4 images, 5 requested");
}

TEST(SampleClass, RejectsClassThatDoesNotExist) {
  const auto toy = testing::toy_splits(3, 4).train;
  EXPECT_EQ(error_of([&] { sample_class(toy, 3, 1, 0); }), "class 3 does not exist in toy train");
}

TEST(DataCli, TrainOnMissingCifarFolderFailsWithOneLineError) {
  TempDir out;
  const auto result =
      testing::run_cli("train --arch mlp --data cifar10:/nonexistent --out " + out.file("run"));
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_EQ(result.output, "privaudit train: /nonexistent: CIFAR-10 folder not found\n");
}

TEST(FashionMnistSlow, LoadsDebianFiles) {
  PRIVAUDIT_REQUIRE(testing::have_fashion_mnist(),
                    "dataset-fashion-mnist (Debian), at " + fashion_mnist_dir());
  const auto splits = load_splits("fashion-mnist", {});
  EXPECT_EQ(splits.train.images.sizes(), torch::IntArrayRef({60000, 1, 28, 28}));
  EXPECT_EQ(splits.test.images.sizes(), torch::IntArrayRef({10000, 1, 28, 28}));
  EXPECT_EQ(splits.train.num_classes(), 10);
  EXPECT_EQ(class_counts(splits.train), std::vector<int64_t>(10, 6000));
  EXPECT_EQ(class_counts(splits.test), std::vector<int64_t>(10, 1000));
  EXPECT_EQ(splits.train.class_names[9], "Ankle boot");
}

}  // namespace
}  // namespace privaudit::data
