// Scaled dot-product attention of the ViT (models/builtin_layers.h): softmax(q k^T * scale) v.
#pragma once

#include <torch/torch.h>

namespace privaudit::models {

// q, k, v: N x T x d (N = batch x heads) -> N x T x d. On the CPU in float32 the forward pass
// and the backward pass (kernels in attention_kernels.cpp) each take one fused pass per matrix,
// where LibTorch spends one bmm call per matrix and a softmax that is slow on rows of 17: the
// ViT trains about 1.3x faster (bench/RESULTS.md). A gradient taken with create_graph (the
// gradient attacks, the inversion's gradient term) goes through LibTorch's differentiable ops,
// so double backward works; so does every other device or dtype.
torch::Tensor scaled_dot_attention(const torch::Tensor& q, const torch::Tensor& k,
                                   const torch::Tensor& v, double scale);

// The same in LibTorch's own ops: what the tests compare with, and the path off the CPU.
torch::Tensor scaled_dot_attention_reference(const torch::Tensor& q, const torch::Tensor& k,
                                             const torch::Tensor& v, double scale);

}  // namespace privaudit::models
