// The `privaudit gradients` command end to end on a tiny run.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "attack_fixtures.h"
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
  ASSERT_EQ(json["runs"].size(), 6u);
  for (const auto& run : json["runs"]) {
    for (const char* key : {"attack", "batch_size", "psnr", "ssim", "mse", "label_accuracy",
                            "iterations", "seconds", "failed", "restarts"}) {
      EXPECT_TRUE(run.contains(key)) << key;
    }
    EXPECT_TRUE(std::filesystem::exists(dir.path() / "out" / run["grid"].get<std::string>()));
  }
  EXPECT_EQ(json["runs"][2]["attack"], "idlg");
  EXPECT_EQ(json["runs"][2]["label_accuracy"], 1.0);
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
