// Per-example gradients from one backward pass equal those of one backward pass per example, for
// every built-in architecture DP-SGD trains, and a model with batch norm is refused.
#include "privaudit/train/per_example.h"

#include <gtest/gtest.h>

#include "privaudit/util/error.h"
#include "test_util.h"

namespace privaudit::train {
namespace {

models::ModelConfig tiny_config(const std::string& arch, const data::Splits& splits) {
  auto config = models::default_config(
      arch, {splits.train.channels(), splits.train.height(), splits.train.width()},
      splits.train.num_classes());
  config.normalization = splits.normalization;
  return config;
}

// The largest absolute difference over all parameters and examples.
double largest_difference(const PerExampleGradients& a, const PerExampleGradients& b) {
  EXPECT_EQ(a.gradients.size(), b.gradients.size());
  double largest = 0.0;
  for (size_t p = 0; p < a.gradients.size(); ++p) {
    EXPECT_EQ(a.gradients[p].sizes(), b.gradients[p].sizes()) << "parameter " << p;
    largest = std::max(largest, (a.gradients[p] - b.gradients[p]).abs().max().item<double>());
  }
  return largest;
}

void expect_equal_to_loop(models::ModelConfig config, const data::Splits& splits,
                          const std::string& what) {
  torch::manual_seed(3);
  models::BuiltinClassifier model(config);
  const auto images = splits.train.images.slice(0, 0, 6);
  const auto labels = splits.train.labels.slice(0, 0, 6);
  const auto fast = per_example_gradients(model, images, labels);
  const auto loop = per_example_gradients_by_loop(model, images, labels);
  ASSERT_EQ(fast.gradients.size(), model.parameters().size()) << what;
  EXPECT_EQ(fast.gradients.front().size(0), 6) << what;
  EXPECT_LE(largest_difference(fast, loop), 1e-5) << what;
  EXPECT_LE((fast.logits - model.forward(images)).abs().max().item<double>(), 1e-5) << what;
  // The gradients are not all zero (a silent zero would pass the comparison if both were).
  double total = 0.0;
  for (const auto& g : fast.gradients) total += g.abs().sum().item<double>();
  EXPECT_GT(total, 1e-3) << what;
}

TEST(PerExampleGradients, EqualBatchOfOneGradientsForMlp) {
  const auto splits = testing::toy_splits(4, 4);
  expect_equal_to_loop(tiny_config("mlp", splits), splits, "mlp");
  auto grouped = tiny_config("mlp", splits);
  grouped.group_norm = true;
  expect_equal_to_loop(grouped, splits, "mlp with group norm");
}

TEST(PerExampleGradients, EqualBatchOfOneGradientsForCnn) {
  const auto splits = testing::toy_splits(4, 4);
  expect_equal_to_loop(tiny_config("cnn", splits), splits, "cnn");
  auto grouped = tiny_config("cnn", splits);
  grouped.group_norm = true;
  grouped.activation = models::Activation::kTanh;
  expect_equal_to_loop(grouped, splits, "cnn with group norm and tanh");
}

TEST(PerExampleGradients, EqualBatchOfOneGradientsForVit) {
  const auto splits = testing::toy_splits(4, 4);
  expect_equal_to_loop(tiny_config("vit", splits), splits, "vit");
}

TEST(PerExampleGradients, SumToTheBatchGradient) {
  const auto splits = testing::toy_splits(4, 4);
  torch::manual_seed(1);
  models::BuiltinClassifier model(tiny_config("cnn", splits));
  const auto images = splits.train.images.slice(0, 0, 8);
  const auto labels = splits.train.labels.slice(0, 0, 8);
  const auto per_example = per_example_gradients(model, images, labels);
  const auto loss = torch::nn::functional::cross_entropy(
      model.forward(images), labels,
      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
  const auto batch = torch::autograd::grad({loss}, model.parameters());
  for (size_t p = 0; p < batch.size(); ++p) {
    EXPECT_LE((per_example.gradients[p].sum(0) - batch[p]).abs().max().item<double>(), 1e-4);
  }
}

// DP-SGD's clipped sum taken from the factors (ghost clipping) equals clipping the materialised
// per-example gradients (as DP-SGD did before), with C at the median norm so that some examples
// are clipped and some not.
void expect_clipped_sum_as_materialised(models::ModelConfig config, const data::Splits& splits,
                                        const std::string& what,
                                        Factors factors = Factors::kCheaper) {
  torch::manual_seed(5);
  models::BuiltinClassifier model(config);
  const auto images = splits.train.images.slice(0, 0, 8);
  const auto labels = splits.train.labels.slice(0, 0, 8);
  const auto reference = per_example_gradients(model, images, labels);
  // The reference: DP-SGD's clipping of the materialised gradients (clip_and_sum).
  const auto norms = clip_and_sum(reference.gradients, 1.0).norms;
  const double clip = norms.median().item<double>();
  const auto materialised = clip_and_sum(reference.gradients, clip);
  const auto clipped = clipped_gradient_sum(model, images, labels, clip, factors);
  EXPECT_LE(((clipped.norms - norms).abs() / norms).max().item<double>(), 1e-5) << what;
  const auto scale = clip_factors(norms, clip);
  EXPECT_GE(scale.lt(1.0).sum().item<int64_t>(), 3) << what << ": too few examples clipped";
  EXPECT_GE(scale.eq(1.0).sum().item<int64_t>(), 3) << what << ": too many examples clipped";
  ASSERT_EQ(clipped.sum.size(), reference.gradients.size()) << what;
  for (size_t p = 0; p < clipped.sum.size(); ++p) {
    const auto& expected = materialised.sum[p];
    ASSERT_EQ(clipped.sum[p].sizes(), expected.sizes()) << what << ", parameter " << p;
    EXPECT_LE((clipped.sum[p] - expected).abs().max().item<double>(),
              1e-5 * (1.0 + expected.abs().max().item<double>()))
        << what << ", parameter " << p;
  }
  EXPECT_LE((clipped.logits - reference.logits).abs().max().item<double>(), 1e-6) << what;
}

TEST(PerExampleGradients, ClippedSumFromFactorsEqualsClippingEachExample) {
  const auto splits = testing::toy_splits(4, 4);
  expect_clipped_sum_as_materialised(tiny_config("mlp", splits), splits, "mlp");
  auto cnn = tiny_config("cnn", splits);
  cnn.group_norm = true;
  expect_clipped_sum_as_materialised(cnn, splits, "cnn with group norm");
  expect_clipped_sum_as_materialised(tiny_config("vit", splits), splits, "vit");
  // Every weight from its factors: the token Gram matrices of the ViT's Linear layers (17 tokens)
  // and of the convolutions' output positions.
  expect_clipped_sum_as_materialised(tiny_config("vit", splits), splits, "vit, all factored",
                                     Factors::kAlways);
  expect_clipped_sum_as_materialised(cnn, splits, "cnn, all factored", Factors::kAlways);
}

TEST(PerExampleGradients, RefuseBatchNormNamingGroupNorm) {
  const auto splits = testing::toy_splits(4, 2);
  auto config = tiny_config("cnn", splits);
  config.batch_norm = true;
  models::BuiltinClassifier model(config);
  try {
    per_example_gradients(model, splits.train.images.slice(0, 0, 2),
                          splits.train.labels.slice(0, 0, 2));
    FAIL() << "batch norm was accepted";
  } catch (const Error& e) {
    EXPECT_TRUE(testing::contains(e.what(), "batch norm")) << e.what();
    EXPECT_TRUE(testing::contains(e.what(), "--group-norm")) << e.what();
  }
}

}  // namespace
}  // namespace privaudit::train
