#include "privaudit/attacks/weights/stationarity.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <string>

#include "fixtures/trained_models.h"
#include "privaudit/attacks/image_priors.h"
#include "privaudit/models/builtin.h"
#include "privaudit/models/model_config.h"
#include "privaudit/train/trainer.h"
#include "privaudit/util/error.h"
#include "privaudit/util/runtime.h"
#include "test_util.h"

namespace privaudit::attacks {
namespace {

std::string usage_error_of(const StationarityOptions& options) {
  try {
    options.validate();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

// A small MLP trained to (near) zero loss on toy blobs: 4 classes, 16x16.
struct Trained {
  data::Splits splits = testing::toy_splits(4, 12, 1, 16, 5);
  std::unique_ptr<models::BuiltinClassifier> model = testing::trained_toy_mlp(splits, {32}, 30);
  torch::Tensor labels() const { return torch::arange(4).repeat_interleave(2); }
  torch::Tensor candidates(uint64_t seed) const {
    torch::Generator rng = make_generator(seed);
    return torch::rand({8, 1, 16, 16}, rng, torch::kFloat);
  }
};

TEST(Stationarity, RejectsBadOptionsAndShapes) {
  StationarityOptions o;
  EXPECT_EQ(usage_error_of(o), "");
  o.iterations = -1;
  EXPECT_EQ(usage_error_of(o), "--stationarity-steps must be non-negative");
  o = {};
  o.learning_rate = 0;
  EXPECT_EQ(usage_error_of(o), "--stationarity-lr must be a positive number");
  o = {};
  o.lambda_init = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(usage_error_of(o), "stationarity lambda init must be positive");
  o = {};
  o.weight_range = -1;
  EXPECT_EQ(usage_error_of(o), "stationarity range weight must be non-negative");

  Trained t;
  Progress quiet;
  o = {};
  o.iterations = 2;
  EXPECT_THROW(refine_by_stationarity(*t.model, t.candidates(0).flatten(1), t.labels(), o, quiet),
               UsageError);
  EXPECT_THROW(refine_by_stationarity(*t.model, t.candidates(0), torch::arange(3), o, quiet),
               UsageError);
}

TEST(Stationarity, ResidualFallsAndTheClassifierIsUntouched) {
  Trained t;
  t.model->set_training(true);  // restored afterwards
  for (auto& p : t.model->parameters()) p.mutable_grad() = torch::Tensor();
  const auto before = t.model->parameters()[0].clone();
  StationarityOptions o;
  o.iterations = 300;
  Progress quiet;
  const auto r = refine_by_stationarity(*t.model, t.candidates(0), t.labels(), o, quiet);
  ASSERT_EQ(r.residual.size(), 300u);
  // The relative residual starts near 1 (lambda ~ 0: nothing explained) and must fall (to 0.88
  // here; most of this briefly trained model's weights are its random initialisation).
  EXPECT_GT(r.residual.front(), 0.9);
  EXPECT_LT(r.residual.back(), 0.92 * r.residual.front());
  EXPECT_EQ(r.images.sizes(), torch::IntArrayRef({8, 1, 16, 16}));
  EXPECT_GE(r.images.min().item<double>(), 0.0);
  EXPECT_LE(r.images.max().item<double>(), 1.0);
  EXPECT_FALSE(torch::equal(r.images, t.candidates(0)));
  EXPECT_EQ(r.lambdas.sizes(), torch::IntArrayRef({8}));
  EXPECT_GE(r.lambdas.min().item<double>(), o.lambda_min);
  EXPECT_TRUE(torch::equal(t.model->parameters()[0], before));
  EXPECT_FALSE(t.model->parameters()[0].grad().defined());
  EXPECT_TRUE(t.model->is_training());
}

TEST(Stationarity, SameSeedSameImages) {
  Trained t;
  StationarityOptions o;
  o.iterations = 20;
  Progress quiet;
  const auto a = refine_by_stationarity(*t.model, t.candidates(0), t.labels(), o, quiet);
  const auto b = refine_by_stationarity(*t.model, t.candidates(0), t.labels(), o, quiet);
  EXPECT_TRUE(torch::equal(a.images, b.images));
  EXPECT_EQ(a.residual, b.residual);
  o.seed = 1;  // other initial multipliers
  const auto c = refine_by_stationarity(*t.model, t.candidates(0), t.labels(), o, quiet);
  EXPECT_FALSE(torch::equal(a.images, c.images));
}

TEST(Stationarity, NonFiniteCandidatesAreAnErrorNotAResult) {
  Trained t;
  auto candidates = t.candidates(0);
  candidates[3][0][5][5] = std::numeric_limits<float>::quiet_NaN();
  StationarityOptions o;
  o.iterations = 5;
  Progress quiet;
  try {
    refine_by_stationarity(*t.model, candidates, t.labels(), o, quiet);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("non-finite at iteration 1"), std::string::npos)
        << e.what();
  }
}

// A known answer: the stationarity condition holding exactly. A two-class linear classifier whose
// weights are lambda* grad_theta Phi(x*) for one image x* (W's rows +-lambda* x*, the biases
// +-lambda*): theta determines both, so the refinement from a grey start must find x* and lambda*.
// Given the other label, Phi's gradient changes sign and no lambda >= 0 reproduces theta: the
// residual must stay at 1 (nothing explained), not fall.
TEST(Stationarity, RecoversTheOneImageAnExactKktPointIsMadeOf) {
  torch::manual_seed(0);
  auto config = models::default_config("mlp", {1, 8, 8}, 2);
  config.widths = {};
  models::BuiltinClassifier model(config);
  torch::Generator rng = make_generator(7);
  const auto image = torch::rand({1, 1, 8, 8}, rng, torch::kFloat) * 0.8 + 0.1;
  const double lambda = 0.05;
  const auto label = torch::zeros({1}, torch::kLong);
  const auto parameters = model.parameters();
  {
    const auto phi = classification_margin(model.forward(image), label).sum();
    const auto grads = torch::autograd::grad({phi}, parameters);
    torch::NoGradGuard no_grad;
    for (size_t k = 0; k < grads.size(); ++k) parameters[k].copy_(lambda * grads[k]);
  }
  const auto psnr = [&](const torch::Tensor& x) {
    return -10.0 * std::log10((x - image).pow(2).mean().item<double>());
  };
  const auto grey = torch::full({1, 1, 8, 8}, 0.5);
  ASSERT_LT(psnr(grey), 15.0);
  StationarityOptions o;
  o.iterations = 3000;
  Progress quiet;
  const auto r = refine_by_stationarity(model, grey, label, o, quiet);
  std::printf(
      "figure: Stationarity known answer: residual %.2e, PSNR %.1f dB, lambda %.4f (%.4f)\n",
      r.residual.back(), psnr(r.images), r.lambdas[0].item<double>(), lambda);
  EXPECT_LT(r.residual.back(), 1e-4);
  EXPECT_GT(psnr(r.images), 35.0);
  EXPECT_NEAR(r.lambdas[0].item<double>(), lambda, 0.05 * lambda);

  const auto wrong = refine_by_stationarity(model, grey, torch::ones({1}, torch::kLong), o, quiet);
  std::printf("figure: Stationarity other label: residual %.4f\n", wrong.residual.back());
  EXPECT_GT(wrong.residual.back(), 0.99);
}

}  // namespace
}  // namespace privaudit::attacks
