// Membership inference: the scores of each attack by hand, the leave-one-model-out discipline (a
// target's own labels never reach its scores), the reference models' cache, and the figures on a
// deliberately memorising MLP against the shuffled-label null.
#include "privaudit/attacks/weights/membership.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "privaudit/data/spec.h"
#include "privaudit/metrics/membership_metrics.h"
#include "privaudit/train/reference_models.h"
#include "privaudit/util/error.h"
#include "test_util.h"

namespace privaudit::attacks {
namespace {

namespace fs = std::filesystem;

// A classifier whose logits are its three pixels: logits known by hand.
class PixelLogits : public models::Classifier {
 public:
  torch::Tensor forward(const torch::Tensor& images) override { return images.flatten(1) * 1.0; }
  std::vector<torch::Tensor> parameters() override { return {}; }
  models::InputShape input_shape() const override { return {1, 1, 3}; }
  int64_t num_classes() const override { return 3; }
  std::vector<std::string> cut_points() const override { return {}; }
  torch::Tensor features(const torch::Tensor& images, const std::string&) override {
    return images;
  }
  torch::Tensor forward_from(const torch::Tensor& features, const std::string&) override {
    return features;
  }
  void set_training(bool training) override { training_ = training; }
  bool is_training() const override { return training_; }
  void to(torch::Device) override {}
  torch::Device device() const override { return torch::kCPU; }
  bool has_batch_norm() const override { return false; }
  std::string kind() const override { return "pixels"; }
  std::string summary() const override { return "pixel logits"; }

 private:
  bool training_ = false;
};

torch::Tensor doubles(std::vector<double> values) { return torch::tensor(values, torch::kDouble); }

TEST(Membership, LogitConfidenceStaysFiniteWhereTheSoftmaxRoundsToOne) {
  PixelLogits model;
  const auto images = torch::tensor({40.0f, 0.0f, 0.0f, 0.0f, 1.0f, 2.0f}).view({2, 1, 1, 3});
  const auto labels = torch::tensor({0, 2}, torch::kLong);
  const auto phi = logit_confidence(model, images, labels);
  // p_y = 1 - 2e-18 is 1 in float64: log(p / (1 - p)) = 40 - log 2 from the logits.
  EXPECT_NEAR(phi[0].item<double>(), 40 - std::log(2.0), 1e-9);
  EXPECT_NEAR(phi[1].item<double>(), 2 - std::log(1 + std::exp(1.0)), 1e-6);
}

// Two pool images, three references: image 0 is OUT of references 0 and 1 (phi 1 and 3) and IN
// reference 2 (phi 10); image 1 is OUT of reference 0 (phi 0.7) and IN references 1 and 2 (5, 7).
TargetView hand_view() {
  TargetView view;
  view.target_pool = doubles({4, 1});
  view.reference_pool = doubles({1, 0.7, 3, 5, 10, 7}).view({3, 2});
  view.reference_in = torch::tensor({false, false, false, true, true, true}).view({3, 2});
  view.target_population = doubles({0, 1.5});
  view.reference_population = doubles({0, 1, 0, 1, 0, 1}).view({3, 2});
  return view;
}

TEST(Membership, LiraScoresMatchTheGaussiansByHand) {
  const auto view = hand_view();
  MembershipOptions options;
  // OUT: image 0 has mean 2 and variance 2; image 1 one score (0.7), so the pooled within-example
  // variance (2 / 1 degree of freedom = 2) stands in.
  const auto offline = score_target(view, MembershipAttack::kLiraOffline, options);
  EXPECT_NEAR(offline[0].item<double>(), 2 / std::sqrt(2.0), 1e-12);
  EXPECT_NEAR(offline[1].item<double>(), 0.3 / std::sqrt(2.0), 1e-12);
  const auto fixed = score_target(view, MembershipAttack::kLiraOfflineFixedVariance, options);
  EXPECT_TRUE(torch::allclose(fixed, offline));
  // IN: image 0 one score (10), image 1 mean 6 and variance 2; pooled variance 2.
  // log N(4; 10, 2) - log N(4; 2, 2) = -36/4 + 4/4; log N(1; 6, 2) - log N(1; 0.7, 2).
  const auto online = score_target(view, MembershipAttack::kLiraOnline, options);
  EXPECT_NEAR(online[0].item<double>(), -8.0, 1e-12);
  EXPECT_NEAR(online[1].item<double>(), -25.0 / 4 + 0.09 / 4, 1e-12);
  const auto loss = score_target(view, MembershipAttack::kLoss, options);
  EXPECT_NEAR(loss[0].item<double>(), -std::log1p(std::exp(-4.0)), 1e-12);
}

TEST(Membership, RmiaScoresMatchTheRatiosByHand) {
  const auto view = hand_view();
  MembershipOptions options;
  options.rmia_a = 1;  // p(x) = p_OUT(x): the ratios are plain
  const auto sigmoid = [](double v) { return 1 / (1 + std::exp(-v)); };
  const double ratio_x0 = sigmoid(4) / ((sigmoid(1) + sigmoid(3)) / 2);
  const double ratio_x1 = sigmoid(1) / sigmoid(0.7);
  const double ratio_z0 = sigmoid(0) / sigmoid(0), ratio_z1 = sigmoid(1.5) / sigmoid(1);
  ASSERT_GT(ratio_x0, ratio_z1);  // image 0 beats both z
  ASSERT_GT(ratio_x1, ratio_z0);
  ASSERT_LT(ratio_x1, ratio_z1);  // image 1 beats one
  const auto scores = score_target(view, MembershipAttack::kRmiaOffline, options);
  EXPECT_NEAR(scores[0].item<double>(), (2 + ratio_x0 / (1 + ratio_x0)) / 3, 1e-12);
  EXPECT_NEAR(scores[1].item<double>(), (1 + ratio_x1 / (1 + ratio_x1)) / 3, 1e-12);
  // gamma raises the bar: with gamma = 1.2 image 1 beats no z.
  options.rmia_gamma = 1.2;
  ASSERT_LT(ratio_x1 / 1.2, ratio_z0);
  EXPECT_NEAR(score_target(view, MembershipAttack::kRmiaOffline, options)[1].item<double>(),
              (0 + ratio_x1 / (1 + ratio_x1)) / 3, 1e-12);
}

TEST(Membership, RejectsBadOptionsAndAttacksWithoutWhatTheyNeed) {
  MembershipOptions options;
  options.references = 4;
  EXPECT_THROW(options.validate(4), UsageError);
  options.references = 0;
  options.rmia_a = 0;
  EXPECT_THROW(options.validate(4), UsageError);
  options.rmia_a = 0.3;
  options.rmia_gamma = -1;
  EXPECT_THROW(options.validate(4), UsageError);
  EXPECT_THROW(parse_membership_attack("lira"), UsageError);
  EXPECT_EQ(parse_membership_attack("rmia_offline"), MembershipAttack::kRmiaOffline);

  auto view = hand_view();
  view.target_population = torch::empty({0}, torch::kDouble);
  view.reference_population = torch::empty({3, 0}, torch::kDouble);
  EXPECT_THROW(score_target(view, MembershipAttack::kRmiaOffline, {}), Error);
}

ConfidenceMatrix random_confidences(int64_t models, int64_t n, int64_t m) {
  auto generator = at::detail::createCPUGenerator(3);
  return {torch::randn({models, n}, generator, torch::kDouble),
          torch::randn({models, m}, generator, torch::kDouble)};
}

TEST(Membership, LeaveOneOutNeverReadsTheTargetsOwnLabels) {
  const auto confidences = random_confidences(5, 40, 30);
  torch::Tensor mask =
      torch::stack({train::reference_half(40, 1, 0), train::reference_half(40, 1, 1),
                    train::reference_half(40, 1, 2), train::reference_half(40, 1, 3),
                    train::reference_half(40, 1, 4)});
  auto flipped = mask.clone();
  flipped[2] = flipped[2].logical_not();
  for (const auto attack : all_membership_attacks()) {
    const auto a = score_leave_one_out(confidences, mask, attack, {});
    const auto b = score_leave_one_out(confidences, flipped, attack, {});
    EXPECT_TRUE(torch::equal(a[2], b[2])) << membership_attack_name(attack);
    if (attack != MembershipAttack::kLoss) {
      EXPECT_FALSE(torch::equal(a, b)) << membership_attack_name(attack);
    }
  }
}

TEST(Membership, ShuffledLabelsAreSeededAndKeepEachModelsCount) {
  const auto half = train::reference_half(41, 7, 3);
  const auto mask = torch::stack({half, train::reference_half(41, 7, 4)});
  const auto shuffled = shuffled_membership(mask, 9);
  EXPECT_TRUE(torch::equal(shuffled.sum(1), mask.sum(1)));
  EXPECT_FALSE(torch::equal(shuffled, mask));
  EXPECT_TRUE(torch::equal(shuffled, shuffled_membership(mask, 9)));
}

// --- The memorising MLP: 16 MLPs, each on a random half of 400 Fashion-MNIST images (about 20 per
// class), trained to 100 % training accuracy; 1,000 test images as RMIA's population. ---

struct Memorised {
  train::ReferenceModels refs;
  ConfidenceMatrix confidences;
};

const Memorised& memorising_mlps() {
  static const Memorised memorised = [] {
    const auto seed = testing::seed_offset();
    data::LoadOptions load;
    load.train_per_class = 40;
    load.test_size = 1000;
    load.seed = seed;
    const auto splits = data::load_splits("fashion-mnist", load);
    auto config = models::default_config("mlp", {1, 28, 28}, 10);
    config.widths = {256};
    config.normalization = splits.normalization;
    train::ReferenceOptions options;
    options.models = 16;
    options.recipe.epochs = 50;
    options.recipe.batch_size = 32;
    options.seed = seed;
    Progress quiet;
    Memorised m;
    m.refs = train::train_reference_models(config, splits.train, options, quiet);
    std::vector<models::Classifier*> models;
    for (auto& model : m.refs.models) models.push_back(model.get());
    m.confidences = measure_confidences(models, splits.train, splits.test);
    return m;
  }();
  return memorised;
}

metrics::MembershipFigures figures_of(MembershipAttack attack, const MembershipOptions& options,
                                      bool shuffled) {
  const auto& m = memorising_mlps();
  const auto mask = shuffled ? shuffled_membership(m.refs.in_mask, 1) : m.refs.in_mask;
  const auto scores = score_leave_one_out(m.confidences, mask, attack, options);
  const auto decisions = flatten_decisions(scores, mask);
  return metrics::membership_figures(decisions.scores, decisions.members, {0.001, 0.01}, {}, 0.99);
}

class MembershipMemorising : public testing::RequiresFashionMnist {};

TEST_F(MembershipMemorising, LiraFindsTheMembersOfAMemorisingMlp) {
  const auto& m = memorising_mlps();
  for (double accuracy : m.refs.train_accuracy) EXPECT_DOUBLE_EQ(accuracy, 1.0);
  for (const auto attack : all_membership_attacks()) {
    const auto f = figures_of(attack, {}, false);
    std::printf(
        "figure: MembershipMemorising %s auc %.4f tpr@0.1%% %.4f tpr@1%% %.4f [%.4f, %.4f] "
        "eps %.3f\n",
        membership_attack_name(attack).c_str(), f.auc.estimate, f.tpr_at_fpr[0].tpr.estimate,
        f.tpr_at_fpr[1].tpr.estimate, f.tpr_at_fpr[1].tpr.low, f.tpr_at_fpr[1].tpr.high,
        f.epsilon.epsilon);
  }
  double held_out = 0;
  for (double accuracy : m.refs.held_out_accuracy) held_out += accuracy / 16;
  std::printf("figure: MembershipMemorising held-out accuracy %.4f, %.0f images/s\n", held_out,
              m.refs.training_images / m.refs.training_seconds);
  const auto lira = figures_of(MembershipAttack::kLiraOnline, {}, false);
  EXPECT_GT(lira.auc.low, 0.7);
  EXPECT_GT(lira.tpr_at_fpr[1].tpr.low, 0.03);  // TPR at 1 % FPR, well above the 1 % of chance
  EXPECT_GT(lira.epsilon.epsilon, 0.0);
}

TEST_F(MembershipMemorising, ShuffledLabelsGiveChanceAndNoEpsilon) {
  for (const auto attack : {MembershipAttack::kLiraOnline, MembershipAttack::kRmiaOffline}) {
    const auto f = figures_of(attack, {}, true);
    std::printf("figure: MembershipMemorising null %s auc %.4f [%.4f, %.4f] eps %.3f\n",
                membership_attack_name(attack).c_str(), f.auc.estimate, f.auc.low, f.auc.high,
                f.epsilon.epsilon);
    EXPECT_LE(f.auc.low, 0.5) << membership_attack_name(attack);
    EXPECT_GE(f.auc.high, 0.5) << membership_attack_name(attack);
    EXPECT_DOUBLE_EQ(f.epsilon.epsilon, 0.0) << membership_attack_name(attack);
  }
}

TEST_F(MembershipMemorising, RmiaWithTwoReferencesBeatsLossAtOnePercentFpr) {
  MembershipOptions two;
  two.references = 2;
  const auto rmia = figures_of(MembershipAttack::kRmiaOffline, two, false);
  const auto loss = figures_of(MembershipAttack::kLoss, two, false);
  std::printf(
      "figure: MembershipMemorising tpr@1%% rmia(2 refs) %.4f [%.4f, %.4f] loss %.4f [%.4f, %.4f]\n",
      rmia.tpr_at_fpr[1].tpr.estimate, rmia.tpr_at_fpr[1].tpr.low, rmia.tpr_at_fpr[1].tpr.high,
      loss.tpr_at_fpr[1].tpr.estimate, loss.tpr_at_fpr[1].tpr.low, loss.tpr_at_fpr[1].tpr.high);
  EXPECT_GT(rmia.tpr_at_fpr[1].tpr.low, loss.tpr_at_fpr[1].tpr.high);
}

}  // namespace
}  // namespace privaudit::attacks
