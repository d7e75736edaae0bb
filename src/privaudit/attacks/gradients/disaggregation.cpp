#include "privaudit/attacks/gradients/disaggregation.h"

#include <algorithm>
#include <cmath>

#include "privaudit/attacks/gradients/closed_form.h"
#include "privaudit/util/error.h"

namespace privaudit::attacks {
namespace {

// Two recovered inputs this close are one sample (a row mixing in a sliver of another sample
// starts a group of its own next to the exact one).
constexpr double kSameInput = 1e-2;

torch::Tensor as_float64(const torch::Tensor& t) {
  return t.detach().to(torch::kCPU, torch::kDouble);
}

// Orthonormal basis (out x r) of the column space of `m`, singular values above `floor`.
torch::Tensor column_basis(const torch::Tensor& m, double floor) {
  const auto svd = at::linalg_svd(m, /*full_matrices=*/false, c10::nullopt);
  const auto& u = std::get<0>(svd);
  const auto& s = std::get<1>(svd);
  const int64_t rank = (s > floor).sum().item<int64_t>();
  return u.slice(1, 0, rank);
}

struct Match {
  int64_t label = -1;
  double residual = 1;
  torch::Tensor delta;  // out, float64, scaled to the batch's mean loss
};

// The label whose g lies nearest the column space spanned by `basis`, and how near.
Match best_label(const torch::Tensor& deltas, const torch::Tensor& basis) {
  Match best;
  for (int64_t c = 0; c < deltas.size(0); ++c) {
    const auto d = deltas[c];
    const double norm = d.norm().item<double>();
    if (!(norm > 0) || !std::isfinite(norm)) continue;
    const double residual = (d - basis.matmul(basis.t().matmul(d))).norm().item<double>() / norm;
    if (residual < best.residual) best = {c, residual, d};
  }
  return best;
}

}  // namespace

Disaggregation disaggregate(const torch::Tensor& weight_grad, const torch::Tensor& bias_grad,
                            int64_t batch, const SampleDeltas& deltas,
                            const DisaggregationOptions& options) {
  if (batch < 1) throw Error("disaggregate: batch must be at least 1");
  if (options.max_candidates < 1) throw Error("disaggregate: max_candidates must be at least 1");
  if (!(options.column_space > 0) || !(options.rank_tolerance > 0) || !(options.agreement > 0) ||
      !(options.loose_agreement > 0)) {
    throw Error("disaggregate: column_space, rank_tolerance and the agreements must be positive");
  }
  const auto dW = as_float64(weight_grad);
  const auto db = as_float64(bias_grad);
  if (dW.dim() != 2 || db.dim() != 1 || db.size(0) != dW.size(0)) {
    throw Error("disaggregate: the weight gradient must be out x in and the bias gradient out");
  }
  const int64_t in = dW.size(1);
  const auto gradient = torch::cat({dW, db.unsqueeze(1)}, 1);
  const double norm = gradient.norm().item<double>();
  Disaggregation out;
  if (!(norm > 0) || !std::isfinite(norm)) {
    out.stopped = "the layer's gradient is zero or not finite";
    return out;
  }
  const double top = at::linalg_svdvals(gradient, c10::nullopt).max().item<double>();
  const double floor = top * options.rank_tolerance;
  out.rank = column_basis(gradient, floor).size(1);
  auto rest = gradient.clone();
  while (static_cast<int64_t>(out.inputs.size()) < batch) {
    const int64_t remaining = batch - static_cast<int64_t>(out.inputs.size());
    const auto basis = column_basis(rest, floor);
    if (basis.size(1) == 0) {
      out.stopped = "what is left of the gradient is float32 noise: " + std::to_string(remaining) +
                    " sample(s) contribute nothing measurable (a loss near zero, or a repeated "
                    "image)";
      break;
    }
    // Checks candidate inputs against the model; peels those it confirms.
    int64_t accepted = 0;
    const auto check = [&](const std::vector<torch::Tensor>& candidates) {
      for (const auto& u : candidates) {
        if (static_cast<int64_t>(out.inputs.size()) >= batch) break;
        if (out.candidates >= options.max_candidates) {
          out.work_limit = true;
          break;
        }
        const bool known =
            std::any_of(out.inputs.begin(), out.inputs.end(), [&](const torch::Tensor& x) {
              return (x - u).norm().item<double>() <= kSameInput * x.norm().item<double>();
            });
        if (known) continue;
        ++out.candidates;
        const auto d = deltas(u);
        if (!d.defined()) continue;
        const auto match = best_label(as_float64(d) / static_cast<double>(batch), basis);
        if (match.label < 0 || match.residual > options.column_space) continue;
        out.inputs.push_back(u);
        out.labels.push_back(match.label);
        out.residuals.push_back(match.residual);
        const auto z = torch::cat({u, torch::ones({1}, torch::kDouble)});
        out.shares.push_back(match.delta.norm().item<double>() * z.norm().item<double>() / norm);
        rest -= torch::outer(match.delta, z);
        ++accepted;
      }
    };
    // For the last sample what is left is rank one: its leading right singular vector, a fit over
    // every row, is a candidate too.
    if (remaining == 1) {
      const auto v = std::get<2>(at::linalg_svd(rest, false, c10::nullopt))[0];
      const double scale = v[in].item<double>();
      if (std::abs(scale) > 0) check({v.slice(0, 0, in) / scale});
    }
    // Every group of agreeing rows is a candidate, most supported first; the loose agreement
    // only where the strict one gave nothing the model confirms.
    for (double agreement : {options.agreement, options.loose_agreement}) {
      if (accepted > 0 || out.work_limit) break;
      const auto ratio =
          bias_ratio(rest.slice(1, 0, in), rest.select(1, in), rest.size(0), agreement);
      std::vector<torch::Tensor> candidates;
      for (size_t i = 0; i < ratio.inputs.size() && ratio.support[i] >= 2; ++i) {
        candidates.push_back(ratio.inputs[i]);
      }
      check(candidates);
    }
    if (out.work_limit) {
      out.stopped = "work limit reached: " + std::to_string(options.max_candidates) +
                    " candidate inputs checked, " + std::to_string(remaining - accepted) +
                    " sample(s) left";
      break;
    }
    if (accepted == 0) {
      out.stopped =
          "no two rows of what is left of the gradient agree on an input the model "
          "confirms: " +
          std::to_string(remaining) + " sample(s) left, rank " + std::to_string(basis.size(1));
      break;
    }
    ++out.rounds;
  }
  out.reproduction_error = rest.norm().item<double>() / norm;
  return out;
}

}  // namespace privaudit::attacks
