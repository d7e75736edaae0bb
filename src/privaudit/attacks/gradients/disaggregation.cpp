#include "privaudit/attacks/gradients/disaggregation.h"

#include <algorithm>
#include <cmath>
#include <random>

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

// Candidate inputs from sampled coordinate sets (the header's sampling) in what is left of the
// gradient, `rest` (out x (in + 1)) of numerical rank `rank`.
class CoordinateSampler {
 public:
  CoordinateSampler(const torch::Tensor& rest, int64_t rank, const torch::Tensor& off)
      : in_(rest.size(1) - 1), needed_(rank - 1) {
    const auto vh = std::get<2>(at::linalg_svd(rest, /*full_matrices=*/false, c10::nullopt));
    basis_ = vh.slice(0, 0, rank).t().contiguous();  // (in + 1) x r
    // Coordinate p is off in [u; 1] = basis q where (basis[p] - off_p basis[in]) q = 0.
    constraints_ = basis_.slice(0, 0, in_) - off.unsqueeze(1) * basis_[in_].unsqueeze(0);
    const auto norms = constraints_.norm(2, {1});
    // Coordinates off in every remaining sample constrain nothing (their rows are the float32
    // noise left by the peeled samples, 1e-5 to 1e-3 of the largest on the trained MLP); a
    // coordinate is kept where some remaining sample is clearly on.
    largest_ = norms.max().item<double>();
    const auto informative = torch::nonzero(norms > largest_ * 1e-2).flatten().contiguous();
    pool_.assign(informative.data_ptr<int64_t>(),
                 informative.data_ptr<int64_t>() + informative.numel());
    off_informative_ = off.index_select(0, informative);
    basis_informative_ = basis_.index_select(0, informative);
  }

  // The next candidate that passes the filter, within `budget` trials (counted in `trials`);
  // undefined when none did.
  torch::Tensor next(int64_t budget, std::mt19937_64& rng, int64_t& trials) {
    const auto count = static_cast<int64_t>(pool_.size());
    if (needed_ < 1 || count < needed_ + 10) return {};
    for (int64_t t = 0; t < budget; ++t) {
      ++trials;
      // r - 1 distinct coordinates (a partial Fisher-Yates shuffle).
      for (int64_t k = 0; k < needed_; ++k) {
        std::uniform_int_distribution<int64_t> pick(k, count - 1);
        std::swap(pool_[static_cast<size_t>(k)], pool_[static_cast<size_t>(pick(rng))]);
      }
      const auto chosen =
          torch::tensor(std::vector<int64_t>(pool_.begin(), pool_.begin() + needed_));
      const auto svd = at::linalg_svd(constraints_.index_select(0, chosen),
                                      /*full_matrices=*/true, c10::nullopt);
      const auto& s = std::get<1>(svd);
      // A second direction nearly satisfying every constraint: the coordinates are off in more
      // than one sample, and the null vector would be a mixture.
      const double smallest = s[needed_ - 1].item<double>();
      if (smallest < 1e-3 * std::max(s[0].item<double>(), largest_)) continue;
      const auto q = std::get<2>(svd)[needed_];
      // [u; 1] = basis q up to scale: its last entry (|basis q| = 1: orthonormal basis, unit q).
      const double bias = basis_[in_].dot(q).item<double>();
      if (!(std::abs(bias) > 1e-12)) continue;
      const auto deviation = basis_informative_.matmul(q) / bias - off_informative_;
      const double scale = deviation.abs().max().item<double>();
      if (!(scale > 0)) continue;
      // Nowhere below the off value (no pixel darker than black, no negative feature), and off
      // in many more coordinates than the r - 1 imposed.
      if (deviation.min().item<double>() < -1e-2 * scale) continue;
      if ((deviation.abs() <= 1e-3 * scale).sum().item<int64_t>() < needed_ + 10) continue;
      return basis_.slice(0, 0, in_).matmul(q) / bias;
    }
    return {};
  }

 private:
  int64_t in_, needed_;
  double largest_ = 0;  // the largest constraint row's norm
  torch::Tensor basis_, constraints_, off_informative_, basis_informative_;
  std::vector<int64_t> pool_;
};

}  // namespace

Disaggregation disaggregate(const torch::Tensor& weight_grad, const torch::Tensor& bias_grad,
                            int64_t batch, const SampleDeltas& deltas,
                            const DisaggregationOptions& options) {
  if (batch < 1) throw Error("disaggregate: batch must be at least 1");
  if (options.max_candidates < 1) throw Error("disaggregate: max_candidates must be at least 1");
  if (!(options.column_space > 0) || !(options.rank_tolerance > 0) || !(options.agreement > 0) ||
      !(options.loose_agreement > 0) || !(options.sampled_column_space > 0)) {
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
  const bool sampling = options.off_value.defined();
  if (sampling && (options.off_value.dim() != 1 || options.off_value.size(0) != in)) {
    throw Error("disaggregate: off_value must hold one value per input coordinate");
  }
  const auto off = sampling ? as_float64(options.off_value) : torch::Tensor();
  std::mt19937_64 rng(options.seed);
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
    const auto check = [&](const std::vector<torch::Tensor>& candidates, double tolerance) {
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
        if (match.label < 0 || match.residual > tolerance) continue;
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
      if (std::abs(scale) > 0) check({v.slice(0, 0, in) / scale}, options.column_space);
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
      check(candidates, options.column_space);
    }
    // No rows agree: sample sets of coordinates off in one sample, until one is confirmed.
    // Sampling needs what is left to be (nearly) the remaining samples' parts: the peeled
    // samples' remainders add a few directions (rank 13 with 10 left on the trained MLP), but a
    // rank beyond twice the samples left is a gradient that is not the model's (noise, a defended
    // update), where every draw would be an SVD of a large system and none could pass the check.
    if (sampling && accepted == 0 && !out.work_limit && basis.size(1) <= 2 * remaining + 2) {
      CoordinateSampler sampler(rest, basis.size(1), off);
      while (accepted == 0 && !out.work_limit && out.trials < options.max_trials) {
        const auto u = sampler.next(options.max_trials - out.trials, rng, out.trials);
        if (!u.defined()) break;
        check({u}, options.sampled_column_space);
      }
      out.sampled += static_cast<int>(accepted);
    }
    if (sampling && accepted == 0 && out.trials >= options.max_trials) out.work_limit = true;
    if (out.work_limit) {
      out.stopped = "work limit reached: " + std::to_string(out.candidates) +
                    " candidate inputs checked, " + std::to_string(out.trials) +
                    " coordinate sets sampled, " + std::to_string(remaining - accepted) +
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
