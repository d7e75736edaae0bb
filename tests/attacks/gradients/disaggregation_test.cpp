// Batch disaggregation of a Linear layer followed by a ReLU: exact where a row isolates a sample
// and the model confirms it, nothing claimed where the gradient is not what the model gives.
#include "privaudit/attacks/gradients/disaggregation.h"

#include <gtest/gtest.h>

#include "privaudit/util/error.h"

namespace privaudit::attacks {
namespace {

// A two-layer ReLU network on 16 inputs (64 hidden units, 5 classes), a batch of inputs with
// labels, and the mean-loss gradient of its first layer.
struct TinyCase {
  torch::nn::Linear first{nullptr}, second{nullptr};
  torch::Tensor inputs, labels, weight_grad, bias_grad;
};

// Fills in the mean-loss gradient of the first layer.
TinyCase with_gradient(TinyCase c) {
  const auto loss = torch::nn::functional::cross_entropy(
      c.second->forward(torch::relu(c.first->forward(c.inputs))), c.labels);
  const auto g = torch::autograd::grad({loss}, {c.first->weight, c.first->bias});
  c.weight_grad = g[0];
  c.bias_grad = g[1];
  return c;
}

TinyCase tiny_case(int64_t batch, uint64_t seed) {
  torch::manual_seed(seed);
  TinyCase c;
  c.first = torch::nn::Linear(16, 64);
  c.second = torch::nn::Linear(64, 5);
  c.inputs = torch::rand({batch, 16});
  c.labels = torch::randint(5, {batch}, torch::kLong);
  return with_gradient(std::move(c));
}

// A batch where no row of the first layer's gradient isolates a sample: 24 hidden units each
// firing for most samples (bias 1.5, weights within 1), so every row mixes several; 10 classes.
// The inputs are sparse (each coordinate zero with probability `off`), as features after a ReLU
// are. By default 64 inputs and 6 samples, each unit firing for about 5 of them.
TinyCase narrow_case(uint64_t seed, int64_t inputs = 64, int64_t batch = 6, double off = 0.5) {
  torch::manual_seed(seed);
  TinyCase c;
  c.first = torch::nn::Linear(inputs, 24);
  c.second = torch::nn::Linear(24, 10);
  {
    torch::NoGradGuard no_grad;
    c.first->weight.uniform_(-1.0, 1.0);
    c.first->bias.fill_(1.5);
  }
  c.inputs = torch::rand({batch, inputs}) * torch::rand({batch, inputs}).gt(off).to(torch::kFloat);
  c.labels = torch::randint(10, {batch}, torch::kLong);
  return with_gradient(std::move(c));
}

// A batch of 8-bit inputs (levels k / 255, half the coordinates black): 64 inputs, 48 hidden
// units, 6 classes, 8 samples. With `weak`, one sample's part is about 1e-4 of the gradient:
// class 0's bias is 10, sample 0 has label 0 (its loss near zero), the others a label of 1 to 5
// (their softmax saturated, so their g_j barely depends on their input).
TinyCase eight_bit_case(uint64_t seed, bool weak) {
  torch::manual_seed(seed);
  TinyCase c;
  c.first = torch::nn::Linear(64, 48);
  c.second = torch::nn::Linear(48, 6);
  c.inputs = torch::randint(1, 256, {8, 64}).to(torch::kFloat).div_(255.0f) *
             torch::rand({8, 64}).gt(0.5).to(torch::kFloat);
  c.labels = torch::randint(weak ? 1 : 0, 6, {8}, torch::kLong);
  if (weak) {
    torch::NoGradGuard no_grad;
    c.second->bias[0] = 10;
    c.labels[0] = 0;
  }
  return with_gradient(std::move(c));
}

// The attacker's view of the model: the first layer's output gradient of one input, per class.
SampleDeltas tiny_deltas(const TinyCase& c) {
  return [first = c.first, second = c.second](const torch::Tensor& u) mutable {
    const auto x = u.to(torch::kFloat).unsqueeze(0);
    std::vector<torch::Tensor> rows;
    for (int64_t label = 0; label < second->options.out_features(); ++label) {
      const auto loss = torch::nn::functional::cross_entropy(
          second->forward(torch::relu(first->forward(x))), torch::tensor({label}));
      rows.push_back(torch::autograd::grad({loss}, {first->bias})[0].to(torch::kDouble));
    }
    return torch::stack(rows);
  };
}

// Which recovered input is which sample: the nearest, and how far (relative).
double worst_relative_error(const Disaggregation& d, const TinyCase& c, bool& labels_right) {
  double worst = 0;
  labels_right = true;
  for (size_t i = 0; i < d.inputs.size(); ++i) {
    const auto distance = (c.inputs.to(torch::kDouble) - d.inputs[i]).norm(2, {1});
    const int64_t j = distance.argmin().item<int64_t>();
    worst = std::max(worst, distance[j].item<double>() / c.inputs[j].norm().item<double>());
    labels_right = labels_right && d.labels[i] == c.labels[j].item<int64_t>();
  }
  return worst;
}

TEST(Disaggregation, RejectsBadOptions) {
  const auto c = tiny_case(2, 1);
  DisaggregationOptions none;
  none.max_candidates = 0;
  EXPECT_THROW(disaggregate(c.weight_grad, c.bias_grad, 2, tiny_deltas(c), none), Error);
  EXPECT_THROW(disaggregate(c.weight_grad, c.bias_grad, 0, tiny_deltas(c)), Error);
  DisaggregationOptions negative;
  negative.column_space = -1;
  EXPECT_THROW(disaggregate(c.weight_grad, c.bias_grad, 2, tiny_deltas(c), negative), Error);
  EXPECT_THROW(disaggregate(c.weight_grad, c.bias_grad.slice(0, 0, 3), 2, tiny_deltas(c)), Error);
}

TEST(Disaggregation, RecoversEveryInputAndLabelOfASmallBatchExactly) {
  for (uint64_t seed : {1, 2, 3}) {
    const auto c = tiny_case(4, seed);
    const auto d = disaggregate(c.weight_grad, c.bias_grad, 4, tiny_deltas(c));
    ASSERT_EQ(d.inputs.size(), 4u) << "seed " << seed << ": " << d.stopped;
    EXPECT_TRUE(d.stopped.empty()) << d.stopped;
    EXPECT_EQ(d.rank, 4);
    bool labels_right = false;
    EXPECT_LE(worst_relative_error(d, c, labels_right), 1e-5) << "seed " << seed;
    EXPECT_TRUE(labels_right) << "seed " << seed;
    EXPECT_LE(d.reproduction_error, 1e-5);
  }
}

TEST(Disaggregation, ClaimsNothingWhenTheGradientIsNotTheModels) {
  const auto c = tiny_case(4, 1);
  // The weight gradient scaled by 1 %: rows still agree on (scaled) inputs, but the model's
  // gradient for those inputs is not in the update's column space.
  const auto scaled = disaggregate(c.weight_grad * 1.01, c.bias_grad, 4, tiny_deltas(c));
  EXPECT_TRUE(scaled.inputs.empty()) << scaled.inputs.size() << " inputs claimed";
  EXPECT_FALSE(scaled.stopped.empty());
  // Noise of 1e-3 of the gradient's scale: no two rows agree any more.
  auto generator = at::detail::createCPUGenerator(5);
  const auto noisy_weight = c.weight_grad + 1e-3 * c.weight_grad.abs().max() *
                                                torch::randn(c.weight_grad.sizes(), generator);
  const auto noisy = disaggregate(noisy_weight, c.bias_grad, 4, tiny_deltas(c));
  EXPECT_TRUE(noisy.inputs.empty()) << noisy.inputs.size() << " inputs claimed";
}

TEST(Disaggregation, StopsAtTheWorkLimitAndSaysSo) {
  const auto c = tiny_case(4, 1);
  DisaggregationOptions limited;
  limited.max_candidates = 1;
  const auto d = disaggregate(c.weight_grad, c.bias_grad, 4, tiny_deltas(c), limited);
  EXPECT_TRUE(d.work_limit);
  EXPECT_LE(d.inputs.size(), 1u);
  EXPECT_NE(d.stopped.find("work limit reached"), std::string::npos) << d.stopped;
}

TEST(Disaggregation, SamplesOffCoordinatesWhereNoRowIsolatesASample) {
  for (uint64_t seed : {1, 2}) {
    const auto c = narrow_case(seed);
    // Rows alone: every row mixes all six samples, nothing is recovered.
    const auto rows_only = disaggregate(c.weight_grad, c.bias_grad, 6, tiny_deltas(c));
    EXPECT_TRUE(rows_only.inputs.empty()) << "seed " << seed;
    EXPECT_NE(rows_only.stopped.find("no two rows"), std::string::npos) << rows_only.stopped;
    // With the inputs' off value (zero), sampled coordinate sets recover all six.
    DisaggregationOptions sampling;
    sampling.off_value = torch::zeros({64}, torch::kDouble);
    const auto d = disaggregate(c.weight_grad, c.bias_grad, 6, tiny_deltas(c), sampling);
    ASSERT_EQ(d.inputs.size(), 6u) << "seed " << seed << ": " << d.stopped;
    EXPECT_GE(d.sampled, 1) << "seed " << seed;
    EXPECT_GT(d.trials, 0);
    bool labels_right = false;
    EXPECT_LE(worst_relative_error(d, c, labels_right), 1e-5) << "seed " << seed;
    EXPECT_TRUE(labels_right) << "seed " << seed;
    EXPECT_LE(d.reproduction_error, 1e-5);
    // The weight gradient scaled by 1 %: the sampled inputs are 1 % off and the model does not
    // confirm them; a bounded search that says so.
    sampling.max_trials = 2000;
    const auto scaled =
        disaggregate(c.weight_grad * 1.01, c.bias_grad, 6, tiny_deltas(c), sampling);
    EXPECT_TRUE(scaled.inputs.empty()) << scaled.inputs.size() << " inputs claimed";
    EXPECT_FALSE(scaled.stopped.empty());
    // Noise of 1e-3 of the gradient's scale: full rank, not six samples' parts; nothing is
    // sampled (each draw would be a 24-row system no sample satisfies) and nothing claimed.
    auto generator = at::detail::createCPUGenerator(seed);
    const auto noisy_weight = c.weight_grad + 1e-3 * c.weight_grad.abs().max() *
                                                  torch::randn(c.weight_grad.sizes(), generator);
    sampling.max_trials = 100000;
    const auto noisy = disaggregate(noisy_weight, c.bias_grad, 6, tiny_deltas(c), sampling);
    EXPECT_TRUE(noisy.inputs.empty()) << noisy.inputs.size() << " inputs claimed";
    EXPECT_EQ(noisy.trials, 0) << noisy.stopped;
  }
  // The off value needs one value per input coordinate.
  const auto c = narrow_case(1);
  DisaggregationOptions wrong;
  wrong.off_value = torch::zeros({3}, torch::kDouble);
  EXPECT_THROW(disaggregate(c.weight_grad, c.bias_grad, 6, tiny_deltas(c), wrong), Error);
}

TEST(Disaggregation, DrawsSamplesFewRandomCoordinateSetsWouldFind) {
  // 12 samples, 128 inputs each off with probability 0.3, 24 units each firing for most samples:
  // r - 1 = 11 random coordinates all off in one sample have chance 0.3^11 = 1.8e-6 (2e-5 for
  // any of the 12), so 2,000 random draws would find none; the linear programmes find them.
  const auto c = narrow_case(3, /*inputs=*/128, /*batch=*/12, /*off=*/0.3);
  DisaggregationOptions sampling;
  sampling.off_value = torch::zeros({128}, torch::kDouble);
  sampling.max_trials = 2000;
  const auto d = disaggregate(c.weight_grad, c.bias_grad, 12, tiny_deltas(c), sampling);
  ASSERT_EQ(d.inputs.size(), 12u) << d.stopped;
  EXPECT_GE(d.sampled, 1);
  EXPECT_LE(d.trials, 2000);
  bool labels_right = false;
  // Sampled inputs carry the rows' float32 noise (1.6e-5 at worst here).
  EXPECT_LE(worst_relative_error(d, c, labels_right), 1e-4);
  EXPECT_TRUE(labels_right);
}

TEST(Disaggregation, SnapsEightBitInputsToTheirLevels) {
  DisaggregationOptions grid;
  grid.off_value = torch::zeros({64}, torch::kDouble);
  grid.grid_step = torch::full({64}, 1.0 / 255, torch::kDouble);
  grid.max_trials = 1000;
  int lost_off_grid = 0;
  for (uint64_t seed : {1, 2, 3, 4, 5, 6}) {
    const auto c = eight_bit_case(seed, /*weak=*/true);
    const auto d = disaggregate(c.weight_grad, c.bias_grad, 8, tiny_deltas(c), grid);
    ASSERT_EQ(d.inputs.size(), 8u) << "seed " << seed << ": " << d.stopped;
    EXPECT_EQ(d.snapped, 8) << "seed " << seed;
    bool labels_right = false;
    // Exact: the recovered levels are the inputs' (float32 k / 255 against float64 k / 255).
    EXPECT_LE(worst_relative_error(d, c, labels_right), 1e-7) << "seed " << seed;
    EXPECT_TRUE(labels_right) << "seed " << seed;
    EXPECT_LT(*std::min_element(d.shares.begin(), d.shares.end()), 1e-3) << "seed " << seed;
    // Without the grid the weak sample's g_j can lie outside the column space that the strong
    // samples' float32 noise blurs by more than the check allows (2e-4 against 1e-4).
    DisaggregationOptions off_only = grid;
    off_only.grid_step = torch::Tensor();
    const auto plain = disaggregate(c.weight_grad, c.bias_grad, 8, tiny_deltas(c), off_only);
    if (plain.inputs.size() < 8u) ++lost_off_grid;
  }
  EXPECT_GE(lost_off_grid, 2)
      << "the weak sample is never lost off the grid: the case tests nothing";
  // The weight gradient scaled by 1 % (samples not saturated): candidates 1 % off, between
  // levels wherever a level is above 25, so none is near the grid; the snapped ones are not
  // the samples and the model does not confirm them: nothing claimed.
  for (uint64_t seed : {1, 2, 3}) {
    const auto c = eight_bit_case(seed, /*weak=*/false);
    const auto d = disaggregate(c.weight_grad, c.bias_grad, 8, tiny_deltas(c), grid);
    EXPECT_EQ(d.inputs.size(), 8u) << "seed " << seed << ": " << d.stopped;
    const auto scaled = disaggregate(c.weight_grad * 1.01, c.bias_grad, 8, tiny_deltas(c), grid);
    EXPECT_TRUE(scaled.inputs.empty()) << "seed " << seed << ": " << scaled.inputs.size();
    EXPECT_EQ(scaled.snapped, 0) << "seed " << seed;
  }
  DisaggregationOptions no_off;
  no_off.grid_step = torch::full({64}, 1.0 / 255, torch::kDouble);
  const auto c = eight_bit_case(1, /*weak=*/false);
  EXPECT_THROW(disaggregate(c.weight_grad, c.bias_grad, 8, tiny_deltas(c), no_off), Error);
}

TEST(Disaggregation, TheSameGradientGivesTheSameInputs) {
  const auto c = tiny_case(4, 2);
  const auto a = disaggregate(c.weight_grad, c.bias_grad, 4, tiny_deltas(c));
  const auto b = disaggregate(c.weight_grad, c.bias_grad, 4, tiny_deltas(c));
  ASSERT_EQ(a.inputs.size(), b.inputs.size());
  for (size_t i = 0; i < a.inputs.size(); ++i) EXPECT_TRUE(torch::equal(a.inputs[i], b.inputs[i]));
  EXPECT_EQ(a.labels, b.labels);
}

}  // namespace
}  // namespace privaudit::attacks
