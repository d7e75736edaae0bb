// Training: it learns, its checkpoints load back to the same logits, and an interrupted run
// resumed from its state ends with exactly the weights of an uninterrupted one.
#include "privaudit/train/trainer.h"

#include <gtest/gtest.h>

#include "privaudit/models/checkpoint.h"
#include "privaudit/util/error.h"
#include "test_util.h"

namespace privaudit::train {
namespace {

models::ModelConfig toy_config(const std::string& arch, const data::Splits& splits) {
  auto config = models::default_config(
      arch, {splits.train.channels(), splits.train.height(), splits.train.width()},
      splits.train.num_classes());
  config.normalization = splits.normalization;
  return config;
}

TrainOptions quick_options(int epochs) {
  TrainOptions options;
  options.epochs = epochs;
  options.batch_size = 16;
  options.learning_rate = 3e-3;
  options.seed = 5;
  return options;
}

TEST(Trainer, MlpAndCnnLearnTheToyDataInThreeEpochs) {
  const auto splits = testing::toy_splits(4, 24);
  for (const std::string arch : {"mlp", "cnn"}) {
    torch::manual_seed(0);
    models::BuiltinClassifier model(toy_config(arch, splits));
    Progress quiet;
    int epochs_seen = 0;
    const auto result =
        train_classifier(model, splits, quick_options(3), quiet,
                         [&](const EpochStats& e) { EXPECT_EQ(e.epoch, ++epochs_seen); });
    EXPECT_EQ(epochs_seen, 3) << arch;
    EXPECT_GE(result.test_accuracy, 0.9) << arch;
    EXPECT_GE(result.train_accuracy, 0.9) << arch;
    EXPECT_FALSE(model.is_training()) << arch;
  }
}

// The ViT learns where a blob is far more slowly than the convolutions do (60 steps leave it well
// short of the others), so this asks only for clear progress beyond chance (0.25).
TEST(Trainer, VitMakesProgressOnTheToyData) {
  const auto splits = testing::toy_splits(4, 24);
  torch::manual_seed(0);
  models::BuiltinClassifier model(toy_config("vit", splits));
  Progress quiet;
  auto options = quick_options(10);
  options.learning_rate = 1e-3;
  const auto result = train_classifier(model, splits, options, quiet);
  EXPECT_LT(result.history.back().loss, result.history.front().loss - 0.1);
  EXPECT_GT(result.train_accuracy, 0.4);
}

TEST(Trainer, TrainedModelSavedAndLoadedGivesIdenticalLogits) {
  testing::TempDir dir;
  const auto splits = testing::toy_splits(3, 16, 3, 32);
  torch::manual_seed(0);
  auto config = toy_config("cnn", splits);
  config.batch_norm = true;  // the running statistics must travel too
  models::BuiltinClassifier model(config);
  Progress quiet;
  const auto result = train_classifier(model, splits, quick_options(2), quiet);
  models::save_checkpoint(dir.file("model.pt"), model, {{"test_accuracy", result.test_accuracy}});
  auto loaded = models::load_builtin(dir.file("model.pt"), models::Arch::kCnn);
  loaded->set_training(false);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(loaded->forward(splits.test.images), model.forward(splits.test.images)));
}

// Weights after training `options` from a fresh model (same initial weights each time).
std::vector<torch::Tensor> train_weights(const data::Splits& splits, const TrainOptions& options) {
  torch::manual_seed(0);
  auto config = toy_config("mlp", splits);
  config.dropout = 0.2;  // dropout masks and shuffling are the randomness resume must repeat
  models::BuiltinClassifier model(config);
  Progress quiet;
  train_classifier(model, splits, options, quiet);
  std::vector<torch::Tensor> weights;
  for (const auto& p : model.parameters()) weights.push_back(p.detach().clone());
  return weights;
}

TEST(Trainer, InterruptedRunResumedFromItsStateEndsWithBitIdenticalWeights) {
  testing::TempDir dir;
  const auto splits = testing::toy_splits(4, 16);
  auto straight = quick_options(3);
  straight.augment = true;
  straight.state_path = dir.file("straight.pt");
  const auto expected = train_weights(splits, straight);

  auto interrupted = straight;
  interrupted.state_path = dir.file("interrupted.pt");
  interrupted.stop_after_epoch = 1;
  const auto after_one = train_weights(splits, interrupted);
  auto resumed_options = interrupted;
  resumed_options.stop_after_epoch = 0;
  const auto resumed = train_weights(splits, resumed_options);

  ASSERT_EQ(resumed.size(), expected.size());
  bool changed_since_epoch_one = false;
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_TRUE(torch::equal(resumed[i], expected[i])) << "parameter " << i;
    changed_since_epoch_one |= !torch::equal(resumed[i], after_one[i]);
  }
  EXPECT_TRUE(changed_since_epoch_one);
}

TEST(Trainer, ResumeReportsTheEpochItContinuedFrom) {
  testing::TempDir dir;
  const auto splits = testing::toy_splits(3, 8);
  auto options = quick_options(2);
  options.state_path = dir.file("state.pt");
  options.stop_after_epoch = 1;
  models::BuiltinClassifier model(toy_config("mlp", splits));
  Progress quiet;
  EXPECT_EQ(train_classifier(model, splits, options, quiet).history.size(), 1u);
  options.stop_after_epoch = 0;
  const auto result = train_classifier(model, splits, options, quiet);
  EXPECT_EQ(result.resumed_from_epoch, 1);
  ASSERT_EQ(result.history.size(), 2u);
  EXPECT_EQ(result.history.back().epoch, 2);
}

TEST(Trainer, StateWrittenWithOtherOptionsIsRefusedNamingTheFile) {
  testing::TempDir dir;
  const auto splits = testing::toy_splits(3, 8);
  auto options = quick_options(2);
  options.state_path = dir.file("state.pt");
  options.stop_after_epoch = 1;
  models::BuiltinClassifier model(toy_config("mlp", splits));
  Progress quiet;
  train_classifier(model, splits, options, quiet);
  options.learning_rate = 1e-2;
  try {
    train_classifier(model, splits, options, quiet);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(options.state_path +
                                         ": training state was written with other options"),
              std::string::npos)
        << e.what();
  }
}

TEST(Trainer, StopAfterEpochIsNotATrainingOption) {
  auto options = quick_options(3);
  const auto before = options.to_json();
  options.stop_after_epoch = 2;
  EXPECT_EQ(options.to_json(), before);
}

TEST(Trainer, BadOptionsAreUsageErrors) {
  const auto splits = testing::toy_splits(3, 4);
  models::BuiltinClassifier model(toy_config("mlp", splits));
  Progress quiet;
  auto options = quick_options(0);
  EXPECT_THROW(train_classifier(model, splits, options, quiet), UsageError);
  options = quick_options(1);
  options.learning_rate = 0;
  EXPECT_THROW(train_classifier(model, splits, options, quiet), UsageError);
  options = quick_options(1);
  options.stop_after_epoch = -1;
  EXPECT_THROW(train_classifier(model, splits, options, quiet), UsageError);
}

TEST(Trainer, ImagesOfTheWrongShapeAreRefused) {
  const auto splits = testing::toy_splits(3, 4, 3, 32);
  models::BuiltinClassifier model(models::default_config("mlp", {1, 28, 28}, 3));
  Progress quiet;
  try {
    train_classifier(model, splits, quick_options(1), quiet);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "toy train: images are 3x32x32 but the model takes 1x28x28");
  }
}

// The documented defaults (README, docs/models.md): what `privaudit train` runs without --epochs.
TEST(Trainer, DefaultEpochsAreTheDocumentedOnes) {
  EXPECT_EQ(default_epochs(models::Arch::kMlp), 8);
  EXPECT_EQ(default_epochs(models::Arch::kCnn), 8);
  EXPECT_EQ(default_epochs(models::Arch::kVit), 10);
  EXPECT_EQ(default_epochs(models::Arch::kLenet), 6);
}

}  // namespace
}  // namespace privaudit::train
