#include "privaudit/metrics/image_similarity.h"

#include <cmath>

#include "privaudit/util/error.h"

namespace privaudit::metrics {

namespace {

constexpr double kC1 = 0.01 * 0.01;
constexpr double kC2 = 0.03 * 0.03;

void check_pair(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.dim() != 4 || a.sizes() != b.sizes()) {
    throw Error("image similarity: both batches must be N x C x H x W of one shape");
  }
}

// 1-D Gaussian window of `size` taps, clipped to the image so that small images still work.
torch::Tensor gaussian_window(int64_t size, double sigma, const torch::TensorOptions& options) {
  auto x = torch::arange(size, options) - static_cast<double>(size - 1) / 2.0;
  auto g = torch::exp(-(x * x) / (2 * sigma * sigma));
  return g / g.sum();
}

// Separable Gaussian filter ("valid" convolution) of every channel: B x C x H x W.
torch::Tensor blur(const torch::Tensor& x) {
  const int64_t channels = x.size(1);
  const int64_t size = std::min<int64_t>({11, x.size(2), x.size(3)});
  const auto g = gaussian_window(size, 1.5, x.options());
  const auto vertical = g.view({1, 1, size, 1}).repeat({channels, 1, 1, 1});
  const auto horizontal = g.view({1, 1, 1, size}).repeat({channels, 1, 1, 1});
  namespace F = torch::nn::functional;
  auto y = F::conv2d(x, vertical, F::Conv2dFuncOptions().groups(channels));
  return F::conv2d(y, horizontal, F::Conv2dFuncOptions().groups(channels));
}

torch::Tensor ssim_map_mean(const torch::Tensor& mu_a, const torch::Tensor& mu_b,
                            const torch::Tensor& var_a, const torch::Tensor& var_b,
                            const torch::Tensor& cov) {
  const auto numerator = (2 * mu_a * mu_b + kC1) * (2 * cov + kC2);
  const auto denominator = (mu_a * mu_a + mu_b * mu_b + kC1) * (var_a + var_b + kC2);
  return (numerator / denominator).flatten(1).mean(1);
}

}  // namespace

double psnr_from_mse(double mse) {
  if (mse <= 1e-10) return 100.0;
  return std::min(100.0, -10.0 * std::log10(mse));
}

torch::Tensor mse_per_image(const torch::Tensor& a, const torch::Tensor& b) {
  check_pair(a, b);
  return (a - b).pow(2).flatten(1).mean(1);
}

torch::Tensor psnr_from_mse(const torch::Tensor& mse) {
  return (-10.0 * torch::log10(mse.to(torch::kDouble).clamp_min(1e-10))).clamp_max(100.0);
}

torch::Tensor psnr_per_image(const torch::Tensor& a, const torch::Tensor& b) {
  return psnr_from_mse(mse_per_image(a, b));
}

torch::Tensor ssim_per_image(const torch::Tensor& a_in, const torch::Tensor& b_in) {
  check_pair(a_in, b_in);
  const auto a = a_in.to(torch::kDouble), b = b_in.to(torch::kDouble);
  const auto mu_a = blur(a), mu_b = blur(b);
  const auto var_a = blur(a * a) - mu_a * mu_a;
  const auto var_b = blur(b * b) - mu_b * mu_b;
  const auto cov = blur(a * b) - mu_a * mu_b;
  return ssim_map_mean(mu_a, mu_b, var_a, var_b, cov);
}

torch::Tensor mse_matrix(const torch::Tensor& queries, const torch::Tensor& references) {
  const auto q = queries.flatten(1).to(torch::kDouble);
  const auto r = references.flatten(1).to(torch::kDouble);
  const auto q2 = q.pow(2).sum(1, true);
  const auto r2 = r.pow(2).sum(1).unsqueeze(0);
  return ((q2 + r2 - 2 * torch::matmul(q, r.t())) / static_cast<double>(q.size(1))).clamp_min(0);
}

torch::Tensor ssim_matrix(const torch::Tensor& queries, const torch::Tensor& references,
                          int64_t chunk) {
  if (queries.dim() != 4 || references.dim() != 4 ||
      queries.sizes().slice(1) != references.sizes().slice(1)) {
    throw Error(
        "image similarity: queries and references must be N x C x H x W of one image shape");
  }
  torch::NoGradGuard no_grad;
  const auto q = queries.to(torch::kFloat);
  const auto mu_q = blur(q);
  const auto var_q = blur(q * q) - mu_q * mu_q;
  auto out = torch::empty({queries.size(0), references.size(0)}, torch::kFloat);
  for (int64_t start = 0; start < references.size(0); start += chunk) {
    const auto r = references.slice(0, start, std::min(references.size(0), start + chunk))
                       .to(q.device(), torch::kFloat);
    const auto mu_r = blur(r);
    const auto var_r = blur(r * r) - mu_r * mu_r;
    for (int64_t i = 0; i < q.size(0); ++i) {
      const auto qi = q[i].unsqueeze(0);
      const auto cov = blur(qi * r) - mu_q[i].unsqueeze(0) * mu_r;
      out.index_put_(
          {i, torch::indexing::Slice(start, start + r.size(0))},
          ssim_map_mean(mu_q[i].unsqueeze(0), mu_r, var_q[i].unsqueeze(0), var_r, cov).cpu());
    }
  }
  return out;
}

}  // namespace privaudit::metrics
