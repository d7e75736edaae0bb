// What every command does with its --out folder, seen from the command line: --force never
// empties a folder privaudit did not write, --resume continues only the same settings, and
// commands without checkpoints do not offer --resume.
#include <gtest/gtest.h>

#include <filesystem>
#include <vector>

#include "privaudit/models/checkpoint.h"
#include "privaudit/models/model_config.h"
#include "privaudit/util/files.h"
#include "test_util.h"

namespace privaudit {
namespace {
namespace fs = std::filesystem;

using testing::contains;

TEST(OutputFolderCli, AuditForceRefusesAFolderOfSomeoneElsesFiles) {
  testing::TempDir dir;
  testing::write_bytes(dir.file("keep.txt"), "mine\n");
  const auto result =
      testing::run_cli("audit --profile smoke --out " + dir.path().string() + " --force");
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_TRUE(contains(result.output, dir.path().string() + ": not a privaudit output folder"))
      << result.output;
  EXPECT_EQ(read_file(dir.path() / "keep.txt"), "mine\n");
  EXPECT_FALSE(fs::exists(dir.path() / "privaudit.json"));
}

TEST(OutputFolderCli, EveryCommandRefusesToForceIntoAForeignFolder) {
  testing::TempDir model_dir;
  torch::manual_seed(0);
  models::BuiltinClassifier mlp(models::default_config("mlp", {1, 28, 28}, 10));
  models::save_checkpoint(model_dir.file("m.pt"), mlp, nlohmann::json::object());
  const std::string model = " --model " + model_dir.file("m.pt");
  testing::TempDir dir;
  testing::write_bytes(dir.file("keep.txt"), "mine\n");
  const std::string out = " --out " + dir.path().string() + " --force";
  for (const std::string& command :
       {std::string("train --arch mlp"), "invert" + model, "gradients" + model, "layers" + model,
        std::string("defend --arch cnn")}) {
    const auto result = testing::run_cli(command + out);
    EXPECT_EQ(result.exit_code, 2) << command << ": " << result.output;
    EXPECT_TRUE(contains(result.output, "not a privaudit output folder"))
        << command << ": " << result.output;
  }
  EXPECT_EQ(read_file(dir.path() / "keep.txt"), "mine\n");
}

TEST(OutputFolderCli, CommandsWithoutCheckpointsDoNotOfferResume) {
  testing::TempDir dir;
  for (const std::string& command : std::vector<std::string>{"layers", "federated"}) {
    const auto result =
        testing::run_cli(command + " --model m.pt --resume --out " + dir.file(command));
    EXPECT_EQ(result.exit_code, 2) << command << ": " << result.output;
    EXPECT_TRUE(contains(result.output, "--resume")) << command << ": " << result.output;
  }
}

TEST(OutputFolderCli, TrainResumeWithOtherSettingsNamesTheFlag) {
  PRIVAUDIT_REQUIRE_FASHION_MNIST();
  testing::TempDir dir;
  const auto out = dir.file("run");
  const auto first = testing::run_cli(
      "train --arch mlp --data fashion-mnist --train-size 100 --test-size 50 "
      "--epochs 1 --out " +
      out);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const auto other = testing::run_cli(
      "train --arch mlp --data fashion-mnist --train-size 100 --test-size 50 "
      "--epochs 2 --resume --out " +
      out);
  EXPECT_EQ(other.exit_code, 2) << other.output;
  EXPECT_TRUE(
      contains(other.output, out + ": was written with other settings (--epochs 1 there, 2 now)"))
      << other.output;
  const auto same = testing::run_cli(
      "train --arch mlp --data fashion-mnist --train-size 100 --test-size 50 "
      "--epochs 1 --resume --out " +
      out);
  EXPECT_EQ(same.exit_code, 0) << same.output;
  const auto force = testing::run_cli(
      "train --arch mlp --data fashion-mnist --train-size 100 --test-size 50 "
      "--epochs 2 --force --out " +
      out);
  EXPECT_EQ(force.exit_code, 0) << force.output;
  EXPECT_TRUE(contains(read_file(fs::path(out) / "privaudit.json"), "\"--epochs\": \"2\""))
      << read_file(fs::path(out) / "privaudit.json");
}

}  // namespace
}  // namespace privaudit
