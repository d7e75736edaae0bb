#include "privaudit/attacks/gradients/multi_target.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "attacks/gradients/attack_fixtures.h"
#include "privaudit/metrics/reconstruction_score.h"
#include "privaudit/util/error.h"
#include "privaudit/util/runtime.h"
#include "privaudit/util/time_budget.h"

namespace privaudit::attacks {
namespace {

class MultiTarget : public testing::RequiresFashionMnist {};

using testing::make_model;
using testing::test_images;

std::unique_ptr<models::BuiltinClassifier> model_with(const std::string& arch, bool batch_norm,
                                                      double dropout, uint64_t seed) {
  auto config = models::default_config(arch, {1, 28, 28}, 10);
  config.batch_norm = batch_norm;
  config.dropout = dropout;
  torch::manual_seed(seed);
  auto model = std::make_unique<models::BuiltinClassifier>(config);
  if (batch_norm) {
    // Running statistics other than 0 and 1, so that eval-mode batch norm does something.
    torch::NoGradGuard no_grad;
    for (auto& buffer : model->net()->buffers()) {
      if (buffer.dim() == 1 && buffer.scalar_type() == torch::kFloat) buffer.uniform_(0.5, 1.5);
    }
  }
  model->set_training(false);
  return model;
}

// One batch-1 problem per target image, its shared gradient on `model`, seeds from `first_seed`.
std::vector<InversionProblem> one_image_problems(models::Classifier& model,
                                                 const testing::Targets& targets,
                                                 uint64_t first_seed) {
  std::vector<InversionProblem> problems;
  for (int64_t i = 0; i < targets.images.size(0); ++i) {
    const auto image = targets.images.slice(0, i, i + 1), label = targets.labels.slice(0, i, i + 1);
    problems.push_back({shared_gradients(model, image, label), label, first_seed + uint64_t(i)});
  }
  return problems;
}

// Slice k of the stacked gradient is problem k's own gradient, for every layer type stacked.
TEST_F(MultiTarget, StackedGradientsAreEachProblemsOwn) {
  const auto targets = test_images(6, 20);
  for (const std::string arch : {"mlp", "cnn", "lenet"}) {
    for (const bool batch_norm : {false, true}) {
      SCOPED_TRACE(arch + (batch_norm ? " with batch norm" : ""));
      auto model = model_with(arch, batch_norm, 0.2, 1);
      ASSERT_TRUE(StackedModel::supports(*model));
      const int64_t k = 3, batch = 2;
      StackedModel stacked(*model, k);
      const auto gradients =
          stacked.gradients(targets.images, targets.labels.view({k, batch}), false);
      const auto logits = stacked.forward(targets.images);
      EXPECT_TRUE(torch::allclose(logits, model->forward(targets.images), 1e-4, 1e-5));
      for (int64_t p = 0; p < k; ++p) {
        const auto own =
            parameter_gradients(*model, targets.images.slice(0, p * batch, (p + 1) * batch),
                                targets.labels.slice(0, p * batch, (p + 1) * batch), false);
        ASSERT_EQ(own.size(), gradients.size());
        for (size_t i = 0; i < own.size(); ++i) {
          EXPECT_TRUE(torch::allclose(gradients[i][p], own[i], 1e-4, 1e-6))
              << "parameter " << i << " problem " << p << ": max difference "
              << (gradients[i][p] - own[i]).abs().max().item<double>();
        }
      }
      // Per problem, the cosine distance is the one-problem distance.
      const auto shared = stack_gradients(
          {shared_gradients(*model, targets.images.slice(0, 0, 2), targets.labels.slice(0, 0, 2)),
           shared_gradients(*model, targets.images.slice(0, 2, 4), targets.labels.slice(0, 2, 4)),
           shared_gradients(*model, targets.images.slice(0, 4, 6), targets.labels.slice(0, 4, 6))});
      const auto distances = stacked_cosine_distance(gradients, shared);
      ASSERT_EQ(distances.size(0), k);
      EXPECT_LT(distances.abs().max().item<double>(), 1e-5);
      // The distance the attacks use (Linear weight gradients never formed) is the same, also
      // away from the solution.
      stacked.set_target(shared);
      const auto other = torch::rand(targets.images.sizes(), make_generator(7));
      const auto formed = stacked_cosine_distance(
          stacked.gradients(other, targets.labels.view({k, batch}), false), shared);
      const auto implicit = stacked.cosine_distance(other, targets.labels.view({k, batch}));
      // (With batch norm these test models' running means switch every ReLU off, so every image
      // has the target's gradient direction.)
      if (!batch_norm) {
        EXPECT_GT(formed.min().item<double>(), 1e-5);
      }
      EXPECT_TRUE(torch::allclose(implicit, formed, 1e-4, 1e-6))
          << implicit << " against " << formed;
      // Keeping problems 2 and 0 keeps their parameters and order.
      stacked.keep_only(torch::tensor({2, 0}));
      const auto kept = stacked.gradients(
          torch::cat({targets.images.slice(0, 4, 6), targets.images.slice(0, 0, 2)}),
          torch::stack({targets.labels.slice(0, 4, 6), targets.labels.slice(0, 0, 2)}), false);
      EXPECT_TRUE(torch::allclose(kept.back()[0], gradients.back()[2], 1e-4, 1e-6));
    }
  }
}

TEST_F(MultiTarget, ModelsItCannotStackAreNamedAndRunOneAtATime) {
  std::string why;
  auto vit = make_model("vit", 2);
  EXPECT_FALSE(StackedModel::supports(*vit, &why));
  EXPECT_NE(why.find("vit"), std::string::npos) << why;
  auto train_mode = model_with("cnn", false, 0.2, 2);
  train_mode->set_training(true);
  EXPECT_FALSE(StackedModel::supports(*train_mode, &why));
  EXPECT_NE(why.find("dropout in train mode"), std::string::npos) << why;
  auto noisy_config = models::default_config("cnn", {1, 28, 28}, 10);
  noisy_config.noise_cut = "conv1";
  noisy_config.noise_sigma = 1;
  models::BuiltinClassifier noisy(noisy_config);
  EXPECT_FALSE(StackedModel::supports(noisy, &why));
  EXPECT_THROW(StackedModel(noisy, 2), Error);
  testing::SmallReluCnn sequential(0);
  EXPECT_FALSE(StackedModel::supports(sequential, &why));

  // A ViT runs one problem at a time: exactly run_inverting_gradients with the problem's seed.
  const auto targets = test_images(2, 30);
  const auto problems = one_image_problems(*vit, targets, 10);
  InvertingGradientsOptions options;
  options.iterations = 5;
  Progress quiet;
  const auto many = run_inverting_gradients_many(*vit, problems, 1, options, 8, quiet);
  ASSERT_EQ(many.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    options.seed = problems[i].seed;
    const auto one =
        run_inverting_gradients(*vit, problems[i].shared, 1, problems[i].labels, options, quiet);
    EXPECT_TRUE(torch::equal(many[i].images, one.images));
    EXPECT_EQ(many[i].distance_curve, one.distance_curve);
  }
}

// The engine changes the speed, not the attack: on 6 targets through the DLG paper's LeNet, each
// problem's reconstruction in one graph is the one-at-a-time reconstruction. With plain (unsigned)
// gradients the two differ only by floating-point summation order: measured 2026-12-02, per target
// within 0.06 dB (13.3 to 31.7 dB). With Inverting Gradients' signed gradients the sign of a
// component near zero can flip with that order and the trajectories part (per target up to 5 dB
// either way, means 31.9 and 31.5 dB over the same 6); the bench compares those distributions
// over 32 targets (privaudit_bench multi-target).
TEST_F(MultiTarget, OneGraphGivesWhatOneAtATimeGives) {
  auto model = make_model("lenet", 5);
  model->set_training(false);
  const auto targets = test_images(6, 40);
  const auto problems = one_image_problems(*model, targets, 100);
  InvertingGradientsOptions options;
  options.iterations = 300;
  options.trials = 2;  // two trials per problem: twelve in one graph, the better one kept
  options.signed_gradients = false;
  Progress quiet;
  const auto one = run_inverting_gradients_many(*model, problems, 1, options, 1, quiet);
  const auto stacked = run_inverting_gradients_many(*model, problems, 1, options, 64, quiet);
  ASSERT_EQ(stacked.size(), 6u);
  std::vector<double> psnr;
  for (int64_t i = 0; i < 6; ++i) {
    const auto image = targets.images.slice(0, i, i + 1), label = targets.labels.slice(0, i, i + 1);
    const auto& a = one[static_cast<size_t>(i)];
    const auto& b = stacked[static_cast<size_t>(i)];
    EXPECT_FALSE(b.failed);
    EXPECT_EQ(b.restarts, 1);
    EXPECT_EQ(b.iterations, a.iterations);
    EXPECT_EQ(b.distance_curve.size(), static_cast<size_t>(b.iterations));
    EXPECT_EQ(b.labels.item<int64_t>(), label.item<int64_t>());
    const double one_psnr =
        metrics::score_reconstruction(a.images, a.labels, image, label).mean_psnr;
    psnr.push_back(metrics::score_reconstruction(b.images, b.labels, image, label).mean_psnr);
    std::printf("target %lld: one at a time %.2f dB, one graph %.2f dB\n",
                static_cast<long long>(i), one_psnr, psnr.back());
    EXPECT_NEAR(psnr.back(), one_psnr, 0.5) << "target " << i;
  }
  std::sort(psnr.begin(), psnr.end());
  EXPECT_GE(0.5 * (psnr[2] + psnr[3]), 20.0);  // the attack works (unrelated images: ~10 dB)
}

TEST_F(MultiTarget, NanTrialsAreRetriedThenReportedAsFailures) {
  auto model = make_model("lenet", 6);
  model->set_training(false);
  const auto targets = test_images(2, 50);
  const auto problems = one_image_problems(*model, targets, 0);
  {
    torch::NoGradGuard no_grad;
    model->parameters().front().fill_(std::numeric_limits<float>::quiet_NaN());
  }
  InvertingGradientsOptions options;
  options.iterations = 10;
  Progress quiet;
  const auto results = run_inverting_gradients_many(*model, problems, 1, options, 8, quiet);
  ASSERT_EQ(results.size(), 2u);
  for (const auto& result : results) {
    EXPECT_TRUE(result.failed);
    EXPECT_EQ(result.restarts, 2);  // one trial and options.nan_retries = 2 fresh starts
    EXPECT_TRUE(torch::isfinite(result.images).all().item<bool>());
  }
}

// A spent time budget stops every problem after its first step, one graph or one at a time, with
// the images of that step kept (util/time_budget.h).
TEST_F(MultiTarget, ASpentTimeBudgetStopsEveryProblemWithWhatItHas) {
  auto model = make_model("lenet", 7);
  model->set_training(false);
  const auto problems = one_image_problems(*model, test_images(3, 60), 0);
  InvertingGradientsOptions options;
  options.iterations = 500;
  Progress quiet;
  for (const int64_t stack : {1, 8}) {
    set_time_budget(1e-9);
    const auto results = run_inverting_gradients_many(*model, problems, 1, options, stack, quiet);
    EXPECT_TRUE(time_budget_stopped());
    set_time_budget(0);
    for (const auto& result : results) {
      EXPECT_FALSE(result.failed);
      EXPECT_EQ(result.iterations, 1) << "stack " << stack;
      EXPECT_TRUE(torch::isfinite(result.images).all().item<bool>());
    }
  }
  const auto unbounded = run_inverting_gradients_many(*model, problems, 1, options, 8, quiet);
  EXPECT_GT(unbounded.front().iterations, 1);
  EXPECT_FALSE(time_budget_stopped());
}

}  // namespace
}  // namespace privaudit::attacks
