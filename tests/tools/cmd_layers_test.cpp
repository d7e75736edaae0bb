// privaudit layers end to end on a tiny MLP: the results file, the plot, the grid, bad flags.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../test_util.h"
#include "fixtures/trained_models.h"

namespace privaudit {
namespace {

using testing::run_cli;
using testing::TempDir;

class LayersCommand : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (testing::have_fashion_mnist()) model_ = testing::trained_model_dir("mlp", "32,16");
  }
  void SetUp() override {
    PRIVAUDIT_REQUIRE_FASHION_MNIST();
    ASSERT_FALSE(model_.empty());
  }
  static std::string model() { return model_ + "/model.pt"; }
  static std::string model_;
};
std::string LayersCommand::model_;

TEST_F(LayersCommand, WritesOneEntryPerCutPointAndTheFigures) {
  TempDir out;
  const auto result =
      run_cli("layers --model " + model() +
              " --test-size 200 --samples 60 --jacobian-samples 2 --decoder-epochs 1 "
              "--attacker-size 80 --targets 40 --threads 1 --quiet --out " +
              out.file("run"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::ifstream in(out.file("run") + "/results.json");
  const auto results = nlohmann::json::parse(in);
  EXPECT_EQ(results["command"], "layers");
  ASSERT_EQ(results["layers"].size(), 2u);
  EXPECT_EQ(results["layers"][0]["name"], "fc1");
  EXPECT_EQ(results["layers"][1]["name"], "fc2");
  for (const auto& layer : results["layers"]) {
    for (const char* field :
         {"output_dim", "dof", "dof_99", "jacobian_rank", "jacobian_rank_std",
          "jacobian_rank_normalized", "sensitivity", "decoder_psnr", "decoder_ssim"}) {
      EXPECT_TRUE(layer.contains(field)) << field;
    }
    EXPECT_LE(layer["jacobian_rank"].get<double>(), layer["output_dim"].get<double>());
    // The definition (docs/layers.md): the geometric mean of the two normalised figures.
    EXPECT_NEAR(layer["sensitivity"].get<double>(),
                std::sqrt(layer["dof_normalized"].get<double>() *
                          layer["jacobian_rank_normalized"].get<double>()),
                1e-9);
  }
  EXPECT_EQ(results["layers"][0]["output_dim"], 32);
  EXPECT_TRUE(results.contains("spearman_sensitivity_decoder_psnr"));
  EXPECT_TRUE(std::filesystem::exists(out.file("run") + "/layers.svg"));
  EXPECT_TRUE(std::filesystem::exists(out.file("run") + "/decoder_reconstructions.png"));
}

TEST_F(LayersCommand, RejectsBadOptions) {
  TempDir out;
  auto result = run_cli("layers --model " + model() + " --samples 1 --out " + out.file("a"));
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find("--samples"), std::string::npos) << result.output;
  result = run_cli("layers --model " + model() + " --decoder-epochs 0 --out " + out.file("b"));
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find("--decoder-epochs"), std::string::npos) << result.output;
  result = run_cli("layers --model " + model() + " --cuts fc1,conv9 --out " + out.file("c"));
  EXPECT_EQ(result.exit_code, 2) << result.output;
  EXPECT_NE(result.output.find("conv9"), std::string::npos) << result.output;
  result = run_cli("layers --model " + out.file("missing.pt") + " --out " + out.file("d"));
  EXPECT_EQ(result.exit_code, 1) << result.output;
}

}  // namespace
}  // namespace privaudit
