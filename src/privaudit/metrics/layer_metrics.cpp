#include "privaudit/metrics/layer_metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "privaudit/metrics/statistics.h"
#include "privaudit/util/error.h"
#include "privaudit/util/timer.h"

namespace privaudit::metrics {
namespace {

// Singular values (descending, float64) of a matrix through the eigenvalues of its smaller Gram
// matrix computed in float64: exact up to float64 rounding, which lies far below the float32-level
// tolerances applied to them, and much cheaper than an SVD of a tall d x 784 matrix.
torch::Tensor singular_values(const torch::Tensor& matrix) {
  const auto m = matrix.to(torch::kFloat64);
  const auto gram = m.size(0) <= m.size(1) ? torch::mm(m, m.t()) : torch::mm(m.t(), m);
  const auto eigenvalues = at::linalg_eigvalsh(gram, "L").flip(0);
  return eigenvalues.clamp_min(0).sqrt();
}

// The image replicated `count` times, as a leaf that collects gradients.
torch::Tensor replicated(const torch::Tensor& image, int64_t count) {
  std::vector<int64_t> sizes = image.sizes().vec();
  sizes[0] = count;
  return image.expand(sizes).clone().requires_grad_(true);
}

}  // namespace

torch::Tensor layer_jacobian(models::Classifier& model, const torch::Tensor& image,
                             const std::string& cut, int64_t chunk) {
  model.check_cut(cut);
  if (chunk <= 0) throw Error("layer_jacobian: chunk must be positive");
  auto x = image.dim() == 3 ? image.unsqueeze(0) : image;
  if (x.dim() != 4 || x.size(0) != 1) throw Error("layer_jacobian: expects one C x H x W image");
  x = x.detach().to(model.device(), torch::kFloat32);
  models::TrainingModeGuard eval(model, false);
  const int64_t input_dim = x.numel();
  int64_t output_dim = 0;
  {
    torch::NoGradGuard no_grad;
    output_dim = model.features(x, cut).numel();
  }
  const auto float_options = x.options();
  std::vector<torch::Tensor> blocks;
  if (output_dim <= input_dim) {
    // Rows: one one-hot cotangent per output coordinate.
    for (int64_t start = 0; start < output_dim; start += chunk) {
      const int64_t count = std::min(chunk, output_dim - start);
      auto batch = replicated(x, count);
      auto out = model.features(batch, cut).reshape({count, output_dim});
      if (!out.requires_grad()) {
        blocks.push_back(torch::zeros({count, input_dim}, float_options));
        continue;
      }
      auto cotangent = torch::eye(output_dim, float_options).narrow(0, start, count);
      auto grads = torch::autograd::grad({out}, {batch}, {cotangent}, false, false, true);
      blocks.push_back(grads[0].defined() ? grads[0].reshape({count, input_dim})
                                          : torch::zeros({count, input_dim}, float_options));
    }
    return torch::cat(blocks, 0);
  }
  // Columns: J v = d/du <VJP(u), v>, one one-hot tangent v per input coordinate.
  for (int64_t start = 0; start < input_dim; start += chunk) {
    const int64_t count = std::min(chunk, input_dim - start);
    auto batch = replicated(x, count);
    auto out = model.features(batch, cut).reshape({count, output_dim});
    torch::Tensor column_block;
    if (out.requires_grad()) {
      auto cotangent = torch::zeros({count, output_dim}, float_options).requires_grad_(true);
      auto vjp = torch::autograd::grad({out}, {batch}, {cotangent}, true, true, true)[0];
      if (vjp.defined() && vjp.requires_grad()) {
        auto tangent =
            torch::eye(input_dim, float_options).narrow(0, start, count).view(vjp.sizes());
        auto jvp = torch::autograd::grad({vjp}, {cotangent}, {tangent}, false, false, true)[0];
        if (jvp.defined()) column_block = jvp;
      }
    }
    blocks.push_back(column_block.defined() ? column_block
                                            : torch::zeros({count, output_dim}, float_options));
  }
  return torch::cat(blocks, 0).t().contiguous();
}

MatrixRanks matrix_ranks(const torch::Tensor& matrix) {
  if (matrix.dim() != 2) throw Error("numerical_rank: expects a matrix");
  MatrixRanks ranks;
  if (matrix.numel() == 0) return ranks;
  const auto sigma = singular_values(matrix);
  const double largest = sigma[0].item<double>();
  if (largest <= 0) return ranks;
  const double eps = matrix.scalar_type() == torch::kFloat64
                         ? std::numeric_limits<double>::epsilon()
                         : std::numeric_limits<float>::epsilon();
  const double tolerance =
      static_cast<double>(std::max(matrix.size(0), matrix.size(1))) * eps * largest;
  ranks.rank = (sigma > tolerance).sum().item<int64_t>();
  ranks.stable_rank = sigma.square().sum().item<double>() / (largest * largest);
  return ranks;
}

int64_t numerical_rank(const torch::Tensor& matrix) { return matrix_ranks(matrix).rank; }

DegreesOfFreedom degrees_of_freedom(const torch::Tensor& outputs, double tolerance,
                                    double variance_share) {
  if (!(tolerance > 0 && tolerance < 1))
    throw Error("degrees_of_freedom: tolerance must lie in (0,1)");
  if (!(variance_share > 0 && variance_share <= 1)) {
    throw Error("degrees_of_freedom: variance share must lie in (0,1]");
  }
  if (outputs.dim() < 2 || outputs.size(0) < 2)
    throw Error("degrees_of_freedom: needs at least 2 outputs");
  auto h = outputs.detach().reshape({outputs.size(0), -1}).to(torch::kFloat64);
  h = h - h.mean(0, true);
  const auto sigma = singular_values(h);
  DegreesOfFreedom dof;
  const double largest = sigma[0].item<double>();
  if (largest <= 0) return dof;
  dof.rank = (sigma > tolerance * largest).sum().item<int64_t>();
  const auto variance = sigma.square();
  const auto share = variance.cumsum(0) / variance.sum();
  // Smallest k whose first k components reach the share (the comparison tolerates rounding).
  dof.components_99 =
      std::min<int64_t>((share < variance_share - 1e-12).sum().item<int64_t>() + 1, sigma.numel());
  const auto p = sigma / sigma.sum();
  const auto positive = p.masked_select(p > 0);
  dof.effective_rank = std::exp(-(positive * positive.log()).sum().item<double>());
  return dof;
}

LayerMetrics measure_layer(models::Classifier& model, const std::string& cut,
                           const torch::Tensor& images, int64_t input_components_99,
                           const LayerMetricsOptions& options) {
  model.check_cut(cut);
  if (options.jacobian_samples <= 0)
    throw Error("layer metrics: jacobian samples must be positive");
  if (images.dim() != 4 || images.size(0) < 2)
    throw Error("layer metrics: need at least 2 images N x C x H x W");
  LayerMetrics m;
  m.name = cut;
  m.samples = images.size(0);
  m.input_dim = images[0].numel();

  Stopwatch started;
  torch::Tensor outputs;
  {
    models::TrainingModeGuard eval(model, false);
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> parts;
    for (int64_t start = 0; start < images.size(0); start += 512) {
      const int64_t count = std::min<int64_t>(512, images.size(0) - start);
      parts.push_back(model.features(images.narrow(0, start, count).to(model.device()), cut)
                          .reshape({count, -1})
                          .to(torch::kCPU));
    }
    outputs = torch::cat(parts, 0);
  }
  m.output_dim = outputs.size(1);
  m.dof = degrees_of_freedom(outputs, options.dof_tolerance, options.variance_share);
  m.dof_seconds = started.seconds();

  started.restart();
  const int64_t count = std::min(options.jacobian_samples, images.size(0));
  std::vector<double> ranks;
  double stable_rank_sum = 0;
  for (int64_t i = 0; i < count; ++i) {
    const auto jacobian = layer_jacobian(model, images[i], cut, options.jacobian_chunk);
    const auto figures = matrix_ranks(jacobian.to(torch::kCPU));
    ranks.push_back(static_cast<double>(figures.rank));
    stable_rank_sum += figures.stable_rank;
  }
  m.jacobian_stable_rank = stable_rank_sum / static_cast<double>(count);
  m.jacobian_seconds = started.seconds();
  m.jacobian_rank = mean(ranks);
  double spread = 0;
  for (double r : ranks) spread += (r - m.jacobian_rank) * (r - m.jacobian_rank);
  m.jacobian_rank_std = std::sqrt(spread / count);
  m.jacobian_rank_normalized = m.jacobian_rank / static_cast<double>(m.input_dim);
  m.dof_normalized = input_components_99 > 0
                         ? std::min(1.0, static_cast<double>(m.dof.components_99) /
                                             static_cast<double>(input_components_99))
                         : 0.0;
  m.sensitivity = std::sqrt(m.dof_normalized * m.jacobian_rank_normalized);
  m.sensitivity_stable = std::sqrt(
      m.dof_normalized * std::min(1.0, m.jacobian_stable_rank / static_cast<double>(m.input_dim)));
  return m;
}

std::vector<LayerMetrics> measure_layers(models::Classifier& model, const torch::Tensor& images,
                                         const LayerMetricsOptions& options, Progress& progress) {
  if (!images.defined() || images.dim() != 4 || images.size(0) < 2) {
    throw Error("layer metrics: need at least 2 images N x C x H x W");
  }
  if (options.jacobian_samples <= 0)
    throw Error("layer metrics: jacobian samples must be positive");
  if (options.jacobian_chunk <= 0) throw Error("layer metrics: jacobian chunk must be positive");
  const auto input_dof =
      degrees_of_freedom(images.to(torch::kCPU), options.dof_tolerance, options.variance_share);
  const auto cuts = model.cut_points();
  std::vector<LayerMetrics> result;
  progress.start("layer metrics", static_cast<int64_t>(cuts.size()));
  for (size_t i = 0; i < cuts.size(); ++i) {
    result.push_back(measure_layer(model, cuts[i], images, input_dof.components_99, options));
    progress.update(static_cast<int64_t>(i + 1), cuts[i]);
  }
  progress.finish();
  return result;
}

}  // namespace privaudit::metrics
