#include "privaudit/metrics/gradient_audit.h"

#include <gtest/gtest.h>

#include <cmath>

#include "../attacks/attack_fixtures.h"
#include "privaudit/util/error.h"

namespace privaudit::metrics {
namespace {

using testing::make_model;
using testing::test_images;

TEST(SpearmanCorrelation, RanksNotValues) {
  EXPECT_DOUBLE_EQ(spearman_correlation({1, 2, 3, 4}, {1, 10, 100, 1000}), 1.0);
  EXPECT_DOUBLE_EQ(spearman_correlation({1, 2, 3, 4}, {4, 3, 2, 1}), -1.0);
  // Ties take their average rank: ranks (0.5, 0.5, 2) vs (0, 1, 2).
  EXPECT_NEAR(spearman_correlation({1, 1, 2}, {1, 2, 3}), 0.8660254037844386, 1e-12);
  EXPECT_TRUE(std::isnan(spearman_correlation({1}, {1})));
}

TEST(GradientAudit, FindsLeakageInLeNetAndNoneInAModelThatLeaksNothing) {
  const auto data = test_images(40);
  GradientAuditOptions options;
  options.paths = 4;
  options.pairs = 8;
  Progress quiet;
  auto lenet = make_model("lenet", 0);
  const auto leaky = audit_gradient_privacy(*lenet, data.images, data.labels, options, quiet);
  EXPECT_EQ(leaky.points.size(), 4u * 12u + 8u);
  EXPECT_TRUE(leaky.fit_valid);
  EXPECT_GT(leaky.spearman, 0.5);
  EXPECT_GT(leaky.risk, 0.2);

  auto blind = make_model("lenet", 0);
  testing::zero_all_but_last_layer(*blind);
  const auto none = audit_gradient_privacy(*blind, data.images, data.labels, options, quiet);
  EXPECT_FALSE(none.fit_valid);
  EXPECT_EQ(none.risk, 0.0);
}

TEST(GradientAudit, LargerBatchesLeakLess) {
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

TEST(GradientAudit, RejectsBadOptionsAndTooFewImages) {
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
}

}  // namespace
}  // namespace privaudit::metrics
