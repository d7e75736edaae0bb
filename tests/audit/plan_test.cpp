#include "privaudit/audit/plan.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <stdexcept>

#include "audit/audit_fixtures.h"
#include "privaudit/util/error.h"
#include "privaudit/util/files.h"
#include "test_util.h"

namespace privaudit::audit {
namespace {

// The value after `flag` in a stage's command line, or "" when the flag is absent.
std::string flag_value(const AuditStage& stage, const std::string& flag) {
  const auto at = std::find(stage.args.begin(), stage.args.end(), flag);
  return at == stage.args.end() || at + 1 == stage.args.end() ? "" : *(at + 1);
}

// Every profile states work, never seconds: no stage of any profile carries a time budget, so the
// same command and seed do the same work on any machine. audit --time-budget is the opt-in cap of
// every attack stage (training and the defense are never cut). The memorisation regime's
// inversions get their own work in the quick profile.
TEST(AuditPlan, ProfilesStateWorkAndOnlyTimeBudgetCapsIt) {
  AuditPlanOptions options;
  options.archs = "mlp";
  options.defend = true;
  for (const std::string profile : {"quick", "smoke", "paper"}) {
    options.profile = profile;
    const auto stages = plan_audit(options, "out");
    for (const auto& stage : stages) {
      EXPECT_EQ(flag_value(stage, "--time-budget"), "") << profile << " " << stage.id;
      EXPECT_EQ(stage.budget, 0.0) << profile << " " << stage.id;
    }
  }
  options.profile = "quick";
  const auto stages = plan_audit(options, "out");
  // train, invert, gradients, federated, malicious, layers, membership; the memorisation
  // regime's train, invert and membership at 10 images per class; the privacy-utility points (DP
  // train and membership, two defended updates); the MLP's defend
  ASSERT_EQ(stages.size(), 15u);
  const auto quick = audit_profile("quick");
  for (const auto& stage : stages) {
    if (stage.command != "invert") continue;
    const auto& work = stage.per_class > 0 ? quick.memorize_invert : quick.invert;
    EXPECT_EQ(flag_value(stage, "--steps"), std::to_string(work.steps)) << stage.id;
    EXPECT_EQ(flag_value(stage, "--stationarity-steps"), std::to_string(work.stationarity_steps))
        << stage.id;
  }
  EXPECT_GT(quick.memorize_invert.steps, quick.invert.steps);
  options.stage_budget = 12.5;
  for (const auto& stage : plan_audit(options, "out")) {
    const bool capped =
        stage.command != "train" && stage.command != "defend" && stage.command != "membership";
    EXPECT_EQ(flag_value(stage, "--time-budget"), capped ? "12.5" : "") << stage.id;
    EXPECT_EQ(stage.budget, capped ? 12.5 : 0.0) << stage.id;
  }
}

// Every stage gets a wall-clock limit from its work: the profile's, at most 2 B + 600 s under
// --time-budget B (attack stages only), or --stage-timeout for all; --model-timeout reaches only
// the stages that attack a model file (train and defend have no such flag).
TEST(AuditPlan, EveryStageHasATimeLimitFromItsWork) {
  AuditPlanOptions options;
  options.archs = "mlp";
  options.defend = true;
  for (const std::string profile : {"quick", "smoke", "paper"}) {
    options.profile = profile;
    for (const auto& stage : plan_audit(options, "out")) {
      EXPECT_EQ(stage.time_limit, audit_profile(profile).stage_limit) << profile << stage.id;
      EXPECT_EQ(flag_value(stage, "--model-timeout"), "") << stage.id;
    }
  }
  EXPECT_EQ(audit_profile("smoke").stage_limit, 600);
  EXPECT_EQ(audit_profile("quick").stage_limit, 3600);
  EXPECT_EQ(audit_profile("paper").stage_limit, 86400);
  options.profile = "quick";
  options.stage_budget = 30;
  options.model_timeout = 2.5;
  for (const auto& stage : plan_audit(options, "out")) {
    const bool capped =
        stage.command != "train" && stage.command != "defend" && stage.command != "membership";
    EXPECT_EQ(stage.time_limit, capped ? 660 : 3600) << stage.id;
    EXPECT_EQ(flag_value(stage, "--model-timeout"), stage.model.empty() ? "" : "2.5") << stage.id;
  }
  options.stage_timeout = 5;
  for (const auto& stage : plan_audit(options, "out")) EXPECT_EQ(stage.time_limit, 5) << stage.id;
}

// The memorisation regime: per architecture and size, a training stage on that many images per
// class (epochs for ~300 steps) and an inversion of its model; --repeats runs every stage again
// with the next seeds in folders of their own; each architecture's defense runs once.
TEST(AuditPlan, MemorisationStagesAndRepeats) {
  AuditPlanOptions options;
  options.archs = "mlp,cnn";
  options.profile = "smoke";
  options.memorization_sizes = std::vector<int64_t>{10, 100};
  options.repeats = 2;
  options.defend = true;
  options.seed = 5;
  const auto stages = plan_audit(options, "out");
  // Per seed and architecture: 7 main stages + 2 sizes x (train, invert, membership); the
  // audit's own seed's privacy-utility points (DP train and membership, two defended updates)
  // and defense per architecture.
  ASSERT_EQ(stages.size(), 2u * 2u * (7u + 6u) + 2u * (4u + 1u));
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
  for (const std::string arch : {"mlp", "cnn"}) {
    const auto& defend = find(arch + "/defend");
    EXPECT_EQ(defend.repeat, 0);
    EXPECT_EQ(flag_value(defend, "--arch"), arch);
    EXPECT_EQ(defend.dir, std::filesystem::path("out/" + arch + "/defend"));
    EXPECT_GT(defend.trained_images, 0) << "its cost, for sharing the chains out";
  }
  for (const auto& stage : stages) EXPECT_NE(stage.arch, "defense") << stage.id;
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
  EXPECT_EQ(memorising, 6);  // mlp and cnn: train, invert and membership
  options.repeats = 0;
  EXPECT_THROW(plan_audit(options, "out"), UsageError);
  options.repeats = 1;
  options.memorization_sizes = std::vector<int64_t>{0};
  EXPECT_THROW(plan_audit(options, "out"), UsageError);
}

// The malicious server per architecture: the federated command with an imprint block read through
// the secure aggregate of 4 clients of 64 images, 1,024 bins on 16 calibration images per bin; its
// own folder, and its own key when gathered.
TEST(AuditPlan, PlansTheMaliciousServerPerArchitecture) {
  testing::TempDir dir;
  AuditPlanOptions options;
  options.archs = "mlp,vit";
  options.profile = "quick";
  const auto stages = plan_audit(options, dir.path());
  std::vector<const AuditStage*> malicious;
  for (const auto& stage : stages) {
    if (stage.dir.filename() == "malicious") malicious.push_back(&stage);
  }
  ASSERT_EQ(malicious.size(), 2u);
  const auto& vit = *malicious[1];
  EXPECT_EQ(vit.id, "vit/malicious");
  EXPECT_EQ(vit.command, "federated");
  EXPECT_EQ(vit.args.front(), "federated");
  EXPECT_EQ(flag_value(vit, "--server"), "imprint");
  EXPECT_EQ(flag_value(vit, "--attack"), "imprint");
  EXPECT_EQ(flag_value(vit, "--clients"), "4");
  EXPECT_EQ(flag_value(vit, "--images-per-client"), "64");
  EXPECT_EQ(flag_value(vit, "--bins"), "1024");
  EXPECT_EQ(flag_value(vit, "--local-steps"), "1");
  EXPECT_EQ(flag_value(vit, "--local-batch"), "64");
  EXPECT_EQ(flag_value(vit, "--calibration-images"), "16384");
  EXPECT_EQ(flag_value(vit, "--train-size"), "16384");
  EXPECT_EQ(flag_value(vit, "--test-size"), "256");
  EXPECT_EQ(flag_value(vit, "--out"), (dir.path() / "vit" / "malicious").string());
  EXPECT_EQ(flag_value(vit, "--model"), (dir.path() / "vit" / "train" / "model.pt").string());
  EXPECT_NE(std::find(vit.args.begin(), vit.args.end(), "--secure-aggregation"), vit.args.end());
  EXPECT_EQ(std::count(vit.args.begin(), vit.args.end(), "--sweep"), 0);
  const auto smoke = audit_profile("smoke").malicious;
  EXPECT_EQ(smoke.clients * smoke.images_per_client, 64);
  EXPECT_EQ(smoke.calibration_images, 16 * smoke.bins);
  nlohmann::json state = nlohmann::json::object();
  for (const auto& stage : stages) {
    std::filesystem::create_directories(stage.dir);
    write_file_atomic(stage.dir / "results.json", nlohmann::json({{"stage", stage.id}}).dump());
  }
  const auto archs = gather_audit(stages, state, dir.path());
  EXPECT_EQ(archs[1]["malicious"]["results"]["stage"], "vit/malicious");
  EXPECT_EQ(archs[1]["federated"]["results"]["stage"], "vit/federated");
}

// --surfaces plans only the stages of the named threat surfaces; trainings stay where a stage
// attacks their model. A --model audit of the weights runs membership on copies of that file.
TEST(AuditPlan, SurfacesChooseTheStages) {
  const auto ids = [](const AuditPlanOptions& options) {
    std::vector<std::string> out;
    for (const auto& stage : plan_audit(options, "out")) out.push_back(stage.id);
    return out;
  };
  AuditPlanOptions options;
  options.archs = "mlp";
  options.profile = "smoke";
  options.memorization_sizes = std::vector<int64_t>{3};
  options.surfaces = "gradients";
  EXPECT_EQ(ids(options), (std::vector<std::string>{"mlp/train", "mlp/gradients", "mlp/federated",
                                                    "mlp/malicious"}));
  options.surfaces = "features";
  EXPECT_EQ(ids(options), (std::vector<std::string>{"mlp/train", "mlp/layers"}));
  options.surfaces = "weights";
  EXPECT_EQ(ids(options), (std::vector<std::string>{"mlp/train", "mlp/invert", "mlp/membership",
                                                    "mlp/memorize-3/train", "mlp/memorize-3/invert",
                                                    "mlp/memorize-3/membership"}));
  options.surfaces = "weights,gradients,features";
  EXPECT_EQ(ids(options).size(), 10u);
  options.model = "user.pt";
  options.input_shape = "1,28,28";
  options.classes = 10;
  const auto stages = plan_audit(options, "out");
  std::vector<std::string> model_ids;
  for (const auto& stage : stages) model_ids.push_back(stage.id);
  EXPECT_EQ(model_ids,
            (std::vector<std::string>{"model/invert", "model/gradients", "model/federated",
                                      "model/malicious", "model/layers", "model/membership"}));
  const auto& membership = stages.back();
  EXPECT_EQ(flag_value(membership, "--model"), "user.pt");
  EXPECT_EQ(flag_value(membership, "--input-shape"), "1,28,28");
  EXPECT_EQ(flag_value(membership, "--models"), "2");
  EXPECT_EQ(flag_value(membership, "--train-size"), "600");  // halves of twice the train set
  EXPECT_EQ(flag_value(membership, "--epochs"), "1");
  EXPECT_EQ(flag_value(membership, "--arch"), "");
  options.surfaces = "features";
  EXPECT_EQ(ids(options), (std::vector<std::string>{"model/layers"}));
  for (const std::string bad : {"gradient", "", "weights,nope"}) {
    options.surfaces = bad;
    EXPECT_THROW(plan_audit(options, "out"), UsageError) << bad;
  }
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
  const auto archs = testing::gather_named_stages(stages, dir.path());
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

// Profiles are data: each stage's work becomes the flags of the sub-command a user could run by
// hand, a field left at zero leaves the sub-command's default, and the plan records the budget and
// the attacked model it gave each stage (the chains and their costs are read from them).
TEST(AuditPlan, ProfilesAreWorkThatBecomesTheStagesFlags) {
  const auto quick = audit_profile("quick");
  EXPECT_EQ(stage_args(quick.gradients),
            (std::vector<std::string>{"--attack", "all", "--batch", "1,8", "--targets", "16",
                                      "--iterations", "100", "--audit-probe-iterations", "100"}));
  EXPECT_EQ(
      stage_args(quick.train),
      (std::vector<std::string>{"--train-size", "10000", "--test-size", "2000", "--epochs", "3"}));
  const auto paper = audit_profile("paper");
  EXPECT_TRUE(stage_args(paper.train).empty());  // the command's own defaults
  EXPECT_EQ(stage_args(paper.layers), std::vector<std::string>{});
  EXPECT_EQ(stage_args(paper.federated).front(), "--sweep");
  EXPECT_THROW(audit_profile("fast"), UsageError);

  AuditPlanOptions options;
  options.archs = "mlp,cnn";
  const auto stages = plan_audit(options, "out");
  for (const auto& stage : stages) {
    const auto budget = flag_value(stage, "--time-budget");
    EXPECT_EQ(stage.budget, budget.empty() ? 0.0 : std::stod(budget)) << stage.id;
    EXPECT_EQ(stage.model, flag_value(stage, "--model")) << stage.id;
    const bool trains = stage.command == "train" || stage.command == "membership";
    EXPECT_EQ(stage.trained_images > 0, trains) << stage.id;
    if (!trains) {
      EXPECT_EQ(stage_cost(stage), 60.0) << stage.id;
    }
  }
  // A model's training and every stage attacking that model form one chain.
  const auto chains = audit_chains(stages);
  // Per architecture: its main model with the five attacks on it, its membership models, and its
  // memorisation model with its inversion and then the regime's membership models (which read
  // that inversion's reconstructions, so they wait for it).
  ASSERT_EQ(chains.size(), 6u);
  EXPECT_EQ(chains[0].size(), 6u);
  EXPECT_EQ(stages[chains[1][0]].id, "mlp/membership");
  ASSERT_EQ(chains[2].size(), 3u);
  EXPECT_EQ(stages[chains[2][1]].id, "mlp/memorize-10/invert");
  EXPECT_EQ(stages[chains[2][2]].id, "mlp/memorize-10/membership");
  EXPECT_EQ(stages[chains[3][0]].id, "cnn/train");
}

// Membership inference per architecture: K models of the main recipe, each on a random half of a
// pool twice the main model's training set, for the train stage's epochs (the profile states K);
// in the memorisation regime a pool of twice the images per class, with the regime's epochs.
TEST(AuditPlan, MembershipStagesUseTheMainRecipeOnHalvesOfAPool) {
  AuditPlanOptions options;
  options.archs = "cnn";
  options.profile = "quick";
  const auto stages = plan_audit(options, "out");
  const auto find = [&](const std::string& id) -> const AuditStage& {
    for (const auto& stage : stages) {
      if (stage.id == id) return stage;
    }
    throw std::runtime_error("no stage " + id);
  };
  const auto quick = audit_profile("quick");
  const auto& main = find("cnn/membership");
  EXPECT_EQ(main.per_class, 0);
  EXPECT_EQ(flag_value(main, "--arch"), "cnn");
  EXPECT_EQ(flag_value(main, "--models"), std::to_string(quick.membership.models));
  EXPECT_EQ(flag_value(main, "--train-size"), std::to_string(2 * quick.train.train_size));
  EXPECT_EQ(flag_value(main, "--test-size"), std::to_string(quick.train.test_size));
  EXPECT_EQ(flag_value(main, "--epochs"), std::to_string(quick.train.epochs));
  EXPECT_EQ(flag_value(main, "--out"), "out/cnn/membership");
  EXPECT_EQ(main.model, "");  // it trains its own models
  const auto& memorized = find("cnn/memorize-10/membership");
  EXPECT_EQ(memorized.per_class, 10);
  EXPECT_EQ(flag_value(memorized, "--train-per-class"), "20");
  EXPECT_EQ(flag_value(memorized, "--epochs"), std::to_string(memorization_epochs(10)));
  EXPECT_EQ(flag_value(memorized, "--batch-size"), "32");
  EXPECT_EQ(flag_value(memorized, "--models"), std::to_string(quick.membership.memorize_models));
  // Its pool holds the group's training images: the most exposed are shown beside the group's
  // reconstructions from the weights.
  EXPECT_EQ(flag_value(memorized, "--reconstructions"),
            "out/cnn/memorize-10/invert/reconstructions.pt");
  EXPECT_EQ(memorized.model, "");
  EXPECT_EQ(memorized.after, "out/cnn/memorize-10/train/model.pt");
  // The paper profile: 8-16 models, each on half of the training split.
  const auto paper = audit_profile("paper");
  EXPECT_GE(paper.membership.models, 8);
  EXPECT_LE(paper.membership.models, 16);
  options.profile = "paper";
  for (const auto& stage : plan_audit(options, "out")) {
    if (stage.id == "cnn/membership") {
      EXPECT_EQ(flag_value(stage, "--train-size"), "60000");
    }
  }
  // Smoke: two models, one epoch.
  options.profile = "smoke";
  for (const auto& stage : plan_audit(options, "out")) {
    if (stage.id != "cnn/membership") continue;
    EXPECT_EQ(flag_value(stage, "--models"), "2");
    EXPECT_EQ(flag_value(stage, "--epochs"), "1");
  }
}

// The processes of a distributed audit claim the paper profile's chains in the order of their
// expected cost, which comes from the images each stage trains: the CNN's and the ViT's 16-model
// membership stages (30-45 min each on 2026-12-06's machine) are the two costliest chains, so two
// processes start them at once. With every stage counted 60 s (30 s for a training), the
// membership chains weighed least, and the run of 2026-12-06 had one process run the MLP's main
// chain and then the CNN's membership alone for 29 minutes.
TEST(AuditPlan, PaperProfileSharesItsMembershipStagesOutByTheirTraining) {
  AuditPlanOptions options;
  options.archs = "mlp,cnn,vit";
  options.profile = "paper";
  const auto stages = plan_audit(options, "out");
  const auto chains = audit_chains(stages);
  const auto costs = chain_costs(stages, chains);
  size_t cnn = chains.size(), vit = chains.size();
  for (size_t c = 0; c < chains.size(); ++c) {
    if (stages[chains[c][0]].id == "cnn/membership") cnn = c;
    if (stages[chains[c][0]].id == "vit/membership") vit = c;
  }
  ASSERT_LT(cnn, chains.size());
  ASSERT_LT(vit, chains.size());
  auto sorted = costs;
  std::sort(sorted.rbegin(), sorted.rend());
  EXPECT_EQ(std::min(costs[cnn], costs[vit]), sorted[1]);
  EXPECT_EQ(std::max(costs[cnn], costs[vit]), sorted[0]);
  // 16 models x 30,000 images x 8 epochs at 4,400 images/s, and 60 s for the stage.
  EXPECT_NEAR(costs[cnn], 60 + 16 * 30000.0 * 8 / 4400, 1);
  // The processes claim the costliest chains first: two processes start these two at once.
  const auto order = chain_order(stages, chains);
  ASSERT_EQ(order.size(), chains.size());
  EXPECT_EQ(std::set<size_t>(order.begin(), order.begin() + 2), (std::set<size_t>{cnn, vit}));
  for (size_t k = 1; k < order.size(); ++k) EXPECT_GE(costs[order[k - 1]], costs[order[k]]);
  EXPECT_EQ(std::set<size_t>(order.begin(), order.end()).size(), chains.size());
}

}  // namespace
}  // namespace privaudit::audit
