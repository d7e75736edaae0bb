// Image similarity shared by every attack's scoring: MSE, PSNR and SSIM on [0,1] images.
// SSIM is the Gaussian-window variant of Wang et al. 2004 (11x11, sigma 1.5, K1 0.01, K2 0.03,
// data range 1), averaged over pixels and channels, as in breaching/kornia.
#pragma once

#include <torch/torch.h>

namespace privaudit::metrics {

// Per-image figures of two batches of the same shape (N x C x H x W) -> N values.
torch::Tensor mse_per_image(const torch::Tensor& a, const torch::Tensor& b);
// PSNR in dB with peak 1; identical images give 100 dB (a cap, not infinity).
torch::Tensor psnr_per_image(const torch::Tensor& a, const torch::Tensor& b);
torch::Tensor ssim_per_image(const torch::Tensor& a, const torch::Tensor& b);

// PSNR in dB of a mean squared error (peak 1), capped at 100; element-wise for a tensor (double).
double psnr_from_mse(double mse);
torch::Tensor psnr_from_mse(const torch::Tensor& mse);

// All-pairs figures: Q x R matrices between `queries` (Q x C x H x W) and `references`
// (R x C x H x W). MSE uses one matrix product; SSIM is computed in chunks of references with
// the queries' local statistics computed once.
torch::Tensor mse_matrix(const torch::Tensor& queries, const torch::Tensor& references);
torch::Tensor ssim_matrix(const torch::Tensor& queries, const torch::Tensor& references,
                          int64_t chunk = 1024);

}  // namespace privaudit::metrics
