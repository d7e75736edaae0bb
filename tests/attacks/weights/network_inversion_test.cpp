#include "privaudit/attacks/weights/network_inversion.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "fixtures/trained_models.h"
#include "privaudit/data/spec.h"
#include "privaudit/metrics/bootstrap.h"
#include "privaudit/metrics/nearest_neighbors.h"
#include "privaudit/models/builtin.h"
#include "privaudit/train/trainer.h"
#include "privaudit/util/error.h"
#include "test_util.h"

namespace privaudit::attacks {
namespace {

using models::BuiltinClassifier;

std::string usage_error_of(const InversionOptions& options) {
  try {
    options.validate();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(NetworkInversion, RejectsBadOptions) {
  InversionOptions o;
  o.steps = 0;
  EXPECT_EQ(usage_error_of(o), "inversion steps must be at least 1");
  o = {};
  o.batch_size = 1;
  EXPECT_NE(usage_error_of(o).find("batch size must be at least 2"), std::string::npos);
  o = {};
  o.weight_gradient = -1;
  EXPECT_EQ(usage_error_of(o), "--weight-gradient must be a non-negative number");
  o = {};
  o.weight_ce = o.weight_kl = o.weight_confidence = 0;
  EXPECT_NE(usage_error_of(o).find("nothing ties images to labels"), std::string::npos);
  o = {};
  o.generator.dropout = 1.0;
  EXPECT_EQ(usage_error_of(o), "generator dropout must be in [0, 1)");
  EXPECT_THROW(parse_conditioning("one-hot"), UsageError);
  EXPECT_EQ(parse_conditioning("vector-matrix"), Conditioning::kVectorMatrix);
}

TEST(ConditionedGenerator, DrawsImagesOfAnyInputShapeInTheUnitRange) {
  for (auto conditioning : {Conditioning::kLabel, Conditioning::kVector, Conditioning::kMatrix,
                            Conditioning::kVectorMatrix}) {
    for (const models::InputShape shape :
         {models::InputShape{1, 28, 28}, models::InputShape{3, 32, 32},
          models::InputShape{1, 9, 13}}) {
      GeneratorOptions options;
      options.conditioning = conditioning;
      options.channels = 8;
      ConditionedGenerator generator(shape, 10, options);
      auto rng = torch::make_generator<at::CPUGeneratorImpl>(0);
      const auto condition = sample_conditions(conditioning, 4, options.latent_dim, 10, rng);
      const auto images = generator->forward(condition, rng);
      EXPECT_EQ(images.sizes(), torch::IntArrayRef(shape.with_batch(4)))
          << conditioning_name(conditioning);
      EXPECT_GE(images.min().item<double>(), 0.0);
      EXPECT_LE(images.max().item<double>(), 1.0);
    }
  }
}

TEST(ConditionedGenerator, VectorConditioningPutsTheLabelAtTheArgmax) {
  auto rng = torch::make_generator<at::CPUGeneratorImpl>(1);
  const auto labels = torch::arange(10, torch::kLong).repeat(5);
  const auto condition = conditions_for_labels(Conditioning::kVectorMatrix, labels, 16, 10, rng);
  EXPECT_TRUE(torch::equal(condition.vector.argmax(1), labels));
  EXPECT_TRUE(torch::allclose(condition.vector.sum(1), torch::ones({50})));
  EXPECT_LT(condition.vector.max().item<double>(), 1.0);  // soft, not one-hot
  const auto sampled = sample_conditions(Conditioning::kVector, 64, 16, 10, rng);
  EXPECT_TRUE(torch::equal(sampled.vector.argmax(1), sampled.labels));
}

TEST(ConditionedGenerator, DropoutStaysOnWhileGenerating) {
  GeneratorOptions options;
  options.channels = 8;
  options.dropout = 0.5;
  ConditionedGenerator generator(models::InputShape{1, 16, 16}, 10, options);
  generator->eval();
  auto rng = torch::make_generator<at::CPUGeneratorImpl>(2);
  const auto condition = sample_conditions(options.conditioning, 2, options.latent_dim, 10, rng);
  torch::NoGradGuard no_grad;
  EXPECT_FALSE(
      torch::equal(generator->forward(condition, rng), generator->forward(condition, rng)));
}

// A small classifier on the toy blobs, and a short inversion against it.
struct ToyCase {
  data::Splits splits = testing::toy_splits(4, 24, 1, 16, 3);
  std::unique_ptr<BuiltinClassifier> model = testing::trained_toy_mlp(splits, {64, 32}, 20, 0.2);
  InversionOptions options(int steps) const {
    InversionOptions o;
    o.steps = steps;
    o.batch_size = 16;
    o.per_class = 3;
    o.generator.channels = 8;
    o.generator.latent_dim = 16;
    o.stationarity.iterations = 30;
    return o;
  }
};

TEST(NetworkInversion, InvertedImagesAreClassifiedAsTheirLabelAndTheClassifierIsUntouched) {
  ToyCase toy;
  for (auto& p : toy.model->parameters()) p.mutable_grad() = torch::Tensor();
  const auto before = toy.model->parameters()[0].clone();
  Progress quiet;
  auto options = toy.options(150);
  options.training_like = false;
  const auto result = run_network_inversion(*toy.model, options, quiet);
  EXPECT_EQ(result.images.sizes(), torch::IntArrayRef({12, 1, 16, 16}));
  EXPECT_TRUE(torch::equal(result.labels, torch::arange(4).repeat_interleave(3)));
  // Stage 1 matches the soft conditioning vector, so confidence is moderate but the label wins.
  const auto predicted = models::predict_logits(*toy.model, result.images).argmax(1);
  EXPECT_TRUE(torch::equal(predicted, result.labels));
  EXPECT_GT(result.confidence.min().item<double>(), 0.3);
  EXPECT_EQ(result.loss_curve.size(), 150u);
  EXPECT_LT(result.loss_curve.back(), result.loss_curve.front());
  EXPECT_TRUE(torch::equal(toy.model->parameters()[0], before));
  EXPECT_FALSE(toy.model->parameters()[0].grad().defined());
  EXPECT_FALSE(toy.model->is_training());
  EXPECT_TRUE(result.stationarity_residual.empty());  // no refinement without training-like
  EXPECT_TRUE(torch::equal(result.images, result.generated));
}

TEST(NetworkInversion, SameSeedGivesBitIdenticalImages) {
  ToyCase toy;
  Progress quiet;
  auto options = toy.options(12);
  options.stage_two_from = 0.5;
  const auto a = run_network_inversion(*toy.model, options, quiet);
  const auto b = run_network_inversion(*toy.model, options, quiet);
  EXPECT_TRUE(torch::equal(a.images, b.images));
  EXPECT_EQ(a.stationarity_residual.size(), 30u);  // training-like: refined after the generator
  EXPECT_FALSE(torch::equal(a.images, a.generated));
  options.seed = 1;
  const auto c = run_network_inversion(*toy.model, options, quiet);
  EXPECT_FALSE(torch::equal(a.images, c.images));
}

TEST(NetworkInversion, ResumesFromItsStateToTheSameImages) {
  ToyCase toy;
  testing::TempDir dir;
  Progress quiet;
  auto options = toy.options(10);
  options.training_like = false;
  const auto whole = run_network_inversion(*toy.model, options, quiet);
  options.state_path = dir.file("state.pt");
  options.steps = 4;
  run_network_inversion(*toy.model, options, quiet);
  options.steps = 10;
  const auto resumed = run_network_inversion(*toy.model, options, quiet);
  EXPECT_EQ(resumed.resumed_from_step, 4);
  EXPECT_TRUE(torch::equal(whole.images, resumed.images));
  EXPECT_EQ(resumed.loss_curve, whole.loss_curve);
  options.weight_ce = 2.0;  // another trajectory: refused
  EXPECT_THROW(run_network_inversion(*toy.model, options, quiet), Error);
}

TEST(InvertCommand, WritesResultsGridAndLossCurveAndRejectsBadFlags) {
  PRIVAUDIT_REQUIRE_FASHION_MNIST();
  testing::TempDir dir;
  const auto model_dir = dir.file("model");
  ASSERT_EQ(
      testing::run_cli("train --arch mlp --train-size 100 --epochs 1 --quiet --out " + model_dir)
          .exit_code,
      0);
  const auto model = model_dir + "/model.pt";
  const auto bad =
      testing::run_cli("invert --model " + model + " --conditioning hot --out " + dir.file("bad"));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("--conditioning hot"), std::string::npos) << bad.output;
  EXPECT_EQ(
      testing::run_cli("invert --model " + model + " --weight-tv -1 --out " + dir.file("bad2"))
          .exit_code,
      2);

  const auto out = dir.file("invert");
  const auto run =
      testing::run_cli("invert --model " + model +
                       " --steps 6 --per-class 2 --batch-size 8 --stationarity-steps 20"
                       " --quiet --out " +
                       out);
  ASSERT_EQ(run.exit_code, 0) << run.output;
  std::ifstream file(out + "/results.json");
  const auto results = nlohmann::json::parse(file);
  EXPECT_EQ(results["command"], "invert");
  EXPECT_EQ(results["dataset"]["train_size"], 100);  // the checkpoint's subset, found by itself
  ASSERT_EQ(results["reconstructions"].size(), 20u);
  for (const char* key :
       {"class", "nearest_train_mse", "nearest_train_psnr", "nearest_train_ssim",
        "nearest_test_mse", "nearest_test_psnr", "nearest_test_ssim", "confidence"}) {
    EXPECT_TRUE(results["reconstructions"][0].contains(key)) << key;
  }
  // The summary's likeness is the mean of the per-reconstruction verdicts it summarises.
  double nearer = 0;
  for (const auto& entry : results["reconstructions"])
    nearer += entry["nearer_to_train"].get<double>();
  EXPECT_DOUBLE_EQ(results["summary"]["training_likeness"].get<double>(),
                   nearer / static_cast<double>(results["reconstructions"].size()));
  EXPECT_EQ(results["summary"]["equal_pool_size"], 10);
  EXPECT_TRUE(std::filesystem::exists(out + "/reconstructions.png"));
  EXPECT_TRUE(std::filesystem::exists(out + "/loss.svg"));
  EXPECT_TRUE(std::filesystem::exists(out + "/generator_state.pt"));
  EXPECT_TRUE(std::filesystem::exists(out + "/stationarity.svg"));
  // The reconstructions themselves, for membership --reconstructions: one image per entry, of the
  // model's input shape, in [0, 1], with the entries' classes.
  std::vector<torch::Tensor> saved;
  torch::load(saved, out + "/reconstructions.pt");
  ASSERT_EQ(saved.size(), 2u);
  EXPECT_EQ(saved[0].sizes(), (std::vector<int64_t>{20, 1, 28, 28}));
  EXPECT_GE(saved[0].min().item<float>(), 0.0f);
  EXPECT_LE(saved[0].max().item<float>(), 1.0f);
  for (int64_t i = 0; i < 20; ++i)
    EXPECT_EQ(saved[1][i].item<int64_t>(), results["reconstructions"][i]["class"].get<int64_t>());
  EXPECT_EQ(results["stationarity_residual"].size(), 20u);
  EXPECT_EQ(results["options"]["stationarity"]["iterations"], 20);
  EXPECT_TRUE(results["summary_before_stationarity"].contains("training_likeness"));
  EXPECT_EQ(
      testing::run_cli("invert --model " + model + " --stationarity-lr 0 --out " + dir.file("bad3"))
          .exit_code,
      2);
  EXPECT_EQ(
      testing::run_cli("invert --model " + model + " --steps 6 --quiet --out " + out).exit_code,
      2);  // not empty
}

// The leak itself: a classifier overfitted on 20 Fashion-MNIST images per class. Its
// training-like reconstructions (stages 1-3: generator, training-like terms, stationarity
// refinement) must be nearer to its training images than to held-out images of the same class
// far more often than not (equal pools), and nearer to its training images than stage-1
// inversion alone gets. Observed (seed 0): likeness 0.95, nearest-train SSIM 0.204; stage 1 alone
// 0.525, 0.147; stages 1-2 without the refinement gave 0.60 (docs/inversion.md, "Results").
// Spread: seeds 1, 2 (2026-11-30) 0.75, 0.75; seed offsets 1, 2 (scripts/test-spread.sh,
// 2026-12-01) 0.800, 0.700 with train SSIM 0.207 / 0.199 against stage 1's 0.170 / 0.145. The
// issue's 0.65 sat one spread (~0.1) below the lowest; the bar is 0.6, still two standard errors
// (80 reconstructions) above the 0.5 of "the class, nothing more".
struct OverfitCase {
  data::Splits splits;
  std::unique_ptr<BuiltinClassifier> model;
  OverfitCase() {
    data::LoadOptions load;
    load.train_size = 200;
    load.test_size = 1000;
    load.seed = testing::seed_offset();
    splits = data::load_splits("fashion-mnist", load);
    torch::manual_seed(testing::seed_offset());
    auto config = models::default_config("mlp", {1, 28, 28}, 10);
    config.normalization = splits.normalization;
    config.dropout = 0.2;
    model = std::make_unique<BuiltinClassifier>(config);
    train::TrainOptions train_options;
    train_options.epochs = 60;
    train_options.batch_size = 32;
    train_options.seed = testing::seed_offset();
    Progress quiet;
    train_accuracy = train::train_classifier(*model, splits, train_options, quiet).train_accuracy;
  }
  metrics::NearestNeighbors invert(bool training_like) {
    InversionOptions options;
    options.steps = 500;
    options.batch_size = 40;
    options.per_class = 8;
    options.training_like = training_like;
    options.seed = testing::seed_offset();
    Progress quiet;
    const auto r = run_network_inversion(*model, options, quiet);
    return metrics::nearest_neighbors(r.images, r.labels, splits.train, splits.test);
  }
  double train_accuracy = 0;
};

TEST(NetworkInversionSlow, OverfittedClassifierGivesReconstructionsNearerToItsTrainingImages) {
  PRIVAUDIT_REQUIRE_FASHION_MNIST();
  OverfitCase overfit;
  ASSERT_EQ(overfit.train_accuracy, 1.0);
  const auto training_like = overfit.invert(true);
  const auto inversion_only = overfit.invert(false);
  std::printf("figure: NetworkInversionSlow likeness %.3f train-ssim %.3f stage1-train-ssim %.3f\n",
              training_like.training_likeness(), training_like.train_ssim.mean().item<double>(),
              inversion_only.train_ssim.mean().item<double>());
  std::printf("training-like: likeness %.3f, train SSIM %.3f, held-out SSIM %.3f\n",
              training_like.training_likeness(), training_like.train_ssim.mean().item<double>(),
              training_like.test_ssim.mean().item<double>());
  std::printf("inversion only: likeness %.3f, train SSIM %.3f, held-out SSIM %.3f\n",
              inversion_only.training_likeness(), inversion_only.train_ssim.mean().item<double>(),
              inversion_only.test_ssim.mean().item<double>());
  EXPECT_GE(training_like.training_likeness(), 0.6);
  // What the audit reports: the 95% bootstrap interval over the reconstructions excludes 0.5.
  const auto nearer = training_like.nearer_to_train.to(torch::kDouble).contiguous();
  const auto interval = metrics::bootstrap_mean(
      std::vector<double>(nearer.data_ptr<double>(), nearer.data_ptr<double>() + nearer.numel()));
  std::printf("figure: NetworkInversionSlow likeness interval [%.3f, %.3f] over %lld\n",
              interval.low, interval.high, static_cast<long long>(interval.n));
  EXPECT_GT(interval.low, 0.5);
  EXPECT_GT(training_like.train_ssim.mean().item<double>(),
            inversion_only.train_ssim.mean().item<double>());
}

}  // namespace
}  // namespace privaudit::attacks
