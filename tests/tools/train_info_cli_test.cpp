// `privaudit train` and `privaudit info` from the outside: exit codes, files written, what info
// prints.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "privaudit/models/checkpoint.h"
#include "privaudit/models/model_config.h"
#include "privaudit/util/files.h"
#include "test_util.h"

namespace privaudit {
namespace {

using testing::contains;

TEST(TrainCommand, TrainsASmallCnnThatInfoDescribesWithItsCutPoints) {
  PRIVAUDIT_REQUIRE_FASHION_MNIST();
  testing::TempDir dir;
  const auto out = dir.file("run");
  const auto train = testing::run_cli(
      "train --arch cnn --train-size 200 --test-size 100 --epochs 1 --threads 2 --out " + out);
  ASSERT_EQ(train.exit_code, 0) << train.output;
  EXPECT_TRUE(contains(train.output, "epoch 1/1")) << train.output;
  const auto results = nlohmann::json::parse(read_file(out + "/results.json"));
  EXPECT_EQ(results["command"], "train");
  EXPECT_EQ(results["epochs"], 1);
  EXPECT_GT(results["test_accuracy"].get<double>(), 0.2);  // 10 classes: chance is 0.1
  ASSERT_EQ(results["history"].size(), 1u);
  EXPECT_DOUBLE_EQ(results["seconds"].get<double>(),
                   results["history"][0]["seconds"].get<double>());

  const auto info = testing::run_cli("info --model " + out + "/model.pt");
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_TRUE(contains(info.output, "kind:         cnn")) << info.output;
  EXPECT_TRUE(contains(info.output, "cut points:   conv1, conv2, fc1")) << info.output;
  EXPECT_TRUE(contains(info.output, "input:        1 x 28 x 28")) << info.output;
}

TEST(TrainCommand, DpSgdWritesThePrivacySpentAndAGroupNormModel) {
  PRIVAUDIT_REQUIRE_FASHION_MNIST();
  testing::TempDir dir;
  const auto out = dir.file("run");
  const auto train = testing::run_cli(
      "train --arch cnn --group-norm --train-size 300 --test-size 100 --epochs 1 --batch-size 50 "
      "--dp-epsilon 4 --dp-delta 1e-3 --dp-clip 0.5 --threads 2 --out " +
      out);
  ASSERT_EQ(train.exit_code, 0) << train.output;
  EXPECT_TRUE(contains(train.output, "DP-SGD: noise multiplier")) << train.output;
  const auto results = nlohmann::json::parse(read_file(out + "/results.json"));
  const auto& privacy = results["privacy"];
  EXPECT_EQ(privacy["sampling"], "poisson");
  EXPECT_EQ(privacy["steps"], 6);
  EXPECT_DOUBLE_EQ(privacy["sample_rate"].get<double>(), 50.0 / 300.0);
  EXPECT_DOUBLE_EQ(privacy["clip_norm"].get<double>(), 0.5);
  EXPECT_LE(privacy["epsilon"].get<double>(), 4.0);
  EXPECT_GT(privacy["epsilon"].get<double>(), 3.9);
  EXPECT_EQ(results["model"]["config"]["group_norm"], true);
}

// Each bad DP setting: a non-zero exit and one line that names the flag.
TEST(TrainCommand, BadDpSettingsFailWithOneLineNamingTheFlag) {
  PRIVAUDIT_REQUIRE_FASHION_MNIST();
  testing::TempDir dir;
  const std::string base =
      "train --arch mlp --train-size 100 --test-size 50 --epochs 1 --batch-size 20 ";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--dp-noise 0", "--dp-noise must be positive"},
      {"--dp-noise 1 --dp-clip -1", "--dp-clip must be positive"},
      {"--dp-noise 1 --dp-delta 0.05", "below 1/N = 0.01"},
      {"--dp-epsilon 0.001 --dp-delta 1e-3", "--dp-epsilon 0.001 cannot be reached"},
      {"--dp-noise 1 --dp-delta 1e-3 --batch-norm", "--group-norm"},
  };
  int index = 0;
  for (const auto& [flags, message] : cases) {
    const auto result =
        testing::run_cli(base + flags + " --out " + dir.file("run" + std::to_string(index++)));
    EXPECT_NE(result.exit_code, 0) << flags;
    EXPECT_TRUE(contains(result.output, message)) << flags << ": " << result.output;
    // The message is the last line of the output, and a single line.
    std::string last = result.output;
    while (!last.empty() && last.back() == '\n') last.pop_back();
    last = last.substr(last.rfind('\n') == std::string::npos ? 0 : last.rfind('\n') + 1);
    EXPECT_TRUE(contains(last, message)) << flags << ": " << result.output;
  }
}

TEST(TrainCommand, UnknownArchitectureIsAUsageError) {
  testing::TempDir dir;
  const auto result = testing::run_cli("train --arch resnet --out " + dir.file("run"));
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_TRUE(contains(result.output, "--arch resnet")) << result.output;
}

// A CUDA device that is not there: one line naming the flag, before any work. Without a GPU (or
// with a CPU-only LibTorch) any cuda; on a CUDA machine an index past its devices.
TEST(TrainCommand, CudaWithoutAGpuIsAOneLineUsageError) {
  testing::TempDir dir;
  if (torch::cuda::is_available()) {
    const auto count = torch::cuda::device_count();
    const auto result =
        testing::run_cli("train --arch mlp --device cuda:" + std::to_string(count) + " --out " +
                         dir.file("run"));
    EXPECT_EQ(result.exit_code, 2) << result.output;
    EXPECT_EQ(result.output, "privaudit train: --device cuda:" + std::to_string(count) +
                                 ": this machine has " + std::to_string(count) +
                                 " CUDA device(s), cuda:0 to cuda:" + std::to_string(count - 1) +
                                 "\n");
    EXPECT_FALSE(std::filesystem::exists(dir.file("run")));
    return;
  }
  const auto result = testing::run_cli("train --arch mlp --device cuda --out " + dir.file("run"));
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_EQ(result.output,
            "privaudit train: --device cuda: this build of LibTorch sees no CUDA device\n");
  EXPECT_FALSE(std::filesystem::exists(dir.file("run")));
}

TEST(TrainCommand, MissingArchIsAUsageError) {
  testing::TempDir dir;
  EXPECT_EQ(testing::run_cli("train --out " + dir.file("run")).exit_code, 2);
}

// defend's feature_network.pt records a role and a test accuracy but no training accuracy.
TEST(InfoCommand, DescribesACheckpointWithOnlySomeOfTheUsualFigures) {
  testing::TempDir dir;
  torch::manual_seed(0);
  models::BuiltinClassifier model(models::default_config("cnn", {1, 28, 28}, 10));
  models::save_checkpoint(
      dir.file("feature_network.pt"), model,
      {{"role", "feature network of the perceptual loss"}, {"test_accuracy", 0.8125}});
  const auto info = testing::run_cli("info --model " + dir.file("feature_network.pt"));
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_TRUE(contains(info.output, "accuracy:     test 0.8125\n")) << info.output;
  EXPECT_TRUE(contains(info.output, "role:         feature network of the perceptual loss"))
      << info.output;
}

TEST(InfoCommand, TextFileFailsNamingTheFile) {
  testing::TempDir dir;
  testing::write_bytes(dir.file("notes.txt"), "not a model\n");
  const auto result = testing::run_cli("info --model " + dir.file("notes.txt"));
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, dir.file("notes.txt") + ": not a model file"))
      << result.output;
}

TEST(InfoCommand, MissingFileFailsNamingTheFile) {
  testing::TempDir dir;
  const auto result = testing::run_cli("info --model " + dir.file("absent.pt"));
  EXPECT_EQ(result.exit_code, 1) << result.output;
  EXPECT_TRUE(contains(result.output, dir.file("absent.pt") + ": model file not found"))
      << result.output;
}

}  // namespace
}  // namespace privaudit
