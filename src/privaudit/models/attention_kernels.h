// The ViT's self-attention on the CPU in float32, one fused pass per matrix (models/attention):
// plain loops over raw memory, no LibTorch, so that this unit alone is compiled with -O3 and
// vectorised for the CPU it runs on (GCC's target_clones: AVX-512, AVX2 + FMA, or baseline).
#pragma once

#include <cstdint>

namespace privaudit::models::kernels {

// Matrices [begin, end) of q, k, v (each N x T x d, contiguous): out = P v with
// P = softmax(q k^T * scale) row by row, which is written to probs (N x T x T).
void attention_forward(const float* q, const float* k, const float* v, float* out, float* probs,
                       int64_t begin, int64_t end, int64_t tokens, int64_t dim, float scale);

// Its gradients for matrices [begin, end) given P (probs) and the output's gradient; dq, dk and
// dv are overwritten.
void attention_backward(const float* q, const float* k, const float* v, const float* probs,
                        const float* grad_out, float* dq, float* dk, float* dv, int64_t begin,
                        int64_t end, int64_t tokens, int64_t dim, float scale);

}  // namespace privaudit::models::kernels
