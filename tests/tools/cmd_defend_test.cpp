// privaudit defend end to end on a smoke-sized budget: the results file, figures, per-point
// checkpoints that other commands accept, resuming, and bad flags.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "../test_util.h"

namespace privaudit {
namespace {

using testing::run_cli;
using testing::TempDir;

const char* kTiny =
    " --train-size 300 --test-size 200 --epochs 1 --attack-epochs 1 --targets 20 "
    "--gradient-targets 1 "
    "--gradient-iterations 5 --threads 1 --quiet";

TEST(DefendCommand, WritesPointsFiguresAndCheckpointsThenResumes) {
  PRIVAUDIT_REQUIRE_FASHION_MNIST();
  TempDir dir;
  const auto out = dir.file("run");
  const auto first =
      run_cli("defend --lambdas 0,10 --loss pixel" + std::string(kTiny) + " --out " + out);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  nlohmann::json results;
  {
    std::ifstream in(out + "/results.json");
    results = nlohmann::json::parse(in);
  }
  EXPECT_EQ(results["command"], "defend");
  ASSERT_EQ(results["points"].size(), 2u);
  for (const auto& p : results["points"]) {
    for (const char* field : {"lambda", "loss", "test_accuracy", "attack_psnr", "attack_ssim",
                              "noise", "cut", "model"}) {
      EXPECT_TRUE(p.contains(field)) << field;
    }
    EXPECT_EQ(p["cut"], "conv2");
    EXPECT_EQ(p["noise"], 1.0);
    // Mean PSNR over targets is at least the PSNR of the mean MSE (Jensen): both come from the
    // same reconstructions.
    EXPECT_GE(p["attack_psnr"].get<double>(),
              -10 * std::log10(p["attack_mse"].get<double>()) - 1e-9);
    // The side audits: layer metrics at every cut point and a gradient attack on the defended
    // model.
    ASSERT_EQ(p["layers"].size(), 3u);
    EXPECT_EQ(p["layers"][1]["name"], "conv2");
    EXPECT_EQ(p["gradient_psnr"], p["gradient_attack"]["psnr"]);
    EXPECT_EQ(p["gradient_attack"]["targets"], 1);
    // The side audit's attacker knows what `privaudit gradients`' knows by default.
    EXPECT_EQ(p["gradient_attack"]["attacker_knows"], nlohmann::json::array({"batch_size"}));
    EXPECT_TRUE(std::filesystem::exists(p["model"].get<std::string>()));
  }
  EXPECT_EQ(results["points"][0]["lambda"], 0.0);
  EXPECT_EQ(results["points"][1]["loss"], "pixel");
  EXPECT_TRUE(std::filesystem::exists(out + "/tradeoff.svg"));
  EXPECT_TRUE(std::filesystem::exists(out + "/reconstructions.png"));

  // A defended model is a checkpoint like any other; its noisy cut is part of its description.
  const auto info = run_cli("info --model " + results["points"][1]["model"].get<std::string>());
  ASSERT_EQ(info.exit_code, 0) << info.output;
  EXPECT_NE(info.output.find("noise sigma 1 after conv2"), std::string::npos) << info.output;

  // Resuming recomputes nothing and writes the same points.
  const auto again =
      run_cli("defend --lambdas 0,10 --loss pixel" + std::string(kTiny) + " --resume --out " + out);
  ASSERT_EQ(again.exit_code, 0) << again.output;
  std::ifstream in(out + "/results.json");
  const auto resumed = nlohmann::json::parse(in);
  ASSERT_EQ(resumed["points"].size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(resumed["points"][i]["attack_psnr"], results["points"][i]["attack_psnr"]);
    EXPECT_EQ(resumed["points"][i]["train_seconds"], results["points"][i]["train_seconds"]);
  }
  // Resuming with other settings would mix points of two experiments: refused, naming the flag.
  const auto other = run_cli("defend --lambdas 0,10 --loss pixel --noise 0.5" + std::string(kTiny) +
                             " --resume --out " + out);
  EXPECT_EQ(other.exit_code, 2) << other.output;
  EXPECT_NE(other.output.find("(--noise 1 there, 0.5 now)"), std::string::npos) << other.output;
}

TEST(DefendCommand, BadFlagsAreUsageErrors) {
  TempDir dir;
  EXPECT_EQ(run_cli("defend --objective nope --out " + dir.file("a")).exit_code, 2);
  EXPECT_EQ(run_cli("defend --loss nope --out " + dir.file("b")).exit_code, 2);
  EXPECT_EQ(run_cli("defend --noise -1 --out " + dir.file("c")).exit_code, 2);
  EXPECT_EQ(run_cli("defend --lambdas -1 --train-size 30 --test-size 20 --out " + dir.file("d"))
                .exit_code,
            2);
}

}  // namespace
}  // namespace privaudit
