#include "privaudit/audit/analysis.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "audit/audit_fixtures.h"

namespace privaudit::audit {
namespace {

using testing::memorizing_arch;
using testing::ranking_of;
using testing::surface_archs;
using testing::verdict_of;

// An architecture built as typed records, no JSON: `likeness` of 40 reconstructions nearer to
// training images, and batch-1 gradient targets at `psnr` dB of which `exact` certified.
Architecture typed_arch(const std::string& name, double likeness, double psnr, int64_t exact) {
  Architecture arch;
  arch.name = name;
  InversionRecord inversion;
  for (int i = 0; i < 40; ++i)
    inversion.reconstructions.push_back({i < likeness * 40 ? 1.0 : 0.0, 0.3, 0.3});
  arch.run.invert.present = true;
  arch.run.invert.status = "done";
  arch.run.invert.results = inversion;
  GradientRecord gradients;
  gradients.has_strongest = true;
  StrongestAttack at1;
  at1.batch_size = 1;
  at1.psnr = psnr;
  at1.exact = exact;
  at1.targets_scored = 8;
  for (int i = 0; i < 8; ++i) at1.target_psnr.push_back(psnr + (i % 2 ? 0.5 : -0.5));
  gradients.strongest.push_back(at1);
  arch.run.gradients.present = true;
  arch.run.gradients.results = gradients;
  return arch;
}

TEST(AuditAnalysis, BuildsAVerdictFromTypedRecordsWithoutJsonOrHtml) {
  AuditRecords records;
  records.architectures = {typed_arch("mlp", 0.95, 100, 8), typed_arch("cnn", 0.5, 20, 0),
                           typed_arch("vit", 0.45, 35, 0)};
  records.baselines.measured = true;
  records.baselines.class_mean_psnr = 13.7;
  const auto verdict = analyse(records);
  const auto& weights = verdict.surfaces.at("weights");
  ASSERT_EQ(weights.order.size(), 3u);
  EXPECT_EQ(weights.order[0].arch, "mlp");
  EXPECT_DOUBLE_EQ(weights.order[0].value, 0.95);
  EXPECT_TRUE(weights.top_ranked());
  EXPECT_GT(weights.order[0].low, 0.5);
  const auto& gradients = verdict.surfaces.at("gradients");
  EXPECT_EQ(gradients.order[0].arch, "mlp");
  EXPECT_EQ(gradients.order[1].arch, "vit");
  EXPECT_TRUE(gradients.steps[0].ranked);
  // The scorecard: one row per surface, a cell per architecture, each with what it means.
  ASSERT_GE(verdict.scorecard.size(), 3u);
  const auto cell = [&](const std::string& surface, const std::string& arch) {
    for (const auto& row : verdict.scorecard) {
      if (row.surface != surface) continue;
      for (const auto& c : row.cells) {
        if (c.arch == arch) return c;
      }
    }
    ADD_FAILURE() << "no cell " << surface << " x " << arch;
    return ScoreCell{};
  };
  EXPECT_EQ(cell("weights", "mlp").severity, Severity::kLeak);
  EXPECT_EQ(cell("weights", "cnn").severity, Severity::kNothing);
  EXPECT_EQ(cell("gradients", "mlp").severity, Severity::kExact);
  EXPECT_EQ(cell("gradients", "mlp").exact->first, 8);
  EXPECT_EQ(cell("gradients", "vit").severity, Severity::kRecovered);
  EXPECT_EQ(cell("gradients", "cnn").severity, Severity::kLeak);  // above the 13.7 dB baseline
  EXPECT_EQ(cell("features", "cnn").severity, Severity::kNotRun);
  EXPECT_DOUBLE_EQ(cell("gradients", "vit").value, gradients.entry("vit")->value);
  // The claims and the recommendations come with it.
  ASSERT_EQ(verdict.claims.size(), 4u);
  // mlp > vit is ranked, vit 0.45 against cnn 0.50 is not.
  EXPECT_EQ(verdict.claims[0].verdict, "indistinguishable");
  EXPECT_FALSE(verdict.recommendations.empty());
}

TEST(AuditAnalysis, ScorecardSaysNothingMeasuredBelowChanceAndTheResultsCarryIt) {
  AuditRecords records;
  records.architectures = {typed_arch("mlp", 0.5, 12, 0), typed_arch("cnn", 0.5, 12.5, 0)};
  records.baselines.measured = true;
  records.baselines.class_mean_psnr = 13.7;
  const auto verdict = analyse(records);
  for (const auto& row : verdict.scorecard) {
    for (const auto& c : row.cells) {
      if (row.surface == "features") continue;
      EXPECT_EQ(c.severity, Severity::kNothing) << row.surface << " " << c.arch;
    }
  }
  const auto json = to_json(verdict);
  ASSERT_TRUE(json.contains("scorecard"));
  EXPECT_EQ(json["scorecard"][0]["surface"], "weights");
  EXPECT_EQ(json["scorecard"][0]["cells"][0]["severity"], "nothing");
}

TEST(AuditAnalysis, RanksByNearestTrainSsimMostReconstructableFirst) {
  nlohmann::json mlp = {{"name", "mlp"}}, cnn = {{"name", "cnn"}};
  mlp["invert"]["results"]["summary"] = {{"nearest_train_ssim", 0.41}};
  cnn["invert"]["results"]["summary"] = {{"nearest_train_ssim", 0.29}};
  const auto ranking = ranking_of(nlohmann::json::array({mlp, cnn}));
  ASSERT_EQ(ranking["figure"], "nearest_train_ssim");
  ASSERT_EQ(ranking["order"].size(), 2u);
  EXPECT_EQ(ranking["order"][0]["arch"], "mlp");
  EXPECT_DOUBLE_EQ(ranking["order"][1]["value"].get<double>(), 0.29);
}

TEST(AuditAnalysis, FallsBackToGradientPsnrWithoutInversion) {
  nlohmann::json archs = nlohmann::json::array(
      {{{"name", "a"},
        {"gradients", {{"results", {{"runs", {{{"batch_size", 1}, {"psnr", 20.0}}}}}}}}},
       {{"name", "b"},
        {"gradients",
         {{"results",
           {{"runs",
             {{{"batch_size", 1}, {"psnr", 35.0}}, {{"batch_size", 8}, {"psnr", 50.0}}}}}}}}}});
  const auto ranking = ranking_of(archs);
  EXPECT_EQ(ranking["figure"], "gradient_psnr_batch1");
  EXPECT_EQ(ranking["order"][0]["arch"], "b");
  EXPECT_DOUBLE_EQ(ranking["order"][0]["value"].get<double>(), 35.0);
}

TEST(AuditAnalysis, RanksEachSurfaceOnlyWhereTheIntervalOfTheDifferenceExcludesZero) {
  // Weights: 0.55 vs 0.50 of 40 images each is noise; gradients: 60 vs 12 dB is not.
  const auto ranking = ranking_of(surface_archs(0.55, 0.5, 12.0, 60.0));
  const auto& weights = ranking["surfaces"]["weights"];
  ASSERT_EQ(weights["order"].size(), 2u);
  EXPECT_EQ(weights["order"][0]["arch"], "a");
  EXPECT_LT(weights["order"][0]["low"].get<double>(), 0.55);
  EXPECT_GT(weights["order"][0]["high"].get<double>(), 0.55);
  EXPECT_EQ(weights["steps"][0]["decision"], "indistinguishable");
  EXPECT_GT(weights["steps"][0]["more_targets"].get<int64_t>(), 0);
  const auto& gradients = ranking["surfaces"]["gradients"];
  EXPECT_EQ(gradients["order"][0]["arch"], "b");
  EXPECT_EQ(gradients["steps"][0]["decision"], "ranked");
  const auto& features = ranking["surfaces"]["features"];
  ASSERT_EQ(features["order"].size(), 2u);
  EXPECT_EQ(features["order"][0]["arch"], "b");
  EXPECT_DOUBLE_EQ(features["order"][0]["value"].get<double>(), 60.0);
  EXPECT_EQ(features["steps"][0]["decision"], "ranked");
  // One plain finding and one recommendation per surface, following from the figures.
  ASSERT_EQ(ranking["recommendations"].size(), 3u);
  EXPECT_NE(ranking["recommendations"][0]["finding"].get<std::string>().find(
                "rebuilt exactly from the gradient of b (40/40)"),
            std::string::npos);
}

TEST(AuditAnalysis, MemorisationRegimeSaysWhichArchitectureLeaks) {
  const auto ranking = ranking_of(nlohmann::json::array(
      {memorizing_arch("mlp", 0.95, 60, 20), memorizing_arch("cnn", 0.5, 60, 20)}));
  const auto& memorization = ranking["memorization"];
  ASSERT_EQ(memorization.size(), 1u);
  EXPECT_EQ(memorization[0]["per_class"], 10);
  EXPECT_EQ(memorization[0]["surface"]["order"][0]["arch"], "mlp");
  EXPECT_EQ(memorization[0]["surface"]["steps"][0]["decision"], "ranked");
  for (const auto& a : memorization[0]["architectures"]) {
    EXPECT_EQ(a["leak"], a["arch"] == "mlp") << a.dump();
    EXPECT_DOUBLE_EQ(a["train_accuracy"].get<double>(), 1.0);
  }
}

// The seeds' claims: reproduced when every comparison is ranked the claimed way, not reproduced
// when one is ranked the other way, indistinguishable otherwise.
TEST(AuditAnalysis, ClaimsFollowFromTheIntervals) {
  const auto verdict = [](const nlohmann::json& archs, const std::string& source) {
    for (const auto& c : verdict_of(archs).claims) {
      if (c.source.rfind(source, 0) == 0) return c.verdict;
    }
    return std::string("missing");
  };
  // MLP > ViT > CNN from the weights at 10 per class, batch 1 far above batch 8.
  const auto as_claimed = nlohmann::json::array({memorizing_arch("mlp", 0.95, 60, 20),
                                                 memorizing_arch("vit", 0.5, 60, 20),
                                                 memorizing_arch("cnn", 0.05, 60, 20)});
  EXPECT_EQ(verdict(as_claimed, "000"), "reproduced");
  EXPECT_EQ(verdict(as_claimed, "003"), "reproduced");
  EXPECT_EQ(verdict(as_claimed, "004"), "not measured");  // no layers stage
  EXPECT_EQ(verdict(as_claimed, "002"), "not measured");  // no defense
  // The CNN leaking most contradicts the claim; batch 8 above batch 1 contradicts the other.
  const auto against = nlohmann::json::array({memorizing_arch("mlp", 0.05, 20, 60),
                                              memorizing_arch("vit", 0.5, 20, 60),
                                              memorizing_arch("cnn", 0.95, 20, 60)});
  EXPECT_EQ(verdict(against, "000"), "not reproduced");
  EXPECT_EQ(verdict(against, "003"), "not reproduced");
  // Within the noise.
  const auto close = nlohmann::json::array({memorizing_arch("mlp", 0.55, 30, 29.5),
                                            memorizing_arch("vit", 0.5, 30, 29.5),
                                            memorizing_arch("cnn", 0.5, 30, 29.5)});
  EXPECT_EQ(verdict(close, "000"), "indistinguishable");
  // Batch 1 is 0.5 dB above batch 8 on every one of the same 16 targets: compared target by
  // target (paired) that is no longer noise (the first version compared two independent samples
  // and called it indistinguishable).
  EXPECT_EQ(verdict(close, "003"), "reproduced");
  const auto level = nlohmann::json::array({memorizing_arch("mlp", 0.55, 30, 30),
                                            memorizing_arch("vit", 0.5, 30, 30),
                                            memorizing_arch("cnn", 0.5, 30, 30)});
  EXPECT_EQ(verdict(level, "003"), "indistinguishable");
}

// --repeats: every seed's targets count in the interval.
TEST(AuditAnalysis, RepeatsArePooledIntoTheIntervals) {
  auto arch = memorizing_arch("mlp", 0.9, 60, 20);
  arch["repeats"] = nlohmann::json::array({memorizing_arch("mlp", 0.9, 60, 20)});
  const auto one = ranking_of(nlohmann::json::array({memorizing_arch("mlp", 0.9, 60, 20)}));
  const auto two = ranking_of(nlohmann::json::array({arch}));
  EXPECT_EQ(one["surfaces"]["weights"]["order"][0]["n"], 40);
  EXPECT_EQ(two["surfaces"]["weights"]["order"][0]["n"], 80);
  EXPECT_EQ(two["surfaces"]["gradients"]["order"][0]["n"], 32);
  EXPECT_EQ(two["memorization"][0]["surface"]["order"][0]["n"], 80);
  const auto width = [](const nlohmann::json& r) {
    const auto& e = r["memorization"][0]["surface"]["order"][0];
    return e["high"].get<double>() - e["low"].get<double>();
  };
  EXPECT_LT(width(two), width(one));
}

// An audit never reports less than an attack achieves: the federated table's one-image, one-step
// setting is the batch-1 gradient, so it shows the gradients stage's strongest attack when that
// reached more; a setting it cannot stand for keeps its own figure.
TEST(AuditAnalysis, FederatedCellNeverFallsBelowTheGradientsStage) {
  auto arch = memorizing_arch("mlp", 0.5, 90, 20);
  arch["federated"]["results"] = {
      {"federated", {{"attacks", {"ig"}}}},
      {"sweep",
       {{{"label", "clients1"}, {"clients", 1}, {"psnr", 30.0}, {"median_psnr", 29.0}},
        {{"label", "clients8"}, {"clients", 8}, {"psnr", 10.0}, {"median_psnr", 9.0}}}}};
  const auto verdict = verdict_of(nlohmann::json::array({arch}));
  const auto& table = verdict.federated;
  ASSERT_EQ(table.rows.size(), 2u);
  EXPECT_EQ(table.attacks, std::vector<std::string>{"ig"});
  EXPECT_TRUE(table.rows[0].cells[0].from_gradients_stage);
  EXPECT_DOUBLE_EQ(table.rows[0].cells[0].psnr, 90.0);
  EXPECT_FALSE(table.rows[1].cells[0].from_gradients_stage);
  EXPECT_DOUBLE_EQ(table.rows[1].cells[0].psnr, 10.0);
}

TEST(AuditRecords, MalformedFieldsReadAsMissingNotAsErrors) {
  const auto archs = architectures_from_json(nlohmann::json::parse(R"([
    {"name": 3, "train": {"status": "done", "results": {"test_accuracy": "x",
                                                         "dataset": {"train_size": 100}}},
     "invert": {"status": "failed", "message": "out of memory", "results": null},
     "gradients": {"results": {"strongest": [{"batch_size": 1, "targets": [{"psnr": null}]}]}},
     "layers": {"results": {"layers": [{"decoder_psnr_per_image": [1, "a", 2]}]}}}])"));
  ASSERT_EQ(archs.size(), 1u);
  const auto& a = archs[0];
  EXPECT_EQ(a.name, "?");
  ASSERT_TRUE(a.run.train.results.has_value());
  EXPECT_TRUE(std::isnan(a.run.train.results->test_accuracy));
  EXPECT_EQ(a.main_per_class(), 0);
  EXPECT_EQ(a.run.invert.status, "failed");
  EXPECT_EQ(a.run.invert.message, "out of memory");
  EXPECT_FALSE(a.run.invert.results.has_value());
  EXPECT_TRUE(a.run.gradients.results->at(1)->target_psnr.empty());
  EXPECT_EQ(*a.run.layers.results->layers[0].decoder_psnr_per_image, (std::vector<double>{1, 2}));
  EXPECT_FALSE(a.run.federated.present);
}

// Gradient results of one architecture at `batch`: per-target PSNR on the test images `indices`,
// the targets at 100 dB certified by a closed-form attack.
nlohmann::json gradient_arch(const std::string& name, int batch, const std::vector<double>& psnr,
                             const std::vector<int>& indices) {
  nlohmann::json targets = nlohmann::json::array();
  for (const double p : psnr) targets.push_back({{"psnr", p}, {"certified", p >= 100}});
  nlohmann::json arch = {{"name", name}};
  arch["gradients"]["results"]["targets"] = {{"indices", indices}};
  arch["gradients"]["results"]["strongest"] =
      nlohmann::json::array({{{"batch_size", batch}, {"psnr", 0.0}, {"targets", targets}}});
  return arch;
}

TEST(AuditAnalysis, CappedPsnrIsSummarisedByItsMedianAndTheShareRecoveredExactly) {
  // 3 of 8 targets rebuilt exactly (capped at 100 dB): their mean, 46.25 dB, says "visually
  // recovered" of a batch whose typical target is not; the median says 17 dB, 3 of 8 exact.
  const std::vector<double> psnr = {100, 10, 100, 12, 14, 100, 16, 18};
  const auto archs = nlohmann::json::array(
      {gradient_arch("mlp", 8, psnr, {0, 1, 2, 3, 4, 5, 6, 7}),
       gradient_arch("cnn", 8, {9, 10, 11, 12, 13, 14, 15, 16}, {0, 1, 2, 3, 4, 5, 6, 7})});
  const auto ranking = ranking_of(archs);
  const auto& surface = ranking["surfaces"]["gradients_batch8"];
  EXPECT_EQ(surface["statistic"], "median");
  const auto& mlp = surface["order"][0];
  EXPECT_EQ(mlp["arch"], "mlp");
  EXPECT_DOUBLE_EQ(mlp["value"].get<double>(), 17.0);
  EXPECT_DOUBLE_EQ(mlp["exact_share"].get<double>(), 3.0 / 8.0);
  EXPECT_LE(mlp["low"].get<double>(), 17.0);
  EXPECT_GE(mlp["high"].get<double>(), 17.0);
  for (const auto& row : ranking["scorecard"]) {
    if (row["surface"] != "gradients_batch8") continue;
    EXPECT_EQ(row["cells"][0]["statistic"], "median");
    EXPECT_DOUBLE_EQ(row["cells"][0]["exact_share"].get<double>(), 3.0 / 8.0);
  }
}

TEST(AuditAnalysis, EqualMediansAreRankedByTheShareRecoveredExactly) {
  const auto archs =
      nlohmann::json::array({gradient_arch("cnn", 1, {20, 20, 20, 20}, {0, 1, 2, 3}),
                             gradient_arch("mlp", 1, {20, 20, 20, 100}, {0, 1, 2, 3})});
  const auto surface = ranking_of(archs)["surfaces"]["gradients"];
  EXPECT_EQ(surface["order"][0]["arch"], "mlp");
}

TEST(AuditAnalysis, ArchitecturesAttackedOnTheSameTargetsAreComparedTargetByTarget) {
  // The targets vary from 12 to 60 dB; the MLP beats the CNN by 2 dB on each of the same eight.
  const std::vector<double> cnn = {12, 30, 18, 45, 22, 60, 15, 38};
  std::vector<double> mlp;
  for (const double v : cnn) mlp.push_back(v + 2);
  const std::vector<int> same = {3, 9, 14, 20, 21, 40, 41, 50};
  const auto paired = ranking_of(
      nlohmann::json::array({gradient_arch("mlp", 1, mlp, same),
                             gradient_arch("cnn", 1, cnn, same)}))["surfaces"]["gradients"];
  ASSERT_EQ(paired["steps"].size(), 1u);
  EXPECT_TRUE(paired["steps"][0]["paired"].get<bool>());
  EXPECT_EQ(paired["steps"][0]["decision"], "ranked");
  // Other targets (another seed's images): compared as two samples, the spread hides 2 dB.
  const std::vector<int> other = {1, 2, 4, 5, 6, 7, 8, 10};
  const auto unpaired = ranking_of(
      nlohmann::json::array({gradient_arch("mlp", 1, mlp, same),
                             gradient_arch("cnn", 1, cnn, other)}))["surfaces"]["gradients"];
  EXPECT_FALSE(unpaired["steps"][0]["paired"].get<bool>());
  EXPECT_EQ(unpaired["steps"][0]["decision"], "indistinguishable");
}

TEST(AuditAnalysis, ClaimsAreDecidedAtHolmAdjustedPValues) {
  const auto claims = verdict_of(nlohmann::json::array({memorizing_arch("mlp", 0.95, 60, 20),
                                                        memorizing_arch("vit", 0.5, 60, 20),
                                                        memorizing_arch("cnn", 0.05, 60, 20)}))
                          .claims;
  std::vector<double> raw, adjusted;
  for (const auto& c : claims) {
    ASSERT_EQ(c.p_values.size(), c.adjusted_p_values.size());
    raw.insert(raw.end(), c.p_values.begin(), c.p_values.end());
    adjusted.insert(adjusted.end(), c.adjusted_p_values.begin(), c.adjusted_p_values.end());
  }
  ASSERT_EQ(raw.size(), 5u);  // 000: mlp-vit, vit-cnn; 003: one per architecture
  size_t smallest = 0;
  for (size_t i = 0; i < raw.size(); ++i) {
    EXPECT_GE(adjusted[i], raw[i]);
    if (raw[i] < raw[smallest]) smallest = i;
  }
  EXPECT_NEAR(adjusted[smallest], std::min(1.0, 5 * raw[smallest]), 1e-12);
  EXPECT_NE(claims[0].measured.find("Holm"), std::string::npos) << claims[0].measured;
  EXPECT_TRUE(claims[1].paired[0]);   // batch 1 and batch 8 on the same targets
  EXPECT_FALSE(claims[0].paired[0]);  // inversions are not paired
}

TEST(AuditAnalysis, SeedsThatDisagreeWidenTheIntervalOfRepeats) {
  // Seed 0 reads 20 dB on every target, seed 1 reads 40: pooled as 32 independent targets the
  // interval hides the seed-to-seed spread; resampling the seeds first shows it.
  auto arch = memorizing_arch("mlp", 0.9, 20, 20);
  arch["repeats"] = nlohmann::json::array({memorizing_arch("mlp", 0.9, 40, 40)});
  const auto ranking = ranking_of(nlohmann::json::array({arch}));
  const auto& e = ranking["surfaces"]["gradients"]["order"][0];
  EXPECT_LT(e["low"].get<double>(), 21.0);
  EXPECT_GT(e["high"].get<double>(), 39.0);
}

// A figure a time budget cut short is a lower bound: it is shown (marked) but decides no ranking
// and no claim, which then reads "undecided: budget"; the same records without the cut decide.
TEST(AuditAnalysis, AFigureCutShortByATimeBudgetDecidesNothing) {
  AuditRecords records;
  records.architectures = {typed_arch("mlp", 0.95, 100, 8), typed_arch("cnn", 0.5, 20, 0),
                           typed_arch("vit", 0.45, 35, 0)};
  const auto decided = analyse(records);
  ASSERT_TRUE(decided.surfaces.at("weights").steps[0].ranked);
  ASSERT_TRUE(decided.surfaces.at("gradients").steps[0].ranked);
  ASSERT_EQ(decided.claims[0].verdict, "indistinguishable");

  records.architectures[0].run.invert.budget_stopped = true;      // mlp's inversion
  records.architectures[2].run.gradients.budget_stopped = true;   // vit's gradient attacks
  const auto verdict = analyse(records);
  const auto& weights = verdict.surfaces.at("weights");
  ASSERT_EQ(weights.order[0].arch, "mlp");  // still shown, in the same place
  EXPECT_TRUE(weights.order[0].lower_bound);
  EXPECT_FALSE(weights.order[1].lower_bound);
  EXPECT_TRUE(weights.steps[0].cut_short);
  EXPECT_FALSE(weights.steps[0].ranked);
  EXPECT_FALSE(weights.steps[1].cut_short);
  const auto& gradients = verdict.surfaces.at("gradients");
  ASSERT_EQ(gradients.order.size(), 3u);
  for (const auto& step : gradients.steps) {  // mlp > vit and vit > cnn both touch the vit
    EXPECT_TRUE(step.cut_short);
    EXPECT_FALSE(step.ranked);
  }
  EXPECT_FALSE(gradients.any_tie());  // undecided is not "indistinguishable"
  // Claim 000 (mlp > vit > cnn): its only decided comparison rested on the cut inversion.
  EXPECT_EQ(verdict.claims[0].verdict, "undecided: budget");
  const auto json = to_json(verdict);
  EXPECT_EQ(json["surfaces"]["weights"]["steps"][0]["decision"], "undecided: budget");
  EXPECT_EQ(json["surfaces"]["weights"]["order"][0]["lower_bound"], true);
  EXPECT_EQ(json["surfaces"]["weights"]["steps"][1]["decision"], "indistinguishable");
  bool marked = false;
  for (const auto& row : verdict.scorecard) {
    for (const auto& c : row.cells) {
      if (row.surface == "weights" && c.arch == "mlp") marked = c.lower_bound;
    }
  }
  EXPECT_TRUE(marked);
}

// "Every image" only when every target was rebuilt exactly; 3 of 8 are "some images".
TEST(AuditAnalysis, TheRecommendationSaysEveryImageOnlyWhenEveryOneWasExact) {
  AuditRecords records;
  records.architectures = {typed_arch("mlp", 0.5, 100, 8), typed_arch("cnn", 0.5, 30, 0)};
  const auto every = analyse(records).recommendations.at(0).finding;
  EXPECT_EQ(every.rfind("Every image shared alone was rebuilt exactly from the gradient of "
                        "mlp (8/8)", 0), 0u) << every;
  records.architectures = {typed_arch("mlp", 0.5, 60, 3), typed_arch("cnn", 0.5, 30, 0)};
  const auto some = analyse(records).recommendations.at(0).finding;
  EXPECT_EQ(some.rfind("Some images shared alone were rebuilt exactly from the gradient of "
                       "mlp (3/8)", 0), 0u) << some;
  // At batch 8 it quotes the scorecard's median and exact share, not a mean over the 100 dB cap:
  // 5 of 8 targets exact and 3 at 7 dB have a mean of 65 dB but a median of 100 dB.
  StrongestAttack at8;
  at8.batch_size = 8;
  at8.targets_scored = 8;
  at8.exact = 5;
  for (int i = 0; i < 8; ++i) at8.target_psnr.push_back(i < 5 ? 100.0 : 7.0);
  at8.psnr = (5 * 100.0 + 3 * 7.0) / 8;
  records.architectures[0].run.gradients.results->strongest.push_back(at8);
  const auto advice = analyse(records).recommendations.at(0).recommendation;
  EXPECT_NE(advice.find("at batch 8 the strongest attack reached mlp median 100.0 dB (62% exact)"),
            std::string::npos) << advice;
  EXPECT_EQ(advice.find("65.1"), std::string::npos) << advice;
}

}  // namespace
}  // namespace privaudit::audit

namespace privaudit::audit {
namespace {

// A membership stage of 4 models on a pool of 1,000 (2,000 member decisions) whose strongest
// attack (RMIA) detects the members `detected` at 1 % FPR; LOSS and LiRA detect fewer. Without
// `lists`, the stage wrote no list (results of before the list): only the counts are known.
MembershipRecord membership_record(const std::vector<int64_t>& detected, bool lists = true) {
  MembershipRecord m;
  m.pool_size = 1000;
  m.models = 4;
  m.decisions = 4000;
  m.roc_plot = "roc.svg";
  const double tpr = static_cast<double>(detected.size()) / 2000;
  MembershipAttackRecord loss, lira, rmia;
  loss.attack = "loss";
  loss.tpr_1 = 0.011;
  lira.attack = "lira_online_fixed";
  lira.tpr_1 = tpr / 2;
  rmia.attack = "rmia_offline";
  rmia.tpr_1 = tpr;
  rmia.auc = 0.7;
  rmia.epsilon = 1.5;
  if (lists) rmia.detected = detected;
  m.attacks = {loss, rmia, lira};
  return m;
}

// Members detected: every `step`-th decision from `first`, `count` of them.
std::vector<int64_t> every(int64_t first, int64_t step, int64_t count) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < count; ++i) out.push_back(first + i * step);
  return out;
}

Architecture with_membership(Architecture arch, const std::vector<int64_t>& detected,
                             bool lists = true) {
  arch.run.membership.present = true;
  arch.run.membership.status = "done";
  arch.run.membership.dir = arch.name + "/membership";
  arch.run.membership.results = membership_record(detected, lists);
  return arch;
}

const Claim& claim_000(const Verdict& verdict) {
  for (const auto& c : verdict.claims) {
    if (c.source.rfind("000", 0) == 0) return c;
  }
  throw std::runtime_error("no claim 000");
}

// The membership surface ranks on the strongest attack's TPR at 1 % FPR (RMIA here, never the
// weaker LiRA), with Clopper-Pearson intervals; architectures whose models trained on the same
// halves are compared member by member (McNemar), and apart only when the data says so.
TEST(AuditAnalysis, MembershipRanksOnTprAtOnePercentFprOfTheStrongestAttack) {
  AuditRecords records;
  // MLP 0.20, ViT 0.10, CNN 0.03 of the same 2,000 members.
  records.architectures = {with_membership(typed_arch("cnn", 0.5, 20, 0), every(0, 1, 60)),
                           with_membership(typed_arch("mlp", 0.5, 20, 0), every(0, 1, 400)),
                           with_membership(typed_arch("vit", 0.5, 20, 0), every(0, 1, 200))};
  auto verdict = analyse(records);
  const auto& surface = verdict.surfaces.at("membership");
  ASSERT_EQ(surface.order.size(), 3u);
  EXPECT_EQ(surface.order[0].arch, "mlp");
  EXPECT_EQ(surface.order[1].arch, "vit");
  EXPECT_EQ(surface.order[2].arch, "cnn");
  EXPECT_DOUBLE_EQ(surface.order[0].value, 0.2);
  EXPECT_EQ(surface.order[0].n, 2000);
  EXPECT_LT(surface.order[0].low, 0.2);
  EXPECT_GT(surface.order[0].high, 0.2);
  for (const auto& step : surface.steps) {
    EXPECT_TRUE(step.ranked) << step.higher << " > " << step.lower;
    EXPECT_TRUE(step.paired);
    EXPECT_LT(step.p_value, 1e-6);
  }
  // The table names the strongest attack and links each stage's ROC plot.
  ASSERT_EQ(verdict.membership.size(), 3u);
  EXPECT_EQ(verdict.membership[0].strongest.attack, "rmia_offline");
  EXPECT_EQ(verdict.membership[0].roc_plot, "cnn/membership/roc.svg");
  const auto json = to_json(verdict);
  EXPECT_EQ(json["membership"][1]["arch"], "mlp");
  EXPECT_DOUBLE_EQ(json["membership"][1]["tpr_at_1_percent_fpr"].get<double>(), 0.2);
  EXPECT_EQ(json["surfaces"]["membership"]["steps"][0]["decision"], "ranked");
  // The scorecard: a measurable leak where the interval's low end is above chance (0.01).
  bool found = false;
  for (const auto& row : verdict.scorecard) {
    if (row.surface != "membership") continue;
    found = true;
    EXPECT_EQ(row.title, "From the weights: membership (TPR at 1 % FPR)");
    for (const auto& cell : row.cells) EXPECT_EQ(cell.severity, Severity::kLeak) << cell.arch;
  }
  EXPECT_TRUE(found);

  // 0.100 against 0.095, the members each detects mostly different ones: no test tells them
  // apart, paired or (without the lists) unpaired; 0.012 of 2,000 is not above chance.
  records.architectures = {with_membership(typed_arch("mlp", 0.5, 20, 0), every(0, 10, 200)),
                           with_membership(typed_arch("vit", 0.5, 20, 0), every(1, 10, 190)),
                           with_membership(typed_arch("cnn", 0.5, 20, 0), every(2, 10, 24))};
  verdict = analyse(records);
  const auto& close = verdict.surfaces.at("membership");
  EXPECT_FALSE(close.steps[0].ranked);
  EXPECT_TRUE(close.steps[0].paired);
  EXPECT_GT(close.steps[0].more_targets, 0);
  for (auto& arch : records.architectures)
    arch = with_membership(arch, *arch.run.membership.results->attacks[1].detected, false);
  verdict = analyse(records);
  EXPECT_FALSE(verdict.surfaces.at("membership").steps[0].ranked);
  EXPECT_FALSE(verdict.surfaces.at("membership").steps[0].paired);
  for (const auto& row : verdict.scorecard) {
    if (row.surface != "membership") continue;
    EXPECT_EQ(row.cells[2].arch, "cnn");
    EXPECT_EQ(row.cells[2].severity, Severity::kNothing);
  }
}

// Claim 000 (MLP > ViT > CNN from the weights) is decided on membership as well as on
// reconstruction: the same reconstructions with membership ranked against the claim make it
// not reproduced.
TEST(AuditAnalysis, Claim000ReadsMembership) {
  AuditRecords records;
  records.architectures = {with_membership(typed_arch("mlp", 0.95, 20, 0), every(0, 1, 400)),
                           with_membership(typed_arch("vit", 0.6, 20, 0), every(0, 1, 200)),
                           with_membership(typed_arch("cnn", 0.05, 20, 0), every(0, 1, 60))};
  const auto verdict = analyse(records);
  const auto& as_claimed = claim_000(verdict);
  EXPECT_EQ(as_claimed.verdict, "reproduced");
  EXPECT_EQ(as_claimed.p_values.size(), 4u);  // two reconstruction, two membership comparisons
  EXPECT_NE(as_claimed.measured.find("membership mlp - vit"), std::string::npos)
      << as_claimed.measured;
  EXPECT_NE(as_claimed.measured.find("membership TPR at 1 % FPR at the main models"),
            std::string::npos);
  // Reconstruction as claimed, membership the other way round.
  records.architectures[0] = with_membership(records.architectures[0], every(0, 1, 60));
  records.architectures[2] = with_membership(records.architectures[2], every(0, 1, 400));
  EXPECT_EQ(claim_000(analyse(records)).verdict, "not reproduced");
  // Without membership stages the claim rests on reconstruction alone.
  for (auto& arch : records.architectures) arch.run.membership = {};
  EXPECT_EQ(claim_000(analyse(records)).p_values.size(), 2u);
}

}  // namespace
}  // namespace privaudit::audit
