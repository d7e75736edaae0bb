#include "privaudit/experiments/gradient_audit.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "attacks/gradients/attack_fixtures.h"
#include "privaudit/util/error.h"
#include "privaudit/util/timer.h"

namespace privaudit::experiments {
namespace {

class GradientAudit : public testing::RequiresFashionMnist {};

using testing::make_model;
using testing::test_images;

// A 5x5 conv (8 channels, ReLU), global average pooling, a linear layer: the gradient sees the
// image only through averages over all positions, so countless unrelated images share it, while
// along a path from an image it still moves smoothly with the image.
class AveragingClassifier : public testing::SequentialClassifier {
 public:
  explicit AveragingClassifier(uint64_t seed)
      : SequentialClassifier(make_net(seed), "test-averaging",
                             "test conv 8, global average pool, linear") {}

 private:
  static torch::nn::Sequential make_net(uint64_t seed) {
    torch::manual_seed(seed);
    return torch::nn::Sequential(
        torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 8, 5).padding(2)), torch::nn::ReLU(),
        torch::nn::AdaptiveAvgPool2d(torch::nn::AdaptiveAvgPool2dOptions(1)), torch::nn::Flatten(),
        torch::nn::Linear(8, 10));
  }
};

TEST_F(GradientAudit, FindsLeakageInLeNetAndNoneInAModelThatLeaksNothing) {
  const auto data = test_images(40);
  GradientAuditOptions options;
  options.paths = 4;
  options.pairs = 8;
  Progress quiet;
  auto lenet = make_model("lenet", 0);
  const auto leaky = audit_gradient_privacy(*lenet, data.images, data.labels, options, quiet);
  EXPECT_EQ(leaky.points.size(), 4u * 12u + 8u + 2u);
  EXPECT_EQ(leaky.points.back().kind, "probe");
  EXPECT_TRUE(leaky.fit_valid);
  EXPECT_GT(leaky.spearman, 0.5);
  EXPECT_GT(leaky.risk, 0.2);

  auto blind = make_model("lenet", 0);
  testing::zero_all_but_last_layer(*blind);
  const auto none = audit_gradient_privacy(*blind, data.images, data.labels, options, quiet);
  EXPECT_FALSE(none.fit_valid);
  EXPECT_EQ(none.risk, 0.0);
}

TEST_F(GradientAudit, LargerBatchesLeakLess) {
  const auto data = test_images(64);
  auto lenet = make_model("lenet", 1);
  GradientAuditOptions options;
  options.paths = 4;
  options.pairs = 8;
  Progress quiet;
  const auto one = audit_gradient_privacy(*lenet, data.images, data.labels, options, quiet);
  options.batch_size = 8;
  const auto eight = audit_gradient_privacy(*lenet, data.images, data.labels, options, quiet);
  EXPECT_GT(one.risk, eight.risk) << one.predicted_psnr << " vs " << eight.predicted_psnr;
}

TEST_F(GradientAudit, ProbesFindUnrelatedImagesWithTheGradientOfAnAveragingModel) {
  const auto data = test_images(40);
  AveragingClassifier model(0);
  GradientAuditOptions options;
  options.paths = 4;
  options.pairs = 8;
  options.probes = 0;
  Progress quiet;
  const auto paths_only = audit_gradient_privacy(model, data.images, data.labels, options, quiet);
  ASSERT_TRUE(paths_only.fit_valid);
  EXPECT_TRUE(std::isnan(paths_only.probe_min_distance));
  // The fit alone promises a good share of the way to an exact copy (measured 0.38); the far
  // end of an image path already undercuts it (0.22).
  const double fit_risk = (paths_only.fit_psnr - paths_only.unrelated_psnr) /
                          (options.exact_psnr - paths_only.unrelated_psnr);
  EXPECT_GT(fit_risk, 0.3) << paths_only.fit_psnr << " vs " << paths_only.unrelated_psnr;
  EXPECT_GT(paths_only.risk, 0.15) << paths_only.risk_bound << " " << paths_only.predicted_psnr;

  options.probes = 2;
  const Stopwatch started;
  const auto probed = audit_gradient_privacy(model, data.images, data.labels, options, quiet);
  const double seconds = started.seconds();
  EXPECT_EQ(probed.fit_psnr, paths_only.fit_psnr);  // the probes come after paths and pairs
  EXPECT_LE(probed.probe_min_distance, options.attacker_distance);
  EXPECT_LT(probed.probe_psnr, probed.unrelated_psnr + 3) << probed.unrelated_psnr;
  EXPECT_EQ(probed.risk_bound, "probe");
  EXPECT_LT(probed.risk, 0.05) << probed.predicted_psnr;
  EXPECT_GT(probed.probe_seconds, 0.0);
  EXPECT_LE(probed.probe_seconds, seconds);
}

TEST_F(GradientAudit, RejectsBadOptionsAndTooFewImages) {
  const auto data = test_images(4);
  auto lenet = make_model("lenet", 0);
  Progress quiet;
  GradientAuditOptions options;
  options.batch_size = 4;
  try {
    audit_gradient_privacy(*lenet, data.images, data.labels, options, quiet);
    FAIL() << "4 images accepted for batch 4";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "audit needs at least 8 images for batch size 4, got 4");
  }
  options = GradientAuditOptions();
  options.attacker_distance = 0;
  EXPECT_THROW(audit_gradient_privacy(*lenet, data.images, data.labels, options, quiet),
               UsageError);
  options = GradientAuditOptions();
  options.probes = -1;
  try {
    options.validate();
    FAIL() << "-1 probes accepted";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "audit probes must not be negative, got -1");
  }
  options = GradientAuditOptions();
  options.probe_iterations = 0;
  try {
    options.validate();
    FAIL() << "0 probe iterations accepted";
  } catch (const UsageError& e) {
    EXPECT_STREQ(e.what(), "audit probe iterations must be at least 1, got 0");
  }
}

}  // namespace
}  // namespace privaudit::experiments
