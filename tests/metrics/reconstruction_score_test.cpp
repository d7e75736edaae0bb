#include "privaudit/metrics/reconstruction_score.h"

#include <gtest/gtest.h>

#include "privaudit/util/error.h"

namespace privaudit::metrics {
namespace {

torch::Tensor images(std::vector<float> values) {
  auto out = torch::zeros({static_cast<int64_t>(values.size()), 1, 4, 4});
  for (size_t i = 0; i < values.size(); ++i) out[static_cast<int64_t>(i)].fill_(values[i]);
  return out;
}

// A one-to-one assignment scores a guess per target: a reconstruction used for one target is not
// there for another, whatever it resembles.
TEST(ScoreReconstruction, MatchesOneToOneAndAcceptsExtraGuesses) {
  const auto targets = images({0.2f, 0.8f});
  const auto score = score_reconstruction(images({0.8f, 0.5f, 0.2f}), {}, targets, {});
  EXPECT_EQ(score.assignment, (std::vector<int64_t>{2, 0}));
  EXPECT_GT(score.mean_psnr, 90);
  EXPECT_THROW(score_reconstruction(images({0.5f}), {}, targets, {}), Error);
}

// Candidates: each target takes its nearest, so one blend can stand for two targets, and an
// exact candidate is never displaced by the assignment of another target.
TEST(ScoreCandidates, EachTargetTakesItsNearest) {
  const auto targets = images({0.30f, 0.34f, 0.9f});
  const auto score = score_candidates(images({0.32f, 0.9f}), targets);
  EXPECT_EQ(score.assignment, (std::vector<int64_t>{0, 0, 1}));
  EXPECT_NEAR(score.psnr[0].item<double>(), 10 * std::log10(1 / (0.02 * 0.02)), 1e-3);
  EXPECT_GT(score.psnr[2].item<double>(), 90);
  EXPECT_THROW(score_candidates(torch::zeros({0, 1, 4, 4}), targets), Error);
  EXPECT_THROW(score_candidates(torch::zeros({2, 1, 5, 4}), targets), Error);
}

}  // namespace
}  // namespace privaudit::metrics
