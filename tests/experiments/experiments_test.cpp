// The experiment units called directly, as a test or a benchmark would: options in, result and
// files (kept in a MemorySink) out, nothing printed.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <stdexcept>

#include "attacks/gradients/attack_fixtures.h"
#include "privaudit/experiments/audit_plan.h"
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

// The value after `flag` in a stage's command line, or "" when the flag is absent.
std::string flag_value(const AuditStage& stage, const std::string& flag) {
  const auto at = std::find(stage.args.begin(), stage.args.end(), flag);
  return at == stage.args.end() || at + 1 == stage.args.end() ? "" : *(at + 1);
}

// The quick profile gives each attack stage its time budget (training and the defense get none);
// audit --time-budget replaces them; the smoke and paper profiles have none, so that the same seed
// gives the same figures there.
TEST(AuditPlan, AttackStagesCarryTheProfilesTimeBudgets) {
  AuditPlanOptions options;
  options.archs = "mlp";
  options.defend = true;
  const auto stages = plan_audit(options, "out");
  // train, invert, gradients, federated, layers; the memorisation regime's train and invert at
  // 10 images per class; defend
  ASSERT_EQ(stages.size(), 8u);
  for (const auto& stage : stages) {
    const auto budget = flag_value(stage, "--time-budget");
    if (stage.command == "train" || stage.command == "defend") {
      EXPECT_EQ(budget, "") << stage.id;
    } else {
      EXPECT_NE(budget, "") << stage.id;
      EXPECT_GT(std::stod(budget), 0.0) << stage.id;
    }
    if (stage.command == "invert") {  // the memorisation regime's inversion gets its own
      EXPECT_EQ(budget, stage.per_class > 0 ? "50" : "20") << stage.id;
    }
  }
  options.stage_budget = 12.5;
  for (const auto& stage : plan_audit(options, "out")) {
    if (stage.command != "train" && stage.command != "defend") {
      EXPECT_EQ(flag_value(stage, "--time-budget"), "12.5") << stage.id;
    }
  }
  options.stage_budget = 0;
  for (const std::string profile : {"smoke", "paper"}) {
    options.profile = profile;
    for (const auto& stage : plan_audit(options, "out"))
      EXPECT_EQ(flag_value(stage, "--time-budget"), "") << profile << " " << stage.id;
  }
}

// The memorisation regime: per architecture and size, a training stage on that many images per
// class (epochs for ~300 steps) and an inversion of its model; --repeats runs every stage again
// with the next seeds in folders of their own; the defense runs once.
TEST(AuditPlan, MemorisationStagesAndRepeats) {
  AuditPlanOptions options;
  options.archs = "mlp,cnn";
  options.profile = "smoke";
  options.memorization_sizes = std::vector<int64_t>{10, 100};
  options.repeats = 2;
  options.defend = true;
  options.seed = 5;
  const auto stages = plan_audit(options, "out");
  // Per seed and architecture: 5 main stages + 2 sizes x (train, invert); then the defense.
  ASSERT_EQ(stages.size(), 2u * 2u * (5u + 4u) + 1u);
  std::set<std::string> ids;
  for (const auto& stage : stages) ids.insert(stage.id);
  EXPECT_EQ(ids.size(), stages.size());  // ids (and logs) are unique
  const auto find = [&](const std::string& id) -> const AuditStage& {
    for (const auto& stage : stages) {
      if (stage.id == id) return stage;
    }
    throw std::runtime_error("no stage " + id);
  };
  const auto& train = find("cnn/memorize-10/train");
  EXPECT_EQ(train.per_class, 10);
  EXPECT_EQ(flag_value(train, "--train-per-class"), "10");
  EXPECT_EQ(flag_value(train, "--epochs"), "5");  // smoke: a few, not a measurement
  EXPECT_EQ(train.dir, std::filesystem::path("out/cnn/memorize-10/train"));
  const auto& invert = find("cnn/memorize-100/invert");
  EXPECT_EQ(flag_value(invert, "--model"), "out/cnn/memorize-100/train/model.pt");
  EXPECT_EQ(flag_value(invert, "--steps"), "10");  // the profile's inversion flags
  const auto& repeat = find("seed-6/mlp/gradients");
  EXPECT_EQ(repeat.repeat, 1);
  EXPECT_EQ(flag_value(repeat, "--seed"), "6");
  EXPECT_EQ(flag_value(repeat, "--model"), "out/seed-6/mlp/train/model.pt");
  EXPECT_EQ(find("defense/defend").repeat, 0);
  // Fewer images per class, more epochs (about the same number of steps), within 20-150.
  EXPECT_GT(memorization_epochs(10), memorization_epochs(100));
  EXPECT_LE(memorization_epochs(1), 150);
  EXPECT_GE(memorization_epochs(10000), 20);
  // None asked for: none planned; the quick profile's default is 10 per class.
  options.memorization_sizes = std::vector<int64_t>{};
  options.repeats = 1;
  for (const auto& stage : plan_audit(options, "out")) EXPECT_EQ(stage.per_class, 0) << stage.id;
  options.memorization_sizes.reset();
  options.profile = "quick";
  int memorising = 0;
  for (const auto& stage : plan_audit(options, "out")) {
    memorising += stage.per_class == 10;
    if (stage.per_class == 10 && stage.command == "train") {
      EXPECT_EQ(flag_value(stage, "--epochs"), std::to_string(memorization_epochs(10)));
    }
  }
  EXPECT_EQ(memorising, 4);  // mlp and cnn, train and invert
  options.repeats = 0;
  EXPECT_THROW(plan_audit(options, "out"), UsageError);
  options.repeats = 1;
  options.memorization_sizes = std::vector<int64_t>{0};
  EXPECT_THROW(plan_audit(options, "out"), UsageError);
}

// Gathering puts each memorisation stage under its size and each repeat under its seed.
TEST(AuditPlan, GatherNestsMemorisationAndRepeats) {
  testing::TempDir dir;
  AuditPlanOptions options;
  options.archs = "mlp";
  options.profile = "smoke";
  options.memorization_sizes = std::vector<int64_t>{3};
  options.repeats = 2;
  const auto stages = plan_audit(options, dir.path());
  nlohmann::json state = nlohmann::json::object();
  for (const auto& stage : stages) {
    state[stage.id] = {{"status", "done"}, {"seconds", 1.0}};
    std::filesystem::create_directories(stage.dir);
    write_file_atomic(stage.dir / "results.json", nlohmann::json({{"stage", stage.id}}).dump());
  }
  const auto archs = gather_audit(stages, state, dir.path());
  ASSERT_EQ(archs.size(), 1u);
  const auto& mlp = archs[0];
  EXPECT_EQ(mlp["invert"]["results"]["stage"], "mlp/invert");
  ASSERT_EQ(mlp["memorization"].size(), 1u);
  EXPECT_EQ(mlp["memorization"][0]["per_class"], 3);
  EXPECT_EQ(mlp["memorization"][0]["invert"]["results"]["stage"], "mlp/memorize-3/invert");
  ASSERT_EQ(mlp["repeats"].size(), 1u);
  EXPECT_EQ(mlp["repeats"][0]["seed"], 1);
  EXPECT_EQ(mlp["repeats"][0]["gradients"]["results"]["stage"], "seed-1/mlp/gradients");
  EXPECT_EQ(mlp["repeats"][0]["memorization"][0]["train"]["results"]["stage"],
            "seed-1/mlp/memorize-3/train");
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
  options.decoder_epochs = 1;
  options.decoder_hidden = 32;
  options.decoder_channels = 4;
  MemorySink sink;
  const auto result = run_layer_experiment(*toy.model, toy.splits.test, options, Reporter(), sink);
  ASSERT_EQ(result.layers.size(), 2u);
  EXPECT_EQ(result.layers[0].name, "fc1");
  EXPECT_EQ(result.layers[0].metrics.output_dim, 32);
  EXPECT_LE(result.layers[1].metrics.jacobian_rank, 16.0);
  EXPECT_TRUE(result.layers[0].decoded);
  EXPECT_EQ(result.layers[0].decoder.reconstructions.size(0), result.target_images);
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
