// The federated experiment and `privaudit federated`: what one client's update gives away
// against the secure aggregate of eight, the imprint server, and bad flags.
#include "privaudit/experiments/federated_experiment.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "attacks/gradients/attack_fixtures.h"
#include "privaudit/models/checkpoint.h"
#include "privaudit/util/error.h"

namespace privaudit::experiments {
namespace {

class FederatedExperiment : public testing::RequiresFashionMnist {};

const data::Splits& fashion() {
  static const auto splits = data::load_splits("fashion-mnist", {256, 200, 0});
  return splits;
}

// Two clients of 8 images and an imprint server of 32 bins calibrated on 256 training images.
FederatedExperimentOptions small_imprint_server() {
  FederatedExperimentOptions options;
  options.clients = 2;
  options.images_per_client = 8;
  options.server = attacks::Server::kImprint;
  options.bins = 32;
  options.calibration_images = 256;
  options.attacks = {"imprint"};
  return options;
}

// The bar: the aggregate of 8 clients (one image each, one local step) shows the server a
// lower PSNR than one client's own update, with the same attack and budget.
TEST_F(FederatedExperiment, AggregateOfEightLeaksLessThanOneClient) {
  auto model = testing::make_small_cnn(2);
  FederatedExperimentOptions options;
  options.clients = 8;
  options.images_per_client = 1;
  options.secure_aggregation = true;
  options.attacks = {"ig"};
  options.budget.iterations = 300;
  MemorySink sink;
  const auto result =
      run_federated_experiment(*model, fashion().train, fashion().test, options, Reporter(), sink);
  ASSERT_EQ(result.views.size(), 2u + 8u);  // every client, the aggregate, each client alone
  EXPECT_EQ(result.server_sees, "aggregate");
  const auto& client = result.views[0];
  const auto& all = result.views[1];
  EXPECT_EQ(client.images, 8);
  EXPECT_EQ(all.images, 8);
  std::printf("figure: FederatedExperiment client %.2f aggregate %.2f\n",
              client.strongest.mean_psnr, all.strongest.mean_psnr);
  EXPECT_GT(client.strongest.mean_psnr, all.strongest.mean_psnr + 3.0);
  EXPECT_EQ(sink.grids.count("grid_strongest_aggregate.png"), 1u);
}

TEST_F(FederatedExperiment, ImprintServerReportsTheFormulaBeside) {
  auto model = testing::make_model("mlp", 3);
  auto options = small_imprint_server();
  MemorySink sink;
  const auto result =
      run_federated_experiment(*model, fashion().train, fashion().test, options, Reporter(), sink);
  // Every client's update is attacked: "client" holds all 16 targets, each with the strongest
  // attack on its own client's update; then the aggregate; then each client's own view.
  ASSERT_EQ(result.views.size(), 4u);
  const auto& clients = result.views[0];
  EXPECT_EQ(clients.view, "client");
  EXPECT_EQ(clients.images, 16);
  EXPECT_EQ(result.views[1].view, "aggregate");
  EXPECT_NEAR(result.views[1].expected_fraction, std::pow(31.0 / 32.0, 15.0), 1e-9);
  EXPECT_NEAR(clients.expected_fraction, std::pow(31.0 / 32.0, 7.0), 1e-9);  // B = 8 per client
  EXPECT_GE(clients.recovered_fraction, 0.5);
  ASSERT_EQ(result.views[3].view, "client2");
  ASSERT_EQ(clients.strongest.psnr.size(), 16u);
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(clients.strongest.psnr[i], result.views[2].strongest.psnr[i]);
    EXPECT_EQ(clients.strongest.psnr[8 + i], result.views[3].strongest.psnr[i]);
  }
  EXPECT_DOUBLE_EQ(clients.recovered_fraction,
                   (result.views[2].recovered_fraction + result.views[3].recovered_fraction) / 2);
  const auto json = to_json(result, options);
  EXPECT_EQ(json["federated"]["server"], "imprint");
  EXPECT_EQ(json["federated"]["views"][1]["images"], 16);
}

// Defended updates (each client adds Gaussian noise of std sigma to its update before sending
// it): the imprint server reads fewer images the more noise there is (the exact attacks' fall on
// a noised gradient: UpdateDefense.ExactAttacksPsnrFallsAsTheNoiseGrows). The update itself is
// small (a learning rate times a gradient), so small sigmas already tell: the figures printed
// below.
TEST_F(FederatedExperiment, AttacksOnDefendedUpdatesDegradeAsTheNoiseGrows) {
  std::vector<double> median, recovered;
  for (const double sigma : {0.0, 1e-9, 1e-7}) {
    auto model = testing::make_model("mlp", 3);
    auto options = small_imprint_server();
    options.update_defense.noise_sigma = sigma;
    MemorySink sink;
    const auto result = run_federated_experiment(*model, fashion().train, fashion().test, options,
                                                 Reporter(), sink);
    const auto& clients = result.views[0];
    median.push_back(clients.strongest.median_psnr);
    recovered.push_back(clients.recovered_fraction);
    std::printf("figure: FederatedExperiment defended sigma %g median %.1f recovered %.2f\n", sigma,
                clients.strongest.median_psnr, clients.recovered_fraction);
    const auto json = to_json(result, options);
    EXPECT_EQ(json["federated"].contains("update_defense"), sigma > 0);
  }
  EXPECT_GE(recovered[0], 0.5);
  EXPECT_GT(median[0], median[1]);
  EXPECT_GT(median[1], median[2]);
  EXPECT_LT(recovered[2], recovered[0]);
  EXPECT_LT(median[2], 30.0) << "at sigma 1e-7 no image should stay visually recovered";
  FederatedExperimentOptions bad;
  bad.update_defense.keep_fraction = 0;
  try {
    bad.validate();
    FAIL() << "a keep fraction of 0 accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("--defend-keep"), std::string::npos) << e.what();
  }
}

// The results record the images the bins were calibrated on, not the number asked for, when the
// training split holds fewer.
TEST_F(FederatedExperiment, ImprintRecordsTheCalibrationImagesItUsed) {
  auto model = testing::make_model("mlp", 3);
  FederatedExperimentOptions options;
  options.clients = 1;
  options.images_per_client = 4;
  options.server = attacks::Server::kImprint;
  options.bins = 32;
  options.calibration_images = 256;
  options.attacks = {"imprint"};
  const auto small_train = fashion().train.select(torch::arange(100, torch::kLong));
  MemorySink sink;
  const auto result =
      run_federated_experiment(*model, small_train, fashion().test, options, Reporter(), sink);
  EXPECT_EQ(result.calibration_images, 100);
  EXPECT_EQ(to_json(result, options)["federated"]["calibration_images"], 100);
  const auto full =
      run_federated_experiment(*model, fashion().train, fashion().test, options, Reporter(), sink);
  EXPECT_EQ(to_json(full, options)["federated"]["calibration_images"], 256);
}

// The figure: a malicious server reads B = 64 images per client through the secure
// aggregate of 4 clients with K = 1,024 bins. To the imprint block the aggregate is one batch of
// 256 images, so the prediction is (1 - 1/1024)^255 = 0.78; the bins are set on 16,384 of the
// server's own images (16 per bin: near equal mass, as the formula assumes). Each client takes
// one local step of its 64 images: B counts the images of one gradient (per client), and the
// aggregate of 4 is one batch of 256 to the block.
TEST_F(FederatedExperiment, ImprintThroughTheSecureAggregateOfFourClientsRecoversThePrediction) {
  static const auto splits = data::load_splits("fashion-mnist", {16384, 256, 0});
  auto model = testing::make_model("mlp", 5);
  FederatedExperimentOptions options;
  options.clients = 4;
  options.images_per_client = 64;
  options.training.steps = 1;  // one gradient of each client's 64 images
  options.training.batch = 64;
  options.secure_aggregation = true;
  options.server = attacks::Server::kImprint;
  options.bins = 1024;
  options.calibration_images = 16384;
  options.attacks = {"imprint"};
  options.compare_with_one_client = false;
  MemorySink sink;
  const auto result =
      run_federated_experiment(*model, splits.train, splits.test, options, Reporter(), sink);
  ASSERT_EQ(result.views.size(), 1u);
  const auto& all = result.views[0];
  EXPECT_EQ(all.view, "aggregate");
  EXPECT_EQ(all.images, 256);
  EXPECT_NEAR(all.expected_fraction, std::pow(1023.0 / 1024.0, 255.0), 1e-12);
  std::printf("figure: FederatedExperiment imprint B=4x64 K=1024 recovered %.3f expected %.3f\n",
              all.recovered_fraction, all.expected_fraction);
  EXPECT_NEAR(all.recovered_fraction, all.expected_fraction, 0.05);
}

// The audit's grid: the plain batch-4 gradient against more local steps and smaller local
// batches, and 1 to 8 clients of one image each, aggregated when more than one.
TEST(FederatedAuditGrid, CoversStepsBatchesAndClients) {
  attacks::LocalTraining base;
  base.learning_rate = 0.05;
  base.momentum = 0.9;
  const auto grid = federated_audit_grid(base);
  std::vector<std::string> labels;
  for (const auto& s : grid) {
    labels.push_back(s.label);
    EXPECT_EQ(s.training.learning_rate, 0.05);
    EXPECT_EQ(s.training.momentum, 0.9);
    EXPECT_EQ(s.secure_aggregation, s.clients > 1) << s.label;
  }
  EXPECT_EQ(labels, (std::vector<std::string>{"steps1", "steps2", "steps5", "batch1", "batch2",
                                              "clients1", "clients2", "clients4", "clients8"}));
  EXPECT_EQ(grid[2].training.for_client(grid[2].images_per_client).steps, 5);
  EXPECT_EQ(grid[3].training.for_client(grid[3].images_per_client).steps, 4);
  EXPECT_EQ(grid[8].clients * grid[8].images_per_client, 8);
}

TEST_F(FederatedExperiment, RejectsBadOptionsNamingTheFlag) {
  FederatedExperimentOptions options;
  options.server = attacks::Server::kImprint;
  options.bins = 1;
  EXPECT_THROW(options.validate(), UsageError);
  options = FederatedExperimentOptions();
  options.attacks = {"nope"};
  try {
    options.validate();
    FAIL() << "unknown attack accepted";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("unrolled-ig"), std::string::npos) << e.what();
  }
  options = FederatedExperimentOptions();
  options.clients = 0;
  EXPECT_THROW(options.validate(), UsageError);
}

TEST_F(FederatedExperiment, CommandWritesResultsAndGrids) {
  testing::TempDir dir;
  auto model = testing::make_model("mlp", 0);
  models::save_checkpoint(dir.file("mlp.pt"), *model, nlohmann::json::object());
  const auto result = testing::run_cli(
      "federated --model " + dir.file("mlp.pt") +
      " --clients 2 --images-per-client 2 --local-steps 2 --attack linear-layer,unrolled-ig"
      " --iterations 3 --test-size 40 --train-size 20 --quiet --out " +
      dir.file("out"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::ifstream in(dir.file("out/results.json"));
  const auto json = nlohmann::json::parse(in);
  EXPECT_EQ(json["command"], "federated");
  // client (every client's targets), aggregate, then client1 and client2 (each its own update)
  ASSERT_EQ(json["federated"]["views"].size(), 4u);
  for (const auto& view : json["federated"]["views"]) {
    ASSERT_EQ(view["runs"].size(), 2u);
    EXPECT_TRUE(
        std::filesystem::exists(dir.path() / "out" / view["strongest"]["grid"].get<std::string>()));
  }
  EXPECT_EQ(json["federated"]["training"]["local_steps"], 2);
  // Every command's results carry its peak resident memory, in MiB: a process holding LibTorch
  // resides in more than 64 MiB and this tiny run in far less than 4 GiB (KiB or bytes would be
  // 1,024 times too large, GiB 1,024 times too small).
  ASSERT_TRUE(json["peak_memory_mib"].is_number());
  EXPECT_GT(json["peak_memory_mib"].get<double>(), 64.0);
  EXPECT_LT(json["peak_memory_mib"].get<double>(), 4096.0);

  const auto bad = testing::run_cli("federated --model " + dir.file("mlp.pt") +
                                    " --server evil --quiet --out " + dir.file("bad"));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.output.find("--server"), std::string::npos) << bad.output;
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "bad" / "results.json"));

  const auto keep = testing::run_cli("federated --model " + dir.file("mlp.pt") +
                                     " --defend-keep 0 --quiet --out " + dir.file("keep"));
  EXPECT_EQ(keep.exit_code, 2) << keep.output;
  EXPECT_NE(keep.output.find("--defend-keep must be in (0, 1]"), std::string::npos) << keep.output;
  EXPECT_FALSE(std::filesystem::exists(dir.path() / "keep" / "results.json"));
}

}  // namespace
}  // namespace privaudit::experiments
