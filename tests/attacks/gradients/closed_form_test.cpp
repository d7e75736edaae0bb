// The closed-form gradient attacks succeed where their algebra holds (trained built-in models and
// TorchScript models written in Python), certify themselves without ground truth, and say
// `not_applicable` where it does not hold. None of them sees the targets: only the update.
#include "privaudit/attacks/gradients/closed_form.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "attacks/gradients/attack_fixtures.h"
#include "fixtures/trained_models.h"
#include "privaudit/attacks/gradients/idlg.h"
#include "privaudit/attacks/gradients/registry.h"
#include "privaudit/data/spec.h"
#include "privaudit/experiments/gradient_experiment.h"
#include "privaudit/experiments/layer_experiment.h"
#include "privaudit/metrics/reconstruction_score.h"
#include "privaudit/models/torchscript.h"
#include "test_util.h"

namespace privaudit::attacks {
namespace {

using testing::test_images;

double psnr_of(const Reconstruction& r, const testing::Targets& targets) {
  return metrics::score_reconstruction(r.images, r.labels, targets.images, targets.labels)
      .mean_psnr;
}

SharedUpdate update_of(models::Classifier& model, const testing::Targets& targets) {
  return observe_update(model, targets.images, targets.labels, AttackerKnowledge{}, false);
}

// Runs `attack` on each of `count` test images alone; returns the PSNRs and checks that every
// result is applicable and (when `certified`) self-certified.
std::vector<double> single_image_psnrs(models::Classifier& model, const GradientAttack& attack,
                                       int count, bool certified) {
  std::vector<double> psnrs;
  Progress quiet;
  for (int i = 0; i < count; ++i) {
    const auto target = test_images(1, i);
    const auto result = attack.run(model, update_of(model, target), AttackBudget{}, quiet);
    EXPECT_FALSE(result.not_applicable) << attack.name << " image " << i << ": " << result.failure;
    if (result.not_applicable) continue;
    psnrs.push_back(psnr_of(result, target));
    if (certified) {
      EXPECT_TRUE(result.certified.at(0))
          << attack.name << " image " << i << " self-check " << result.self_check;
    }
    EXPECT_EQ(result.labels.item<int64_t>(), target.labels.item<int64_t>());
  }
  return psnrs;
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n == 0 ? 0 : n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

class ClosedFormSlow : public testing::RequiresFashionMnist {};

// A 1 x 8 x 8 -> 4 classifier whose only layer is a Linear on either every pixel or, behind the
// cut "left", on the left half of the image only: a first map that is not injective, so two
// images that differ on the right half have the same features and the same gradient.
class HalfSightClassifier : public models::Classifier {
 public:
  explicit HalfSightClassifier(bool crop) : crop_(crop) {
    torch::manual_seed(3);
    head_ = torch::nn::Linear(crop ? 32 : 64, 4);
  }
  torch::Tensor forward(const torch::Tensor& images) override {
    return head_->forward(crop_ ? features(images, "left") : images.flatten(1));
  }
  std::vector<torch::Tensor> parameters() override { return head_->parameters(); }
  models::InputShape input_shape() const override { return {1, 8, 8}; }
  int64_t num_classes() const override { return 4; }
  std::vector<std::string> cut_points() const override {
    return crop_ ? std::vector<std::string>{"left"} : std::vector<std::string>{};
  }
  torch::Tensor features(const torch::Tensor& images, const std::string& cut) override {
    check_cut(cut);
    return images.slice(3, 0, 4).flatten(1);
  }
  torch::Tensor forward_from(const torch::Tensor& features, const std::string& cut) override {
    check_cut(cut);
    return head_->forward(features.flatten(1));
  }
  void set_training(bool training) override { head_->train(training); }
  bool is_training() const override { return head_->is_training(); }
  void to(torch::Device) override {}
  torch::Device device() const override { return torch::kCPU; }
  bool has_batch_norm() const override { return false; }
  std::string kind() const override { return "test-half-sight"; }
  std::string summary() const override { return "test Linear on half the pixels"; }

 private:
  bool crop_;
  torch::nn::Linear head_{nullptr};
};

// Left half flat at 0.3 (an inversion's smoothness prior fills the unseen right half with the
// same value), right half noise.
torch::Tensor half_noise_image() {
  auto generator = at::detail::createCPUGenerator(11);
  auto image = torch::rand({1, 1, 8, 8}, generator);
  image.slice(3, 0, 4).fill_(0.3);
  return image;
}

TEST(ClosedForm, AnInversionIsNeverCertifiedEvenWhenItsImageReproducesTheUpdate) {
  HalfSightClassifier model(/*crop=*/true);
  const auto target = half_noise_image();
  const auto label = torch::tensor({2}, torch::kLong);
  const auto update = observe_update(model, target, label, AttackerKnowledge{true}, false);

  // The self-check cannot tell the pixels apart: another right half gives the same update.
  auto other = target.clone();
  other.slice(3, 4, 8).fill_(0.9);
  EXPECT_LE(gradient_self_check(model, update, other, label), kCertifiedDistance);
  const auto as_inversion = certify_recovery(model, update, other, label, Recovery::kOptimisation);
  EXPECT_LE(as_inversion.self_check, kCertifiedDistance);
  EXPECT_FALSE(as_inversion.certified);

  // features-then-invert reaches such an image and must not certify it (the old self-check did,
  // and a certified batch made the experiment skip the stronger attacks).
  Progress quiet;
  const auto result = run_features_then_invert(model, update, AttackBudget{}, quiet);
  ASSERT_FALSE(result.not_applicable) << result.failure;
  EXPECT_LE(result.self_check, kCertifiedDistance);
  const double psnr =
      metrics::score_reconstruction(result.images, result.labels, target, label).mean_psnr;
  EXPECT_LT(psnr, 30.0);  // the unseen half is not the target's
  ASSERT_EQ(result.certified.size(), 1u);
  EXPECT_FALSE(result.certified[0]);
}

TEST(ClosedForm, AClosedFormRecoveryThatReproducesTheUpdateIsCertified) {
  HalfSightClassifier model(/*crop=*/false);
  const auto target = half_noise_image();
  const auto label = torch::tensor({1}, torch::kLong);
  const auto update = observe_update(model, target, label, AttackerKnowledge{}, false);
  Progress quiet;
  const auto result = run_linear_layer_attack(model, update, AttackBudget{}, quiet);
  ASSERT_FALSE(result.not_applicable) << result.failure;
  EXPECT_EQ(result.labels.item<int64_t>(), 1);
  EXPECT_LE(result.self_check, kCertifiedDistance);
  ASSERT_EQ(result.certified.size(), 1u);
  EXPECT_TRUE(result.certified[0]);
  EXPECT_GE(metrics::score_reconstruction(result.images, result.labels, target, label).mean_psnr,
            60.0);
  // The same image handed in as an optimisation's result gets no certificate.
  EXPECT_FALSE(
      certify_recovery(model, update, result.images, result.labels, Recovery::kOptimisation)
          .certified);
}

// Its precondition does not hold on the ViT (attention mixes the tokens before any exact
// Linear input): not_applicable with the reason, at once, at batch 1 and 8 alike.
TEST(ClosedForm, FeaturesThenInvertDoesNotApplyToTheVit) {
  auto model = testing::make_model("vit", 4);
  Progress quiet;
  for (const int64_t batch : {1, 8}) {
    const auto images = torch::rand({batch, 1, 28, 28});
    const auto labels = torch::arange(batch, torch::kLong) % 10;
    const auto update = observe_update(*model, images, labels, AttackerKnowledge{}, false);
    const auto result = find_gradient_attack("features-then-invert").run(*model, update, {}, quiet);
    EXPECT_TRUE(result.not_applicable);
    EXPECT_EQ(result.failure, kFeaturesNotInvertibleOnVit);
    EXPECT_EQ(result.iterations, 0);
  }
}

// A model certain of its image (the issue-33 ViT target nothing recovered; here the last layer
// scaled by s, which multiplies every logit margin m_j = l_y - l_j, y the predicted class). At
// s m_min = 60 the nearest class keeps p ~ e^-60 (a normal float) and the gradient still reaches
// the patches, but p_y rounds to 1 and every class with s m_j > 104 underflows: the last layer's
// signal ties at 0 between y and them, and argmin took the first of the tie (a wrong label, no
// certificate). The recovered image's own prediction breaks the tie. At s m_min = 120 every p_j
// underflows, the whole gradient is zero, and the attack says why nothing can be recovered.
TEST(ClosedForm, APositionalSolveOnAModelCertainOfItsImageNamesTheLabelOrSaysWhyNot) {
  Progress quiet;
  bool tie_seen = false;
  for (uint64_t seed = 0; seed < 40 && !tie_seen; ++seed) {
    auto model = testing::make_model("vit", 4);
    auto generator = at::detail::createCPUGenerator(100 + seed);
    const auto image = torch::rand({1, 1, 28, 28}, generator);
    torch::Tensor logits;
    {
      torch::NoGradGuard no_grad;
      logits = model->forward(image).view({-1}).to(torch::kDouble);
    }
    const int64_t y = logits.argmax().item<int64_t>();
    const auto margins = (logits[y] - logits).index_put_({y}, INFINITY);
    const double m_min = margins.min().item<double>();
    // The tie must include a class before y, where argmin would land.
    const double s = 60.0 / m_min;
    if (!(margins.slice(0, 0, y) * s > 110).any().item<bool>()) continue;
    tie_seen = true;
    auto params = model->parameters();
    const auto n = params.size();
    {
      torch::NoGradGuard no_grad;
      params[n - 1].mul_(s);
      params[n - 2].mul_(s);
    }
    const auto label = torch::tensor({y}, torch::kLong);
    const auto update = observe_update(*model, image, label, AttackerKnowledge{}, false);
    ASSERT_FALSE(update.labels.defined());  // the attack reads the label off the gradient
    ASSERT_TRUE(saturated_softmax(*model, update.gradients)) << "seed " << seed;
    const auto result = run_positional_attack(*model, update, {}, quiet);
    ASSERT_FALSE(result.not_applicable) << result.failure;
    EXPECT_EQ(result.labels.item<int64_t>(), y) << "seed " << seed;
    ASSERT_EQ(result.certified.size(), 1u);
    EXPECT_TRUE(result.certified[0]) << "self-check " << result.self_check;
    EXPECT_GE(metrics::score_reconstruction(result.images, result.labels, image, label).mean_psnr,
              60.0);

    // Twice the scale: every other class underflows, the gradient is zero.
    {
      torch::NoGradGuard no_grad;
      params[n - 1].mul_(2.0);
      params[n - 2].mul_(2.0);
    }
    const auto zero = observe_update(*model, image, label, AttackerKnowledge{}, false);
    const auto none = run_positional_attack(*model, zero, {}, quiet);
    EXPECT_TRUE(none.not_applicable);
    EXPECT_NE(none.failure.find("the shared gradient is zero: the model is certain of this image"),
              std::string::npos)
        << none.failure;
  }
  EXPECT_TRUE(tie_seen) << "no test image gave a tie with a class before the predicted one";
}

TEST_F(ClosedFormSlow, LinearLayerRecoversEveryImageExactlyFromATrainedMlp) {
  auto model = testing::fashion_mnist_model("mlp");
  const auto psnrs =
      single_image_psnrs(*model, find_gradient_attack("linear-layer"), 8, /*certified=*/true);
  ASSERT_EQ(psnrs.size(), 8u);
  for (double p : psnrs) EXPECT_GE(p, 60.0);
  // The first layer sees pixels: there are no features to invert.
  Progress quiet;
  const auto target = test_images(1);
  const auto fti = run_features_then_invert(*model, update_of(*model, target), {}, quiet);
  EXPECT_TRUE(fti.not_applicable);
  EXPECT_NE(fti.failure.find("linear-layer recovers it directly"), std::string::npos)
      << fti.failure;
}

// How many images of a batch reconstruction are certified, checking that each certified image is
// in fact exact: >= 60 dB from its nearest target, no two of them the same target. (Checked
// against the nearest target, not the scoring's assignment: with an image missing, the
// assignment that minimises the total error can hand an exact image another target.)
int64_t certified_exact(const Reconstruction& result, const testing::Targets& targets) {
  int64_t exact = 0;
  std::set<int64_t> matched;
  for (int64_t k = 0; k < result.images.size(0); ++k) {
    if (!result.certified.at(static_cast<size_t>(k))) continue;
    ++exact;
    const auto mse = (targets.images - result.images[k]).pow(2).mean({1, 2, 3});
    const int64_t nearest = mse.argmin().item<int64_t>();
    EXPECT_GE(-10 * std::log10(std::max(mse[nearest].item<double>(), 1e-10)), 60.0)
        << "certified image " << k;
    EXPECT_TRUE(matched.insert(nearest).second)
        << "certified image " << k << " repeats target " << nearest;
  }
  return exact;
}

// Issue 33 item 1: the first layer's gradient disaggregated (bias ratio + peeling with the
// model's own sample gradients, candidates snapped to the 8-bit levels) gives every image of a
// batch of 8 and of 16 held-out test images, each certified without ground truth, with their
// labels (15 of 16 before the snapping: the 16th's share of the gradient is 4e-4).
TEST_F(ClosedFormSlow, LinearLayerRecoversEveryImageOfABatchFromATrainedMlp) {
  auto model = testing::fashion_mnist_model("mlp");
  Progress quiet;
  for (int64_t batch : {8, 16}) {
    const auto targets = test_images(batch, 16);
    const auto result = run_linear_layer_attack(*model, update_of(*model, targets), {}, quiet);
    ASSERT_FALSE(result.not_applicable) << result.failure;
    const int64_t exact = certified_exact(result, targets);
    EXPECT_GE(exact, batch) << result.details.dump();
    const auto score =
        metrics::score_reconstruction(result.images, result.labels, targets.images, targets.labels);
    // Each recovered image carries the label it was confirmed with; the rest get what is left
    // of the last layer's count.
    EXPECT_GE(score.label_accuracy, static_cast<double>(exact) / static_cast<double>(batch));
    std::vector<double> psnrs;
    for (int64_t i = 0; i < batch; ++i) psnrs.push_back(score.psnr[i].item<double>());
    std::cout << "batch " << batch << ": " << exact << " of " << batch
              << " recovered exactly, median PSNR " << median(psnrs) << " dB, labels "
              << score.label_accuracy << ", " << result.details["disaggregation"].dump() << "\n";
  }
}

// A gradient that is not what the model gives (the first layer's weight gradient scaled by 1 %,
// or with noise of 1e-4 of its largest entry) is not certified, though rows still agree.
TEST_F(ClosedFormSlow, LinearLayerCertifiesNothingFromACorruptedBatchGradient) {
  auto model = testing::fashion_mnist_model("mlp");
  const auto targets = test_images(8, 16);
  Progress quiet;
  const auto clean = update_of(*model, targets);
  auto scaled = clean;
  scaled.gradients[0] = clean.gradients[0] * 1.01;
  auto noisy = clean;
  auto generator = at::detail::createCPUGenerator(7);
  noisy.gradients[0] = clean.gradients[0] + 1e-4 * clean.gradients[0].abs().max() *
                                                torch::randn(clean.gradients[0].sizes(), generator);
  for (const auto* update : {&scaled, &noisy}) {
    const auto result = run_linear_layer_attack(*model, *update, {}, quiet);
    ASSERT_FALSE(result.not_applicable) << result.failure;
    EXPECT_EQ(std::count(result.certified.begin(), result.certified.end(), true), 0)
        << result.details["disaggregation"].dump();
  }
}

// At batch > 1 features-then-invert inverts the features the disaggregation of the CNN's fc1
// gives for each sample (until issue 33 it inverted only the samples the plain bias ratio
// isolated).
TEST_F(ClosedFormSlow, FeaturesThenInvertRebuildsABatchFromATrainedCnn) {
  auto model = testing::fashion_mnist_model("cnn");
  const auto targets = test_images(4, 16);
  Progress quiet;
  const auto result = run_features_then_invert(*model, update_of(*model, targets), {}, quiet);
  ASSERT_FALSE(result.not_applicable) << result.failure;
  const auto& parts = result.details["disaggregation"];
  EXPECT_EQ(parts["recovered"], 4) << parts.dump();
  const auto score =
      metrics::score_reconstruction(result.images, result.labels, targets.images, targets.labels);
  std::vector<double> psnrs;
  for (int64_t i = 0; i < 4; ++i) psnrs.push_back(score.psnr[i].item<double>());
  std::cout << "features-then-invert batch 4 PSNRs:";
  for (double p : psnrs) std::cout << " " << p;
  std::cout << ", labels " << score.label_accuracy << "\n";
  // Batch 1 on this model: medians 22.5-29.6 dB over seed offsets; a grey guess ~10 dB.
  EXPECT_GE(median(psnrs), 18.0);
  EXPECT_DOUBLE_EQ(score.label_accuracy, 1.0);
  EXPECT_EQ(std::count(result.certified.begin(), result.certified.end(), true), 0);
}

// Where the preconditions fail the batch attack says so: no ReLU after the first layer, or a
// batch larger than its width.
TEST_F(ClosedFormSlow, LinearLayerAtBatchSizeIsNotApplicableWithoutAReluOrWidth) {
  torch::manual_seed(0);
  testing::SequentialClassifier smooth(
      torch::nn::Sequential(torch::nn::Flatten(), torch::nn::Linear(784, 64), torch::nn::Tanh(),
                            torch::nn::Linear(64, 10)),
      "tanh-mlp", "MLP with tanh");
  testing::SequentialClassifier narrow(
      torch::nn::Sequential(torch::nn::Flatten(), torch::nn::Linear(784, 6), torch::nn::ReLU(),
                            torch::nn::Linear(6, 10)),
      "narrow-mlp", "MLP 6 units wide");
  const auto targets = test_images(8);
  Progress quiet;
  const auto no_relu = run_linear_layer_attack(smooth, update_of(smooth, targets), {}, quiet);
  EXPECT_TRUE(no_relu.not_applicable);
  EXPECT_NE(no_relu.failure.find("no ReLU after"), std::string::npos) << no_relu.failure;
  const auto too_wide = run_linear_layer_attack(narrow, update_of(narrow, targets), {}, quiet);
  EXPECT_TRUE(too_wide.not_applicable);
  EXPECT_NE(too_wide.failure.find("larger than the width"), std::string::npos) << too_wide.failure;
}

TEST_F(ClosedFormSlow, PositionalSolveRecoversEveryImageFromATrainedVit) {
  auto model = testing::fashion_mnist_model("vit");
  const auto psnrs =
      single_image_psnrs(*model, find_gradient_attack("positional"), 8, /*certified=*/true);
  ASSERT_EQ(psnrs.size(), 8u);
  for (double p : psnrs) EXPECT_GE(p, 60.0);

  Progress quiet;
  const auto target = test_images(1);
  auto frozen = update_of(*model, target);
  const auto found = find_linear_layers(model->parameters());
  for (size_t i = 0; i < frozen.gradients.size(); ++i) {
    if (frozen.gradients[i].dim() == 3 && frozen.gradients[i].size(1) == 17) {
      frozen.gradients[i].zero_();  // a frozen positional embedding shares no gradient
    }
  }
  const auto none = run_positional_attack(*model, frozen, {}, quiet);
  EXPECT_TRUE(none.not_applicable);
  EXPECT_NE(none.failure.find("not shared"), std::string::npos) << none.failure;

  const auto two = test_images(2);
  const auto batch = run_positional_attack(*model, update_of(*model, two), {}, quiet);
  EXPECT_TRUE(batch.not_applicable);
  EXPECT_NE(batch.failure.find("batch 1"), std::string::npos) << batch.failure;
}

TEST_F(ClosedFormSlow, FeaturesThenInvertRebuildsImagesFromATrainedCnn) {
  auto model = testing::fashion_mnist_model("cnn");
  Progress quiet;
  const auto target = test_images(1);
  const auto linear = run_linear_layer_attack(*model, update_of(*model, target), {}, quiet);
  EXPECT_TRUE(linear.not_applicable);
  EXPECT_NE(linear.failure.find("features, not pixels"), std::string::npos) << linear.failure;

  const auto psnrs = single_image_psnrs(*model, find_gradient_attack("features-then-invert"), 8,
                                        /*certified=*/false);
  ASSERT_EQ(psnrs.size(), 8u);
  std::cout << "features-then-invert PSNRs:";
  for (double p : psnrs) std::cout << " " << p;
  std::cout << "\n";
  // Measured medians over seed offsets 0/1/2 (scripts/test-spread.sh): 29.6 / 22.5 / 23.2 dB
  // (single images 16-62 dB). The 25 dB is not reached on every seed: the bar sits
  // below the spread; a blank or mean-image guess scores ~10 dB.
  EXPECT_GE(median(psnrs), 20.0);
}

// The TorchScript models of tests/fixtures/make_closed_form_models.py, written once per test.
class ClosedFormTorchScript : public testing::RequiresFashionMnist {
 protected:
  void SetUp() override {
    testing::RequiresFashionMnist::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
    const bool have_torch = std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
    PRIVAUDIT_REQUIRE(have_torch, "python3-torch (Debian)");
    const std::string command = std::string("/usr/bin/python3 ") + PRIVAUDIT_SOURCE_DIR +
                                "/tests/fixtures/make_closed_form_models.py " +
                                folder_.path().string();
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }
  std::unique_ptr<models::Classifier> load(const std::string& name) {
    return models::load_torchscript(folder_.file(name + ".pt"), models::InputShape{1, 28, 28}, 10,
                                    torch::kCPU);
  }
  testing::TempDir folder_;
};

TEST_F(ClosedFormTorchScript, LinearLayerAndEveryOtherAttackRunOnAPythonMlp) {
  auto model = load("mlp");
  const auto psnrs =
      single_image_psnrs(*model, find_gradient_attack("linear-layer"), 4, /*certified=*/true);
  for (double p : psnrs) EXPECT_GE(p, 60.0);
  // Every attack runs on it (DLG and iDLG once failed with "Can't detach views in-place").
  const auto target = test_images(1);
  const auto update = update_of(*model, target);
  AttackBudget budget;
  budget.iterations = 3;
  Progress quiet;
  for (const auto& attack : gradient_attacks()) {
    EXPECT_NO_THROW({
      const auto result = attack.run(*model, update, budget, quiet);
      EXPECT_EQ(result.images.sizes(), target.images.sizes()) << attack.name;
    }) << attack.name;
  }
}

TEST_F(ClosedFormTorchScript, PositionalSolveRecoversImagesFromAPythonVit) {
  auto model = load("vit");
  const auto psnrs =
      single_image_psnrs(*model, find_gradient_attack("positional"), 4, /*certified=*/true);
  ASSERT_EQ(psnrs.size(), 4u);
  for (double p : psnrs) EXPECT_GE(p, 60.0);
  // Features-then-invert's precondition fails on it as on the built-in ViT (it once ran there,
  // the model's kind being "torchscript"): not applicable, with the reason, at batch 1 and 2.
  Progress quiet;
  for (const int64_t batch : {1, 2}) {
    const auto update = update_of(*model, test_images(batch));
    const auto result = find_gradient_attack("features-then-invert").run(*model, update, {}, quiet);
    EXPECT_TRUE(result.not_applicable) << batch;
    EXPECT_EQ(result.failure, kFeaturesNotInvertibleOnVit) << batch;
  }
}

// A ViT with a fixed sinusoidal positional table: nothing for the positional solve, and
// features-then-invert's precondition fails as on any ViT (it once ran there for thousands of
// iterations): both not applicable at once, each saying why; the optimisation attacks still run.
TEST_F(ClosedFormTorchScript, AVitWithAFixedPositionalTableIsNamedAndOnlyOptimisationRuns) {
  auto model = load("vit_fixed_table");
  Progress quiet;
  const auto update = update_of(*model, test_images(1));
  const auto positional = find_gradient_attack("positional").run(*model, update, {}, quiet);
  EXPECT_TRUE(positional.not_applicable);
  EXPECT_NE(positional.failure.find("no learned positional embedding"), std::string::npos)
      << positional.failure;
  const auto features = find_gradient_attack("features-then-invert").run(*model, update, {}, quiet);
  EXPECT_TRUE(features.not_applicable);
  EXPECT_EQ(features.failure, kFeaturesNotInvertibleOnFixedTableVit);
  EXPECT_EQ(features.iterations, 0);
  AttackBudget budget;
  budget.iterations = 5;
  const auto ig = find_gradient_attack("ig").run(*model, update, budget, quiet);
  EXPECT_FALSE(ig.not_applicable) << ig.failure;
  // A CNN (3 x 3 kernels, no token projection) is not taken for one.
  auto cnn = load("sequential_cnn");
  const auto cnn_update = update_of(*cnn, test_images(1));
  AttackBudget short_inversion;
  short_inversion.feature_iterations = 1;
  EXPECT_NE(find_gradient_attack("features-then-invert")
                .run(*cnn, cnn_update, short_inversion, quiet)
                .failure,
            kFeaturesNotInvertibleOnFixedTableVit);
}

// Issue 15 point 6: the features report follows the information, not the tensor's shape.
TEST_F(ClosedFormTorchScript, AFlattenedCutIsDecodedAtLeastAsWellAsTheMapItFlattens) {
  auto model = load("sequential_cnn");
  ASSERT_EQ(model->cut_points(), (std::vector<std::string>{"0", "1", "2", "3"}));
  static const data::Splits splits = data::load_splits("fashion-mnist", {100, 400, 0});
  experiments::LayerExperimentOptions options;
  options.cuts = {"2", "3"};
  options.samples = 50;
  options.jacobian_samples = 1;
  options.decoder_epochs = 1;
  options.attacker_size = 200;
  options.targets = 50;
  experiments::MemorySink sink;
  const auto result = experiments::run_layer_experiment(*model, splits.test, options,
                                                        experiments::Reporter(), sink);
  ASSERT_EQ(result.layers.size(), 2u);
  const auto& pool = result.layers[0];
  const auto& flat = result.layers[1];
  EXPECT_EQ(pool.decoder_view, "spatial 8x14x14");
  ASSERT_EQ(flat.decoders_tried.size(), 2u) << flat.decoders_tried.dump();
  EXPECT_GE(flat.decoder.psnr, pool.decoder.psnr);
  const auto view = flat.decoders_tried[1]["view"].get<std::string>();
  EXPECT_NE(view.find("as cut '2', same values"), std::string::npos) << view;
}

TEST_F(ClosedFormTorchScript, AModelWithoutBiasesIsNotApplicableAndTheRunGoesOn) {
  torch::manual_seed(0);
  testing::SequentialClassifier model(
      torch::nn::Sequential(
          torch::nn::Flatten(), torch::nn::Linear(torch::nn::LinearOptions(784, 64).bias(false)),
          torch::nn::ReLU(), torch::nn::Linear(torch::nn::LinearOptions(64, 10).bias(false))),
      "no-bias", "MLP without biases");
  const auto target = test_images(1);
  const auto update = update_of(model, target);
  Progress quiet;
  for (const auto* name : {"linear-layer", "positional", "features-then-invert"}) {
    const auto result = find_gradient_attack(name).run(model, update, {}, quiet);
    EXPECT_TRUE(result.not_applicable) << name;
    EXPECT_FALSE(result.failure.empty()) << name;
  }
}

// The experiment keeps the best attack per target, never scores a not-applicable attack as 0 dB,
// and raises the audit's risk to what the strongest attack demonstrated.
TEST_F(ClosedFormSlow, TheExperimentReportsTheStrongestAttackPerTargetAndNeverLessRisk) {
  auto model = testing::fashion_mnist_model("mlp");
  static const data::Splits splits = data::load_splits("fashion-mnist", {100, 200, 0});
  experiments::GradientExperimentOptions options;
  options.attacks = {"linear-layer", "positional", "ig"};
  options.batch_sizes = {1};
  options.targets = 3;
  options.budget.iterations = 20;
  options.audit_probes = 0;
  options.audit_pool = 32;
  options.skip_certified = false;  // Inverting Gradients runs beside, for the comparison
  experiments::MemorySink sink;
  const auto result = experiments::run_gradient_experiment(*model, splits.test, options,
                                                           experiments::Reporter(), sink);
  ASSERT_EQ(result.runs.size(), 3u);
  EXPECT_EQ(result.runs[1].applicable_batches, 0);  // positional: an MLP has no positions
  EXPECT_FALSE(result.runs[1].not_applicable.empty());
  EXPECT_TRUE(std::isnan(result.runs[1].psnr));
  ASSERT_EQ(result.strongest.size(), 1u);
  const auto& best = result.strongest[0];
  ASSERT_EQ(best.attack.size(), 3u);
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(best.attack[i], "linear-layer");
    EXPECT_GE(best.psnr[i], 60.0);
    EXPECT_TRUE(best.certified[i]);
  }
  EXPECT_EQ(best.exact, 3);
  EXPECT_GT(best.mean_psnr, result.runs[2].psnr);
  ASSERT_EQ(result.audits.size(), 1u);
  EXPECT_GE(result.audits[0].audit.risk, result.audits[0].attack_risk);
  EXPECT_DOUBLE_EQ(result.audits[0].attack_risk, 1.0);  // >= 40 dB counts as a full recovery
  EXPECT_DOUBLE_EQ(result.risk, 1.0);
  // The predicted figure itself, not only the risk, is at least what the attack achieved (the
  // old audit raised the risk and left predicted_psnr at the fit), and says where that came from.
  const auto& audit = result.audits[0].audit;
  EXPECT_GE(audit.predicted_psnr, best.mean_psnr);
  EXPECT_EQ(audit.risk_bound, "attack");
  EXPECT_EQ(audit.floor_source,
            "attack: strongest per target, mean over 3 targets (linear-layer 3)");
  const auto json = experiments::to_json(result, options);
  EXPECT_EQ(json["audit"]["batch_sizes"][0]["attack"], "measured");
  EXPECT_EQ(json["audit"]["batch_sizes"][0]["floor_source"], audit.floor_source);
  EXPECT_TRUE(json["audit"]["not_measured"].empty());
  EXPECT_TRUE(json["runs"][1]["psnr"].is_null());
  EXPECT_EQ(json["strongest"][0]["exact"], 3);

  // By default an attack is not run on a batch already recovered exactly and certified: the
  // strongest figures are the same, Inverting Gradients says why it did not run.
  options.skip_certified = true;
  experiments::MemorySink skipped_sink;
  const auto skipped = experiments::run_gradient_experiment(*model, splits.test, options,
                                                            experiments::Reporter(), skipped_sink);
  ASSERT_EQ(skipped.runs.size(), 3u);
  EXPECT_EQ(skipped.runs[2].skipped_batches, 3);
  EXPECT_NE(skipped.runs[2].skipped.find("linear-layer"), std::string::npos);
  EXPECT_TRUE(std::isnan(skipped.runs[2].psnr));
  EXPECT_EQ(skipped.strongest[0].exact, 3);
  EXPECT_DOUBLE_EQ(skipped.strongest[0].mean_psnr, best.mean_psnr);
  const auto skipped_json = experiments::to_json(skipped, options);
  EXPECT_EQ(skipped_json["runs"][2]["skipped_batches"], 3);
  EXPECT_FALSE(skipped_json["runs"][2].contains("not_applicable"));
}

// A batch size the audit was asked for is reported even where nothing was measured: no attack
// applied there (positional on an MLP), or the audit's pool holds fewer than two batches. (The
// old results left the second out and gave the first no mark.)
TEST_F(ClosedFormSlow, ABatchSizeWithoutAnAttackOrAnAuditIsReportedNotMeasured) {
  auto model = testing::fashion_mnist_model("mlp");
  static const data::Splits splits = data::load_splits("fashion-mnist", {100, 200, 0});
  experiments::GradientExperimentOptions options;
  options.attacks = {"positional"};
  options.batch_sizes = {1, 2};
  options.targets = 2;
  options.audit_probes = 0;
  options.audit_pool = 3;
  experiments::MemorySink sink;
  const auto result = experiments::run_gradient_experiment(*model, splits.test, options,
                                                           experiments::Reporter(), sink);
  ASSERT_EQ(result.audits.size(), 2u);
  EXPECT_TRUE(result.audits[0].audited);
  EXPECT_FALSE(result.audits[0].attack_measured);
  EXPECT_EQ(result.audits[0].audit.floor_source, "none");
  EXPECT_FALSE(result.audits[1].audited);
  const auto json = experiments::to_json(result, options);
  const auto& sizes = json["audit"]["batch_sizes"];
  ASSERT_EQ(sizes.size(), 2u);
  EXPECT_EQ(sizes[0]["status"], "measured");
  EXPECT_EQ(sizes[0]["attack"], "not measured");
  EXPECT_EQ(sizes[1]["batch_size"], 2);
  EXPECT_EQ(sizes[1]["status"], "not measured");
  EXPECT_EQ(sizes[1]["not_measured"], "the audit pool has 3 images; batch 2 needs 4");
  EXPECT_TRUE(sizes[1]["risk"].is_null());
  EXPECT_EQ(json["audit"]["not_measured"], nlohmann::json::array({1, 2}));
}

}  // namespace
}  // namespace privaudit::attacks
