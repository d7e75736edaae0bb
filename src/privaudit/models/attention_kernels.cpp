#include "privaudit/models/attention_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

// The vectors below never cross a function boundary that another unit sees.
#if defined(__clang__)
#pragma clang diagnostic ignored "-Wpsabi"
#elif defined(__GNUC__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

// One clone per instruction set, picked when the program loads (GCC on x86-64; sanitizer builds
// and other compilers get the baseline).
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
#define PRIVAUDIT_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define PRIVAUDIT_CLONES
#endif

namespace privaudit::models::kernels {

// Each matrix is copied into zero-padded local buffers whose rows are whole multiples of kLane
// floats, and every inner loop steps a kLane-wide vector: no remainder loop and no aliasing check
// (with runtime lengths of 17 and 16 those cost more than the arithmetic). No inner loop reduces,
// so no sum is reassociated.
namespace {

constexpr int64_t kLane = 8;

int64_t padded(int64_t n) { return (n + kLane - 1) / kLane * kLane; }

// kLane floats as one GCC vector (two SSE registers on the baseline, one AVX register above).
typedef float Lane __attribute__((vector_size(kLane * sizeof(float))));

inline Lane load(const float* from) {
  Lane value;
  std::memcpy(&value, from, sizeof value);
  return value;
}
inline void store(float* to, const Lane& value) { std::memcpy(to, &value, sizeof value); }
inline Lane broadcast(float value) { return Lane{} + value; }

// e^x lane by lane for x <= 0 (the softmax's shifted scores; larger x are taken as 0) in vector
// arithmetic, where std::exp is a call per element: Cephes' expf (x = n ln 2 + r, a degree-5
// polynomial in r, 2^n put into the exponent bits), within 2 ulp; below -87 it returns e^-87
// (1.6e-38), which a softmax's sum (at least 1) cannot tell from 0.
inline Lane exp_nonpositive(Lane x) {
  typedef int32_t Ints __attribute__((vector_size(kLane * sizeof(int32_t))));
  const Lane low = broadcast(-87.0f), zero = {};
  x = x < low ? low : x;
  x = x > zero ? zero : x;
  // n = round(x / ln 2): truncating x / ln 2 - 1/2 (<= 0) rounds it up.
  const Ints whole = __builtin_convertvector(x * 1.44269504088896341f - 0.5f, Ints);
  const Lane n = __builtin_convertvector(whole, Lane);
  const Lane r = x - n * 0.693359375f + n * 2.12194440e-4f;
  Lane y = broadcast(1.9875691500e-4f);
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * r * r + r + 1.0f;
  const Ints bits = (whole + 127) << 23;
  Lane two_to_n;
  std::memcpy(&two_to_n, &bits, sizeof two_to_n);
  return y * two_to_n;
}

// y[0, len) += a * x[0, len), len a multiple of kLane.
inline void axpy(float a, const float* x, float* y, int64_t len) {
  for (int64_t b = 0; b < len; b += kLane) store(y + b, load(y + b) + a * load(x + b));
}

// rows x cols (row stride `stride`) -> a zero-padded copy with row stride `padded_cols`.
void copy_padded(const float* from, int64_t rows, int64_t cols, float* to, int64_t padded_cols) {
  for (int64_t r = 0; r < rows; ++r) {
    std::memcpy(to + r * padded_cols, from + r * cols, sizeof(float) * static_cast<size_t>(cols));
    std::fill(to + r * padded_cols + cols, to + (r + 1) * padded_cols, 0.0f);
  }
}

// The transpose of rows x cols into cols x padded_rows, zero-padded.
void transpose_padded(const float* from, int64_t rows, int64_t cols, float* to,
                      int64_t padded_rows) {
  std::fill(to, to + cols * padded_rows, 0.0f);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) to[c * padded_rows + r] = from[r * cols + c];
}

}  // namespace

PRIVAUDIT_CLONES
void attention_forward(const float* q, const float* k, const float* v, float* out, float* probs,
                       int64_t begin, int64_t end, int64_t tokens, int64_t dim, float scale) {
  const int64_t t = tokens, d = dim, tp = padded(t), dp = padded(d);
  std::vector<float> k_t(static_cast<size_t>(d * tp));  // k^T: d x tp
  std::vector<float> v_p(static_cast<size_t>(t * dp));  // v: t x dp
  std::vector<float> row(static_cast<size_t>(tp)), o(static_cast<size_t>(dp));
  for (int64_t n = begin; n < end; ++n) {
    const float* qn = q + n * t * d;
    transpose_padded(k + n * t * d, t, d, k_t.data(), tp);
    copy_padded(v + n * t * d, t, d, v_p.data(), dp);
    for (int64_t i = 0; i < t; ++i) {
      float* p = row.data();
      std::fill(p, p + tp, 0.0f);
      for (int64_t c = 0; c < d; ++c) axpy(qn[i * d + c], k_t.data() + c * tp, p, tp);
      float high = -std::numeric_limits<float>::infinity();
      bool finite = true;
      for (int64_t j = 0; j < t; ++j) {
        finite = finite && std::isfinite(p[j] * scale);
        high = std::max(high, p[j] * scale);
      }
      float* pi = probs + (n * t + i) * t;
      if (!finite) {  // NaN out, as LibTorch's softmax gives, for the caller's non-finite check
        std::fill(pi, pi + t, std::numeric_limits<float>::quiet_NaN());
        std::fill(out + (n * t + i) * d, out + (n * t + i + 1) * d,
                  std::numeric_limits<float>::quiet_NaN());
        continue;
      }
      for (int64_t b = 0; b < tp; b += kLane)
        store(p + b, exp_nonpositive(load(p + b) * scale - high));
      float sum = 0;
      for (int64_t j = 0; j < t; ++j) sum += p[j];
      const float inverse = 1.0f / sum;
      for (int64_t j = 0; j < t; ++j) pi[j] = p[j] * inverse;
      std::fill(o.begin(), o.end(), 0.0f);
      for (int64_t j = 0; j < t; ++j) axpy(pi[j], v_p.data() + j * dp, o.data(), dp);
      std::memcpy(out + (n * t + i) * d, o.data(), sizeof(float) * static_cast<size_t>(d));
    }
  }
}

PRIVAUDIT_CLONES
void attention_backward(const float* q, const float* k, const float* v, const float* probs,
                        const float* grad_out, float* dq, float* dk, float* dv, int64_t begin,
                        int64_t end, int64_t tokens, int64_t dim, float scale) {
  const int64_t t = tokens, d = dim, tp = padded(t), dp = padded(d);
  std::vector<float> v_t(static_cast<size_t>(d * tp));  // v^T: d x tp
  std::vector<float> q_p(static_cast<size_t>(t * dp)), k_p(static_cast<size_t>(t * dp));
  std::vector<float> g_p(static_cast<size_t>(t * dp));
  std::vector<float> dk_p(static_cast<size_t>(t * dp)), dv_p(static_cast<size_t>(t * dp));
  std::vector<float> dp_row(static_cast<size_t>(tp)), dq_row(static_cast<size_t>(dp));
  for (int64_t n = begin; n < end; ++n) {
    const int64_t offset = n * t * d;
    transpose_padded(v + offset, t, d, v_t.data(), tp);
    copy_padded(q + offset, t, d, q_p.data(), dp);
    copy_padded(k + offset, t, d, k_p.data(), dp);
    copy_padded(grad_out + offset, t, d, g_p.data(), dp);
    std::fill(dk_p.begin(), dk_p.end(), 0.0f);
    std::fill(dv_p.begin(), dv_p.end(), 0.0f);
    for (int64_t i = 0; i < t; ++i) {
      const float* p = probs + (n * t + i) * t;
      const float* gi = g_p.data() + i * dp;
      // dP_ij = <g_i, v_j>
      float* dpi = dp_row.data();
      std::fill(dpi, dpi + tp, 0.0f);
      for (int64_t c = 0; c < d; ++c) axpy(gi[c], v_t.data() + c * tp, dpi, tp);
      // dS_ij = P_ij (dP_ij - sum_l P_il dP_il) scale; dq_i = sum_j dS_ij k_j;
      // dk_j += dS_ij q_i; dv_j += P_ij g_i
      float inner = 0;
      for (int64_t j = 0; j < t; ++j) inner += p[j] * dpi[j];
      std::fill(dq_row.begin(), dq_row.end(), 0.0f);
      const float* qi = q_p.data() + i * dp;
      for (int64_t j = 0; j < t; ++j) {
        const float s = p[j] * (dpi[j] - inner) * scale;
        axpy(s, k_p.data() + j * dp, dq_row.data(), dp);
        axpy(s, qi, dk_p.data() + j * dp, dp);
        axpy(p[j], gi, dv_p.data() + j * dp, dp);
      }
      std::memcpy(dq + offset + i * d, dq_row.data(), sizeof(float) * static_cast<size_t>(d));
    }
    for (int64_t j = 0; j < t; ++j) {
      std::memcpy(dk + offset + j * d, dk_p.data() + j * dp,
                  sizeof(float) * static_cast<size_t>(d));
      std::memcpy(dv + offset + j * d, dv_p.data() + j * dp,
                  sizeof(float) * static_cast<size_t>(d));
    }
  }
}

}  // namespace privaudit::models::kernels
