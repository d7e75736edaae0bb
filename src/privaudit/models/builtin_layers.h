// The ViT's own layers (patch embedding, pre-norm transformer block, class-token head), shared by
// the built-in models and by the per-example gradients of DP-SGD (train/per_example), which read
// their sub-layers.
#pragma once

#include <torch/torch.h>

#include <cmath>
#include <cstdint>

#include "privaudit/models/attention.h"
#include "privaudit/models/classifier.h"

namespace privaudit::models {

// Splits B x C x H x W into patches, embeds them, prepends a learned class token and adds learned
// positions: B x (1 + P) x D.
class PatchEmbedImpl : public torch::nn::Module {
 public:
  PatchEmbedImpl(const InputShape& input, int64_t patch, int64_t dim)
      : projection_(register_module(
            "projection",
            torch::nn::Conv2d(
                torch::nn::Conv2dOptions(input.channels, dim, patch).stride(patch)))) {
    const int64_t tokens = (input.height / patch) * (input.width / patch) + 1;
    class_token_ = register_parameter("class_token", torch::randn({1, 1, dim}) * 0.02);
    positions_ = register_parameter("positions", torch::randn({1, tokens, dim}) * 0.02);
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return assemble(projection_->forward(x), x.size(0));
  }
  // Patches (the projection's output, B x D x h x w) -> tokens with class token and positions.
  torch::Tensor assemble(const torch::Tensor& projected, int64_t batch) {
    auto patches = projected.flatten(2).transpose(1, 2);  // B x P x D
    auto cls = class_token_.expand({batch, 1, class_token_.size(2)});
    return torch::cat({cls, patches}, 1) + positions_;
  }
  torch::nn::Conv2d& projection() { return projection_; }
  torch::Tensor& class_token() { return class_token_; }
  torch::Tensor& positions() { return positions_; }

 private:
  torch::nn::Conv2d projection_;
  torch::Tensor class_token_;
  torch::Tensor positions_;
};
TORCH_MODULE(PatchEmbed);

// Pre-norm transformer block: x + Attention(LN(x)), then x + MLP(LN(x)). Attention is written
// out (not nn::MultiheadAttention) so that it is twice differentiable for gradient attacks.
class TransformerBlockImpl : public torch::nn::Module {
 public:
  TransformerBlockImpl(int64_t dim, int64_t heads, int64_t mlp_ratio, double dropout)
      : heads_(heads),
        norm1_(register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})))),
        qkv_(register_module("qkv", torch::nn::Linear(dim, 3 * dim))),
        projection_(register_module("projection", torch::nn::Linear(dim, dim))),
        norm2_(register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})))),
        fc1_(register_module("fc1", torch::nn::Linear(dim, mlp_ratio * dim))),
        fc2_(register_module("fc2", torch::nn::Linear(mlp_ratio * dim, dim))),
        dropout_(register_module("dropout", torch::nn::Dropout(dropout))) {}

  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t batch = x.size(0), tokens = x.size(1), dim = x.size(2);
    auto h = x + dropout_->forward(projection_->forward(
                     attend(qkv_->forward(norm1_->forward(x)), batch, tokens, dim)));
    auto m = fc2_->forward(dropout_->forward(torch::gelu(fc1_->forward(norm2_->forward(h)))));
    return h + dropout_->forward(m);
  }
  // Multi-head self-attention of the qkv layer's output (B x T x 3D) -> B x T x D, before the
  // output projection.
  torch::Tensor attend(const torch::Tensor& qkv_out, int64_t batch, int64_t tokens, int64_t dim) {
    const int64_t head_dim = dim / heads_;
    // 3 x (B H) x T x d, split by unbind: indexing (qkv[0], ...) costs a zero-filled copy of the
    // whole qkv gradient per part in backward. Each part is contiguous, as the fused attention
    // (models/attention.h) wants.
    const auto parts = qkv_out.view({batch, tokens, 3, heads_, head_dim})
                           .permute({2, 0, 3, 1, 4})
                           .reshape({3, batch * heads_, tokens, head_dim})
                           .unbind(0);
    const auto& q = parts[0];
    const auto& k = parts[1];
    const auto& v = parts[2];
    return scaled_dot_attention(q, k, v, 1.0 / std::sqrt(double(head_dim)))
        .view({batch, heads_, tokens, head_dim})
        .transpose(1, 2)
        .reshape({batch, tokens, dim});
  }
  torch::nn::LayerNorm& norm1() { return norm1_; }
  torch::nn::LayerNorm& norm2() { return norm2_; }
  torch::nn::Linear& qkv() { return qkv_; }
  torch::nn::Linear& projection() { return projection_; }
  torch::nn::Linear& fc1() { return fc1_; }
  torch::nn::Linear& fc2() { return fc2_; }
  torch::nn::Dropout& dropout() { return dropout_; }

 private:
  int64_t heads_;
  torch::nn::LayerNorm norm1_;
  torch::nn::Linear qkv_, projection_;
  torch::nn::LayerNorm norm2_;
  torch::nn::Linear fc1_, fc2_;
  torch::nn::Dropout dropout_;
};
TORCH_MODULE(TransformerBlock);

// Final LayerNorm, then the class token: B x T x D -> B x D.
class ClassTokenImpl : public torch::nn::Module {
 public:
  explicit ClassTokenImpl(int64_t dim)
      : norm_(register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim})))) {}
  torch::Tensor forward(const torch::Tensor& x) { return norm_->forward(x.select(1, 0)); }
  torch::nn::LayerNorm& norm() { return norm_; }

 private:
  torch::nn::LayerNorm norm_;
};
TORCH_MODULE(ClassToken);

}  // namespace privaudit::models
