// The experiment units called directly, as a test or a benchmark would: options in, result and
// files (kept in a MemorySink) out, nothing printed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>
#include <stdexcept>

#include "attacks/gradients/attack_fixtures.h"
#include "fixtures/trained_models.h"
#include "privaudit/data/dataset.h"
#include "privaudit/experiments/gradient_experiment.h"
#include "privaudit/experiments/inversion_experiment.h"
#include "privaudit/experiments/layer_experiment.h"
#include "privaudit/models/model_config.h"
#include "privaudit/train/trainer.h"
#include "privaudit/util/error.h"
#include "privaudit/util/files.h"

namespace privaudit::experiments {
namespace {

class GradientExperiment : public testing::RequiresFashionMnist {};

data::Dataset fashion_test(int64_t n) {
  const auto targets = testing::test_images(n);
  data::Dataset test;
  test.images = targets.images;
  test.labels = targets.labels;
  test.class_names = std::vector<std::string>(10, "class");
  test.source = "fashion-mnist test";
  return test;
}

TEST_F(GradientExperiment, RunsEveryAttackAtEveryBatchSizeWithOneThreatModel) {
  auto model = testing::make_model("lenet", 0);
  GradientExperimentOptions options;
  options.attacks = {"idlg", "ig"};
  options.batch_sizes = {1, 2};
  options.targets = 2;
  options.budget.iterations = 3;
  options.audit = false;
  MemorySink sink;
  const auto result = run_gradient_experiment(*model, fashion_test(20), options, Reporter(), sink);
  ASSERT_EQ(result.runs.size(), 4u);
  EXPECT_EQ(result.runs[0].attack, "idlg");
  EXPECT_EQ(result.runs[1].batches, 1);
  EXPECT_EQ(result.runs[0].batches, 2);
  EXPECT_EQ(result.runs[0].label_accuracy,
            1.0);  // iDLG reads batch-1 labels exactly off the gradient
  for (const auto& run : result.runs) {
    EXPECT_EQ(run.attacker_knows, std::vector<std::string>({"batch_size"}));
    EXPECT_EQ(sink.grids.count(run.grid), 1u) << run.grid;
  }
  EXPECT_EQ(sink.plots.count("audit_relation.svg"), 0u);
  EXPECT_EQ(result.target_indices.size(), 2u);
  // The same seed draws the same targets and the same reconstructions.
  MemorySink again;
  const auto repeat = run_gradient_experiment(*model, fashion_test(20), options, Reporter(), again);
  EXPECT_EQ(repeat.target_indices, result.target_indices);
  EXPECT_EQ(repeat.runs[3].psnr, result.runs[3].psnr);
}

TEST_F(GradientExperiment, KnownLabelsReachEveryAttackAndAreRecorded) {
  auto model = testing::make_model("lenet", 1);
  GradientExperimentOptions options;
  options.attacks = {"dlg"};
  options.batch_sizes = {1};  // one image per update: the label comparison needs no matching
  options.targets = 2;
  options.budget.iterations = 2;
  options.knowledge.labels = true;
  options.audit = false;
  MemorySink sink;
  const auto result = run_gradient_experiment(*model, fashion_test(20), options, Reporter(), sink);
  ASSERT_EQ(result.runs.size(), 1u);
  EXPECT_EQ(result.runs[0].attacker_knows, std::vector<std::string>({"batch_size", "labels"}));
  // DLG handed the labels keeps them: every label is right however short the run.
  EXPECT_EQ(result.runs[0].label_accuracy, 1.0);
  const auto json = to_json(result, options);
  EXPECT_EQ(json["attacker_knows"], nlohmann::json::array({"batch_size", "labels"}));
}

TEST(GradientExperimentOptions, NameTheFlagThatIsWrong) {
  const auto message = [](const GradientExperimentOptions& options) {
    try {
      options.validate();
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  GradientExperimentOptions options;
  options.attacks = {"magic"};
  EXPECT_EQ(message(options),
            "--attack magic: unknown attack (linear-layer, positional, features-then-invert, dlg, "
            "idlg, ig, all)");
  options = {};
  options.batch_sizes = {4};
  options.targets = 2;
  EXPECT_EQ(message(options), "--batch 4 needs at least that many targets, got 2");
  options = {};
  options.targets = 2;
  options.indices = {1, 2};
  EXPECT_EQ(message(options), "--targets and --indices exclude each other");
}

// A small MLP trained on the toy blobs (no dataset needed).
struct ToyModel {
  data::Splits splits = testing::toy_splits(4, 24, 1, 16, 3);
  std::unique_ptr<models::BuiltinClassifier> model = testing::trained_toy_mlp(splits, {32, 16}, 5);
};

TEST(LayerExperiment, MeasuresEveryCutAndValidatesItWithTheDecoder) {
  ToyModel toy;
  LayerExperimentOptions options;
  options.samples = 40;
  options.jacobian_samples = 2;
  options.decoder_epochs = 200;
  options.decoder_hidden = 32;
  options.decoder_channels = 4;
  options.decoder_learning_rate = 1e-2;
  // The attacker's images are the first half of the split, the targets the second: shuffled, so
  // that both hold every class (the toy split is sorted by class).
  const auto test = toy.splits.test.select(data::permutation(toy.splits.test.size(), 1));
  MemorySink sink;
  const auto result = run_layer_experiment(*toy.model, test, options, Reporter(), sink);
  ASSERT_EQ(result.layers.size(), 2u);
  EXPECT_EQ(result.layers[0].name, "fc1");
  EXPECT_EQ(result.layers[0].metrics.output_dim, 32);
  EXPECT_LE(result.layers[1].metrics.jacobian_rank, 16.0);
  EXPECT_TRUE(result.layers[0].decoded);
  EXPECT_EQ(result.layers[0].decoder.reconstructions.size(0), result.target_images);
  // fc2's Jacobian is D2 W2 (fc1's Jacobian) on the same images: its rank cannot exceed fc1's.
  EXPECT_LE(result.layers[1].metrics.jacobian_rank, result.layers[0].metrics.jacobian_rank);
  EXPECT_GT(result.layers[0].metrics.jacobian_rank, 1.0);
  // The decoder rebuilds the targets far better than the attacker's mean image (15.5 dB) does, at
  // both cuts: 24.1 and 24.2 dB, near the 24.8 dB of the class's noise-free blob (the toy images
  // are a blob plus 0.2 U(0,1) noise). Unshuffled, the attacker saw two of the four classes and
  // the decoder stayed at the mean (13.4 vs 13.3 dB): this bar fails then.
  for (const auto& layer : result.layers) {
    std::printf("figure: LayerExperiment %s decoder %.2f dB, mean image %.2f dB, rank %.1f\n",
                layer.name.c_str(), layer.decoder.psnr, layer.decoder.mean_image_psnr,
                layer.metrics.jacobian_rank);
    EXPECT_GT(layer.decoder.psnr, layer.decoder.mean_image_psnr + 5.0) << layer.name;
  }
  ASSERT_EQ(sink.grids.count("decoder_reconstructions.png"), 1u);
  EXPECT_EQ(sink.grids["decoder_reconstructions.png"].size(), 3u);  // targets, then one row per cut
  EXPECT_EQ(sink.plots.count("layers.svg"), 1u);
  options.cuts = {"fc9"};
  EXPECT_THROW(run_layer_experiment(*toy.model, toy.splits.test, options, Reporter(), sink),
               UsageError);
}

TEST(InversionExperiment, ScoresEveryReconstructionAndWritesItsFiguresToTheSink) {
  ToyModel toy;
  InversionExperimentOptions options;
  options.inversion.steps = 4;
  options.inversion.batch_size = 8;
  options.inversion.per_class = 2;
  options.inversion.generator.channels = 8;
  options.inversion.generator.latent_dim = 8;
  options.inversion.stationarity.iterations = 3;
  MemorySink sink;
  const auto result = run_inversion_experiment(*toy.model, toy.splits, options, Reporter(), sink);
  EXPECT_EQ(result.inversion.images.size(0), 8);
  EXPECT_EQ(result.neighbours.nearer_to_train.size(0), 8);
  ASSERT_TRUE(result.before_stationarity.has_value());
  EXPECT_EQ(sink.grids.count("reconstructions.png"), 1u);
  EXPECT_EQ(sink.plots.count("loss.svg"), 1u);
  EXPECT_EQ(sink.plots.count("stationarity.svg"), 1u);
  const auto json = to_json(result, options);
  EXPECT_EQ(json["reconstructions"].size(), 8u);
  EXPECT_TRUE(json["reconstructions"][0]["copy_of_train"].is_boolean());
  EXPECT_EQ(json["summary"]["verbatim_copies"].get<int64_t>(), result.neighbours.verbatim_copies());
  EXPECT_TRUE(json["summary"]["copy_threshold_ssim"].is_number());
  EXPECT_EQ(json["summary"]["copy_calibration"]["target_false_copy_rate"].get<double>(), 0.01);
  EXPECT_EQ(json["stationarity_residual"].size(), 3u);
}

TEST(InversionExperiment, FindsTheTrainingDataACheckpointRecords) {
  const nlohmann::json meta = {{"dataset", {{"spec", "mnist"}, {"train_size", 200}}},
                               {"training", {{"seed", 7u}}}};
  DataRequest request;  // nothing given: the checkpoint's own data
  auto [spec, load] = training_data_of(meta, request);
  EXPECT_EQ(spec, "mnist");
  EXPECT_EQ(load.train_size, 200);
  EXPECT_EQ(load.seed, 7u);
  request.spec = "fashion-mnist";  // another dataset named: its own size, not the checkpoint's
  request.spec_given = true;
  std::tie(spec, load) = training_data_of(meta, request);
  EXPECT_EQ(spec, "fashion-mnist");
  EXPECT_EQ(load.train_size, 0);
}

}  // namespace
}  // namespace privaudit::experiments
