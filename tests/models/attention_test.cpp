// The fused CPU attention against LibTorch's ops: values, gradients, and the double backward the
// gradient attacks take through it.
#include "privaudit/models/attention.h"

#include <gtest/gtest.h>

#include <limits>

namespace privaudit::models {
namespace {

struct Inputs {
  torch::Tensor q, k, v;
};

// N x T x d leaves, the ViT's shape by default (17 tokens, head width 16).
Inputs leaves(int64_t n = 24, int64_t t = 17, int64_t d = 16, uint64_t seed = 0) {
  torch::manual_seed(seed);
  auto make = [&] { return (torch::randn({n, t, d}) * 2).requires_grad_(true); };
  Inputs in;
  in.q = make();
  in.k = make();
  in.v = make();
  return in;
}

double max_difference(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

TEST(FusedAttention, MatchesLibTorchsOpsForwardAndBackward) {
  for (auto [n, t, d] : {std::tuple<int64_t, int64_t, int64_t>{24, 17, 16}, {3, 5, 7}, {1, 1, 3}}) {
    auto in = leaves(n, t, d);
    const double scale = 0.3;
    const auto fused = scaled_dot_attention(in.q, in.k, in.v, scale);
    const auto reference = scaled_dot_attention_reference(in.q, in.k, in.v, scale);
    EXPECT_LT(max_difference(fused, reference), 1e-5) << n << "x" << t << "x" << d;
    // A fused backward must have run: the result carries the custom node, not bmm's.
    ASSERT_TRUE(fused.grad_fn());
    EXPECT_EQ(fused.grad_fn()->name().find("Bmm"), std::string::npos) << fused.grad_fn()->name();
    const auto weight = torch::randn_like(fused);
    const auto g_fused = torch::autograd::grad({(fused * weight).sum()}, {in.q, in.k, in.v});
    const auto g_reference =
        torch::autograd::grad({(reference * weight).sum()}, {in.q, in.k, in.v});
    for (int i = 0; i < 3; ++i) {
      EXPECT_LT(max_difference(g_fused[i], g_reference[i]), 1e-4)
          << "input " << i << " at " << n << "x" << t << "x" << d;
      if (t > 1 || i == 2) {  // one token: the softmax is constant, q and k get no gradient
        EXPECT_GT(g_reference[i].abs().max().item<double>(), 1e-2);  // not a zero comparison
      }
    }
  }
}

// The gradient attacks minimise a distance between gradients, so they differentiate the gradient.
TEST(FusedAttention, DoubleBackwardMatchesLibTorchsOps) {
  auto in = leaves(6, 17, 16, 1);
  const auto weight = torch::randn({6, 17, 16});
  auto second = [&](bool fused) {
    const auto out = fused ? scaled_dot_attention(in.q, in.k, in.v, 0.25)
                           : scaled_dot_attention_reference(in.q, in.k, in.v, 0.25);
    const auto first = torch::autograd::grad({(out * weight).sum()}, {in.q, in.k, in.v}, {},
                                             /*retain_graph=*/true, /*create_graph=*/true);
    const auto norm = first[0].pow(2).sum() + first[1].pow(2).sum() + first[2].pow(2).sum();
    return torch::autograd::grad({norm}, {in.q, in.k, in.v});
  };
  const auto fused = second(true), reference = second(false);
  for (int i = 0; i < 3; ++i) {
    const double scale = reference[i].abs().max().item<double>();
    EXPECT_GT(scale, 1e-2);
    EXPECT_LT(max_difference(fused[i], reference[i]), 1e-4 * scale) << "input " << i;
  }
}

// A NaN or infinite score must not vanish into a finite output (training stops on a non-finite
// loss): the exponential's clamping would otherwise turn it into an ordinary number.
TEST(FusedAttention, NonFiniteScoresGiveNaNRows) {
  auto in = leaves(2, 5, 8);
  const auto q = in.q.detach().clone();
  q[1][3][0] = std::numeric_limits<float>::quiet_NaN();
  q[0][2][1] = std::numeric_limits<float>::infinity();
  const auto out = scaled_dot_attention(q, in.k.detach(), in.v.detach(), 0.5);
  EXPECT_TRUE(out[1][3].isnan().all().item<bool>());
  EXPECT_TRUE(out[0][2].isnan().all().item<bool>());
  EXPECT_EQ(out.isnan().sum().item<int64_t>(), 2 * 8);  // the other rows stay finite
}

TEST(FusedAttention, OtherDtypesAndLayoutsTakeLibTorchsOps) {
  auto in = leaves(4, 5, 6);
  const auto q64 = in.q.detach().to(torch::kDouble);
  const auto out64 = scaled_dot_attention(q64, q64, q64, 0.5);
  EXPECT_EQ(out64.scalar_type(), torch::kDouble);
  EXPECT_LT(max_difference(out64, scaled_dot_attention_reference(q64, q64, q64, 0.5)), 1e-12);
  // A transposed (non-contiguous) q: the same values as the contiguous one.
  const auto q_t = in.q.detach().transpose(1, 2).contiguous().transpose(1, 2);
  ASSERT_FALSE(q_t.is_contiguous());
  EXPECT_LT(max_difference(scaled_dot_attention(q_t, in.k, in.v, 0.5),
                           scaled_dot_attention_reference(in.q, in.k, in.v, 0.5)),
            1e-5);
}

}  // namespace
}  // namespace privaudit::models
