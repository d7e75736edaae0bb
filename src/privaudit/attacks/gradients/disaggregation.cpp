#include "privaudit/attacks/gradients/disaggregation.h"

#include <algorithm>
#include <cmath>
#include <limits>
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

// u snapped to the grid off + k step (k = 0 .. levels) where it is near it: at least 16
// coordinates above off, at most 1 in 20 of them more than a quarter level from a level (the
// header's `grid_step`); undefined where it lies between levels.
torch::Tensor snap_near_grid(const torch::Tensor& u, const torch::Tensor& off,
                             const torch::Tensor& step, int64_t levels) {
  const auto scaled = (u - off) / step;
  const auto nearest = scaled.round();
  const auto on = nearest >= 1;
  const int64_t count = on.sum().item<int64_t>();
  const int64_t between = ((scaled - nearest).abs() > 0.25).logical_and(on).sum().item<int64_t>();
  if (count < 16 || between > count / 20) return {};
  return off + nearest.clamp(0, static_cast<double>(levels)) * step;
}

// Solves A x = rhs for a square n x n matrix (row-major, copied) by Gaussian elimination with
// partial pivoting; false when A is singular to working precision.
bool solve_dense(std::vector<double> a, std::vector<double>& rhs, int n) {
  for (int col = 0; col < n; ++col) {
    int pivot = col;
    for (int row = col + 1; row < n; ++row) {
      if (std::abs(a[row * n + col]) > std::abs(a[pivot * n + col])) pivot = row;
    }
    if (!(std::abs(a[pivot * n + col]) > 1e-300)) return false;
    if (pivot != col) {
      for (int k = 0; k < n; ++k) std::swap(a[col * n + k], a[pivot * n + k]);
      std::swap(rhs[col], rhs[pivot]);
    }
    for (int row = col + 1; row < n; ++row) {
      const double f = a[row * n + col] / a[col * n + col];
      if (f == 0) continue;
      for (int k = col; k < n; ++k) a[row * n + k] -= f * a[col * n + k];
      rhs[row] -= f * rhs[col];
    }
  }
  for (int row = n - 1; row >= 0; --row) {
    double v = rhs[row];
    for (int k = row + 1; k < n; ++k) v -= a[row * n + k] * rhs[k];
    rhs[row] = v / a[row * n + row];
  }
  return true;
}

// Candidate inputs in what is left of the gradient, `rest` (out x (in + 1)) of numerical rank r:
// vertices of the set of row-space inputs nowhere below the off value (the header's sampling).
//
// With [u; 1] = basis q (b.q = 1 for b the bias row), coordinate p is a constraint
// A_p q = u_p - off_p >= 0. Each draw minimises a random weighted darkness w.(A q) over that set
// (a linear programme in r unknowns): a sample off in the few coordinates the weights stress
// costs nothing there, and r - 1 of its off coordinates make it a vertex, so the programme's
// answer is often exactly one sample, where drawing r - 1 coordinates all off in one sample has
// chance p^(r - 1) (p: its share of off coordinates; 0.2^11 for a bright garment among 9 left on
// the trained MLP, which no draw of 100,000 reached).
class VertexSampler {
 public:
  VertexSampler(const torch::Tensor& rest, int64_t rank, const torch::Tensor& off)
      : in_(rest.size(1) - 1), rank_(rank) {
    const auto vh = std::get<2>(at::linalg_svd(rest, /*full_matrices=*/false, c10::nullopt));
    basis_ = vh.slice(0, 0, rank).t().contiguous();  // (in + 1) x r
    const auto constraints = basis_.slice(0, 0, in_) - off.unsqueeze(1) * basis_[in_].unsqueeze(0);
    const auto norms = constraints.norm(2, {1});
    // Coordinates off in every remaining sample constrain nothing (their rows are the float32
    // noise left by the peeled samples, 1e-5 to 1e-3 of the largest on the trained MLP); a
    // coordinate is kept where some remaining sample is clearly on.
    const auto informative =
        torch::nonzero(norms > norms.max().item<double>() * 1e-2).flatten().contiguous();
    constraints_ = constraints.index_select(0, informative).contiguous();
    rows_ = constraints_.size(0);
    a_.assign(constraints_.data_ptr<double>(), constraints_.data_ptr<double>() + rows_ * rank_);
    const auto bias = basis_[in_].contiguous();
    b_.assign(bias.data_ptr<double>(), bias.data_ptr<double>() + rank_);
  }

  // The next candidate that passes the filter, within `budget` draws (counted in `trials`);
  // undefined when none did.
  torch::Tensor next(int64_t budget, std::mt19937_64& rng, int64_t& trials) {
    if (rank_ < 2 || rows_ < rank_ + 10) return {};
    // The light weights sum to at most 1 % of one stressed coordinate's, however many rows.
    std::uniform_real_distribution<double> small(0, 2e-2 / static_cast<double>(rows_));
    std::uniform_int_distribution<int64_t> coordinate(0, rows_ - 1);
    std::vector<double> weights(static_cast<size_t>(rows_));
    for (int64_t t = 0; t < budget; ++t) {
      ++trials;
      // A few stressed coordinates, the rest weighted lightly (ties between vertices broken).
      for (auto& w : weights) w = small(rng);
      for (int k = 0; k < kStressed; ++k) weights[static_cast<size_t>(coordinate(rng))] = 1;
      std::vector<double> q;
      if (!vertex(weights, q)) continue;
      auto found = torch::tensor(q, torch::kDouble);
      // The vertex imposes r - 1 off coordinates; the sample is off in many more: its null vector
      // over all of them averages the float32 noise of the rows. Off means within 1e-5 of the
      // largest deviation (a looser 1e-3 took in small features that are on and biased the
      // CNN's candidates: 7 of its first 16 samples confirmed instead of 10).
      const auto deviation = constraints_.matmul(found);
      const double scale = deviation.abs().max().item<double>();
      if (!(scale > 0)) continue;
      const auto off_rows = torch::nonzero(deviation.abs() <= 1e-5 * scale).flatten();
      if (off_rows.numel() < rank_ + 9) continue;
      const auto v = std::get<2>(
          at::linalg_svd(constraints_.index_select(0, off_rows), false, c10::nullopt))[rank_ - 1];
      const double bias = basis_[in_].dot(v).item<double>();
      if (!(std::abs(bias) > 1e-12)) continue;
      const auto refined = constraints_.matmul(v) / bias;
      const double refined_scale = refined.abs().max().item<double>();
      // Nowhere below the off value (no pixel darker than black, no negative feature), and off
      // in many more coordinates than the r - 1 imposed.
      if (refined.min().item<double>() < -1e-2 * refined_scale) continue;
      if ((refined.abs() <= 1e-3 * refined_scale).sum().item<int64_t>() < rank_ + 9) continue;
      return basis_.slice(0, 0, in_).matmul(v) / bias;
    }
    return {};
  }

 private:
  static constexpr int kStressed = 3;

  // Minimises w.(A q) + M s over b.q = 1, A q + s >= 0, s >= 0 (s: slack for the float32 noise
  // that can leave no exactly feasible q) by a primal active-set method with Bland's rule; q at
  // the optimal vertex, false where the programme is unbounded or cycles past its limit.
  bool vertex(const std::vector<double>& weights, std::vector<double>& q) const {
    const int r = static_cast<int>(rank_), n = r + 1;
    const auto m = static_cast<int>(rows_);
    // Constraint j < m: (A_j, 1); constraint m: s >= 0.
    const auto row = [&](int j, int k) -> double {
      if (j == m) return k == r ? 1.0 : 0.0;
      return k == r ? 1.0 : a_[static_cast<size_t>(j) * r + k];
    };
    std::vector<double> cost(static_cast<size_t>(n), 0.0);
    double total = 0;
    for (int j = 0; j < m; ++j) {
      for (int k = 0; k < r; ++k) cost[k] += weights[j] * a_[static_cast<size_t>(j) * r + k];
      total += weights[j];
    }
    cost[r] = 1e3 * total;
    double cost_norm = 0;
    for (double c : cost) cost_norm = std::max(cost_norm, std::abs(c));
    // Start: q = b / |b|^2, s just enough.
    std::vector<double> x(static_cast<size_t>(n), 0.0);
    double bb = 0;
    for (double v : b_) bb += v * v;
    if (!(bb > 0)) return false;  // no row-space input has bias entry 1
    for (int k = 0; k < r; ++k) x[k] = b_[k] / bb;
    double worst = 0;
    for (int j = 0; j < m; ++j) {
      double v = 0;
      for (int k = 0; k < r; ++k) v += a_[static_cast<size_t>(j) * r + k] * x[k];
      worst = std::min(worst, v);
    }
    x[r] = -worst * 1.01 + 1e-12;
    std::vector<int> active;
    std::vector<char> is_active(static_cast<size_t>(m + 1), 0);
    // Orthonormal rows spanning the equality and the active constraints (Gram-Schmidt).
    std::vector<std::vector<double>> ortho;
    // v less its part in their span: the null space's share of v.
    const auto project_out = [&](std::vector<double>& v) {
      for (const auto& o : ortho) {
        double d = 0;
        for (int k = 0; k < n; ++k) d += o[k] * v[k];
        for (int k = 0; k < n; ++k) v[k] -= d * o[k];
      }
    };
    const auto add_ortho = [&](std::vector<double> v) {
      project_out(v);
      project_out(v);  // twice: Gram-Schmidt loses orthogonality once
      double norm = 0;
      for (double c : v) norm += c * c;
      norm = std::sqrt(norm);
      if (!(norm > 1e-12)) return false;
      for (double& c : v) c /= norm;
      ortho.push_back(std::move(v));
      return true;
    };
    std::vector<double> equality(b_);
    equality.push_back(0);
    add_ortho(equality);
    // Moves x along d to the first constraint it would cross; its index, or -1 if none.
    const auto step = [&](const std::vector<double>& d) {
      int blocking = -1;
      double best = std::numeric_limits<double>::infinity();
      double dmax = 0;
      for (double c : d) dmax = std::max(dmax, std::abs(c));
      for (int j = 0; j <= m; ++j) {
        if (is_active[j]) continue;
        double gd = 0, gx = 0, g1 = 0;
        for (int k = 0; k < n; ++k) {
          const double g = row(j, k);
          gd += g * d[k];
          gx += g * x[k];
          g1 += std::abs(g);
        }
        if (!(gd < -1e-12 * g1 * dmax)) continue;
        const double t = std::max(gx, 0.0) / -gd;
        if (t < best) best = t, blocking = j;
      }
      if (blocking >= 0) {
        for (int k = 0; k < n; ++k) x[k] += best * d[k];
      }
      return blocking;
    };
    // To a vertex: descend within the active constraints' null space until n - 1 are active.
    while (static_cast<int>(active.size()) < n - 1) {
      std::vector<double> p(cost);
      project_out(p);
      double pn = 0;
      for (double c : p) pn = std::max(pn, std::abs(c));
      int blocking = -1;
      if (pn > 1e-12 * cost_norm) {
        for (double& c : p) c = -c;
        blocking = step(p);
        if (blocking < 0) return false;
      } else {
        // The cost is flat here: any null-space direction, in whichever sense meets a constraint.
        for (int k = 0; k < n && blocking < 0; ++k) {
          std::vector<double> d(static_cast<size_t>(n), 0.0);
          d[k] = 1;
          project_out(d);
          double dn = 0;
          for (double c : d) dn = std::max(dn, std::abs(c));
          if (!(dn > 1e-9)) continue;
          blocking = step(d);
          if (blocking < 0) {
            for (double& c : d) c = -c;
            blocking = step(d);
          }
        }
        if (blocking < 0) return false;
      }
      std::vector<double> g(static_cast<size_t>(n));
      for (int k = 0; k < n; ++k) g[k] = row(blocking, k);
      if (!add_ortho(g)) return false;
      active.push_back(blocking);
      is_active[blocking] = 1;
    }
    // Simplex pivots: drop the first active constraint (Bland) whose multiplier is negative.
    std::vector<double> kt(static_cast<size_t>(n) * n), k_rows(static_cast<size_t>(n) * n);
    for (int it = 0; it < 50 * n; ++it) {
      for (int k = 0; k < n; ++k) k_rows[k] = k < r ? b_[k] : 0.0;
      for (int i = 0; i < n - 1; ++i) {
        for (int k = 0; k < n; ++k) k_rows[(i + 1) * n + k] = row(active[i], k);
      }
      for (int i = 0; i < n; ++i) {
        for (int k = 0; k < n; ++k) kt[k * n + i] = k_rows[i * n + k];
      }
      std::vector<double> multipliers(cost);
      if (!solve_dense(kt, multipliers, n)) return false;
      int leave = -1;
      for (int i = 0; i < n - 1; ++i) {
        if (multipliers[i + 1] < -1e-10 * cost_norm && (leave < 0 || active[i] < active[leave])) {
          leave = i;
        }
      }
      if (leave < 0) {
        q.assign(x.begin(), x.begin() + r);
        return true;
      }
      std::vector<double> d(static_cast<size_t>(n), 0.0);
      d[leave + 1] = 1;
      if (!solve_dense(k_rows, d, n)) return false;
      is_active[active[leave]] = 0;
      const int blocking = step(d);
      if (blocking < 0) return false;
      active[leave] = blocking;
      is_active[blocking] = 1;
    }
    return false;
  }

  int64_t in_, rank_, rows_ = 0;
  torch::Tensor basis_, constraints_;
  std::vector<double> a_, b_;  // constraints_ and the bias row, row-major
};

}  // namespace

Disaggregation disaggregate(const torch::Tensor& weight_grad, const torch::Tensor& bias_grad,
                            int64_t batch, const SampleDeltas& deltas,
                            const DisaggregationOptions& options) {
  if (batch < 1) throw Error("disaggregate: batch must be at least 1");
  if (options.max_candidates < 1) throw Error("disaggregate: max_candidates must be at least 1");
  if (!(options.column_space > 0) || !(options.rank_tolerance > 0) || !(options.agreement > 0) ||
      !(options.loose_agreement > 0) || !(options.sampled_column_space > 0) ||
      !(options.grid_column_space > 0) || options.stale_trials < 1) {
    throw Error(
        "disaggregate: column_space, rank_tolerance, the agreements and stale_trials must be "
        "positive");
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
  const bool grid = options.grid_step.defined();
  if (grid && (!sampling || options.grid_step.dim() != 1 || options.grid_step.size(0) != in ||
               options.grid_levels < 1)) {
    throw Error(
        "disaggregate: grid_step needs off_value, one step per input coordinate and "
        "grid_levels of at least 1");
  }
  const auto step = grid ? as_float64(options.grid_step) : torch::Tensor();

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
    std::vector<torch::Tensor> rejected;  // this round's candidates the model did not confirm
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
        // A candidate near the grid (where there is one) is a sample: a vector of the row space
        // that is not one (a mixture, a wrong draw, an input 1 % off) lies between levels (half
        // its coordinates more than a quarter level off, on the trained MLP). It is checked
        // snapped to the grid first, at the looser `grid_column_space` (a weak sample's g_j lies
        // up to 3e-3 outside the column space the strong samples' float32 noise blurs), then as
        // found; a candidate between levels only as found. Each is checked once a round.
        const auto snapped_u =
            grid ? snap_near_grid(u, off, step, options.grid_levels) : torch::Tensor();
        const bool near_grid = snapped_u.defined();
        std::vector<torch::Tensor> versions;
        if (near_grid) versions.push_back(snapped_u);
        if (!near_grid || !snapped_u.equal(u)) versions.push_back(u);
        Match match;
        torch::Tensor input;
        for (size_t v = 0; v < versions.size() && !input.defined(); ++v) {
          const auto& x = versions[v];
          const bool seen =
              std::any_of(rejected.begin(), rejected.end(), [&](const torch::Tensor& r) {
                return (r - x).norm().item<double>() <= 1e-9 * x.norm().item<double>();
              });
          if (seen || out.candidates >= options.max_candidates) continue;
          ++out.candidates;
          const auto d = deltas(x);
          if (d.defined()) match = best_label(as_float64(d) / static_cast<double>(batch), basis);
          const bool snapped = near_grid && v == 0;
          const double allowed =
              snapped ? std::max(tolerance, options.grid_column_space) : tolerance;
          if (d.defined() && match.label >= 0 && match.residual <= allowed) {
            input = x;
            if (snapped) ++out.snapped;
          } else {
            rejected.push_back(x);
          }
        }
        if (!input.defined()) continue;
        out.inputs.push_back(input);
        out.labels.push_back(match.label);
        out.residuals.push_back(match.residual);
        const auto z = torch::cat({input, torch::ones({1}, torch::kDouble)});
        out.shares.push_back(match.delta.norm().item<double>() * z.norm().item<double>() / norm);
        rest -= torch::outer(match.delta, z);
        ++accepted;
      }
    };
    // Where what is left is rank one (the last sample, or the last above the float32 noise), its
    // leading right singular vector, a fit over every row, is a candidate too.
    if (remaining == 1 || basis.size(1) == 1) {
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
      // A round gives up after `stale_trials` draws in a row that found no candidate it had not
      // checked (a multi-step update, whose inputs are not in its row space, would otherwise
      // spend the whole budget).
      VertexSampler sampler(rest, basis.size(1), off);
      int64_t stale = 0;
      while (accepted == 0 && !out.work_limit && out.trials < options.max_trials &&
             stale < options.stale_trials) {
        const int64_t trials = out.trials, candidates = out.candidates;
        const auto u =
            sampler.next(std::min(options.max_trials - out.trials, options.stale_trials - stale),
                         rng, out.trials);
        stale += out.trials - trials;
        if (!u.defined()) break;
        check({u}, options.sampled_column_space);
        if (out.candidates > candidates) stale = 0;
      }
      out.sampled += static_cast<int>(accepted);
    }
    if (sampling && accepted == 0 && out.trials >= options.max_trials) out.work_limit = true;
    if (out.work_limit) {
      out.stopped = "work limit reached: " + std::to_string(out.candidates) +
                    " candidate inputs checked, " + std::to_string(out.trials) +
                    " linear programmes solved, " + std::to_string(remaining - accepted) +
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
