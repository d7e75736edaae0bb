// The `privaudit gradients` command end to end on a tiny run.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "attacks/gradients/attack_fixtures.h"
#include "privaudit/models/checkpoint.h"

namespace privaudit::testing {
namespace {

TEST(GradientsCommand, WritesRunsAuditGridsAndPlot) {
  PRIVAUDIT_REQUIRE_FASHION_MNIST();
  TempDir dir;
  auto model = make_model("lenet", 0);
  models::save_checkpoint(dir.file("lenet.pt"), *model, nlohmann::json::object());
  const auto result =
      run_cli("gradients --model " + dir.file("lenet.pt") +
              " --attack all --batch 1,2 --targets 2 --iterations 3 --test-size 40 --train-size 20"
              " --audit-probe-iterations 10 --quiet --out " +
              dir.file("out"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::ifstream in(dir.file("out/results.json"));
  const auto json = nlohmann::json::parse(in);
  EXPECT_EQ(json["command"], "gradients");
  // Six attacks (closed-form first) at two batch sizes. LeNet has no bias-carrying linear layer
  // whose input is given exactly at batch 2 and no positional embedding: those runs say why
  // and carry no figures, never a 0 dB guess.
  ASSERT_EQ(json["runs"].size(), 12u);
  for (const auto& run : json["runs"]) {
    for (const char* key :
         {"attack", "batch_size", "psnr", "ssim", "mse", "label_accuracy", "iterations", "seconds",
          "failed", "restarts", "exact", "target_psnr"}) {
      EXPECT_TRUE(run.contains(key)) << key;
    }
    if (run.contains("not_applicable")) {
      EXPECT_TRUE(run["psnr"].is_null()) << run.dump();
      EXPECT_EQ(run["grid"], "");
      continue;
    }
    EXPECT_TRUE(std::filesystem::exists(dir.path() / "out" / run["grid"].get<std::string>()));
  }
  EXPECT_EQ(json["runs"][0]["attack"], "linear-layer");
  EXPECT_EQ(json["runs"][2]["attack"], "positional");
  EXPECT_TRUE(json["runs"][2].contains("not_applicable"));
  EXPECT_EQ(json["runs"][8]["attack"], "idlg");
  EXPECT_EQ(json["runs"][8]["label_accuracy"], 1.0);
  // The strongest attack per target, per batch size, with its grid.
  // Per target it is the attack with the highest PSNR of all the runs at that batch size, and it
  // says which; its mean is theirs.
  ASSERT_EQ(json["strongest"].size(), 2u);
  for (const auto& best : json["strongest"]) {
    ASSERT_EQ(best["targets"].size(), 2u);
    double sum = 0;
    for (size_t t = 0; t < 2; ++t) {
      double highest = -1;
      std::string which;
      for (const auto& run : json["runs"]) {
        if (run["batch_size"] != best["batch_size"] || run["target_psnr"].is_null() ||
            run["target_psnr"].empty() || run["target_psnr"][t].is_null())
          continue;
        if (run["target_psnr"][t].get<double>() > highest) {
          highest = run["target_psnr"][t].get<double>();
          which = run["attack"].get<std::string>();
        }
      }
      EXPECT_DOUBLE_EQ(best["targets"][t]["psnr"].get<double>(), highest) << best.dump();
      EXPECT_EQ(best["targets"][t]["attack"], which) << best.dump();
      sum += highest;
    }
    EXPECT_NEAR(best["psnr"].get<double>(), sum / 2, 1e-9);
    EXPECT_TRUE(std::filesystem::exists(dir.path() / "out" / best["grid"].get<std::string>()));
  }
  const auto& audit = json["audit"];
  ASSERT_EQ(audit["batch_sizes"].size(), 2u);
  // The audit's risk is the largest of its batch sizes'.
  EXPECT_DOUBLE_EQ(audit["risk"].get<double>(),
                   std::max(audit["batch_sizes"][0]["risk"].get<double>(),
                            audit["batch_sizes"][1]["risk"].get<double>()));
  // The server knew the batch size only: no run was handed the labels.
  EXPECT_EQ(json["attacker_knows"], nlohmann::json::array({"batch_size"}));
  for (const auto& run : json["runs"])
    EXPECT_EQ(run["attacker_knows"], nlohmann::json::array({"batch_size"}));
  EXPECT_EQ(audit["probes"], 2);
  EXPECT_EQ(audit["probe_iterations"], 10);
  for (const auto& entry : audit["batch_sizes"]) {
    for (const char* key :
         {"fit_psnr", "observed_psnr", "predicted_psnr", "risk_bound", "probe_min_distance",
          "probe_psnr", "probe_bound_psnr", "probe_seconds", "seconds"}) {
      EXPECT_TRUE(entry.contains(key)) << key;
    }
    ASSERT_FALSE(entry["points"].empty());
    EXPECT_EQ(entry["points"].back()["kind"], "probe");
  }
  EXPECT_TRUE(std::filesystem::exists(dir.path() / "out" / "audit_relation.svg"));
}

// --time-budget: the attacks stop with what they have and results.json says so; without it, a run
// records no budget.
TEST(GradientsCommand, ATimeBudgetStopsTheAttacksAndIsRecorded) {
  PRIVAUDIT_REQUIRE_FASHION_MNIST();
  TempDir dir;
  auto model = make_model("lenet", 0);
  models::save_checkpoint(dir.file("lenet.pt"), *model, nlohmann::json::object());
  const std::string common = "gradients --model " + dir.file("lenet.pt") +
                             " --attack dlg,ig --batch 1 --targets 2 --iterations 2000"
                             " --test-size 40 --train-size 20 --audit-probes 0 --quiet";
  auto result = run_cli(common + " --time-budget 0.001 --out " + dir.file("budget"));
  ASSERT_EQ(result.exit_code, 0) << result.output;
  std::ifstream in(dir.file("budget/results.json"));
  const auto json = nlohmann::json::parse(in);
  EXPECT_EQ(json.value("stopped", ""), "budget");
  EXPECT_EQ(json.value("time_budget_s", 0.0), 0.001);
  for (const auto& run : json["runs"]) {
    EXPECT_LE(run["iterations"].get<double>(), 1.0) << run.dump();  // one step, then the check
    EXPECT_FALSE(run["psnr"].is_null()) << run.dump();              // and still scored
  }
  result = run_cli("gradients --time-budget -1 --model " + dir.file("lenet.pt") + " --out " +
                   dir.file("negative"));
  EXPECT_NE(result.exit_code, 0);
}

// The client's defended update (--defend-noise): the exact linear-layer attack recovers the MLP's
// batch-of-one targets from the clean update, and from a noised one it finds no layer whose input
// the update gives exactly, so it recovers nothing (the PSNR's fall with the noise is measured in
// tests/defense/update_defense_test.cpp); results.json says which defense the attacks ran against.
TEST(GradientsCommand, ANoisedUpdateDefeatsTheExactAttack) {
  PRIVAUDIT_REQUIRE_FASHION_MNIST();
  TempDir dir;
  auto model = make_model("mlp", 0);
  models::save_checkpoint(dir.file("mlp.pt"), *model, nlohmann::json::object());
  const std::string common = "gradients --model " + dir.file("mlp.pt") +
                             " --attack linear-layer --batch 1 --targets 2 --audit-probes 0"
                             " --test-size 40 --train-size 20 --quiet";
  const auto read_run = [&](const std::string& noise) {
    const auto result =
        run_cli(common + " --defend-noise " + noise + " --out " + dir.file("noise" + noise));
    EXPECT_EQ(result.exit_code, 0) << result.output;
    std::ifstream in(dir.file("noise" + noise + "/results.json"));
    return nlohmann::json::parse(in);
  };
  const auto clean = read_run("0");
  EXPECT_FALSE(clean.contains("update_defense"));
  EXPECT_EQ(clean["runs"][0]["exact"], 2);
  EXPECT_GT(clean["runs"][0]["psnr"].get<double>(), 40.0);
  const auto noised = read_run("0.001");
  EXPECT_DOUBLE_EQ(noised["update_defense"]["noise_sigma"].get<double>(), 0.001);
  EXPECT_EQ(noised["runs"][0]["exact"], 0);
  EXPECT_TRUE(noised["runs"][0].contains("not_applicable")) << noised["runs"][0].dump();
  const auto bad = run_cli(common + " --defend-keep 0 --out " + dir.file("bad"));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("--defend-keep must be in (0, 1]"), std::string::npos) << bad.output;
}

TEST(GradientsCommand, RejectsAnUnknownAttackAndTooFewTargets) {
  TempDir dir;
  auto model = make_model("lenet", 0);
  models::save_checkpoint(dir.file("lenet.pt"), *model, nlohmann::json::object());
  auto result =
      run_cli("gradients --model " + dir.file("lenet.pt") + " --attack foo --out " + dir.file("a"));
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.output.find("--attack foo: unknown attack"), std::string::npos) << result.output;
  result = run_cli("gradients --model " + dir.file("lenet.pt") + " --batch 4 --targets 2 --out " +
                   dir.file("b"));
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.output.find("--batch 4 needs at least that many targets"), std::string::npos)
      << result.output;
  result = run_cli("gradients --model " + dir.file("lenet.pt") + " --audit-probes -1 --out " +
                   dir.file("c"));
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.output.find("--audit-probes must not be negative"), std::string::npos)
      << result.output;
}

}  // namespace
}  // namespace privaudit::testing
