// DP-SGD: clipping bounds every example, bad settings are refused with one line naming the flag,
// a run is a function of its seed (and resumes to the same weights), it learns, and a model
// trained at small epsilon leaks less membership than its epsilon allows.
#include "privaudit/defense/dp_sgd.h"

#include <gtest/gtest.h>

#include "privaudit/attacks/weights/membership.h"
#include "privaudit/metrics/membership_metrics.h"
#include "privaudit/train/per_example.h"
#include "privaudit/util/error.h"
#include "test_util.h"

namespace privaudit::defense {
namespace {

models::ModelConfig dp_config(const std::string& arch, const data::Splits& splits) {
  auto config = models::default_config(
      arch, {splits.train.channels(), splits.train.height(), splits.train.width()},
      splits.train.num_classes());
  config.normalization = splits.normalization;
  return config;
}

train::TrainOptions dp_train_options(int epochs) {
  train::TrainOptions options;
  options.epochs = epochs;
  options.batch_size = 16;
  options.optimizer = train::OptimizerKind::kSgd;
  options.learning_rate = 0.5;
  options.momentum = 0.5;
  options.seed = 11;
  return options;
}

TEST(DpSgd, ClippingBoundsEveryExamplesNorm) {
  torch::manual_seed(0);
  // Six examples with gradient norms from far below to far above C = 1.
  const auto scales = torch::tensor({0.01, 0.3, 0.99, 1.5, 10.0, 1000.0});
  std::vector<torch::Tensor> per_example = {torch::randn({6, 3, 4}), torch::randn({6, 5})};
  const auto norms =
      (per_example[0].reshape({6, -1}).pow(2).sum(1) + per_example[1].pow(2).sum(1)).sqrt();
  const auto factor = (scales / norms).to(torch::kFloat);
  per_example[0] = per_example[0] * factor.view({6, 1, 1});
  per_example[1] = per_example[1] * factor.view({6, 1});
  for (int64_t i = 0; i < 6; ++i) {
    const auto one = train::clip_and_sum(
        {per_example[0].slice(0, i, i + 1), per_example[1].slice(0, i, i + 1)}, 1.0);
    const double clipped =
        std::sqrt(one.sum[0].pow(2).sum().item<double>() + one.sum[1].pow(2).sum().item<double>());
    EXPECT_NEAR(one.norms[0].item<double>(), scales[i].item<double>(),
                1e-4 * scales[i].item<double>());
    EXPECT_LE(clipped, 1.0 + 1e-5) << i;
    // Below the bound a gradient passes unchanged; above it, it lands on the bound.
    EXPECT_NEAR(clipped, std::min(1.0, scales[i].item<double>()), 1e-4) << i;
  }
  const auto all = train::clip_and_sum(per_example, 1.0);
  EXPECT_EQ(all.sum[0].sizes(), (std::vector<int64_t>{3, 4}));
  EXPECT_LE(
      std::sqrt(all.sum[0].pow(2).sum().item<double>() + all.sum[1].pow(2).sum().item<double>()),
      6.0);
}

std::string plan_error(DpOptions dp, bool batch_norm = false, int64_t train_size = 100) {
  const auto splits = testing::toy_splits(4, 2);
  auto config = dp_config("mlp", splits);
  config.batch_norm = batch_norm;
  models::BuiltinClassifier model(config);
  try {
    plan_privacy(dp, model, train_size, 10, 5);
  } catch (const Error& e) {
    return e.what();
  }
  return "accepted";
}

TEST(DpSgd, RefusesBadSettingsNamingTheFlag) {
  DpOptions good;
  good.noise_multiplier = 1.0;
  good.delta = 1e-3;
  EXPECT_EQ(plan_error(good), "accepted");
  auto no_noise = good;
  no_noise.noise_multiplier = -1.0;
  EXPECT_TRUE(testing::contains(plan_error(no_noise), "--dp-noise must be positive"));
  auto no_clip = good;
  no_clip.clip_norm = 0.0;
  EXPECT_TRUE(testing::contains(plan_error(no_clip), "--dp-clip must be positive"));
  auto large_delta = good;
  large_delta.delta = 0.02;
  EXPECT_TRUE(testing::contains(plan_error(large_delta),
                                "--dp-delta 0.02 must be positive and "
                                "below 1/N = 0.01"));
  auto unreachable = good;
  unreachable.target_epsilon = 0.001;
  EXPECT_TRUE(testing::contains(plan_error(unreachable), "--dp-epsilon 0.001 cannot be reached"));
  const auto batch_norm = plan_error(good, /*batch_norm=*/true);
  EXPECT_TRUE(testing::contains(batch_norm, "batch norm")) << batch_norm;
  EXPECT_TRUE(testing::contains(batch_norm, "--group-norm")) << batch_norm;
  for (const auto& message : {plan_error(no_noise), plan_error(large_delta), batch_norm}) {
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  }
}

TEST(DpSgd, TargetEpsilonPicksTheNoiseThatSpendsIt) {
  const auto splits = testing::toy_splits(4, 2);
  models::BuiltinClassifier model(dp_config("mlp", splits));
  DpOptions dp;
  dp.target_epsilon = 2.0;
  dp.delta = 1e-4;
  const auto report = plan_privacy(dp, model, 1000, 50, 4);
  EXPECT_EQ(report.steps, 80);
  EXPECT_DOUBLE_EQ(report.sample_rate, 0.05);
  EXPECT_LE(report.epsilon, 2.0);
  EXPECT_GT(report.epsilon, 1.95);
  EXPECT_NEAR(dp_sgd_epsilon(0.05, report.noise_multiplier, 80, 1e-4).epsilon, report.epsilon,
              1e-12);
}

TEST(DpSgd, SameSeedSameWeightsAndItLearns) {
  const auto splits = testing::toy_splits(4, 24);
  DpOptions dp;
  dp.noise_multiplier = 0.5;
  dp.clip_norm = 1.0;
  dp.delta = 1e-3;
  std::vector<std::vector<torch::Tensor>> weights;
  for (int run = 0; run < 2; ++run) {
    torch::manual_seed(0);
    auto config = dp_config("cnn", splits);
    config.group_norm = true;
    models::BuiltinClassifier model(config);
    Progress quiet;
    PrivacyReport report;
    const auto result = train_private(model, splits, dp_train_options(3), dp, report, quiet);
    EXPECT_GE(result.test_accuracy, 0.6) << "chance is 0.25";
    EXPECT_GT(report.epsilon, 0.0);
    weights.push_back(model.parameters());
  }
  for (size_t p = 0; p < weights[0].size(); ++p) {
    EXPECT_TRUE(torch::equal(weights[0][p], weights[1][p])) << "parameter " << p;
  }
}

TEST(DpSgd, AnInterruptedRunResumesToTheSameWeights) {
  const auto splits = testing::toy_splits(4, 8);
  testing::TempDir dir;
  DpOptions dp;
  dp.noise_multiplier = 1.0;
  dp.delta = 1e-3;
  const auto train = [&](const std::string& state, int stop_after) {
    torch::manual_seed(0);
    models::BuiltinClassifier model(dp_config("mlp", splits));
    auto options = dp_train_options(3);
    options.state_path = state;
    options.stop_after_epoch = stop_after;
    Progress quiet;
    PrivacyReport report;
    train_private(model, splits, options, dp, report, quiet);
    return model.parameters();
  };
  const auto whole = train(dir.file("whole.pt"), 0);
  train(dir.file("cut.pt"), 1);
  const auto resumed = train(dir.file("cut.pt"), 0);
  for (size_t p = 0; p < whole.size(); ++p) EXPECT_TRUE(torch::equal(whole[p], resumed[p])) << p;
}

// Membership: the loss attack (the example's own confidence) on members against held-out
// examples of the same distribution. 100 random-labelled members memorised without DP give an
// epsilon lower bound above 1; the same model trained with DP-SGD at epsilon 1 must stay below 1.
TEST(DpSgd, MembershipEpsilonStaysBelowTheGuarantee) {
  auto splits = testing::toy_splits(10, 20, 1, 28, 4);
  // Random labels: only memorisation can fit them, the case membership inference detects best.
  auto generator = torch::make_generator<at::CPUGeneratorImpl>(9);
  splits.train.labels = torch::randint(10, {splits.train.size()}, generator, torch::kLong);
  splits.test.labels = torch::randint(10, {splits.test.size()}, generator, torch::kLong);
  const int64_t n = std::min<int64_t>(100, std::min(splits.train.size(), splits.test.size()));
  const auto members = splits.train.images.slice(0, 0, n);
  const auto member_labels = splits.train.labels.slice(0, 0, n);
  data::Splits used = splits;
  used.train.images = members;
  used.train.labels = member_labels;
  const auto epsilon_hat = [&](models::BuiltinClassifier& model) {
    const auto in = attacks::logit_confidence(model, members, member_labels);
    const auto out = attacks::logit_confidence(model, splits.test.images.slice(0, 0, n),
                                               splits.test.labels.slice(0, 0, n));
    std::vector<double> scores;
    std::vector<bool> is_member;
    for (int64_t i = 0; i < n; ++i) {
      scores.push_back(in[i].item<double>());
      is_member.push_back(true);
      scores.push_back(out[i].item<double>());
      is_member.push_back(false);
    }
    metrics::EpsilonOptions options;
    options.delta = 1e-3;
    return metrics::epsilon_lower_bound(scores, is_member, options).epsilon;
  };
  auto options = dp_train_options(60);
  options.optimizer = train::OptimizerKind::kAdam;
  options.learning_rate = 1e-3;
  options.batch_size = 20;
  Progress quiet;
  torch::manual_seed(0);
  models::BuiltinClassifier open(dp_config("mlp", used));
  const auto memorised = train::train_classifier(open, used, options, quiet);
  ASSERT_GE(memorised.train_accuracy, 0.95);
  const double open_epsilon = epsilon_hat(open);
  EXPECT_GT(open_epsilon, 1.0) << "the attack finds nothing even without DP: the test is blind";

  torch::manual_seed(0);
  models::BuiltinClassifier private_model(dp_config("mlp", used));
  DpOptions dp;
  dp.target_epsilon = 1.0;
  dp.delta = 1e-3;
  PrivacyReport report;
  options.epochs = 10;
  train_private(private_model, used, options, dp, report, quiet);
  EXPECT_LE(report.epsilon, 1.0);
  const double private_epsilon = epsilon_hat(private_model);
  EXPECT_LT(private_epsilon, report.epsilon);
  std::printf("membership epsilon lower bound: open %.3f, DP-SGD (epsilon %.3f) %.3f\n",
              open_epsilon, report.epsilon, private_epsilon);
}

}  // namespace
}  // namespace privaudit::defense
