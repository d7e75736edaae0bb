#include "privaudit/attacks/idlg.h"

#include <gtest/gtest.h>

#include "attack_fixtures.h"
#include "privaudit/metrics/reconstruction_score.h"
#include "privaudit/util/error.h"

namespace privaudit::attacks {
namespace {

using testing::make_model;
using testing::test_images;

TEST(Idlg, RecoversEveryLabelAtBatchOne) {
  const auto targets = test_images(10, 0);
  int correct = 0;
  for (int64_t i = 0; i < 10; ++i) {
    auto model = make_model("lenet", 100 + i);  // a fresh LeNet per image, as in iDLG's protocol
    const auto image = targets.images.slice(0, i, i + 1);
    const auto label = targets.labels.slice(0, i, i + 1);
    const auto labels = infer_labels(*model, shared_gradients(*model, image, label), 1);
    correct += labels.item<int64_t>() == label.item<int64_t>();
  }
  EXPECT_EQ(correct, 10);
}

TEST(Idlg, CountsTheLabelsOfABatchIncludingRepeats) {
  auto model = make_model("lenet", 5);
  const auto targets = test_images(8, 20);
  const auto labels = torch::tensor({1, 1, 1, 4, 4, 7, 9, 0}, torch::kLong);
  const auto inferred = infer_labels(*model, shared_gradients(*model, targets.images, labels), 8);
  const auto score =
      metrics::score_reconstruction(targets.images, inferred, targets.images, labels);
  // The U(-0.5,0.5) LeNet is confident even untrained: when a class's mean probability exceeds
  // 1/B the count can miss a repeat (measured 7/8 here); chance is about 0.3.
  EXPECT_GE(score.label_accuracy, 0.75) << inferred;
}

TEST(Idlg, RejectsAModelWithoutAFinalLinearLayer) {
  auto model = make_model("lenet", 6);
  const auto target = test_images(1);
  auto shared = shared_gradients(*model, target.images, target.labels);
  shared.back() = torch::zeros({3});
  auto odd = shared;
  odd.pop_back();
  odd.pop_back();
  odd.push_back(torch::zeros({5, 5, 5}));
  EXPECT_THROW(infer_labels(*model, odd, 1), Error);
}

TEST(IdlgSlow, RecoversOneImageWithItsLabel) {
  auto model = make_model("lenet", 7);
  const auto target = test_images(1, 1);
  const auto shared = shared_gradients(*model, target.images, target.labels);
  Progress quiet;
  const auto result = run_idlg(*model, shared, 1, DlgOptions(), quiet);
  const auto score =
      metrics::score_reconstruction(result.images, result.labels, target.images, target.labels);
  EXPECT_EQ(score.label_accuracy, 1.0);
  EXPECT_GE(score.mean_psnr, 40.0);
}

}  // namespace
}  // namespace privaudit::attacks
