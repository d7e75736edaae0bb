// Reference models: seeded halves, the same weights for the same seed, and the cache that lets a
// killed run resume and refuses, by name, a file that cannot serve.
#include "privaudit/train/reference_models.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "privaudit/attacks/weights/membership.h"
#include "privaudit/util/error.h"
#include "test_util.h"

namespace privaudit::train {
namespace {

namespace fs = std::filesystem;

TEST(ReferenceModels, HalvesAreSeededAndHoldHalfThePool) {
  const auto half = reference_half(41, 7, 3);
  EXPECT_EQ(half.sum().item<int64_t>(), 20);
  EXPECT_TRUE(torch::equal(half, reference_half(41, 7, 3)));
  EXPECT_FALSE(torch::equal(half, reference_half(41, 7, 4)));
  EXPECT_FALSE(torch::equal(half, reference_half(41, 8, 3)));
}

TEST(ReferenceModels, RejectsOneModelAndAPoolTooSmallForItsHalves) {
  ReferenceOptions refs;
  refs.models = 1;
  EXPECT_THROW(refs.validate(100, 10), UsageError);
  refs.models = 4;
  try {
    refs.validate(10, 10);
    FAIL() << "a pool of 10 images for 10 classes was accepted";
  } catch (const UsageError& e) {
    EXPECT_TRUE(testing::contains(e.what(), "pool holds 10 images")) << e.what();
  }
}

// A small pool of toy images and a tiny MLP: seconds per model.
struct ToySetup {
  data::Splits splits = testing::toy_splits(4, 12, 1, 8);
  models::ModelConfig config;
  ReferenceOptions options;
  ToySetup() {
    config = models::default_config("mlp", {1, 8, 8}, 4);
    config.widths = {16};
    config.normalization = splits.normalization;
    options.models = 2;
    options.recipe.epochs = 2;
    options.recipe.batch_size = 8;
    options.seed = 5;
  }
};

TEST(ReferenceModels, ReferenceModelsAreCachedAndAKilledRunResumesFromThem) {
  testing::TempDir dir;
  ToySetup toy;
  toy.options.cache_dir = dir.path().string();
  Progress quiet;
  const auto first = train_reference_models(toy.config, toy.splits.train, toy.options, quiet);
  EXPECT_EQ(first.trained, 2);
  EXPECT_EQ(first.reused, 0);
  EXPECT_EQ(first.training_images, 2 * 24 * 2);
  EXPECT_TRUE(fs::exists(fs::path(first.cache_folder) / "reference_1.pt"));
  // As if the run had been killed after two models: the third is trained, the two are reused.
  toy.options.models = 3;
  const auto resumed = train_reference_models(toy.config, toy.splits.train, toy.options, quiet);
  EXPECT_EQ(resumed.reused, 2);
  EXPECT_EQ(resumed.trained, 1);
  EXPECT_EQ(resumed.cache_folder, first.cache_folder);
  EXPECT_TRUE(torch::equal(resumed.in_mask.slice(0, 0, 2), first.in_mask));
  // The same seed without a cache trains the same weights.
  toy.options.cache_dir.clear();
  toy.options.models = 2;
  const auto again = train_reference_models(toy.config, toy.splits.train, toy.options, quiet);
  const auto a = attacks::logit_confidence(*resumed.models[1], toy.splits.train.images,
                                           toy.splits.train.labels);
  const auto b =
      attacks::logit_confidence(*again.models[1], toy.splits.train.images, toy.splits.train.labels);
  EXPECT_TRUE(torch::equal(a, b));
}

TEST(ReferenceModels, ACachedFileThatCannotServeIsRefusedByName) {
  testing::TempDir dir;
  ToySetup toy;
  toy.options.cache_dir = dir.path().string();
  Progress quiet;
  const auto first = train_reference_models(toy.config, toy.splits.train, toy.options, quiet);
  // Another recipe has another folder; a model of the first copied into it is of other settings.
  auto other = toy.options;
  other.recipe.epochs = 3;
  const auto second = train_reference_models(toy.config, toy.splits.train, other, quiet);
  ASSERT_NE(second.cache_folder, first.cache_folder);
  const auto planted = fs::path(second.cache_folder) / "reference_0.pt";
  fs::copy_file(fs::path(first.cache_folder) / "reference_0.pt", planted,
                fs::copy_options::overwrite_existing);
  try {
    train_reference_models(toy.config, toy.splits.train, other, quiet);
    FAIL() << "a reference model of other settings was used";
  } catch (const Error& e) {
    EXPECT_TRUE(testing::contains(e.what(), planted.string())) << e.what();
    EXPECT_TRUE(testing::contains(e.what(), "other settings")) << e.what();
  }
  testing::write_bytes(planted.string(), "not a model");
  try {
    train_reference_models(toy.config, toy.splits.train, other, quiet);
    FAIL() << "an unreadable reference model was used";
  } catch (const Error& e) {
    EXPECT_TRUE(testing::contains(e.what(), planted.string())) << e.what();
  }
}

}  // namespace
}  // namespace privaudit::train
