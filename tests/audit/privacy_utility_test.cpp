#include "privaudit/audit/privacy_utility.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "privaudit/report/sections.h"
#include "test_util.h"

namespace privaudit::audit {
namespace {

using Json = nlohmann::json;

Json done(const Json& results) {
  return {{"status", "done"}, {"seconds", 1.0}, {"results", results}};
}

// privaudit gradients' results: batch-1 targets at these PSNRs, `exact` of them certified.
Json gradients_results(const std::vector<double>& psnr, int exact) {
  Json targets = Json::array();
  for (const double p : psnr) targets.push_back({{"psnr", p}});
  return {{"strongest",
           {{{"batch_size", 1},
             {"psnr", 0.0},
             {"exact", exact},
             {"targets_scored", psnr.size()},
             {"targets", targets}}}}};
}

// privaudit membership's results: two attacks, the second the strongest at 1 % FPR.
Json membership_results(double epsilon_hat, double delta) {
  const auto attack = [&](const char* name, double tpr, double epsilon) {
    return Json{{"attack", name},
                {"auc", 0.5},
                {"tpr_at_1_percent_fpr", tpr},
                {"tpr_at_1_percent_fpr_low", tpr / 2},
                {"tpr_at_1_percent_fpr_high", tpr * 2},
                {"epsilon_lower_bound", epsilon},
                {"epsilon", {{"delta", delta}}}};
  };
  return {{"attacks", {attack("loss", 0.011, 0.0), attack("lira_online", 0.02, epsilon_hat)}}};
}

// A gathered audit (plan.h's gather_audit) of one CNN with a DP point whose references spent
// `epsilon` and whose attacks prove `epsilon_hat`, a defended update, and the defend stage.
Json gathered(double epsilon, double epsilon_hat) {
  const Json privacy = {{"epsilon", epsilon}, {"delta", 1e-5}};
  Json dp = {{"point", "dp-eps8"},
             {"train", done({{"test_accuracy", 0.80}, {"privacy", privacy}})},
             {"membership", done(membership_results(epsilon_hat, 1e-5))}};
  dp["membership"]["results"]["reference_models"] = {{"privacy", privacy}};
  auto update_results = gradients_results({10, 12, 14, 16, 18}, 0);
  update_results["update_defense"] = {
      {"clip_norm", 1.0}, {"noise_sigma", 0.001}, {"keep_fraction", 1.0}, {"quantization_bits", 0}};
  const Json update = {{"point", "update-clip1-noise0.001"}, {"gradients", done(update_results)}};
  const Json cnn = {{"name", "cnn"},
                    {"train", done({{"test_accuracy", 0.90}})},
                    {"gradients", done(gradients_results({100, 100, 100, 40, 30}, 3))},
                    {"membership", done(membership_results(0.4, 1e-5))},
                    {"defended", {dp, update}}};
  const Json defend = {
      {"name", "defense"},
      {"defend", done({{"points",
                        {{{"lambda", 0.0}, {"loss", "pixel"}, {"test_accuracy", 0.9}},
                         {{"lambda", 3.0},
                          {"loss", "pixel"},
                          {"test_accuracy", 0.85},
                          {"attack_psnr", 12.0},
                          {"attack_psnr_per_image", {11.0, 12.0, 13.0}}}}}})}};
  return Json::array({cnn, defend});
}

// The view reads every defense's row from the gathered stages: the undefended model first, the
// DP point with the accountant's epsilon beside the measured one, the defended update without a
// utility figure (it trains no model), and the defend stage's lambda joining the CNN's table.
TEST(PrivacyUtility, ReadsARowPerDefenseWithItsStrongestAttack) {
  const auto view = privacy_utility(gathered(8.0, 0.5));
  ASSERT_EQ(view.architectures.size(), 1u);
  const auto& rows = view.architectures[0].rows;
  EXPECT_EQ(view.architectures[0].arch, "cnn");
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[0].defense, "none");
  EXPECT_DOUBLE_EQ(rows[0].test_accuracy, 0.90);
  EXPECT_DOUBLE_EQ(rows[0].psnr, 100.0);  // the median of the five targets
  EXPECT_EQ(rows[0].exact, 3);
  EXPECT_EQ(rows[0].membership_attack, "lira_online");
  EXPECT_DOUBLE_EQ(rows[0].epsilon_measured, 0.4);
  EXPECT_TRUE(std::isnan(rows[0].epsilon_accountant));
  EXPECT_EQ(rows[1].defense, "dp-sgd");
  EXPECT_EQ(rows[1].setting, "epsilon 8");
  EXPECT_DOUBLE_EQ(rows[1].test_accuracy, 0.80);
  EXPECT_DOUBLE_EQ(rows[1].tpr_1, 0.02);
  EXPECT_DOUBLE_EQ(rows[1].tpr_1_high, 0.04);
  EXPECT_DOUBLE_EQ(rows[1].epsilon_accountant, 8.0);
  EXPECT_FALSE(rows[1].violation);
  EXPECT_EQ(rows[2].defense, "update");
  EXPECT_EQ(rows[2].setting, "clip 1, noise 0.001");
  EXPECT_TRUE(std::isnan(rows[2].test_accuracy));
  EXPECT_FALSE(rows[2].utility_note.empty());
  EXPECT_DOUBLE_EQ(rows[2].psnr, 14.0);
  EXPECT_LE(rows[2].psnr_low, 14.0);
  EXPECT_GE(rows[2].psnr_high, 14.0);
  EXPECT_EQ(rows[3].setting, "lambda 0 (pixel), undefended");  // the features' baseline
  EXPECT_EQ(rows[4].defense, "adversarial");
  EXPECT_EQ(rows[4].setting, "lambda 3 (pixel)");
  EXPECT_EQ(rows[4].surface, "features");
  EXPECT_DOUBLE_EQ(rows[4].psnr, 12.0);
  EXPECT_FALSE(view.violation);
  const auto json = to_json(view);
  EXPECT_EQ(json["violation"], false);
  EXPECT_EQ(json["architectures"][0]["rows"][1]["epsilon_accountant"], 8.0);
  EXPECT_TRUE(json["architectures"][0]["rows"][2]["test_accuracy"].is_null());
}

// Each architecture's own defend stage (an audit of 2026-12-07 on) joins that architecture's
// table; test accuracy carries the Clopper-Pearson interval of its test set where the stage
// recorded its size (2,000 images: 0.90 [0.886, 0.913]), none where it did not.
TEST(PrivacyUtility, EachArchitecturesDefenseJoinsItsOwnTableWithAccuracyIntervals) {
  const Json dataset = {{"test_size", 2000}};
  const Json points = {{{"lambda", 0.0},
                        {"loss", "pixel"},
                        {"test_accuracy", 0.9},
                        {"attack_psnr_per_image", {20.0, 21.0, 22.0}}},
                       {{"lambda", 10.0},
                        {"loss", "pixel"},
                        {"test_accuracy", 0.7},
                        {"attack_psnr_per_image", {15.0, 16.0, 17.0}}}};
  const Json mlp = {
      {"name", "mlp"},
      {"train", done({{"test_accuracy", 0.90}, {"dataset", dataset}})},
      {"defend", done({{"points", points}, {"dataset", dataset}, {"model", {{"arch", "mlp"}}}})}};
  const Json vit = {{"name", "vit"}, {"train", done({{"test_accuracy", 0.8}})}};
  const auto view = privacy_utility(Json::array({mlp, vit}));
  ASSERT_EQ(view.architectures.size(), 1u);  // the ViT has no defended row: no table
  const auto& rows = view.architectures[0].rows;
  EXPECT_EQ(view.architectures[0].arch, "mlp");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].defense, "none");
  EXPECT_EQ(rows[0].test_images, 2000);
  EXPECT_NEAR(rows[0].accuracy_low, 0.886, 0.002);
  EXPECT_NEAR(rows[0].accuracy_high, 0.913, 0.002);
  EXPECT_EQ(rows[2].defense, "adversarial");
  EXPECT_EQ(rows[2].point, "mlp/defend");
  EXPECT_EQ(rows[2].setting, "lambda 10 (pixel)");
  EXPECT_DOUBLE_EQ(rows[2].psnr, 16.0);
  EXPECT_LT(rows[2].accuracy_low, 0.7);
  EXPECT_GT(rows[2].accuracy_high, 0.7);
  EXPECT_NEAR(to_json(view)["architectures"][0]["rows"][2]["test_accuracy_high"].get<double>(),
              rows[2].accuracy_high, 1e-12);
  // The older fixture's train stage recorded no test size: no interval is made up.
  const auto old = privacy_utility(gathered(8.0, 0.5));
  EXPECT_TRUE(std::isnan(old.architectures[0].rows[0].accuracy_low));
  EXPECT_EQ(old.architectures[0].rows[0].test_images, 0);
}

// epsilon-hat <= epsilon must hold on every DP row: a measured lower bound above the accountant's
// epsilon is a bug in one of them, flagged on the row, the view and results.json.
TEST(PrivacyUtility, FlagsAMeasuredEpsilonAboveTheAccountants) {
  EXPECT_TRUE(epsilon_violated(8.5, 8.0));
  EXPECT_FALSE(epsilon_violated(8.0, 8.0));
  EXPECT_FALSE(epsilon_violated(NAN, 8.0));
  EXPECT_FALSE(epsilon_violated(9.0, NAN));  // no guarantee: nothing to violate
  const auto bad = privacy_utility(gathered(1.0, 1.7));
  ASSERT_EQ(bad.architectures.size(), 1u);
  EXPECT_TRUE(bad.architectures[0].rows[1].violation);
  EXPECT_FALSE(bad.architectures[0].rows[0].violation);  // the undefended model has no epsilon
  EXPECT_TRUE(bad.violation);
  EXPECT_EQ(to_json(bad)["architectures"][0]["rows"][1]["violation"], true);
  // A bound at a smaller delta than the guarantee's is not comparable, so never a violation.
  auto smaller_delta = gathered(1.0, 1.7);
  smaller_delta[0]["defended"][0]["membership"]["results"]["attacks"][1]["epsilon"]["delta"] = 1e-7;
  for (auto& attack : smaller_delta[0]["defended"][0]["membership"]["results"]["attacks"])
    attack["epsilon"]["delta"] = 1e-7;
  EXPECT_FALSE(privacy_utility(smaller_delta).violation);
}

// Without --defend there is no view, and a failed stage names itself in its row.
TEST(PrivacyUtility, IsEmptyWithoutDefendedStagesAndNamesAFailedStage) {
  auto audit = gathered(8.0, 0.5);
  EXPECT_TRUE(privacy_utility(Json::array({Json{{"name", "mlp"}}})).empty());
  audit[0]["defended"][0]["train"] = {{"status", "timed out"}, {"results", nullptr}};
  const auto view = privacy_utility(audit);
  EXPECT_EQ(view.architectures[0].rows[1].status, "train timed out");
  EXPECT_TRUE(std::isnan(view.architectures[0].rows[1].test_accuracy));
}

// The view's plots: a point per defended model with a measured accuracy and leak, a series per
// defense (and surface, for reconstruction); the section writes them beside the report.
TEST(PrivacyUtility, PlotsAccuracyAgainstEachLeakAPointPerMeasuredModel) {
  PrivacyUtilityTable arch;
  arch.arch = "mlp";
  const auto row = [](std::string defense, std::string surface, double accuracy, double psnr,
                      double tpr) {
    PrivacyUtilityRow r;
    r.defense = std::move(defense);
    r.surface = std::move(surface);
    r.test_accuracy = accuracy;
    r.psnr = psnr;
    r.psnr_low = psnr - 1;
    r.psnr_high = psnr + 1;
    r.tpr_1 = tpr;
    r.tpr_1_low = tpr / 2;
    r.tpr_1_high = tpr * 2;
    return r;
  };
  const double nan = std::nan("");
  arch.rows = {row("none", "gradients", 0.85, 100.0, 0.02),
               row("dp-sgd", "gradients", 0.80, 12.0, 0.011),
               row("dp-sgd", "gradients", 0.70, 10.0, 0.010),
               row("update", "gradients", nan, 20.0, nan),        // no model trained
               row("adversarial", "features", 0.84, 15.0, nan)};  // membership not run
  const auto plots = report::privacy_utility_plots(arch);
  ASSERT_EQ(plots.size(), 2u);
  const auto& reconstruction = plots[0].series;
  ASSERT_EQ(reconstruction.size(), 3u);
  EXPECT_EQ(reconstruction[0].name, "none (gradients)");
  EXPECT_EQ(reconstruction[1].name, "dp-sgd (gradients)");
  EXPECT_EQ(reconstruction[1].x, (std::vector<double>{0.80, 0.70}));
  EXPECT_EQ(reconstruction[1].y, (std::vector<double>{12.0, 10.0}));
  EXPECT_EQ(reconstruction[1].low, (std::vector<double>{11.0, 9.0}));
  EXPECT_EQ(reconstruction[2].name, "adversarial (features)");
  const auto& membership = plots[1].series;
  ASSERT_EQ(membership.size(), 2u);
  EXPECT_EQ(membership[1].name, "dp-sgd");
  EXPECT_EQ(membership[1].high, (std::vector<double>{0.022, 0.020}));
  EXPECT_DOUBLE_EQ(plots[1].reference_y, 0.01);

  testing::TempDir dir;
  PrivacyUtility view;
  view.architectures = {arch};
  const auto html = report::privacy_utility_section(dir.path(), view);
  for (const char* file :
       {"privacy_utility_mlp_reconstruction.svg", "privacy_utility_mlp_membership.svg"}) {
    EXPECT_TRUE(std::filesystem::exists(dir.path() / file)) << file;
    EXPECT_NE(html.find(file), std::string::npos) << file;
  }
}

}  // namespace
}  // namespace privaudit::audit
