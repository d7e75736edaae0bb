#include "privaudit/audit/defended_points.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "audit/audit_fixtures.h"
#include "privaudit/util/error.h"
#include "test_util.h"

namespace privaudit::audit {
namespace {

std::string flag_value(const std::vector<std::string>& args, const std::string& flag) {
  const auto at = std::find(args.begin(), args.end(), flag);
  return at == args.end() || at + 1 == args.end() ? "" : *(at + 1);
}

std::vector<AuditStage> points_of(const std::vector<AuditStage>& stages) {
  std::vector<AuditStage> out;
  for (const auto& s : stages) {
    if (!s.point.empty()) out.push_back(s);
  }
  return out;
}

// --defend plans, per architecture and with the audit's seed only, a DP-SGD training and a
// membership stage per epsilon of the profile (quick: 8; paper: 1, 8, 64), whose reference models
// train with the same DP recipe on halves of twice the training's size (the same N, rate and
// steps, so the same accountant epsilon), and one gradients stage per update defense on the main
// model at batch 1.
TEST(DefendedPoints, EachProfilePlansItsEpsilonsAndUpdateDefensesPerArchitecture) {
  AuditPlanOptions options;
  options.archs = "mlp,cnn";
  options.defend = true;
  options.repeats = 2;
  const auto stages = plan_audit(options, "out");
  const auto points = points_of(stages);
  ASSERT_EQ(points.size(), 2u * (2u + 2u));  // per arch: DP train + membership, 2 updates
  const auto quick = audit_profile("quick");
  for (const auto& s : points) {
    EXPECT_EQ(s.repeat, 0) << s.id;
    EXPECT_EQ(flag_value(s.args, "--seed"), "0") << s.id;
  }
  const auto& train = points[0];
  EXPECT_EQ(train.id, "mlp/dp-eps8/train");
  EXPECT_EQ(train.dir, std::filesystem::path("out/mlp/dp-eps8/train"));
  EXPECT_EQ(flag_value(train.args, "--dp-epsilon"), "8");
  EXPECT_EQ(flag_value(train.args, "--train-size"), std::to_string(quick.train.train_size));
  EXPECT_EQ(flag_value(train.args, "--optimizer"), "sgd");
  const auto& membership = points[1];
  EXPECT_EQ(membership.command, "membership");
  EXPECT_EQ(flag_value(membership.args, "--dp-epsilon"), "8");
  EXPECT_EQ(flag_value(membership.args, "--train-size"),
            std::to_string(2 * quick.train.train_size));
  EXPECT_EQ(flag_value(membership.args, "--epochs"), std::to_string(quick.train.epochs));
  EXPECT_EQ(flag_value(membership.args, "--batch-size"), flag_value(train.args, "--batch-size"));
  EXPECT_EQ(flag_value(membership.args, "--lr"), flag_value(train.args, "--lr"));
  const auto& noise = points[2];
  EXPECT_EQ(noise.id, "mlp/update-clip1-noise0.001/gradients");
  EXPECT_EQ(noise.model, "out/mlp/train/model.pt");
  EXPECT_EQ(flag_value(noise.args, "--batch"), "1");
  EXPECT_EQ(flag_value(noise.args, "--defend-noise"), "0.001");
  EXPECT_EQ(points[3].id, "mlp/update-keep0.1/gradients");
  // Without --defend none; paper: three epsilons and six update defenses.
  options.defend = false;
  EXPECT_TRUE(points_of(plan_audit(options, "out")).empty());
  options.defend = true;
  options.repeats = 1;
  options.archs = "cnn";
  options.profile = "paper";
  const auto paper = points_of(plan_audit(options, "out"));
  ASSERT_EQ(paper.size(), 3u * 2u + 6u);
  EXPECT_EQ(paper[0].id, "cnn/dp-eps1/train");
  EXPECT_EQ(paper[4].id, "cnn/dp-eps64/train");
  EXPECT_EQ(flag_value(paper[5].args, "--train-size"), "60000");  // halves of all 60,000
  EXPECT_EQ(update_point({"--defend-clip", "1", "--defend-noise", "0.01"}),
            "update-clip1-noise0.01");
  // --defend-epsilons replaces the profile's epsilons; nonsense is refused.
  options.profile = "quick";
  options.defend_epsilons = std::vector<double>{1, 64};
  const auto chosen = points_of(plan_audit(options, "out"));
  ASSERT_EQ(chosen.size(), 2u * 2u + 2u);
  EXPECT_EQ(chosen[0].id, "cnn/dp-eps1/train");
  EXPECT_EQ(flag_value(chosen[1].args, "--dp-epsilon"), "1");
  EXPECT_EQ(chosen[2].id, "cnn/dp-eps64/train");
  for (const auto& bad : {std::vector<double>{}, std::vector<double>{8, 0}, std::vector<double>{-1},
                          std::vector<double>{1e9}}) {
    options.defend_epsilons = bad;
    EXPECT_THROW(plan_audit(options, "out"), UsageError);
  }
}

// Gathering puts a point's stages under its architecture's "defended" entry, never over the
// architecture's own train or gradients.
TEST(DefendedPoints, GatherPutsEachPointUnderDefended) {
  testing::TempDir dir;
  AuditPlanOptions options;
  options.archs = "mlp";
  options.profile = "smoke";
  options.defend = true;
  options.memorization_sizes = std::vector<int64_t>{};
  const auto stages = plan_audit(options, dir.path());
  const auto archs = testing::gather_named_stages(stages, dir.path());
  ASSERT_EQ(archs.size(), 1u);  // the MLP, its defense included
  const auto& mlp = archs[0];
  EXPECT_EQ(mlp["defend"]["results"]["stage"], "mlp/defend");
  EXPECT_EQ(mlp["train"]["results"]["stage"], "mlp/train");
  ASSERT_EQ(mlp["defended"].size(), 3u);
  EXPECT_EQ(mlp["defended"][0]["point"], "dp-eps8");
  EXPECT_EQ(mlp["defended"][0]["train"]["results"]["stage"], "mlp/dp-eps8/train");
  EXPECT_EQ(mlp["defended"][0]["membership"]["results"]["stage"], "mlp/dp-eps8/membership");
  EXPECT_EQ(mlp["defended"][2]["gradients"]["results"]["stage"], "mlp/update-keep0.1/gradients");
}

}  // namespace
}  // namespace privaudit::audit
